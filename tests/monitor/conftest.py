"""Stores holding known traffic per version and arm, and a real HTTP receiver for alert webhooks."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from efimero.store import InteractionRecord, PredictionErrorRecord, PredictionRecord, open_engine

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
"""The end of the window the tests check (5 minutes: [11:55, 12:00))."""
IN_WINDOW = NOW - timedelta(minutes=2)
PREVIOUS_WINDOW = NOW - timedelta(minutes=7)
SERVED = {"density": "densidad-media", "font": "fuente-sans", "theme": "tema-claro"}

CONFIRMED = {"session_duration_ms": 150_000, "interactions_count": 8, "bounce_rate": 0.1, "scroll_depth": 0.8}
"""Engaged: confirms the served style."""
REJECTED = {"session_duration_ms": 20_000, "interactions_count": 1, "bounce_rate": 0.6, "scroll_depth": 0.2}
"""A bounce: rejects it."""
AMBIGUOUS = {"session_duration_ms": 60_000, "interactions_count": 3, "bounce_rate": 0.2, "scroll_depth": 0.5}


def sessions_with_accuracy(confirmed: int, total: int) -> list[dict[str, Any]]:
    """``total`` sessions of which ``confirmed`` confirm the style and the rest bounce."""
    return [CONFIRMED] * confirmed + [REJECTED] * (total - confirmed)


@dataclass
class Traffic:
    """Writes predictions, their sessions and failed predictions of one version and arm straight into a store."""

    engine: Engine

    def serve(self, version: str, arm: str, *, count: int, when: datetime = IN_WINDOW,
              latency_ms: Sequence[float | None] | float | None = 10.0, sessions: Sequence[dict[str, Any]] = (),
              classes: Sequence[dict[str, str]] | None = None, errors: int = 0) -> None:
        """``count`` predictions at ``when``; the first ``len(sessions)`` each answered by one session."""
        latencies = latency_ms if isinstance(latency_ms, Sequence) else [latency_ms] * count
        served = classes or [SERVED] * count
        ids = [str(uuid.uuid4()) for _ in range(count)]
        predictions = [
            {"prediction_id": pid, "created_at": when, "event_time": when, "model_version": version, "arm": arm,
             "latency_ms": latencies[i], "context": {}, "features": {}, "css_classes": dict(served[i]),
             "css_variables": {}, "confidences": {}}
            for i, pid in enumerate(ids)
        ]
        logs = [
            {"prediction_id": pid, "received_at": when, "session_id": pid, "user_hash": None,
             "click_through_rate": 0.1, "user_satisfaction": None, "ui_preference_feedback": None,
             "page_load_time_ms": 100.0, "rendering_time_ms": 10.0, "device_info": None, "network_conditions": None,
             **behaviour}
            for pid, behaviour in zip(ids, sessions, strict=False)
        ]
        failures = [{"created_at": when, "event_time": when, "model_version": version, "arm": arm,
                     "error": "RuntimeError: boom"} for _ in range(errors)]
        with self.engine.begin() as connection:
            for model, rows in ((PredictionRecord, predictions), (InteractionRecord, logs),
                                (PredictionErrorRecord, failures)):
                if rows:
                    connection.execute(insert(model), rows)


@pytest.fixture
def traffic(store_url: str) -> Iterator[Traffic]:
    """An empty store (SQLite, then PostgreSQL) to write known traffic into."""
    engine = open_engine(store_url)
    yield Traffic(engine)
    engine.dispose()


@pytest.fixture
def sqlite_traffic(tmp_path: Any) -> Iterator[Traffic]:
    """An empty SQLite store, for tests whose subject is not the database."""
    engine = open_engine(f"sqlite:///{tmp_path}/monitor.db")
    yield Traffic(engine)
    engine.dispose()


@dataclass
class Receiver:
    """A real HTTP server on a free local port that keeps every JSON body POSTed to it."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["receiver"].bodies.append(json.loads(body))
            self.send_response(state["receiver"].status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/efimero")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()
    thread.join(5)
