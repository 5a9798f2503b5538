"""The interaction store: SQLite by default, PostgreSQL by URL, through SQLAlchemy 2."""

from efimero.store.engine import DEFAULT_URL, open_engine
from efimero.store.models import InteractionRecord, PredictionRecord
from efimero.store.read import latest_event_time, sessions
from efimero.store.repo import InteractionStore

__all__ = [
    "DEFAULT_URL", "InteractionRecord", "InteractionStore", "PredictionRecord", "latest_event_time", "open_engine",
    "sessions",
]
