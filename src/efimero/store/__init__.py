"""The interaction store: SQLite by default, PostgreSQL by URL, through SQLAlchemy 2."""

from efimero.store.alerts import StoredAlert, recent_alerts, record_alert, record_delivery
from efimero.store.engine import DEFAULT_URL, open_engine
from efimero.store.keys import PEPPER_ENV, PredictionIds, default_pepper_file, load_pepper
from efimero.store.maintenance import Deleted, forget_user, prune_older_than
from efimero.store.models import LIVE_ARM, AlertRecord, InteractionRecord, PredictionErrorRecord, PredictionRecord
from efimero.store.read import (
    decisions,
    end_after_newest_visit,
    iter_decisions,
    iter_sessions,
    latest_event_time,
    prediction_errors,
    predictions,
    sessions,
)
from efimero.store.repo import KINDS, InteractionStore, RecordRefusedError, StoreUnavailableError

__all__ = [
    "DEFAULT_URL", "KINDS", "LIVE_ARM", "PEPPER_ENV", "AlertRecord", "Deleted", "InteractionRecord",
    "InteractionStore", "PredictionErrorRecord", "PredictionIds", "PredictionRecord", "RecordRefusedError",
    "StoreUnavailableError", "StoredAlert", "decisions", "default_pepper_file", "end_after_newest_visit",
    "forget_user", "iter_decisions", "iter_sessions", "latest_event_time", "load_pepper", "open_engine",
    "prediction_errors", "predictions", "prune_older_than", "recent_alerts", "record_alert", "record_delivery",
    "sessions",
]
