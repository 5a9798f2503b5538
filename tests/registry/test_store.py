from __future__ import annotations

import json
from pathlib import Path

import pytest

from efimero._io import sha256_file
from efimero.errors import (
    ModelIntegrityError,
    RegistryFormatError,
    VersionNotFoundError,
)
from efimero.registry import Registry, verify
from efimero.registry import _layout as layout
from tests.conftest import run_and_kill


def test_a_version_holds_native_models_manifest_and_metadata(tiny_registry) -> None:
    root, versions = tiny_registry
    directory = root / versions[-1]
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    assert files == [
        "MANIFEST.json", "metadata.json", "metrics.json",
        "models.json", "models/css_class_density.ubj", "models/css_class_font.ubj",
        "models/css_class_theme.ubj", "models/css_variables.ubj", "preprocessing.json",
    ]
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["files"]["models/css_variables.ubj"] == sha256_file(directory / "models/css_variables.ubj")
    metadata = json.loads((directory / "metadata.json").read_text())
    for key in ("version", "created_at", "algorithm", "hyperparameters", "data_sha256", "rows",
                "library_versions", "training_duration_s"):
        assert key in metadata
    assert metadata["version"] == versions[-1] and metadata["library_versions"]["xgboost"]
    index = json.loads((directory / "models.json").read_text())
    assert index["feature_names"][0] == "hour_of_day" and len(index["feature_names"]) == 19


def test_every_version_loads_and_predicts_within_schema(tiny_registry, small_frame) -> None:
    """Contract suite: each version loads, verifies and predicts labels it knows."""
    root, versions = tiny_registry
    registry = Registry(root)
    for name in registry.versions():
        bundle = registry.load(name)
        prediction = bundle.predict(small_frame.iloc[0].to_dict())
        assert prediction.model_version == name
        assert prediction.classes["css_class_theme"].label in {"tema-claro", "tema-oscuro", "tema-alto-contraste"}
        assert sum(prediction.classes["css_class_font"].probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert set(prediction.values) == {"font_size_base", "line_height_base", "spacing_base",
                                          "border_radius_base", "color_primary_h", "color_primary_s",
                                          "color_primary_l", "animation_duration"}


def test_current_resolves_and_names_are_ordered(tiny_registry) -> None:
    root, versions = tiny_registry
    registry = Registry(root)
    assert registry.versions() == versions
    assert registry.current() == registry.resolve("latest") == versions[-1]
    assert all(layout.is_version_name(v) for v in versions)


def test_same_second_versions_get_a_counter(registry_copy, small_frame) -> None:
    root, versions = registry_copy()
    registry = Registry(root)
    bundle = registry.load()
    names = [registry.save(bundle, metrics={}, metadata={}, max_versions_to_keep=None) for _ in range(3)]
    assert len(set(names)) == 3
    assert registry.versions()[-3:] == names
    assert layout.version_sort_key("v_20260101_000000_10") > layout.version_sort_key("v_20260101_000000_2")


def test_pruning_keeps_newest_and_never_the_current(registry_copy) -> None:
    root, (oldest, newer) = registry_copy()
    registry = Registry(root)
    registry.set_current(oldest)
    bundle = registry.load()
    extra = [registry.save(bundle, metrics={}, metadata={}, set_current=False) for _ in range(3)]
    removed = registry.prune(2)
    assert oldest not in removed
    assert registry.versions() == [oldest, extra[-1]]
    assert not any(p.name.startswith((".trash", ".staging")) for p in root.iterdir())


def test_tampered_model_file_is_refused(registry_copy) -> None:
    root, versions = registry_copy()
    model = root / versions[-1] / "models" / "css_class_theme.ubj"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"checksum mismatch in models/css_class_theme\.ubj"):
        Registry(root).load()
    with pytest.raises(ModelIntegrityError):
        Registry(root).set_current(versions[-1])


def test_missing_file_and_missing_manifest(registry_copy) -> None:
    root, versions = registry_copy()
    (root / versions[-1] / "preprocessing.json").unlink()
    with pytest.raises(ModelIntegrityError, match="missing preprocessing.json"):
        verify(root / versions[-1])
    (root / versions[0] / "MANIFEST.json").unlink()
    assert versions[0] not in Registry(root).versions()
    with pytest.raises(VersionNotFoundError, match="does not exist"):
        Registry(root).load(versions[0])


def test_newer_format_is_refused_with_upgrade_hint(registry_copy) -> None:
    root, versions = registry_copy()
    path = root / versions[-1] / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(manifest | {"format_version": 99}))
    with pytest.raises(RegistryFormatError, match="upgrade efimero"):
        Registry(root).load()


def test_unknown_versions_and_empty_registry(tmp_path, tiny_registry) -> None:
    with pytest.raises(VersionNotFoundError, match="has no current version"):
        Registry(tmp_path / "empty").load()
    with pytest.raises(VersionNotFoundError, match="Known versions"):
        Registry(tiny_registry[0]).load("v_19990101_000000")


_FLIPPER = """
import sys
from efimero.registry import Registry
registry = Registry(sys.argv[1])
a, b = sys.argv[2], sys.argv[3]
print("ready", flush=True)
while True:
    registry.set_current(a)
    registry.set_current(b)
"""

_SAVER = """
import sys
from efimero.registry import Registry
registry = Registry(sys.argv[1])
bundle = registry.load()
print("ready", flush=True)
while True:
    registry.save(bundle, metrics={}, metadata={}, max_versions_to_keep=4)
"""


@pytest.mark.parametrize("script", [_FLIPPER, _SAVER], ids=["pointer-flips", "saves-and-prunes"])
def test_sigkill_mid_write_leaves_a_valid_registry(registry_copy, script: str) -> None:
    root, versions = registry_copy()
    for delay in (0.05, 0.13, 0.31):
        run_and_kill(script, root, *versions, after_s=delay)
        registry = Registry(root)
        current = registry.current()
        assert current in registry.versions()
        for name in registry.versions():
            verify(root / name)
        registry.load()


def test_a_registry_in_format_1_still_loads() -> None:
    """Bump FORMAT_VERSION and keep this: old registries must stay readable."""
    root = Path(__file__).parents[1] / "assets" / "registry_format_1"
    registry = Registry(root)
    bundle = registry.load()
    assert json.loads((registry.path() / "MANIFEST.json").read_text())["format_version"] == 1
    prediction = bundle.predict(dict.fromkeys(bundle.feature_names, 1.0))
    assert set(prediction.classes) == {"css_class_density", "css_class_font", "css_class_theme"}
