"""Compiled trees: built off the request path, used only when they prove equal to XGBoost.

Each refusal (altered library, another booster, another platform, different predictions)
is checked to serve through XGBoost with the reason, and a tampered library is checked to
be never opened: dlopen runs a library's code.
"""

from __future__ import annotations

import ctypes
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from efimero.bundle import COMPILED_MAX_ROWS
from efimero.cli.main import app
from efimero.compiled import CompiledTrees
from efimero.errors import RegistryError
from efimero.registry import Registry
from efimero.registry.compile import COMPILED_DIR, COMPILED_INDEX, TOLERANCE, verification_sample

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="compiling needs gcc")


@pytest.fixture(scope="module")
def compiled_registry(tmp_path_factory: pytest.TempPathFactory, tiny_registry: tuple[Path, list[str]]) -> Path:
    """The tiny registry's current version, compiled once for the module (copy it to change it)."""
    root = tmp_path_factory.mktemp("compiled") / "models"
    shutil.copytree(tiny_registry[0], root)
    Registry(root).compile()
    return root


@pytest.fixture
def compiled_copy(tmp_path: Path, compiled_registry: Path) -> Registry:
    shutil.copytree(compiled_registry, tmp_path / "models")
    return Registry(tmp_path / "models")


def _index(registry: Registry) -> tuple[Path, dict]:
    path = registry.path() / COMPILED_DIR / COMPILED_INDEX
    return path, json.loads(path.read_text())


def _xgboost_only(registry: Registry):
    bundle = registry.load()
    for model in bundle.models.values():
        model.compiled = None
    return bundle


def test_a_compiled_version_predicts_through_its_libraries_exactly_like_xgboost(compiled_copy: Registry,
                                                                               monkeypatch) -> None:
    bundle = compiled_copy.load()
    assert bundle.inference == "compiled"
    rows = verification_sample(len(bundle.feature_names))[:COMPILED_MAX_ROWS] * 3 + bundle.preprocessor.mean
    reference = _xgboost_only(compiled_copy)
    expected = reference.predict_outputs(rows)
    one = dict(zip(bundle.feature_names, rows[0], strict=True))
    expected_one = reference.predict(one)
    monkeypatch.setattr(xgb.Booster, "predict", lambda *a, **k: pytest.fail("XGBoost ran for a small batch"))
    compiled = bundle.predict_outputs(rows)
    for name, values in expected.items():
        assert np.max(np.abs(compiled[name] - values)) <= TOLERANCE * max(1.0, np.max(np.abs(values)))
    served = bundle.predict(one)
    assert {t: c.label for t, c in served.classes.items()} == {t: c.label for t, c in expected_one.classes.items()}
    assert served.values == pytest.approx(expected_one.values, rel=1e-5)


