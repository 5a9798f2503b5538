from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from efimero._io import sha256_file
from efimero.errors import (
    ModelIntegrityError,
    RegistryError,
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


# -- the models path: a registry, its `current` file, never a version ----------------------------
def test_the_current_file_opens_its_registry(registry_copy) -> None:
    root, versions = registry_copy()
    registry = Registry(root / "current")
    assert registry.root == root and registry.current() == versions[-1]
    assert registry.load().version == versions[-1]


def test_a_version_directory_or_another_file_is_refused_with_its_registry_named(registry_copy) -> None:
    root, versions = registry_copy()
    with pytest.raises(RegistryError, match=f"Got the version {versions[0]} instead; pass its registry {root}"):
        Registry(root / versions[0])
    with pytest.raises(RegistryError, match="must be a registry directory .* Got another file instead"):
        Registry(root / versions[0] / "metrics.json")


def test_an_unreadable_pointer_is_a_format_error(registry_copy) -> None:
    root, _ = registry_copy()
    (root / "current").unlink()
    (root / "current").mkdir()
    with pytest.raises(RegistryFormatError, match="current: must be a one-line file naming the live version"):
        Registry(root).current()


# -- nothing followed may lead outside the registry ------------------------------------------------
def test_a_current_symlink_leading_outside_is_refused(registry_copy) -> None:
    root, versions = registry_copy()
    elsewhere, _ = registry_copy()
    (root / "current").unlink()
    (root / "current").symlink_to(elsewhere / "current")
    with pytest.raises(RegistryError, match="the current pointer must stay inside the registry"):
        Registry(root).load()
    (root / "current").unlink()
    (root / "current").symlink_to(root / versions[0])  # a symlink to a directory inside, not a file
    with pytest.raises(RegistryFormatError, match="must be a one-line file"):
        Registry(root).current()


def test_a_version_directory_symlinked_outside_is_refused(registry_copy) -> None:
    root, versions = registry_copy()
    elsewhere, _ = registry_copy()
    shutil.rmtree(root / versions[-1])
    (root / versions[-1]).symlink_to(elsewhere / versions[-1], target_is_directory=True)
    with pytest.raises(RegistryError, match=f"version {versions[-1]} must stay inside the registry"):
        Registry(root).load()
    with pytest.raises(RegistryError, match="must stay inside the registry"):
        Registry(root).verify(versions[-1])


# -- the version live before another ---------------------------------------------------------------
def test_previous_follows_the_deployment_log_then_version_order(registry_copy) -> None:
    root, (first, second) = registry_copy()
    registry = Registry(root)
    third = registry.save(registry.load(), metrics={}, metadata={}, max_versions_to_keep=None)
    assert registry.previous(third) == second and registry.previous(first) is None
    log = {"deployments": [
        {"status": "success", "version": third, "previous_version": first},
        {"status": "failed", "version": third, "previous_version": second},
    ]}
    (root / "deployments.json").write_text(json.dumps(log))
    assert registry.previous(third) == first
    (root / "deployments.json").write_text("{not json")
    assert registry.previous(third) == second


# -- a version name is issued once -----------------------------------------------------------------
def test_a_pruned_name_is_never_issued_again(registry_copy, monkeypatch) -> None:
    from datetime import datetime, timezone

    from efimero.registry import local

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def]
            return datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

    root, _ = registry_copy()
    registry = Registry(root)
    bundle = registry.load()
    monkeypatch.setattr(local, "datetime", FrozenClock)
    first = registry.save(bundle, metrics={}, metadata={"content": 1}, set_current=False)
    registry.remove(first)
    second = registry.save(bundle, metrics={}, metadata={"content": 2}, set_current=False)
    assert (first, second) == ("v_20300101_120000", "v_20300101_120000_2")
    monkeypatch.undo()  # a clock that went back still issues names after the newest ever issued
    third = registry.save(bundle, metrics={}, metadata={"content": 3}, set_current=False)
    assert layout.version_sort_key(third) > layout.version_sort_key(second)


_CONCURRENT_SAVER = """
import json, sys
from efimero.registry import Registry
registry = Registry(sys.argv[1])
bundle = registry.load()
print("ready", flush=True)
sys.stdin.readline()
names = [registry.save(bundle, metrics={}, metadata={"writer": sys.argv[2], "save": i}, max_versions_to_keep=2)
         for i in range(5)]
print(json.dumps(names), flush=True)
"""


def test_concurrent_saves_with_pruning_never_issue_a_name_twice(registry_copy) -> None:
    import subprocess
    import sys

    root, _ = registry_copy()
    writers = [
        subprocess.Popen([sys.executable, "-c", _CONCURRENT_SAVER, str(root), str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    for writer in writers:  # all loaded: the saves start together
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    issued = [name for writer in writers for name in json.loads(writer.communicate(timeout=120)[0])]
    assert all(writer.returncode == 0 for writer in writers)
    assert len(issued) == 20 and len(set(issued)) == 20, sorted(issued)
    registry = Registry(root)
    assert len(registry.versions()) == 2 and registry.current() in registry.versions()
    for name in registry.versions():
        verify(root / name)
