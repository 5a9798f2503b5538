"""A version whose checksums match but whose content is malformed fails with a registry error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from efimero.errors import ModelIntegrityError, RegistryFormatError
from efimero.registry import Registry
from efimero.registry.manifest import read_manifest, write_manifest


def _rewrite(directory: Path, relative: str, content: bytes) -> None:
    """Change a file and re-sign the manifest, as a buggy or foreign writer would."""
    (directory / relative).write_bytes(content)
    manifest = read_manifest(directory)
    write_manifest(directory, version=manifest["version"], created_at=manifest["created_at"])


def _index(directory: Path, change: Callable[[dict], object]) -> None:
    index = json.loads((directory / "models.json").read_text())
    _rewrite(directory, "models.json", json.dumps(change(index)).encode())


def test_a_model_file_xgboost_cannot_parse_is_an_integrity_error(registry_copy) -> None:
    root, versions = registry_copy()
    _rewrite(root / versions[-1], "models/css_class_theme.ubj", b"garbage")
    with pytest.raises(ModelIntegrityError, match=r"XGBoost cannot read models/css_class_theme\.ubj") as caught:
        Registry(root).load()
    assert "Stack trace" not in str(caught.value) and "/__w/" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda index: {"feature_names": index["feature_names"]}, "'models' must be a non-empty list"),
        (lambda index: [], "'models' must be a non-empty list"),
        (lambda index: index | {"models": [{"name": "x", "algorithm": "xgboost", "kind": "classifier"}]},
         "must have a 'name' and a list of 'targets'. Got no key 'targets'"),
        (lambda index: index | {"models": [index["models"][0] | {"kind": "ranker"}]}, "kind 'classifier' or 'regressor'"),
        (lambda index: index | {"models": ["x"]}, "each model entry must be a mapping"),
        (lambda index: index | {"models": [index["models"][0] | {"target_mean": ["a"]}]}, "ValueError"),
    ],
    ids=["no-models", "not-a-mapping", "no-targets", "unknown-kind", "entry-not-a-mapping", "bad-numbers"],
)
def test_a_malformed_index_is_a_format_error(registry_copy, change, expected: str) -> None:
    root, versions = registry_copy()
    _index(root / versions[-1], change)
    with pytest.raises(RegistryFormatError, match=expected):
        Registry(root).load()


def test_malformed_scaler_and_metadata_are_format_errors(registry_copy) -> None:
    root, versions = registry_copy()
    _rewrite(root / versions[-1], "preprocessing.json", b'{"feature_names": []}')
    with pytest.raises(RegistryFormatError, match="preprocessing.json: must hold .* Got no key 'mean'"):
        Registry(root).load()
    _rewrite(root / versions[0], "metadata.json", b"[1, 2]")
    with pytest.raises(RegistryFormatError, match="metadata.json: must hold a JSON object. Got list instead"):
        Registry(root).load(versions[0])


def test_a_manifest_cannot_reach_outside_its_version(registry_copy, tmp_path) -> None:
    root, versions = registry_copy()
    outside = tmp_path / "secret.txt"
    outside.write_text("not a model")
    path = root / versions[-1] / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../../secret.txt"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="must lie inside the version. Got '../../secret.txt'"):
        Registry(root).load()
