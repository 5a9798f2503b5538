"""The interaction store: SQLite by default, PostgreSQL by URL, through SQLAlchemy 2."""

from efimero.store.engine import DEFAULT_URL, open_engine
from efimero.store.keys import PEPPER_ENV, PredictionIds, default_pepper_file, load_pepper
from efimero.store.maintenance import Deleted, forget_user, prune_older_than
from efimero.store.models import InteractionRecord, PredictionRecord
from efimero.store.read import latest_event_time, sessions
from efimero.store.repo import InteractionStore, RecordRefusedError, StoreUnavailableError

__all__ = [
    "DEFAULT_URL", "PEPPER_ENV", "Deleted", "InteractionRecord", "InteractionStore", "PredictionIds",
    "PredictionRecord", "RecordRefusedError", "StoreUnavailableError", "default_pepper_file", "forget_user",
    "latest_event_time", "load_pepper", "open_engine", "prune_older_than", "sessions",
]
