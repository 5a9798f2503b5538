"""Serving loads the serving stack only: no tuner, no explainer, no plotting, no training code."""

from __future__ import annotations

import json
import subprocess
import sys

TRAINING_ONLY = ("optuna", "shap", "matplotlib", "pandera", "efimero.training", "efimero.analysis", "efimero.retrain",
                 "efimero.deploy", "efimero.gate", "mlflow", "treelite", "tl2cgen")


def test_the_service_and_its_command_import_nothing_training_needs_alone(registry_dir, tmp_path) -> None:
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import efimero.cli.main\n"
        "from fastapi.testclient import TestClient\n"
        "from efimero.serve import ServeSettings, create_app\n"
        f"settings = ServeSettings(models_dir=Path({str(registry_dir[0])!r}), db_url='sqlite:///{tmp_path}/s.db')\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    assert client.get('/readyz').status_code == 200\n"
        f"print(json.dumps([name for name in {TRAINING_ONLY!r} if name in sys.modules]))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == []
