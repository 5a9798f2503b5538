"""Engines for the store: SQLite (WAL) by default, PostgreSQL by URL; schema set up on open."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.models import SCHEMA_VERSION, Base, Meta

DEFAULT_URL = "sqlite:///data/efimero.db"


def _normalise(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_engine(url: str = DEFAULT_URL) -> Engine:
    """Create an engine for ``url`` and create or migrate the schema.

    Raises:
        StoreError: the URL is malformed, the database cannot be reached, or its schema is
            newer than this efimero knows.
    """
    url = _normalise(url)
    try:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"--db must be a SQLAlchemy URL such as {DEFAULT_URL}. Got {url!r} instead ({exc}).") from exc
    except ModuleNotFoundError as exc:
        raise StoreError(f"the driver for {url.split(':')[0]} is not installed ({exc.name}).") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _migrate(engine)
    except OperationalError as exc:
        raise StoreError(f"cannot open the store at {engine.url.render_as_string(hide_password=True)}: {exc.orig}") from exc
    return engine


def _migrate(engine: Engine) -> None:
    """Create missing tables and record the schema version (future versions migrate here)."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        found = session.get(Meta, "schema_version")
        if found is None:
            session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(found.value) > SCHEMA_VERSION:
            raise StoreError(
                f"the store's schema version is {found.value}, newer than {SCHEMA_VERSION}; upgrade efimero."
            )
        if session.get(Meta, "user_id_salt") is None:
            session.add(Meta(key="user_id_salt", value=secrets.token_hex(16)))


def user_id_salt(engine: Engine) -> str:
    """The store's own salt for hashing user ids (created once, kept in the database)."""
    try:
        with Session(engine) as session:
            return session.scalars(select(Meta.value).where(Meta.key == "user_id_salt")).one()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the user-id salt: {exc}") from exc
