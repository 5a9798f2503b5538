"""What a deployment refuses or survives: bugs in a step, a changed contract, labels a version
never saw, and a second deployment of the same target at the same time."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import efimero.deploy.promote as promote
from efimero.cli.main import app
from efimero.deploy import Contract, DeploymentLog, contract_changes, deploy
from efimero.registry import Registry, verify
from tests.deploy.conftest import MISSING_CLASS, environments, steps

runner = CliRunner()


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(environments(tmp_path).model_dump(mode="json")))
    return path


def test_a_bug_in_a_step_restores_the_target_and_records_the_failure(source, tmp_path, monkeypatch) -> None:
    root, (old, new) = source
    config = environments(tmp_path)
    assert deploy(root, "staging", version=old, environments=config).status == "success"

    def broken_smoke_test(*args: object) -> str:
        raise ValueError("a bare error from deep inside")

    monkeypatch.setattr(promote, "_smoke", broken_smoke_test)
    with pytest.raises(ValueError, match="a bare error"):
        deploy(root, "staging", version=new, environments=config)
    staging = Registry(tmp_path / "staging")
    assert staging.current() == old and staging.versions() == [old]
    record = DeploymentLog(tmp_path / "staging").records()[-1]
    assert record["status"] == "failed" and record["finished_at"]
    assert record["error"] == "ValueError: a bare error from deep inside"
    assert [(s["name"], s["ok"]) for s in record["steps"]][-3:] == [("switch", True), ("smoke test", False),
                                                                     ("restore", True)]


def test_a_candidate_that_drops_a_class_is_refused_before_the_copy(source, narrow_registry, tmp_path) -> None:
    root, (old, new) = source
    narrow_root, narrow = narrow_registry
    config = environments(tmp_path)
    deploy(root, "staging", version=old, environments=config)
    record = deploy(narrow_root, "staging", version=narrow, environments=config)
    assert record.status == "failed"
    assert f"candidate {narrow} drops class '{MISSING_CLASS}' of css_class_theme that the live {old} serves" in record.error
    assert "--allow-contract-change" in record.error
    assert steps(record) == [("contract", False), ("restore", True)]
    assert Registry(tmp_path / "staging").versions() == [old] and Registry(tmp_path / "staging").current() == old


def test_allow_contract_change_deploys_and_the_log_keeps_it(source, narrow_registry, tmp_path) -> None:
    root, (old, new) = source
    narrow_root, narrow = narrow_registry
    cfg = config_file(tmp_path)
    assert runner.invoke(app, ["deploy", "--source", str(root), "--target", "staging", "--version", old,
                               "--config", str(cfg)]).exit_code == 0
    result = runner.invoke(app, ["deploy", "--source", str(narrow_root), "--target", "staging", "--version", narrow,
                                 "--allow-contract-change", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    contract = json.loads(result.stdout)["steps"][0]
    assert contract["name"] == "contract" and contract["ok"]
    assert "allowed by --allow-contract-change" in contract["detail"] and MISSING_CLASS in contract["detail"]
    assert DeploymentLog(tmp_path / "staging").records()[-1]["steps"][0] == contract
    assert Registry(tmp_path / "staging").current() == narrow


def test_contract_changes_name_each_difference(tiny_registry) -> None:
    root, (old, new) = tiny_registry
    live = Contract.of(Registry(root).load(old))
    assert contract_changes(live, Contract.of(Registry(root).load(new))) == []
    features = list(live.features)
    features[0], features[1] = features[1], features[0]
    renamed = tuple("font_size" if t == "font_size_base" else t for t in live.regression)
    candidate = dataclasses.replace(live, version="v_cand", task="other", features=tuple(features), regression=renamed)
    changes = contract_changes(live, candidate)
    assert changes == [
        f"candidate v_cand is trained for task 'other', the live {old} for 'css' (feature kinds and target units differ)",
        f"candidate v_cand orders its features differently from the live {old}: position 0 must be 'hour_of_day'. "
        "Got 'is_weekend' instead",
        f"candidate v_cand drops regression target 'font_size_base' that the live {old} serves",
        f"candidate v_cand adds regression target 'font_size' that the live {old} does not serve",
    ]


def test_test_data_with_a_class_the_version_never_saw_fails_validation_clearly(narrow_registry, small_csv, tmp_path) -> None:
    narrow_root, narrow = narrow_registry
    record = deploy(narrow_root, "staging", version=narrow, test_data=small_csv, environments=environments(tmp_path))
    assert record.status == "failed" and steps(record) == [("validation", False), ("restore", True)]
    for expected in (str(small_csv), "css_class_theme", f"values seen: {MISSING_CLASS}",
                     f"labels {narrow} knows ('tema-claro', 'tema-oscuro')", "27 row(s) fail"):
        assert expected in record.error
    assert Registry(tmp_path / "staging").current() is None


# A deployment through the real CLI whose copy step pauses: it says "copying" on stderr, then
# waits up to argv[1] seconds for argv[2] to exist, so two of them overlap for sure.
_PAUSING_DEPLOY = """
import sys, time
from pathlib import Path
from efimero.cli.main import app
from efimero.registry import Registry
adopt, pause, partner = Registry.adopt, float(sys.argv[1]), Path(sys.argv[2])
def pausing_adopt(self, source):
    Path(f"{partner}.{sys.argv[3]}").touch()
    print("copying", file=sys.stderr, flush=True)
    deadline = time.monotonic() + pause
    while not all(Path(f"{partner}.{side}").exists() for side in "ab") and time.monotonic() < deadline:
        time.sleep(0.02)
    return adopt(self, source)
