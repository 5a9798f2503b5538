"""Tracking in MLflow: runs, registered versions that mirror efimero's, and serving from an alias.

Nothing here imports mlflow until a tracking URI is configured: the ``--mlflow-uri`` flag, else
``EFIMERO_TRACKING__URI``, else ``MLFLOW_TRACKING_URI``, else ``tracking.uri`` in
``config/tracking.yaml``. Without one, every run is a :class:`RunLog` that records nothing.

- :func:`run` opens a run per command; the stages log into :func:`current` (a version that was
  saved, tuning trials as nested runs, reports as artefacts); :mod:`efimero.tracking._mlflow`
  says what goes where. This package is a sink like ``logging``: any stage may log into it, and
  it imports no stage, so training can log its trials.
- :func:`efimero.tracking.mirror.mirror_alias` moves the alias of a target (``staging``,
  ``production``) when a deployment, a completed rollout or a rollback makes a version live;
  it never fails them.
- :class:`efimero.tracking.source.AliasSync` keeps a local cache registry on what an alias
  names, for ``efimero serve --models models:/efimero-css@production``.

Example:
    >>> from efimero import tracking
    >>> with tracking.tracking_to("http://127.0.0.1:5000"), tracking.run("train"):  # doctest: +SKIP
    ...     efimero.train("data/synthetic_training_data.csv", output="models/")
"""

from efimero.tracking._run import NO_RUN, RunLog, current, run, tracking_settings, tracking_to

__all__ = ["NO_RUN", "RunLog", "current", "run", "tracking_settings", "tracking_to"]
