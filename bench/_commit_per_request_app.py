"""The baseline for bench_faults.py: a FastAPI endpoint that commits each log before answering.

What a user would otherwise write for durable logging: one SQLAlchemy insert and commit per
request on the same SQLite settings as efimero (WAL, synchronous=NORMAL), no batching.
``EFIMERO_BENCH_DB`` names the SQLite file.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, create_engine, event, insert

_engine = create_engine(f"sqlite:///{os.environ['EFIMERO_BENCH_DB']}")


@event.listens_for(_engine, "connect")
def _pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")


_logs = Table("logs", MetaData(), Column("id", Integer, primary_key=True), Column("session_id", String(128)),
              Column("body", JSON))
_logs.metadata.create_all(_engine)
app = FastAPI()


@app.post("/log", status_code=202)
def log(body: dict[str, Any]) -> dict[str, str]:
    with _engine.begin() as connection:
        connection.execute(insert(_logs), {"session_id": str(body.get("session_id")), "body": body})
    return {"status": "stored"}
