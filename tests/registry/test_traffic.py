"""The traffic split: stable, monotone assignment; validated, atomic, protected on disk."""

from __future__ import annotations

import json
import pytest

from efimero.errors import RegistryError, RegistryFormatError, VersionNotFoundError
from efimero.registry import LIVE_ARM, Registry, TrafficArm, TrafficSplit
from efimero.registry.traffic import TRAFFIC

VISITORS = [f"visitor-{i}" for i in range(20_000)]


def split(*arms: tuple[str, str, float], salt: str = "s1") -> TrafficSplit:
    return TrafficSplit(arms=tuple(TrafficArm(name=n, version=v, share=s) for n, v, s in arms), salt=salt)


def test_each_arm_gets_its_share_and_a_visitor_always_the_same_arm() -> None:
    traffic = split(("canary", "v_20261101_000000", 0.05), ("treatment", "v_20261102_000000", 0.10))
    arms = [traffic.assign(visitor) for visitor in VISITORS]
    assert arms == [traffic.assign(visitor) for visitor in VISITORS]
    shares = {name: arms.count(name) / len(arms) for name in ("canary", "treatment", LIVE_ARM)}
    # Binomial standard error at n=20000 is at most 0.0036: 4 of them is a generous band.
    assert shares["canary"] == pytest.approx(0.05, abs=0.01)
    assert shares["treatment"] == pytest.approx(0.10, abs=0.015)
    assert shares[LIVE_ARM] == pytest.approx(0.85, abs=0.015)
    assert traffic.live_share == pytest.approx(0.85)


def test_raising_a_share_only_adds_visitors_to_the_candidate() -> None:
    stages = [split(("canary", "v_20261101_000000", share)) for share in (0.05, 0.10, 0.25, 0.50, 1.0)]
    exposed_before: set[str] = set()
    for stage in stages:
        exposed = {visitor for visitor in VISITORS if stage.assign(visitor) == "canary"}
        assert exposed_before <= exposed
        exposed_before = exposed
    assert len(exposed_before) == len(VISITORS)


def test_a_new_salt_exposes_other_visitors() -> None:
    first = {v for v in VISITORS if split(("canary", "v_20261101_000000", 0.1)).assign(v) == "canary"}
    second = {v for v in VISITORS if split(("canary", "v_20261101_000000", 0.1), salt="s2").assign(v) == "canary"}
    assert len(first & second) / len(first) == pytest.approx(0.1, abs=0.03)


@pytest.mark.parametrize(("arms", "message"), [
    ((("live", "v_20261101_000000", 0.1),), "must not be 'live'"),
    ((("a", "v_20261101_000000", 0.1), ("a", "v_20261102_000000", 0.1)), "arm names must be unique"),
    ((("a", "v_20261101_000000", 0.1), ("b", "v_20261101_000000", 0.1)), "each version may take one arm"),
    ((("a", "v_20261101_000000", 0.6), ("b", "v_20261102_000000", 0.5)), "add up to at most 1. Got 1.1"),
    ((("a", "v_20261101_000000", 0.0),), "greater than 0"),
    ((("a", "v_20261101_000000", 1.5),), "less than or equal to 1"),
    ((("a", "models/v1", 0.1),), "must be a version name"),
    (tuple((n, f"v_2026110{i}_000000", 0.1) for i, n in enumerate("abcd", 1)), "at most 3"),
])
def test_an_inconsistent_split_is_refused_naming_the_problem(arms, message) -> None:
    with pytest.raises(ValueError, match=message):
        split(*arms)


@pytest.fixture
def registry(registry_copy) -> Registry:
    root, versions = registry_copy()
    assert len(versions) >= 2
    return Registry(root)


def test_set_traffic_writes_a_file_a_reader_gets_back_and_none_removes_it(registry: Registry) -> None:
    current, candidate = registry.current(), registry.versions()[0]
    assert candidate != current
    traffic = split(("canary", candidate, 0.05))
    registry.set_traffic(traffic)
    assert registry.traffic() == traffic
    assert json.loads((registry.root / TRAFFIC).read_text())["arms"][0]["share"] == 0.05
    registry.set_traffic(None)
    assert registry.traffic() is None and not (registry.root / TRAFFIC).exists()


def test_set_traffic_refuses_the_current_version_and_a_missing_one(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="the current version; a candidate must be another version"):
        registry.set_traffic(split(("canary", registry.current(), 0.05)))
    with pytest.raises(VersionNotFoundError, match="does not exist"):
        registry.set_traffic(split(("canary", "v_20000101_000000", 0.05)))
    assert registry.traffic() is None


def test_a_damaged_split_file_is_a_clear_error_naming_the_field(registry: Registry) -> None:
    (registry.root / TRAFFIC).write_text('{"arms": [{"name": "canary", "version": "v_1", "share": 2}], "salt": "x"}')
    with pytest.raises(RegistryFormatError, match=r"traffic.json: is not a valid traffic split \(arms.0.version"):
        registry.traffic()
    (registry.root / TRAFFIC).write_text("{")
    with pytest.raises(RegistryFormatError, match="is not a valid traffic split"):
        registry.traffic()


def test_a_candidate_is_never_pruned_nor_removed(registry: Registry) -> None:
    oldest = registry.versions()[0]
    registry.set_traffic(split(("canary", oldest, 0.05)))
    registry.prune(1)
    assert oldest in registry.versions()
    with pytest.raises(RegistryError, match="served to a share of the traffic"):
        registry.remove(oldest)
    registry.set_traffic(None)
    registry.prune(1)
    assert registry.versions() == [registry.current()]
