"""Schema migrations, one function per step; the engine runs every step from the store's version on.

**1 → 2**: drop the interactions' foreign key, widen prediction ids, one row per log. Schema 1
kept a foreign key from interactions to predictions and allowed replays of the same log.
Duplicates are collapsed to their first copy (the lowest id), then a unique constraint on
(prediction_id, session_id) makes every later replay a no-op. SQLite cannot drop a
constraint, so there the table is rebuilt (copy, drop, rename) in one transaction;
PostgreSQL alters it in place.

**2 → 3**: predictions gain their traffic ``arm`` (existing rows get ``'live'``: before arms
existed every prediction came from the current version) and ``latency_ms`` (unknown for existing
rows: NULL). The new tables (``prediction_errors``, ``alerts``) are created with every other
missing table afterwards. ``ADD COLUMN`` works alike on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Engine, UniqueConstraint, inspect, text
from sqlalchemy.schema import CreateColumn, CreateIndex, DropIndex

from efimero.store.models import PREDICTION_ID_LENGTH, Base, InteractionRecord, PredictionRecord

_V3_PREDICTION_COLUMNS = ("arm", "latency_ms")
_V4_INTERACTION_COLUMNS = ("first_styled_paint_ms", "hidden_ms")

_KEEP_FIRST_COPY = (
    "DELETE FROM interactions WHERE id NOT IN "
    "(SELECT MIN(id) FROM interactions GROUP BY prediction_id, session_id)"
)


def migrate_v1(engine: Engine) -> None:
    """Bring a schema-1 store to schema 2 without losing a row that is not a duplicate."""
    if engine.dialect.name == "sqlite":
        _rebuild_sqlite(engine)
    else:
        _alter_in_place(engine)


def _rebuild_sqlite(engine: Engine) -> None:
    table = Base.metadata.tables[InteractionRecord.__tablename__]
    old_columns = {column["name"] for column in inspect(engine).get_columns("interactions")}
    # Columns of later schemas are created empty here: the old table has nothing to copy into them.
    columns = ", ".join(column.name for column in table.columns if column.name in old_columns)
    old_indexes = [index["name"] for index in inspect(engine).get_indexes("interactions") if index["name"]]
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for name in old_indexes:
            connection.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')
        connection.exec_driver_sql("ALTER TABLE interactions RENAME TO interactions_v1")
        table.create(connection)
        connection.exec_driver_sql(
            f"INSERT INTO interactions ({columns}) SELECT {columns} FROM interactions_v1 WHERE id IN "
            "(SELECT MIN(id) FROM interactions_v1 GROUP BY prediction_id, session_id)"
        )
        connection.exec_driver_sql("DROP TABLE interactions_v1")


def _alter_in_place(engine: Engine) -> None:
    foreign_keys = [fk["name"] for fk in inspect(engine).get_foreign_keys("interactions") if fk["name"]]
    with engine.begin() as connection:
        for name in foreign_keys:
            connection.execute(text(f'ALTER TABLE interactions DROP CONSTRAINT "{name}"'))
        for table_name in ("predictions", "interactions"):
            connection.execute(text(
                f"ALTER TABLE {table_name} ALTER COLUMN prediction_id TYPE VARCHAR({PREDICTION_ID_LENGTH})"
            ))
        connection.execute(text(_KEEP_FIRST_COPY))
        connection.execute(text(
            "ALTER TABLE interactions ADD CONSTRAINT uq_interactions_prediction_session "
            "UNIQUE (prediction_id, session_id)"
        ))
        connection.execute(text("CREATE INDEX IF NOT EXISTS ix_interactions_user_hash ON interactions (user_hash)"))


def migrate_v2(engine: Engine) -> None:
    """Bring a schema-2 store to schema 3: add the predictions' ``arm`` and ``latency_ms`` columns.

    A column already there is skipped, so a second process migrating at the same moment (whose
    ``ADD COLUMN`` lost the race and is retried) finds the work done.
    """
    _add_columns(engine, PredictionRecord.__tablename__, _V3_PREDICTION_COLUMNS)


def migrate_v3(engine: Engine) -> None:
    """Bring a schema-3 store to schema 4: add the interactions' paint timings (empty in old rows)."""
    _add_columns(engine, InteractionRecord.__tablename__, _V4_INTERACTION_COLUMNS)


def migrate_v4(engine: Engine) -> None:
    """Bring a schema-4 store to schema 5: add the predictions' decisions (empty in old rows)."""
    _add_columns(engine, PredictionRecord.__tablename__, ("decisions",))


def _add_columns(engine: Engine, table_name: str, names: tuple[str, ...]) -> None:
    """Add the model's ``names`` columns to ``table_name``; one already there is skipped."""
    table = Base.metadata.tables[table_name]
    present = {column["name"] for column in inspect(engine).get_columns(table.name)}
    with engine.begin() as connection:
        for name in names:
            if name not in present:
                definition = CreateColumn(table.c[name]).compile(dialect=engine.dialect)
                connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {definition}"))


_LOG_TABLES = (PredictionRecord.__tablename__, InteractionRecord.__tablename__)


def drop_secondary_indexes(engine: Engine) -> None:
    """Drop the logs' secondary indexes and unique constraints (PostgreSQL), before a bulk load."""
    with engine.begin() as connection:
        for table in (Base.metadata.tables[name] for name in _LOG_TABLES):
            for constraint in table.constraints:
                if isinstance(constraint, UniqueConstraint) and constraint.name:
                    connection.execute(text(f'ALTER TABLE {table.name} DROP CONSTRAINT IF EXISTS "{constraint.name}"'))
            for index in table.indexes:
                connection.execute(DropIndex(index, if_exists=True))


def create_secondary_indexes(engine: Engine) -> None:
    """Create every index and unique constraint of the logs' tables that is missing; a no-op when all are there.

    Run when a store is opened by its owner, so that a bulk load killed before it rebuilt them
    (:func:`drop_secondary_indexes`) leaves no store without its indexes for long. A PostgreSQL build
    gets a larger ``maintenance_work_mem`` (its sort happens in memory).
    """
    inspector = inspect(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        for table in (Base.metadata.tables[name] for name in _LOG_TABLES):
            if not inspector.has_table(table.name):
                continue
            present = {index["name"] for index in inspector.get_indexes(table.name)}
            present |= {unique["name"] for unique in inspector.get_unique_constraints(table.name)}
            for index in table.indexes:
                if index.name not in present:
                    connection.execute(CreateIndex(index, if_not_exists=True))
            for constraint in table.constraints:
                if (engine.dialect.name == "postgresql" and isinstance(constraint, UniqueConstraint)
                        and constraint.name not in present):
                    # not AddConstraint: it marks the model's constraint as "added later", so every CREATE TABLE
                    # after it in this process (a new SQLite store) would leave the constraint out
                    columns = ", ".join(column.name for column in constraint.columns)
                    connection.execute(text(f'ALTER TABLE {table.name} ADD CONSTRAINT "{constraint.name}" '
                                            f"UNIQUE ({columns})"))