def test_large_batches_go_through_xgboost(compiled_copy: Registry, monkeypatch) -> None:
    bundle = compiled_copy.load()
    calls = []
    original = xgb.Booster.predict
    monkeypatch.setattr(xgb.Booster, "predict", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    bundle.predict_outputs(np.zeros((COMPILED_MAX_ROWS + 1, len(bundle.feature_names))))
    assert len(calls) == len(bundle.models)


def test_missing_values_follow_xgboost_default_directions(compiled_copy: Registry) -> None:
    bundle = compiled_copy.load()
    rows = verification_sample(len(bundle.feature_names))[:20].copy()
    rows[::2, ::3] = np.nan
    for model in bundle.models.values():
        assert model.compiled is not None
        expected = model.booster.predict(xgb.DMatrix(rows), validate_features=False)
        assert np.allclose(model.compiled.predict(rows).reshape(expected.shape), expected, atol=TOLERANCE)


def test_an_altered_library_is_refused_before_it_is_opened(compiled_copy: Registry, monkeypatch) -> None:
    library = next((compiled_copy.path() / COMPILED_DIR).glob("*.so"))
    library.write_bytes(library.read_bytes() + b"\0")
    opened = []
    real_dll = ctypes.CDLL
    monkeypatch.setattr(ctypes, "CDLL", lambda path, *a, **k: opened.append(Path(path).name) or real_dll(path))
    bundle = compiled_copy.load()
    assert bundle.inference.startswith("xgboost (compiled trees refused:")
    assert f"{library.name}: checksum mismatch" in bundle.inference
    assert library.name not in opened
    assert all(model.compiled is None for model in bundle.models.values())


@pytest.mark.parametrize(("change", "reason"), [
    (lambda index: index["platform"].update(machine="riscv64"), "built for"),
    (lambda index: next(iter(index["models"].values())).update(source_sha256="0" * 64), "compiled from another"),
    (lambda index: index["models"].popitem(), "must name exactly the models"),
    (lambda index: index.update(format_version=99), "format_version"),
], ids=["platform", "another booster", "a model missing", "format"])
def test_a_compiled_folder_that_does_not_match_the_version_serves_through_xgboost(
    compiled_copy: Registry, change, reason: str
) -> None:
    path, index = _index(compiled_copy)
    change(index)
    path.write_text(json.dumps(index))
    bundle = compiled_copy.load()
    assert bundle.inference.startswith("xgboost (compiled trees refused:") and reason in bundle.inference
    assert all(model.compiled is None for model in bundle.models.values())


def test_a_library_that_predicts_differently_is_not_used(compiled_copy: Registry) -> None:
    """Another model's library with a valid checksum (as if the compiler had miscompiled) fails the sample check."""
    from efimero._io import sha256_file

    path, index = _index(compiled_copy)
    classes = [name for name, entry in index["models"].items() if name.startswith("css_class")]
    victim, other = classes[0], classes[-1]
    folder = path.parent
    shutil.copyfile(folder / index["models"][other]["file"], folder / index["models"][victim]["file"])
    index["models"][victim]["sha256"] = sha256_file(folder / index["models"][victim]["file"])
    path.write_text(json.dumps(index))
    bundle = compiled_copy.load()
    assert bundle.inference.startswith("xgboost (compiled trees refused:")
    assert ("predictions differ from XGBoost's" in bundle.inference) or ("features" in bundle.inference)


def test_a_missing_compiler_is_an_error_and_writes_nothing(registry_copy) -> None:
    root, _ = registry_copy()
    with pytest.raises(RegistryError, match="'no-such-cc', which is not on PATH"):
        Registry(root).compile(compiler="no-such-cc")
    assert not (Registry(root).path() / COMPILED_DIR).exists()
    assert Registry(root).load().inference.startswith("xgboost (not compiled")


def test_the_library_checks_its_own_shape(compiled_registry: Path) -> None:
    library = next((Registry(compiled_registry).path() / COMPILED_DIR).glob("*.so"))
    with pytest.raises(ValueError, match="expected float32 trees of 7 features"):
        CompiledTrees(library, 7)


def test_models_compile_command_reports_json_and_the_service_shows_it(registry_copy, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from efimero.serve import ServeSettings, create_app

    root, _ = registry_copy()
    result = CliRunner().invoke(app, ["models", "compile", "--models", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == Registry(root).current() and report["max_abs_diff"] <= TOLERANCE
    assert len(report["models"]) == 4 and report["toolchain"]["flags"] == "-O1"
    with TestClient(create_app(ServeSettings(models_dir=root, db_url=f"sqlite:///{tmp_path}/s.db",
                                             monitor_interval_s=0))) as client:
        assert client.get("/v1/model").json()["inference"] == "compiled"


def test_models_compile_without_a_version_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "compile", "--models", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "has no current version" in " ".join(result.output.split())


def _compiling_production(tmp_path: Path):
    from efimero.config import EnvironmentsConfig

    return EnvironmentsConfig.model_validate({"environments": {"production": {
        "model_dir": tmp_path / "prod", "validation_required": False, "compile": True}}})


def test_a_deploy_to_a_compiling_environment_serves_compiled_trees(registry_copy, tmp_path: Path) -> None:
    from efimero.deploy import deploy

    root, versions = registry_copy()
    record = deploy(root, "production", environments=_compiling_production(tmp_path))
    assert record.status == "success", record.error
    step = next(step for step in record.steps if step.name == "compile")
    assert step.ok and "4 models compiled" in step.detail
    assert [s.name for s in record.steps].index("compile") < [s.name for s in record.steps].index("switch")
    assert Registry(tmp_path / "prod").load().inference == "compiled"


def test_a_failed_compile_is_recorded_and_the_deploy_goes_on(registry_copy, tmp_path: Path, monkeypatch) -> None:
    from efimero.deploy import deploy

    def no_compiler(self, version=None, **_):
        raise RegistryError("compiling needs the C compiler 'gcc', which is not on PATH")

    monkeypatch.setattr(Registry, "compile", no_compiler)
    root, _ = registry_copy()
    record = deploy(root, "production", environments=_compiling_production(tmp_path))
    assert record.status == "success", record.error
    assert ("compile", False) in [(s.name, s.ok) for s in record.steps]
    assert Registry(tmp_path / "prod").load().inference.startswith("xgboost (not compiled")
