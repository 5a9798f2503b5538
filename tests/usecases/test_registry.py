"""The use-case registry: checksummed versions, semantic versions, promotion and archiving."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from efimero.errors import ModelIntegrityError, RegistryError, VersionNotFoundError
from efimero.registry.manifest import verify
from efimero.usecases import UseCaseRegistry, train_usecase
from efimero.usecases._prep import load_preprocessor, transform
from efimero.usecases._schema import Feature
from tests.usecases.conftest import tiny_binary


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with two versions of the tiny use case, built once for the module."""
    import yaml

    folder = tmp_path_factory.mktemp("usecases")
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_binary()), encoding="utf-8")
    models = folder / "models"
    for _ in range(2):
        train_usecase(path, models=models)
    return models


@pytest.fixture
def registry(trained: Path, tmp_path: Path) -> UseCaseRegistry:
    """A copy of the trained registry that a test may change."""
    shutil.copytree(trained, tmp_path / "models")
    return UseCaseRegistry(tmp_path / "models")


def test_versions_carry_the_guides_entry_and_verify(registry: UseCaseRegistry) -> None:
    first, second = registry.entries("tiny")
    assert (first["version"], second["version"]) == ("1.0.0", "1.1.0")
    assert first["model_id"] == "UC-TESTS-tiny-v1.0.0" and first["use_case_key"] == "tiny"
    for key in ("algorithm", "metrics", "hyperparameters", "feature_count", "training_samples", "status"):
        assert key in first
    assert first["feature_count"] == 7 and first["training_samples"] == 240 and first["status"] == "candidate"
    for entry in (first, second):
        manifest = verify(registry.folder("tiny") / entry["directory"])
        assert {"estimator/estimator.json", "preprocessing.skops", "metrics.json", "entry.json"} <= set(
            manifest["files"])


def test_a_loaded_version_predicts_like_at_training(registry: UseCaseRegistry) -> None:
    from efimero.usecases._generate import generate_table
    from efimero.usecases._schema import GeneratorSource

    loaded = registry.load("tiny", "1.1.0")
    frame = generate_table(GeneratorSource(kind="classification", rows=300, seed=1, features=6))
    features = [Feature(name=f"x0{i}") for i in range(1, 7)] + [Feature(name="segment", kind="categorical")]
    matrix = transform(load_preprocessor(loaded.directory), frame, features)
    accuracy = (loaded.estimator.predict(matrix) == frame["label"].to_numpy()).mean()
    assert accuracy > 0.75


def test_a_tampered_file_is_refused(registry: UseCaseRegistry) -> None:
    entry = registry.entries("tiny")[0]
    target = registry.folder("tiny") / entry["directory"] / "preprocessing.skops"
    target.write_bytes(target.read_bytes() + b"x")
    with pytest.raises(ModelIntegrityError, match=r"checksum mismatch in preprocessing\.skops"):
        registry.load("tiny", "1.0.0")
    with pytest.raises(ModelIntegrityError):
        registry.promote("tiny", "1.0.0")
    assert registry.production("tiny") is None  # nothing changed


def test_promotion_archives_the_previous_production_version(registry: UseCaseRegistry) -> None:
    promoted, archived = registry.promote("tiny", "1.0.0")
    assert promoted["status"] == "production" and archived is None
    second = registry.entries("tiny")[1]["directory"]
    promoted, archived = registry.promote("tiny", second)
    assert promoted["version"] == "1.1.0" and archived is not None and archived["version"] == "1.0.0"
    statuses = {e["version"]: e["status"] for e in registry.entries("tiny")}
    assert statuses == {"1.0.0": "archived", "1.1.0": "production"}
    registry.promote("tiny", "1.0.0")  # an archived version can come back (a rollback)
    assert registry.production("tiny")["version"] == "1.0.0"  # type: ignore[index]


def test_a_refused_or_unknown_version_cannot_be_promoted(registry: UseCaseRegistry) -> None:
    with pytest.raises(VersionNotFoundError, match=r"Known versions: 1\.1\.0"):
        registry.promote("tiny", "9.9.9")
    index = registry.folder("tiny") / "registry.json"
    index.write_text(index.read_text(encoding="utf-8").replace('"candidate"', '"refused"', 1), encoding="utf-8")
    with pytest.raises(RegistryError, match="was refused by its gate"):
        registry.promote("tiny", "1.0.0")


def test_keys_that_would_escape_the_registry_are_refused(registry: UseCaseRegistry) -> None:
    with pytest.raises(RegistryError, match="use case key must match"):
        registry.entries("../etc")
    assert registry.keys() == ["tiny"]
