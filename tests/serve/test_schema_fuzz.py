"""Property: no request body, however hostile, gets a 5xx, and a refused one stores nothing.

Hypothesis mutates valid bodies of the three write routes with what hand-written cases miss:
NaN, ±Infinity, 1e400, huge and negative numbers, strings holding NUL or lone surrogates,
numbers as strings and strings as numbers, extra and missing keys, years 1 and 9999 under
every offset, and free-form details nested past the limits. A body holding anything
PostgreSQL could not store must be refused. Examples are derandomized, so a failure
reproduces on every run, and few enough for a slow CI machine.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.conftest import PHONE_AT_NIGHT, interaction

EXAMPLES_PER_ROUTE = 100

HUGE = "@@1e400@@"
"""Stands for the JSON number 1e400, which ``json.dumps`` cannot write (see :func:`raw_json`)."""

_DELETE = object()
"""Marks a key to remove from a body."""

HISTORY = PHONE_AT_NIGHT["history"]
CONTEXT_KEYS = [*PHONE_AT_NIGHT, "session_id", "timezone_offset_min", "prefers_reduced_motion", "prefers_contrast"]

numbers = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, HUGE, -1, 0, -0.0, 1e-320, 1e308, 2**53 + 1, -(2**63), 10**30]),
    st.booleans(), st.integers(-(10**12), 10**12), st.floats(),
)
texts = st.one_of(
    st.text(
        st.one_of(st.characters(codec="utf-8"), st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])),
        max_size=12,
    ),
    st.sampled_from(["390", "3.0", "yes", "true", "null", "NaN", "", "x" * 600]),
)
moments = st.one_of(
    # within a day of datetime's limits: any offset the wrong way overflows
    st.sampled_from(["9999-12-31T23:59:00", "9999-12-31T23:59:59.999999", "0001-01-01T00:00:00"]),
    st.sampled_from([
        "1970-01-01T00:00:00", "1999-12-31T23:59:59", "2100-12-31T23:59:59", "2101-01-01T00:00:00",
        "2026-02-30T10:00:00", "2026-11-25T23:00:00+14:00", "2026-11-25", "9999-12-31", "0001-01-01",
    ]),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.dates().map(lambda day: day.isoformat()),
)
offsets = st.one_of(st.sampled_from([-840, -1, 1, 720, -841, 721]), st.integers(-2000, 2000))
scalars = st.one_of(numbers, texts, moments, st.none())
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


def _nest(depth: int) -> dict[str, Any]:
    return {"k": 1} if depth == 1 else {"k": _nest(depth - 1)}


details = st.one_of(st.dictionaries(texts, json_values, max_size=6), st.integers(1, 8).map(_nest), json_values)


def _mutated(base: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``base`` with up to three fields set to hostile values (of their own kind or any), removed, or added."""
    known = st.sampled_from(sorted(fields)).flatmap(
        lambda key: st.tuples(st.just(key), st.one_of(fields[key], fields[key], scalars, st.just(_DELETE)))
    )
    change = st.one_of(known, known, known, st.tuples(texts, scalars))

    def apply(changes: list[tuple[str, Any]]) -> dict[str, Any]:
        body = dict(base)
        for key, value in changes:
            if value is _DELETE:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    return st.lists(change, max_size=3).map(apply)


history_fields = {key: numbers for key in HISTORY} | {"first_visit": moments}
context_fields = {key: numbers for key in CONTEXT_KEYS} | {
    "local_time": moments, "timezone_offset_min": offsets, "session_id": texts, "pointer": texts,
    "prefers_color_scheme": texts, "prefers_contrast": texts, "connection_effective_type": texts,
    "ua_mobile": scalars, "prefers_reduced_motion": scalars, "history": _mutated(HISTORY, history_fields),
}
clocks = st.fixed_dictionaries({"local_time": moments, "timezone_offset_min": offsets})
contexts = st.one_of(
    _mutated(PHONE_AT_NIGHT, context_fields),
    clocks.map(lambda clock: PHONE_AT_NIGHT | clock),  # only the clock is hostile: does event_time cope?
)


def bodies(route: str, known: str) -> st.SearchStrategy[Any]:
    """Bodies for ``route``: valid ones with one to a few hostile parts, sometimes not even an object."""
    if route == "/v1/predict":
        valid_like = contexts
    elif route == "/v1/predict/batch":
        valid_like = st.lists(contexts, max_size=3).map(lambda items: {"contexts": items})
    else:
        log = interaction(known, user_id="ana@example.com")
        log_fields = {key: numbers for key in [*log, "user_satisfaction"]} | {
            "prediction_id": texts, "session_id": texts, "user_id": texts, "ui_preference_feedback": texts,
            "device_info": details, "network_conditions": details,
        }
        only_details = st.fixed_dictionaries({}, optional={"device_info": details, "network_conditions": details})
        valid_like = st.one_of(_mutated(log, log_fields), only_details.map(lambda extra: log | extra))
    return st.one_of(valid_like, valid_like, valid_like, json_values)


def unstorable(value: Any) -> bool:
    """Whether ``value`` holds anything PostgreSQL could not keep: non-finite numbers, NUL, lone surrogates."""
    if isinstance(value, dict):
        return any(unstorable(key) or unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(unstorable(item) for item in value)
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return value == HUGE or "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)
    return False


def raw_json(body: Any) -> bytes:
    """``body`` as a hostile client sends it: NaN/Infinity tokens, \\ud800 and \\u0000 escapes, 1e400."""
    return json.dumps(body).replace(f'"{HUGE}"', "1e400").encode("ascii")


def counts(client: Any) -> dict[str, int]:
    client.app.state.store.flush()
    return client.app.state.store.counts()


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch", "/v1/interactions"])
def test_no_body_gets_a_5xx_and_refused_ones_store_nothing(client, route) -> None:
    known = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"]

    # One service per route, shared by its examples: each checks only what it changed in the store.
    @settings(
        max_examples=EXAMPLES_PER_ROUTE, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies(route, known))
    def check(body: Any) -> None:
        before = counts(client)
        response = client.post(route, content=raw_json(body), headers={"content-type": "application/json"})
        assert response.status_code < 500, response.text
        answer = response.json()  # every answer, refusals included, is valid JSON
        if unstorable(body):
            assert response.status_code == 422, answer
        if response.status_code >= 400:
            assert response.status_code == 422 and answer["detail"], answer
            assert counts(client) == before

    check()