Registry.adopt = pausing_adopt
app(sys.argv[4:], prog_name="efimero")
"""


def _deploy_process(tmp_path: Path, side: str, pause: float, *args: object) -> subprocess.Popen[str]:
    command = ["deploy", "--target", "staging", "--config", config_file(tmp_path), "--json", *args]
    return subprocess.Popen([sys.executable, "-c", _PAUSING_DEPLOY, str(pause), str(tmp_path / "arrived"), side,
                             *map(str, command)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_deployments_of_one_target_take_turns(source, tmp_path) -> None:
    root, (old, new) = source
    assert deploy(root, "staging", version=old, environments=environments(tmp_path)).status == "success"
    first, second = (_deploy_process(tmp_path, side, 5, "--source", root, "--version", new) for side in "ab")
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    records = []
    for (stdout, stderr), process in zip(outputs, (first, second)):
        assert process.returncode == 0, (stdout, stderr)
        records.append(json.loads(stdout))
    assert {r["status"] for r in records} == {"success"}
    assert sorted(r["previous_version"] for r in records) == sorted([old, new])  # the second saw the first
    staging = Registry(tmp_path / "staging")
    assert staging.current() == new
    verify(staging.path(new))


def test_a_busy_target_fails_with_json_naming_who_holds_it(source, tmp_path) -> None:
    root, (old, new) = source
    holder = _deploy_process(tmp_path, "a", 60, "--source", root, "--version", new)
    try:
        assert holder.stderr is not None and holder.stderr.readline().strip() == "copying"
        result = runner.invoke(app, ["deploy", "--source", str(root), "--target", "staging", "--version", old,
                                     "--config", str(config_file(tmp_path)), "--lock-wait", "0.3", "--json"])
        assert result.exit_code == 1
        error = json.loads(result.stdout)
        assert error["error"] == "DeployError"
        assert f"target staging is being deployed by pid {holder.pid} " in error["message"]
        assert "since 20" in error["message"] and f"(deploy of {new}); retry" in error["message"]
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()
    # the kernel released the dead holder's lock: the next deployment goes ahead
    assert deploy(root, "staging", version=old, environments=environments(tmp_path)).status == "success"
