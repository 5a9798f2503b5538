"""The prediction service: FastAPI app, hot-swapped model, interaction logging, browser client."""

from efimero.serve.app import create_app
from efimero.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
