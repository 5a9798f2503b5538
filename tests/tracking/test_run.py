"""Tracking off costs nothing; tracking on but unreachable says so before any work; the URI's layers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from efimero import tracking
from efimero.cli.main import app
from efimero.deploy import deploy
from efimero.errors import TrackingError
from efimero.registry import Registry
from efimero.tracking.mirror import PENDING_FILE
from efimero.tracking.source import AliasSource
from tests._postgres import free_port
from tests.deploy.conftest import environments


def test_without_a_uri_train_and_deploy_never_import_mlflow(small_csv: Path, tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from efimero.cli.main import app\n"
        f"models, prod = {str(tmp_path / 'models')!r}, {str(tmp_path / 'prod')!r}\n"
        f"train = ['train', '--data', {str(small_csv)!r}, '--output', models, '--cv-folds', '0', '--n-jobs', '1']\n"
        "assert CliRunner().invoke(app, train).exit_code == 0\n"
        "assert CliRunner().invoke(app, ['deploy', '--source', models, '--target', 'development']).exit_code == 0\n"
        "print(json.dumps('mlflow' in sys.modules))\n"
    )
    environ = {"PATH": "/usr/bin:/bin", "EFIMERO_ENVIRONMENTS__DEVELOPMENT__MODEL_DIR": str(tmp_path / "prod")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environ,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False
    assert not (tmp_path / "prod" / PENDING_FILE).exists()


def test_no_uri_gives_a_run_that_records_nothing() -> None:
    with tracking.run("train") as log:
        assert log is tracking.NO_RUN
        assert tracking.current() is log
        log.log_metrics({"a": 1})  # records nothing, raises nothing
    assert tracking.current() is tracking.NO_RUN


def test_the_uri_comes_from_the_flag_then_efimero_then_mlflow_variable_then_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tracking.yaml").write_text("tracking:\n  uri: http://file:5000\n  model_name: css-x\n")
    monkeypatch.setenv("EFIMERO_CONFIG_DIR", str(tmp_path))
    assert tracking.tracking_settings().uri == "http://file:5000"
    assert tracking.tracking_settings().model_name == "css-x"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow-variable:5000")
    assert tracking.tracking_settings().uri == "http://mlflow-variable:5000"
    monkeypatch.setenv("EFIMERO_TRACKING__URI", "http://efimero-variable:5000")
    assert tracking.tracking_settings().uri == "http://efimero-variable:5000"
    with tracking.tracking_to("http://flag:5000"):
        assert tracking.tracking_settings().uri == "http://flag:5000"
    assert tracking.tracking_settings().uri == "http://efimero-variable:5000"


def test_an_unreachable_server_stops_train_before_it_trains(small_csv: Path, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(app, ["train", "--data", str(small_csv), "--output", str(tmp_path / "models"),
                                      "--cv-folds", "0", "--mlflow-uri", uri])
    assert result.exit_code == 1
    assert f"the MLflow tracking server at {uri} cannot be used" in " ".join(result.output.split())
    assert Registry(tmp_path / "models").versions() == []


def test_a_mirror_that_fails_is_recorded_and_kept_but_never_fails_the_deploy(registry_copy, tmp_path: Path) -> None:
    root, versions = registry_copy()
    with tracking.tracking_to(f"http://127.0.0.1:{free_port()}"):
        record = deploy(root, "production", version=versions[0], environments=environments(tmp_path))
    assert record.status == "success"
    assert Registry(tmp_path / "prod").current() == versions[0]
    mirror = record.steps[-1]
    assert (mirror.name, mirror.ok) == ("mlflow mirror", False)
    assert "cannot be used" in mirror.detail and "retried at the next deploy or rollback" in mirror.detail
    pending = json.loads((tmp_path / "prod" / PENDING_FILE).read_text())
    assert pending["production"]["version"] == versions[0] and pending["production"]["attempts"] == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("models/", None),
    ("models:/efimero-css@production", AliasSource("efimero-css", "production")),
    ("models:/team.css-v2@champion", AliasSource("team.css-v2", "champion")),
])
def test_models_uris(text: str, expected: AliasSource | None) -> None:
    assert AliasSource.parse(text) == expected


@pytest.mark.parametrize("text", ["models:/efimero-css/3", "models:/efimero-css", "models:/@production"])
def test_a_models_uri_without_an_alias_is_refused_with_the_form_to_use(text: str) -> None:
    with pytest.raises(TrackingError, match="models:/<registered model>@<alias>"):
        AliasSource.parse(text)
