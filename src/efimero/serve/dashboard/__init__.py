"""The operations dashboard behind ``/dashboard``: what its JSON endpoints read, and the admin actions.

What it shows (the retraining guidelines' dashboard, plus what rollouts added): the live version
and its test metrics, the last retraining run with its triggers and when the time trigger
retrains next, recent deployments, the running rollout's stages and timeline, per-arm metrics
over consecutive windows with 95 % intervals, drift per feature against the live version's
training data, and the monitor's alerts.

**The clock.** A view ends "now", and "now" is the wall clock while the store holds a visit in
the view's span before it. Simulated traffic carries its own times (days or months away from
the wall clock), and a quiet service may have none in the span; then the view ends just after
the newest visit in the store, and says so (``clock.source == "store"``). ``?at=`` sets the
moment explicitly. The rule is in :func:`~efimero.serve.dashboard.sources.read_clock`.

**Cost.** Views read the store and the registries off the event loop and are kept for a few
seconds (:class:`~efimero.serve.dashboard.sources.ViewCache`): ten dashboards refreshing at once
read the store once. Nothing here is imported by the prediction path; the deployment and
retraining modules load the first time a dashboard asks.
"""

from efimero.serve.dashboard.sources import (
    ADMIN_TOKEN_ENV,
    DashboardSources,
    NotAnEnvironmentError,
    ViewCache,
    admin_token_from_environ,
    read_clock,
    token_matches,
)

__all__ = [
    "ADMIN_TOKEN_ENV", "DashboardSources", "NotAnEnvironmentError", "ViewCache", "admin_token_from_environ",
    "read_clock", "token_matches",
]
