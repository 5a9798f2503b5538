"""Simulated interaction logs in bulk: predictions and their interactions, written fast.

``efimero store load-simulated`` fills a store with ``rows`` logs (one served prediction and the
interaction log it led to) spread evenly over ``days`` simulated days that end at ``end``. It is
how a site with real traffic is sized for tests and benchmarks, without a live service.

**What a log holds.** Each visit's context is drawn like the visitor simulator's
(:func:`efimero.data.generate.sample_contexts` through :func:`efimero.simulate.browser_contexts`),
at its day's date and a drawn hour (the traffic curve), with ``timezone_offset_min`` 0, so the
stored event time is the simulated time. A stand-in model serves the visitor's preferred style
(:func:`efimero.data.generate.preferred_style`) with each class right with probability
:data:`SERVED_ACCURACY` (else another label) and each variable off by Gaussian noise; the
visitor then behaves as :func:`efimero.simulate.behave` says, vectorised: the same match score,
bounce, session length, scroll, rating, feedback and load times.

**Determinism.** Rows come in chunks, one or more per day; each chunk draws from its own
generator seeded by ``(seed, day, part)``, so the same ``seed``, ``rows``, ``days``, ``end`` and
``chunk_size`` give the same rows (interaction ids aside, which the database numbers), in any
process. Within a day rows are in time order, as traffic is written.

**Writing.** On PostgreSQL each chunk goes in with ``COPY … FROM STDIN`` (psycopg 3's
``cursor.copy``), one transaction per chunk: predictions first, then their interactions. On
SQLite, and with ``method="insert"`` anywhere, a chunk is one ``executemany`` of row inserts.
A store that already holds a chunk's prediction ids (the same seed loaded twice) is refused
with a :class:`~efimero.errors.StoreError`; the chunks committed before stay.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import JSON, DateTime, Engine, Float, Integer, String, literal, select
from sqlalchemy.exc import SQLAlchemyError

from efimero.css import DEFAULT_TOKENS
from efimero.data.generate import preferred_style, sample_contexts
from efimero.errors import StoreError
from efimero.schema import CSS_TASK
from efimero.simulate.behaviour import (
    CLASS_WEIGHTS,
    FEEDBACK_SHARE,
    MAX_SESSION_S,
    RATING_SHARE,
    VARIABLE_TOLERANCE,
    VARIABLES_WEIGHT,
)
from efimero.simulate.visitors import browser_context_columns, intended_features
from efimero.store._migrate import create_secondary_indexes, drop_secondary_indexes
from efimero.store.models import InteractionRecord, PredictionRecord

Method = Literal["auto", "copy", "insert"]
METHODS: tuple[str, ...] = ("auto", "copy", "insert")

SIMULATED_VERSION = "v_simulated"
"""The model version every loaded prediction names."""
SERVED_ACCURACY = 0.8
"""Probability that the stand-in model serves a visitor's preferred label of a class group."""
DEFAULT_CHUNK = 20_000
DEFAULT_DAYS = 90

PREDICTION_COLUMNS: tuple[str, ...] = (
    "prediction_id", "created_at", "event_time", "model_version", "arm", "latency_ms", "context", "features",
    "css_classes", "css_variables", "confidences",
)
INTERACTION_COLUMNS: tuple[str, ...] = (
    "prediction_id", "received_at", "session_id", "user_hash", "session_duration_ms", "interactions_count",
    "bounce_rate", "scroll_depth", "click_through_rate", "user_satisfaction", "ui_preference_feedback",
    "page_load_time_ms", "rendering_time_ms", "first_styled_paint_ms", "hidden_ms",
)
_DATETIME_COLUMNS = {"created_at", "event_time", "received_at"}
_VARIABLE_NOISE_SHARE = 0.05
"""Standard deviation of the served variables' noise, as a share of each variable's range."""

Progress = Callable[[int], None]
"""Called with the number of logs written since the last call."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of simulated logs, as rows in the order of :data:`PREDICTION_COLUMNS` and
    :data:`INTERACTION_COLUMNS`: JSON columns as JSON text, times as aware UTC datetimes."""

    predictions: list[tuple[Any, ...]]
    interactions: list[tuple[Any, ...]]


@dataclass(frozen=True)
class LoadResult:
    """What a load wrote, how, and how fast."""

    rows: int
    seed: int
    days: int
    start: datetime
    end: datetime
    method: str
    chunks: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"start": self.start.isoformat(), "end": self.end.isoformat(),
                               "rows_per_s": round(self.rows_per_s, 1)}


