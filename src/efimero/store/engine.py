"""Engines for the store: SQLite (WAL) by default, PostgreSQL by URL.

The service opens the store as its owner (creating or migrating the schema); reading
commands open it as readers, which never create a database or change its schema, so a
mistyped URL fails naming the URL instead of reporting an empty new database.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store._migrate import create_secondary_indexes, migrate_v1, migrate_v2, migrate_v3, migrate_v4
from efimero.store.models import SCHEMA_VERSION, Base, Meta

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

DEFAULT_URL = "sqlite:///data/efimero.db"

PREDICTION_KEY = "prediction_id_key"
"""Meta key of the secret that signs prediction ids: shared by every worker on the database."""

LEGACY_SALT_KEY = "user_id_salt"
"""Meta key of the salt that schema-1 stores hashed user ids with (kept only so old rows can be forgotten)."""


def _normalise(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL with synchronous=NORMAL keeps every committed transaction through a process crash
    # (kill -9); only power loss can undo the last ones (sqlite.org/wal.html).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _display(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_engine(url: str = DEFAULT_URL, *, create: bool = True) -> Engine:
    """Create an engine for ``url``; as the owner (``create=True``) also create or migrate the schema.

    Args:
        url: SQLAlchemy URL; ``postgresql://`` uses psycopg 3.
        create: True for the service, which owns the schema. Readers pass False: the
            database must exist and hold an efimero schema of this version.

    Raises:
        StoreError: the URL is malformed, the database cannot be reached or does not exist
            (readers), or its schema is newer (or, for readers, older) than this efimero's.
    """
    url = _normalise(url)
    shown = _display(url)
    on_disk = url.startswith("sqlite:///") and url != "sqlite:///:memory:"
    sqlite_file = url.removeprefix("sqlite:///") if on_disk else None
    if sqlite_file is not None:
        if create:
            Path(sqlite_file).parent.mkdir(parents=True, exist_ok=True)
        elif not Path(sqlite_file).is_file():
            raise StoreError(f"the store {shown} does not exist (no file {sqlite_file}). Check --db.")
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"--db must be a SQLAlchemy URL such as {DEFAULT_URL}. Got {url!r} instead ({exc}).") from exc
    except ModuleNotFoundError as exc:
        raise StoreError(f"the driver for {url.split(':')[0]} is not installed ({exc.name}).") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if create:
            _migrate_once(engine)
        else:
            _check_schema(engine, shown)
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store at {shown}: {exc.orig}") from exc
    except StoreError:
        engine.dispose()
        raise
    return engine


def _schema_version(engine: Engine) -> int | None:
    if not inspect(engine).has_table(Meta.__tablename__):
        return None
    with Session(engine) as session:
        found = session.get(Meta, "schema_version")
    return int(found.value) if found is not None else None


def _check_schema(engine: Engine, shown: str) -> None:
    version = _schema_version(engine)
    if version is None:
        raise StoreError(f"{shown} holds no efimero store (no efimero_meta table). Check --db.")
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"the store at {shown} has schema version {version}; this efimero reads version {SCHEMA_VERSION}. "
            "Start `efimero serve` on it once to migrate."
        )


def _migrate_once(engine: Engine) -> None:
    """Migrate; a second process creating the same tables or keys at the same moment loses
    the race with an integrity or "already exists" error, and then finds everything in place."""
    try:
        _migrate(engine)
    except (IntegrityError, ProgrammingError):
        _migrate(engine)


def _migrate(engine: Engine) -> None:
    """Create missing tables, migrate older schemas and create the signing key once."""
    version = _schema_version(engine)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"the store's schema version is {version}, newer than {SCHEMA_VERSION}; upgrade efimero.")
    if version == 1:
        migrate_v1(engine)
    if version in (1, 2):
        migrate_v2(engine)
    if version in (1, 2, 3):
        migrate_v3(engine)
    if version in (1, 2, 3, 4):
        migrate_v4(engine)
    Base.metadata.create_all(engine)
    create_secondary_indexes(engine)  # a bulk load killed before rebuilding them (efimero.store.load)
    with Session(engine) as session, session.begin():
        found = session.get(Meta, "schema_version")
        if found is None:
            session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        else:
            found.value = str(SCHEMA_VERSION)
        if session.get(Meta, PREDICTION_KEY) is None:
            session.add(Meta(key=PREDICTION_KEY, value=secrets.token_hex(32)))


def read_meta(engine: Engine, key: str) -> str | None:
    """One value of the store's meta table, or None when absent."""
    try:
        with Session(engine) as session:
            return session.scalars(select(Meta.value).where(Meta.key == key)).one_or_none()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read {key} from the store: {exc}") from exc
