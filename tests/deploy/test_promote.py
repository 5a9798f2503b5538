from __future__ import annotations

import time

import pytest

from efimero.deploy import DeploymentLog, deploy, rollback
from efimero.errors import DeployError
from efimero.registry import Registry, verify
from tests.conftest import run_and_kill
from tests.deploy.conftest import environments, steps


def test_deploy_to_staging_then_production(source, tmp_path) -> None:
    root, (old, new) = source
    config = environments(tmp_path)
    staged = deploy(root, "staging", environments=config)
    assert staged.status == "success", staged.log
    assert steps(staged) == [("validation", True), ("copy", True), ("switch", True), ("smoke test", True), ("prune", True)]
    produced = deploy(tmp_path / "staging", "production", version="current", environments=config)
    assert produced.status == "success" and produced.version == new
    prod = Registry(tmp_path / "prod")
    assert prod.current() == new
    verify(prod.path())
    [record] = DeploymentLog(tmp_path / "prod").records()
    assert record["status"] == "success" and record["previous_version"] is None and record["user"]
    assert all(line.startswith("✅") for line in produced.log)


def test_version_below_production_thresholds_is_refused_and_production_untouched(source, tmp_path) -> None:
    root, (old, new) = source
    assert deploy(root, "production", version=old, environments=environments(tmp_path)).status == "success"
    before = sorted(p.name for p in (tmp_path / "prod").iterdir() if p.name != "deployments.json")
    strict = environments(tmp_path, production_accuracy=0.99)
    record = deploy(root, "production", version=new, environments=strict)
    assert record.status == "failed" and "mean accuracy must be ≥ 0.99" in record.error
    assert steps(record) == [("contract", True), ("validation", False), ("restore", True)]
    assert Registry(tmp_path / "prod").current() == old
    assert sorted(p.name for p in (tmp_path / "prod").iterdir() if p.name != "deployments.json") == before
    assert [r["status"] for r in DeploymentLog(tmp_path / "prod").records()] == ["success", "failed"]


def test_backup_and_rollback_round_trip(source, tmp_path) -> None:
    root, (old, new) = source
    config = environments(tmp_path)
    deploy(root, "production", version=old, environments=config)
    second = deploy(root, "production", version=new, environments=config)
    assert ("backup", True) in steps(second)
    [backup] = (tmp_path / "prod" / "backups").iterdir()
    assert backup.name.endswith(f"__{old}")
    verify(backup / old)

    back = rollback("production", environments=config)
    assert back.status == "success" and back.version == old and back.previous_version == new
    assert Registry(tmp_path / "prod").current() == old

    # damage the copy we are about to return to: rollback restores it from the backup
    Registry(tmp_path / "prod").restore_pointer(new)
    (tmp_path / "prod" / old / "models" / "css_class_font.ubj").write_bytes(b"rot")
    again = rollback("production", to=old, environments=config)
    assert again.status == "success" and "restored from" in again.steps[0].detail
    verify(tmp_path / "prod" / old)
    assert Registry(tmp_path / "prod").current() == old


def test_tampered_target_file_is_caught_by_the_smoke_test_and_rolled_back(source, tmp_path) -> None:
    root, (old, new) = source
    config = environments(tmp_path)
    deploy(root, "production", version=old, environments=config)
    deploy(root, "production", version=new, environments=config)
    rollback("production", environments=config)
    (tmp_path / "prod" / new / "preprocessing.json").write_text('{"tampered": true}')
    record = deploy(root, "production", version=new, environments=config)
    assert record.status == "failed"
    assert steps(record)[-2:] == [("smoke test", False), ("restore", True)]
    assert "checksum mismatch in preprocessing.json" in record.error
    assert Registry(tmp_path / "prod").current() == old


def test_nothing_to_roll_back_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DeployError, match="nothing is deployed"):
        rollback("production", environments=environments(tmp_path))


def test_pruning_keeps_current_and_previous(source, registry_copy, tmp_path) -> None:
    root, (old, new) = source
    config = environments(tmp_path)
    registry = Registry(root)
    bundle = registry.load()
    third = registry.save(bundle, metrics=bundle.metrics, metadata=bundle.metadata, max_versions_to_keep=None)
    for version in (old, new, third):
        assert deploy(root, "production", version=version, environments=config).status == "success"
    assert Registry(tmp_path / "prod").versions() == [new, third]


_DEPLOYER = """
import sys
from pathlib import Path
from efimero.deploy import deploy
from efimero.config import EnvironmentsConfig
config = EnvironmentsConfig.model_validate({"environments": {"production": {
    "model_dir": sys.argv[2], "validation_required": False, "backup_enabled": True,
    "performance_threshold": {"latency_ms": 1000}}}})
versions = sys.argv[3:]
print("ready", flush=True)
i = 0
while True:
    deploy(sys.argv[1], "production", version=versions[i % 2], environments=config)
    i += 1
"""


def test_sigkill_at_any_point_leaves_a_complete_version_live(source, tmp_path) -> None:
    root, versions = source
    target = tmp_path / "prod"
    for delay in (0.02, 0.07, 0.15, 0.26, 0.4, 0.55, 0.8):
        run_and_kill(_DEPLOYER, root, target, *versions, after_s=delay)
        registry = Registry(target)
        live = registry.current()
        if live is None:  # killed before the very first switch
            continue
        verify(registry.path(live))
        bundle = registry.load(live)
        bundle.predict(dict.fromkeys(bundle.feature_names, 1.0))
    assert Registry(target).current() in versions
    statuses = {r["status"] for r in DeploymentLog(target).records()}
    assert statuses <= {"success", "in_progress", "failed"}


def test_the_service_follows_deployments_without_a_restart(source, tmp_path) -> None:
    import httpx

    from efimero.serve import ServeSettings
    from tests.serve.conftest import PHONE_AT_NIGHT, LiveServer

    root, (old, new) = source
    config = environments(tmp_path)
    deploy(root, "production", version=old, environments=config)
    settings = ServeSettings(models_dir=tmp_path / "prod", db_url=f"sqlite:///{tmp_path}/s.db", poll_interval_s=0.05)
    with LiveServer(settings) as server:
        assert httpx.post(f"{server.url}/v1/predict", json=PHONE_AT_NIGHT).json()["model_version"] == old
        assert deploy(root, "production", version=new, environments=config).status == "success"
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.url}/v1/model").json()["version"] != new:
            assert time.monotonic() < deadline, "the service did not pick up the deployment"
            time.sleep(0.05)
        assert httpx.post(f"{server.url}/v1/predict", json=PHONE_AT_NIGHT).json()["model_version"] == new
