"""`efimero serve --usecase KEY`: each use case's production model behind its own request schema."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from efimero.cli.main import app as cli
from efimero.errors import VersionNotFoundError
from efimero.registry.manifest import read_json
from efimero.serve import ServeSettings, create_app
from efimero.serve.settings import load_serve_settings
from efimero.usecases import UseCaseRegistry, UseCaseSpec, train_usecase
from efimero.usecases._data import read_source
from efimero.usecases._prep import load_preprocessor, transform

REPO = Path(__file__).resolve().parents[2]
MAX_BATCH = 5

SMALL: dict[str, dict[str, Any]] = {
    "sales": {  # regression with a categorical column (region)
        "data": {"generator": {"kind": "regression", "rows": 200, "seed": 2, "features": 4}},
        "target": "target", "task": "regression",
        "algorithms": [{"name": "linear_regression", "grid": {"alpha": [1.0]}}],
    },
    "tiers": {  # multiclass with a categorical column (segment)
        "data": {"generator": {"kind": "classification", "rows": 300, "seed": 3, "features": 4, "classes": 3}},
        "target": "label", "task": "multiclass",
        "algorithms": [{"name": "logistic_regression", "grid": {"C": [1.0]}}],
    },
    "demand": {
        "data": {"generator": {"kind": "regression", "rows": 200, "seed": 4, "features": 4, "targets": 2}},
        "target": ["target_1", "target_2"], "task": "multi_output",
        "algorithms": [{"name": "linear_regression", "grid": {"alpha": [1.0]}}],
    },
    "flowers": {
        "data": {"builtin": "sklearn:iris"}, "exclude": ["target"], "task": "clustering",
        "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [3]}}],
    },
}
KEYS = ("breast_cancer", *SMALL)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Five small use cases trained once: a registry where each is promoted, and a copy where none is."""
    folder = tmp_path_factory.mktemp("usecases")
    shutil.copy(REPO / "usecases" / "breast_cancer.yaml", folder)
    for key, document in SMALL.items():
        small = {"key": key, "department": "tests", "cv": {"folds": 2}, "gate": {}, **document}
        (folder / f"{key}.yaml").write_text(yaml.safe_dump(small), encoding="utf-8")
    root, unpromoted = folder / "models", folder / "unpromoted"
    for key in KEYS:
        only = ["logistic_regression"] if key == "breast_cancer" else None
        result = train_usecase(folder / f"{key}.yaml", algorithms=only, models=root)
        assert result.passed, result.gate_failures
    shutil.copytree(root, unpromoted)
    for key in KEYS:
        UseCaseRegistry(root).promote(key, "latest")
    return root, unpromoted


def _settings(tmp: Path, root: Path, keys: tuple[str, ...] = KEYS) -> ServeSettings:
    """No CSS registry at all: the use cases are served on their own."""
    return ServeSettings(models_dir=tmp / "no-css-models", db_url=f"sqlite:///{tmp}/store.db", usecases=keys,
                         usecases_models_dir=root, usecase_max_batch=MAX_BATCH, monitor_interval_s=0,
                         user_id_pepper_file=tmp / "pepper")


@pytest.fixture(scope="module")
def client(trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path_factory.mktemp("serve"), trained[0]))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _version(root: Path, key: str) -> tuple[UseCaseSpec, Any, Any]:
    """The production version's resolved spec, preprocessing and estimator, read as the registry stores them."""
    loaded = UseCaseRegistry(root).load(key)
    spec = UseCaseSpec.model_validate(read_json(loaded.directory / "spec.json"))
    return spec, load_preprocessor(loaded.directory), loaded.estimator


def _rows(spec: UseCaseSpec, count: int) -> list[dict[str, Any]]:
    """The first ``count`` rows of the use case's own data, as JSON bodies."""
    frame = read_source(spec, base=REPO).head(count)
    features = spec.features or []
    return [{f.name: float(row[f.name]) if f.kind == "numeric" else str(row[f.name]) for f in features}
            for _, row in frame.iterrows()]


def _breast_cancer_row(root: Path) -> dict[str, Any]:
    return _rows(_version(root, "breast_cancer")[0], 1)[0]


