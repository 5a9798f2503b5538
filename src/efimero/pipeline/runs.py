"""The record of automated retraining runs: ``<models>/retraining_runs.json``.

Apart from :mod:`efimero.pipeline.auto`, which runs the whole training stack, so that readers
(the service's dashboard) load nothing but this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from efimero._io import atomic_write_json, exclusive_lock

RUNS_FILE = "retraining_runs.json"


def record_run(models: Path, run: dict[str, Any]) -> None:
    """Insert or replace ``run`` (by id) in the registry's record of runs, atomically under its lock."""
    with exclusive_lock(models / ".runs.lock"):
        runs = [r for r in read_runs(models) if r["id"] != run["id"]] + [run]
        atomic_write_json(models / RUNS_FILE, {"runs": runs})


def read_runs(models: str | Path) -> list[dict[str, Any]]:
    """Every recorded run, oldest first; empty when none was recorded."""
    path = Path(models) / RUNS_FILE
    return json.loads(path.read_text(encoding="utf-8"))["runs"] if path.is_file() else []