def plan(rows: int, days: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """``(day, part, size)`` of every chunk: ``rows`` spread evenly over ``days``, the first days taking
    one more while ``rows`` does not divide, and each day cut into parts of at most ``chunk_size``."""
    per_day, extra = divmod(rows, days)
    chunks = []
    for day in range(days):
        size = per_day + (day < extra)
        for part, begin in enumerate(range(0, size, chunk_size)):
            chunks.append((day, part, min(chunk_size, size - begin)))
    return chunks


def simulated_chunk(seed: int, day: date, day_index: int, part: int, size: int) -> Chunk:
    """``size`` logs of visits on ``day``, drawn from the generator of ``(seed, day_index, part)``."""
    rng = np.random.default_rng([seed, day_index, part])
    raw = sample_contexts(rng, size)
    minute, second = rng.integers(0, 60, size), rng.integers(0, 60, size)
    seconds = raw["local_hour"].to_numpy() * 3600 + minute * 60 + second
    order = np.argsort(seconds, kind="stable")
    raw = raw.iloc[order].reset_index(drop=True)
    raw["weekday"] = day.weekday()
    midnight = datetime(day.year, day.month, day.day)
    seconds = seconds[order]
    raw["local_time"] = np.datetime64(midnight, "s") + seconds.astype("timedelta64[s]")
    offsets = [timedelta(seconds=s) for s in seconds.tolist()]
    contexts = _json_rows(browser_context_columns(raw, rng))
    features = intended_features(raw)
    preferred = preferred_style(features)
    served = _served(rng, preferred)
    behaviour = _behave(rng, served, preferred, raw["downlink_mbps"].to_numpy())

    utc_midnight = midnight.replace(tzinfo=UTC)
    event = [utc_midnight + offset for offset in offsets]
    latency = np.round(rng.lognormal(np.log(2.0), 0.4, size), 3).tolist()
    created = [t + timedelta(milliseconds=ms) for t, ms in zip(event, latency, strict=True)]
    received = [t + timedelta(milliseconds=ms) for t, ms in zip(event, behaviour["session_duration_ms"], strict=True)]
    ids = _hex(rng, size, 32)
    sessions = _hex(rng, size, 16)
    users = _hex(rng, size, 32)
    known = (rng.random(size) < 0.7).tolist()
    feature_json = _json_rows({name: features[name].tolist() for name in features.columns})
    classes = _json_rows({target.name.removeprefix("css_class_"): served[target.name].tolist()
                          for target in CSS_TASK.class_targets})
    variables = _json_rows({variable.property: list(map(variable.format, served[variable.target].tolist()))
                            for variable in DEFAULT_TOKENS.variables})
    confidences = json.dumps({target.name.removeprefix("css_class_"): SERVED_ACCURACY
                              for target in CSS_TASK.class_targets}, separators=(",", ":"))
    predictions = list(zip(ids, created, event, [SIMULATED_VERSION] * size, ["live"] * size, latency, contexts,
                           feature_json, classes, variables, [confidences] * size, strict=True))
    interactions = list(zip(ids, received, sessions, [u if k else None for u, k in zip(users, known, strict=True)],
                            *(behaviour[name] for name in INTERACTION_COLUMNS[4:]), strict=True))
    return Chunk(predictions, interactions)


def _json_rows(columns: dict[str, list[Any]]) -> list[str]:
    """One compact JSON object per row from equal-length columns of str, int, float or bool (no NaN);
    a ``parent.child`` name nests ``child`` under ``parent``, after every plain field.

    The same text as ``json.dumps(row, separators=(",", ":"), ensure_ascii=False)``, one format per row.
    """
    plain = [name for name in columns if "." not in name]
    nested: dict[str, list[str]] = {}
    for name in columns:
        if "." in name:
            parent, child = name.split(".", 1)
            nested.setdefault(parent, []).append(child)
    parts = [f'"{name}":%s' for name in plain]
    parts += [f'"{parent}":{{' + ",".join(f'"{child}":%s' for child in children) + "}"
              for parent, children in nested.items()]
    template = "{" + ",".join(parts) + "}"
    ordered = plain + [f"{parent}.{child}" for parent, children in nested.items() for child in children]
    encoded = [_json_values(columns[name]) for name in ordered]
    return [template % values for values in zip(*encoded, strict=True)]


def _json_values(values: list[Any]) -> list[str]:
    """Each value as JSON text: strings quoted, booleans lower case, numbers as ``repr`` (JSON for finite floats)."""
    if values and isinstance(values[0], str):
        return list(map(encode_basestring, values))
    if values and isinstance(values[0], bool):
        return ["true" if value else "false" for value in values]
    return list(map(repr, values))


def _hex(rng: np.random.Generator, size: int, nbytes: int) -> list[str]:
    """``size`` random hex strings of ``nbytes`` bytes each."""
    text = rng.bytes(size * nbytes).hex()
    width = 2 * nbytes
    return [text[i:i + width] for i in range(0, size * width, width)]


def _served(rng: np.random.Generator, preferred: pd.DataFrame) -> pd.DataFrame:
    """The stand-in model's style: each preferred class kept with :data:`SERVED_ACCURACY`, variables noisy."""
    served = preferred.copy()
    size = len(preferred)
    for target in CSS_TASK.class_targets:
        labels = np.asarray(target.labels, dtype=object)
        wrong = rng.random(size) >= SERVED_ACCURACY
        others = labels[rng.integers(0, len(labels), size)]
        served[target.name] = np.where(wrong, others, preferred[target.name].to_numpy(dtype=object))
    for variable in CSS_TASK.regression_targets:
        noise = rng.normal(0.0, _VARIABLE_NOISE_SHARE * (variable.maximum - variable.minimum), size)
        served[variable.name] = np.clip(preferred[variable.name].to_numpy(dtype=float) + noise, variable.minimum,
                                        variable.maximum)
    return served


def _behave(rng: np.random.Generator, served: pd.DataFrame, preferred: pd.DataFrame,
            downlink: np.ndarray) -> dict[str, list[Any]]:
    """:func:`efimero.simulate.behave` for every row at once: the interaction log's fields by column."""
    size = len(served)
    matched = {target: served[target].to_numpy() == preferred[target].to_numpy() for target in CLASS_WEIGHTS}
    m = sum(weight * matched[target] for target, weight in CLASS_WEIGHTS.items())
    for target, tolerance in VARIABLE_TOLERANCE.items():
        distance = np.abs(served[target].to_numpy(float) - preferred[target].to_numpy(float))
        if target == "color_primary_h":
            distance = np.minimum(distance % 360, 360 - distance % 360)
        m = m + VARIABLES_WEIGHT / len(VARIABLE_TOLERANCE) * np.clip(1.0 - distance / tolerance, 0.0, 1.0)
    m = np.asarray(m, dtype=float)
    bounced = rng.random(size) < 0.6 * (1 - m) ** 2
    duration_s = np.where(bounced, rng.lognormal(np.log(6.0), 0.6, size),
                          rng.lognormal(np.log(30.0 + 200.0 * m), 0.5))
    interactions = np.where(bounced, 0, rng.poisson(1.0 + 10.0 * m))
    scroll = np.where(bounced, 0.3 * rng.beta(1.0, 6.0, size), rng.beta(1.0 + 5.0 * m, 1.0 + 5.0 * (1.0 - m)))
    rated = rng.random(size) < RATING_SHARE
    rating = np.clip(np.round(1.0 + 4.0 * m + rng.normal(0.0, 0.6, size)), 1, 5).astype(int)
    gives_feedback = rng.random(size) < FEEDBACK_SHARE
    wrong_labels = [np.where(matched[target], "", preferred[target].to_numpy(dtype=object)) for target in CLASS_WEIGHTS]
    feedback = [" ".join(label for label in labels if label) or None for labels in zip(*wrong_labels, strict=True)]
    slowness = 1.0 / (downlink + 1.0)
    load = np.minimum(rng.lognormal(np.log(250.0 + 4000.0 * slowness), 0.35), 60_000.0)
    render = np.minimum(rng.lognormal(np.log(12.0 + 250.0 * slowness), 0.4), 60_000.0)
    paint = load + render
    return {
        "session_duration_ms": np.round(np.minimum(duration_s, MAX_SESSION_S) * 1000).astype(int).tolist(),
        "interactions_count": interactions.astype(int).tolist(),
        "bounce_rate": np.where(bounced, 1.0, 0.0).tolist(),
        "scroll_depth": np.round(np.clip(scroll, 0.0, 1.0), 4).tolist(),
        "click_through_rate": np.round(np.minimum(1.0, interactions / 20), 4).tolist(),
        "user_satisfaction": [int(r) if ok else None for r, ok in zip(rating, rated, strict=True)],
        "ui_preference_feedback": [text if give else None for text, give in zip(feedback, gives_feedback,
                                                                                 strict=True)],
        "page_load_time_ms": np.round(load, 1).tolist(),
        "rendering_time_ms": np.round(render, 1).tolist(),
        "first_styled_paint_ms": np.round(paint, 1).tolist(),
        "hidden_ms": [None] * size,
    }


def chunks(rows: int, *, seed: int, days: int = DEFAULT_DAYS, end: date,
           chunk_size: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """Every chunk of a load, in order (see the module docstring)."""
    for day_index, part, size in plan(rows, days, chunk_size):
        yield simulated_chunk(seed, end - timedelta(days=days - day_index), day_index, part, size)


def load_simulated(engine: Engine, rows: int, *, seed: int, days: int = DEFAULT_DAYS, end: date | None = None,
                   chunk_size: int = DEFAULT_CHUNK, method: Method = "auto", defer_indexes: bool | None = None,
                   progress: Progress | None = None) -> LoadResult:
    """Write ``rows`` simulated logs (predictions and interactions) into the store of ``engine``.

    The next chunks are drawn on a second thread, or for large loads in a second process, while the
    database takes the current one.

    Args:
        engine: an engine from :func:`efimero.store.open_engine` (the schema must exist).
        rows: how many logs; ``days`` simulated days before ``end`` hold them.
        seed: the source of every random draw.
        end: the day after the last simulated day (default: today, UTC).
        chunk_size: most logs per chunk and per transaction.
        method: ``copy`` (PostgreSQL only), ``insert`` (executemany), or ``auto``: copy on PostgreSQL.
        defer_indexes: PostgreSQL only: drop the logs' secondary indexes and unique constraint
            first and build them once at the end (sorted builds, as the PostgreSQL manual's
            "Populating a Database" advises), also when the load fails. None: only when both
            tables are empty, so no reader of a live store loses an index.
        progress: called with the logs written after each chunk.

    Raises:
        StoreError: a bad argument, ``copy`` on SQLite, a chunk the store already holds, or a
            database failure (the chunks committed before it stay).
    """
    if rows < 1 or days < 1 or chunk_size < 1:
        raise StoreError(f"rows, days and chunk size must be positive. Got {rows}, {days} and {chunk_size} instead.")
    end = end or datetime.now(UTC).date()
    postgres = engine.dialect.name == "postgresql"
    if method == "copy" and not postgres:
        raise StoreError(f"method 'copy' needs PostgreSQL. Got a {engine.dialect.name} store; use 'insert' or 'auto'.")
    chosen = "copy" if method == "copy" or (method == "auto" and postgres) else "insert"
    write = _copy_chunk if chosen == "copy" else _insert_chunk(engine)
    began, written = time.perf_counter(), 0
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        defer = postgres and (defer_indexes if defer_indexes is not None else _logs_empty(engine))
        raw = engine.raw_connection()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot reach the store: {_first_line(exc)}") from exc
    plans = [(end - timedelta(days=days - day), day, part, size) for day, part, size in plan(rows, days, chunk_size)]
    try:
        if defer:
            drop_secondary_indexes(engine)
        with _drawer(rows) as pool:
            upcoming = deque(pool.submit(simulated_chunk, seed, *chunk_plan) for chunk_plan in plans[:_AHEAD])
            for written, _ in enumerate(plans, 1):
                chunk = upcoming.popleft().result()
                if written + _AHEAD <= len(plans):
                    upcoming.append(pool.submit(simulated_chunk, seed, *plans[written + _AHEAD - 1]))
                try:
                    write(raw.driver_connection, chunk)
                    raw.commit()
                except driver_error as exc:
                    raw.rollback()
                    raise _load_error(exc, written) from exc
                if progress is not None:
                    progress(len(chunk.predictions))
    finally:
        raw.close()
        if defer:
            create_secondary_indexes(engine)
    first = datetime.combine(end - timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    return LoadResult(rows, seed, days, first, datetime.combine(end, datetime.min.time(), tzinfo=UTC), chosen,
                      written, time.perf_counter() - began)


_AHEAD = 2
"""Chunks drawn ahead of the one being written."""
PROCESS_MIN_ROWS = 200_000
"""From this many logs on, chunks are drawn in a second process (a CPU of its own, no shared GIL with the
writer); below it a thread, which starts at once."""


def _drawer(rows: int) -> Executor:
    if rows < PROCESS_MIN_ROWS:
        return ThreadPoolExecutor(1, thread_name_prefix="efimero-load")
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def probe_log(prediction_id: str, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A prediction and its interaction with the least content the schema takes: what a probe of writer
    latency logs through :class:`~efimero.store.InteractionStore` (the scale bench and its tests)."""
    prediction = {"prediction_id": prediction_id, "created_at": at, "event_time": at, "model_version": "v_probe",
                  "context": {}, "features": {}, "css_classes": {}, "css_variables": {}, "confidences": {}}
    interaction = {"prediction_id": prediction_id, "received_at": at, "session_id": "s", "user_hash": None,
                   "session_duration_ms": 1000, "interactions_count": 1, "bounce_rate": 0.0, "scroll_depth": 0.5,
                   "click_through_rate": 0.1, "user_satisfaction": None, "ui_preference_feedback": None,
                   "page_load_time_ms": 1.0, "rendering_time_ms": 1.0, "device_info": None, "network_conditions": None}
    return prediction, interaction


def _logs_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not any(connection.execute(select(literal(1)).select_from(model).limit(1)).first()
                       for model in (PredictionRecord, InteractionRecord))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _load_error(exc: Exception, chunk: int) -> StoreError:
    """The driver's error as a StoreError: a replayed seed (unique violation) says so."""
    text = _first_line(exc)
    if "unique" in text.lower() or "duplicate key" in text.lower():
        return StoreError(f"chunk {chunk} holds prediction ids the store already has ({text}): this seed was "
                          "loaded into it before. Use another --seed or an empty store.")
    return StoreError(f"writing chunk {chunk} failed: {text}; the chunks before it are stored.")


def _copy_chunk(connection: Any, chunk: Chunk) -> None:
    """COPY one chunk through a psycopg 3 connection, in the binary format (the server parses no text)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")  # a crash may lose the last chunks, never half of one
        for table, columns, rows in _tables(chunk):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_COPY_TYPES[table])
                for row in rows:
                    copy.write_row(row)


def _copy_type(column: Any) -> str:
    """The PostgreSQL type name psycopg dumps a column's values as. JSON columns get their text as ``text``:
    ``json``'s binary form is its text, whereas psycopg would encode a str declared ``json`` as a JSON string."""
    kind = column.type
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    names = {JSON: "text", Float: "float8", Integer: "int4", String: "varchar"}
    return next(name for base, name in names.items() if isinstance(kind, base))


_COPY_TYPES = {
    model.__tablename__: [_copy_type(model.__table__.c[name]) for name in columns]
    for model, columns in ((PredictionRecord, PREDICTION_COLUMNS), (InteractionRecord, INTERACTION_COLUMNS))
}


def _tables(chunk: Chunk) -> list[tuple[str, Sequence[str], list[tuple[Any, ...]]]]:
    return [(PredictionRecord.__tablename__, PREDICTION_COLUMNS, chunk.predictions),
            (InteractionRecord.__tablename__, INTERACTION_COLUMNS, chunk.interactions)]


def _insert_chunk(engine: Engine) -> Callable[[Any, Chunk], None]:
    """An executemany writer in the engine's paramstyle, with times stored as SQLAlchemy stores them."""
    dialect = engine.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    converters: dict[str, Callable[[Any], Any] | None] = {}
    for table in (PredictionRecord.__table__, InteractionRecord.__table__):
        for name in _DATETIME_COLUMNS & set(table.c.keys()):
            converters[name] = table.c[name].type.bind_processor(dialect)

    def write(connection: Any, chunk: Chunk) -> None:
        cursor = connection.cursor()
        try:
            for table, columns, rows in _tables(chunk):
                convert = [(i, converters.get(name)) for i, name in enumerate(columns) if converters.get(name)]
                if convert:
                    rows = [_converted(row, convert) for row in rows]
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                   f"VALUES ({', '.join([marker] * len(columns))})", rows)
        finally:
            cursor.close()

    return write


def _converted(row: tuple[Any, ...], convert: list[tuple[int, Callable[[Any], Any] | None]]) -> tuple[Any, ...]:
    values = list(row)
    for index, function in convert:
        assert function is not None
        values[index] = function(values[index])
    return tuple(values)