@pytest.mark.parametrize("key", KEYS)
def test_predictions_are_the_estimators_own(client: TestClient, trained: tuple[Path, Path], key: str) -> None:
    spec, preprocessor, estimator = _version(trained[0], key)
    rows = _rows(spec, 4)
    matrix = transform(preprocessor, pd.DataFrame(rows), spec.features or [])
    expected = estimator.predict(matrix)
    single = client.post(f"/v1/usecases/{key}/predict", json=rows[0])
    batch = client.post(f"/v1/usecases/{key}/predict/batch", json={"rows": rows})
    assert single.status_code == 200 and batch.status_code == 200, (single.text, batch.text)
    entry = UseCaseRegistry(trained[0]).production(key)
    assert entry is not None
    body = single.json()
    assert (body["use_case"], body["version"], body["model_id"], body["algorithm"], body["task"]) == (
        key, entry["version"], entry["model_id"], entry["algorithm"], spec.task.value)
    answers = [body, *batch.json()["predictions"]]
    assert len(answers) == 5
    for answer, want in zip(answers, [expected[0], *expected], strict=True):
        if spec.task == "multi_output":
            assert answer["prediction"] == pytest.approx(dict(zip(spec.targets, want.tolist(), strict=True)))
        elif spec.task == "regression":
            assert answer["prediction"] == pytest.approx(float(want))
        else:  # a label or a cluster id, of the type the estimator gives (breast cancer's labels are 0 and 1)
            assert answer["prediction"] == want.item() and type(answer["prediction"]) is type(want.item())
    if spec.task.is_classification:
        probabilities = estimator.predict_proba(matrix)
        for answer, want in zip(answers, [probabilities[0], *probabilities], strict=True):
            assert list(answer["probabilities"]) == [str(label) for label in estimator.labels.tolist()]
            assert math.isclose(sum(answer["probabilities"].values()), 1.0, abs_tol=1e-9)
            assert list(answer["probabilities"].values()) == pytest.approx(want.tolist())
    else:
        assert all(answer["probabilities"] is None for answer in answers)


def test_openapi_shows_each_use_cases_own_schema(openapi: dict[str, Any], trained: tuple[Path, Path]) -> None:
    schemas = openapi["components"]["schemas"]
    spec = _version(trained[0], "breast_cancer")[0]
    request = schemas["BreastCancerPredictRequest"]
    features = spec.features or []
    assert list(request["properties"]) == [f.name for f in features] == request["required"]
    assert len(features) == 30 and request["additionalProperties"] is False
    radius = next(f for f in features if f.name == "mean radius")
    assert request["properties"]["mean radius"]["minimum"] == radius.min
    assert request["properties"]["mean radius"]["maximum"] == radius.max
    assert request["properties"]["mean radius"]["type"] == "number"
    segment = schemas["TiersPredictRequest"]["properties"]["segment"]
    assert sorted(segment["enum"]) == ["bronze", "gold", "silver"]
    batch = schemas["BreastCancerBatchPredictRequest"]["properties"]["rows"]
    assert (batch["maxItems"], batch["minItems"]) == (MAX_BATCH, 1)
    assert batch["items"] == {"$ref": "#/components/schemas/BreastCancerPredictRequest"}
    paths = openapi["paths"]
    body = paths["/v1/usecases/breast_cancer/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/BreastCancerPredictRequest"}
    for key, name in (("sales", "Sales"), ("demand", "Demand"), ("flowers", "Flowers")):
        assert f"{name}PredictRequest" in schemas and f"/v1/usecases/{key}/predict/batch" in paths
    assert "/v1/predict" in paths and "/v1/usecases/{key}/predict" not in paths  # the CSS routes stay


@pytest.mark.parametrize(("change", "field", "kind"), [
    ({"drop": "mean radius"}, "mean radius", "missing"),
    ({"mean radius": 1e6}, "mean radius", "less_than_equal"),
    ({"mean texture": -1.0}, "mean texture", "greater_than_equal"),
    ({"bogus": 1}, "bogus", "extra_forbidden"),
    ({"mean area": "large"}, "mean area", "float_type"),
    ({"mean area": True}, "mean area", "float_type"),
    ({"mean area": None}, "mean area", "float_type"),
])
def test_bad_rows_are_422_naming_the_field(client: TestClient, trained: tuple[Path, Path], change: dict[str, Any],
                                           field: str, kind: str) -> None:
    row = _breast_cancer_row(trained[0])
    row.pop(change.pop("drop", None), None)
    row.update(change)
    for path, body, loc in (("predict", row, ["body", field]), ("predict/batch", {"rows": [row]},
                                                                ["body", "rows", 0, field])):
        answer = client.post(f"/v1/usecases/breast_cancer/{path}", json=body)
        assert answer.status_code == 422, answer.text
        assert [(e["type"], e["loc"]) for e in answer.json()["detail"]] == [(kind, loc)]


def test_a_category_outside_the_list_and_a_non_finite_number_are_refused(
        client: TestClient, trained: tuple[Path, Path]) -> None:
    row = _rows(_version(trained[0], "tiers")[0], 1)[0]
    answer = client.post("/v1/usecases/tiers/predict", json={**row, "segment": "platinum"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "segment"]
    assert "bronze" in answer.json()["detail"][0]["msg"]
    nan = json.dumps({**row, "x01": float("nan")})  # Python's json writes NaN, and FastAPI's parser reads it
    answer = client.post("/v1/usecases/tiers/predict", content=nan, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "x01"]
    assert answer.json()["detail"][0]["type"] == "finite_number"


def test_the_documented_batch_limit_is_the_enforced_one(client: TestClient, trained: tuple[Path, Path]) -> None:
    row = _breast_cancer_row(trained[0])
    path = "/v1/usecases/breast_cancer/predict/batch"
    assert len(client.post(path, json={"rows": [row] * MAX_BATCH}).json()["predictions"]) == MAX_BATCH
    for rows in ([row] * (MAX_BATCH + 1), []):
        answer = client.post(path, json={"rows": rows})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "rows"], answer.text
    listed = {case["key"]: case for case in client.get("/v1/usecases").json()["usecases"]}
    assert listed["breast_cancer"]["max_batch"] == MAX_BATCH


def test_the_listing_names_every_served_version(client: TestClient, trained: tuple[Path, Path]) -> None:
    listed = client.get("/v1/usecases").json()["usecases"]
    assert [case["key"] for case in listed] == list(KEYS)
    registry = UseCaseRegistry(trained[0])
    for case in listed:
        entry = registry.production(case["key"])
        assert entry is not None
        assert (case["version"], case["directory"], case["algorithm"]) == (
            entry["version"], entry["directory"], entry["algorithm"])
        assert case["metrics"] == entry["metrics"] and case["request_schema"].endswith("PredictRequest")
    assert listed[0]["primary_metric"] == "roc_auc" and listed[0]["metrics"]["roc_auc"] > 0.9


def test_an_unknown_key_is_404_naming_the_served_ones(client: TestClient) -> None:
    for path in ("/v1/usecases/churn/predict", "/v1/usecases/churn/predict/batch"):
        answer = client.post(path, json={"rows": []})
        assert answer.status_code == 404 and "churn" in answer.json()["detail"]
        assert "breast_cancer" in answer.json()["detail"]


def test_a_use_case_without_production_version_stops_the_start(trained: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(VersionNotFoundError, match=r"breast_cancer has no production version.*"
                       r"efimero usecase promote breast_cancer 1\.0\.0"):
        create_app(_settings(tmp_path, trained[1], ("breast_cancer",)))
    with pytest.raises(VersionNotFoundError, match=r"churn has no version.*efimero usecase train churn"):
        create_app(_settings(tmp_path, trained[0], ("churn",)))
    result = CliRunner().invoke(cli, ["serve", "--usecase", "breast_cancer", "--usecases-models", str(trained[1])])
    assert result.exit_code == 1 and "efimero usecase promote breast_cancer" in " ".join(result.output.split())


def test_a_use_case_is_503_until_the_lifespan_loaded_it(trained: tuple[Path, Path], tmp_path: Path) -> None:
    not_started = TestClient(create_app(_settings(tmp_path, trained[0], ("breast_cancer",))))
    answer = not_started.post("/v1/usecases/breast_cancer/predict", json=_breast_cancer_row(trained[0]))
    assert answer.status_code == 503 and "not loaded" in answer.json()["detail"]


def test_serve_help_shows_the_use_case_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--usecase" in result.output and "--usecases-models" in result.output
    assert "models/usecases" in result.output


def test_the_settings_travel_to_workers_as_a_comma_list(trained: tuple[Path, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, trained[0], ("breast_cancer", "flowers"))
    environ = settings.to_environ()
    assert environ["EFIMERO_SERVE_USECASES"] == "breast_cancer,flowers"
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert load_serve_settings() == settings


def test_serving_use_cases_imports_no_training_library(trained: tuple[Path, Path], tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from fastapi.testclient import TestClient\n"
        "from efimero.serve import ServeSettings, create_app\n"
        f"settings = ServeSettings(models_dir=Path({str(tmp_path / 'none')!r}), db_url='sqlite:///{tmp_path}/s.db',\n"
        f"    usecases=('breast_cancer',), usecases_models_dir=Path({str(trained[0])!r}), monitor_interval_s=0)\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    assert client.get('/v1/usecases').status_code == 200\n"
        "print(json.dumps([m for m in ('optuna', 'shap', 'matplotlib', 'pandera', 'mlflow') if m in sys.modules]))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == []

