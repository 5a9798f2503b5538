"""Registry limits at their boundaries (found by `make mutation`): how many versions pruning keeps,
how much of the traffic the candidate arms may take, and names past the ninth of one second."""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import UTC, datetime

import pytest

from efimero.errors import RegistryError, RegistryFormatError
from efimero.registry import Registry, TrafficArm, TrafficSplit, local
from efimero.registry.traffic import LIVE_ARM


@pytest.fixture
def five_versions(registry_copy) -> tuple[Registry, list[str]]:
    """A registry of five versions, oldest first; the second is current."""
    root, (first, second) = registry_copy()
    registry = Registry(root)
    bundle = registry.load()
    extra = [registry.save(bundle, metrics={}, metadata={}, set_current=False) for _ in range(3)]
    assert registry.current() == second
    return registry, [first, second, *extra]


@pytest.mark.parametrize(("keep", "kept"), [
    (6, [0, 1, 2, 3, 4]),
    (5, [0, 1, 2, 3, 4]),   # exactly as many as there are: nothing goes
    (4, [1, 2, 3, 4]),      # one too many: the oldest goes
    (2, [1, 4]),            # the current one and the newest
    (1, [1]),               # only the current one, however old
])
def test_pruning_keeps_exactly_max_versions_to_keep(five_versions, keep, kept) -> None:
    registry, versions = five_versions
    removed = registry.prune(keep)
    assert registry.versions() == [versions[i] for i in kept]
    assert removed == [v for v in versions if v not in registry.versions()]


def test_pruning_to_fewer_than_one_version_is_refused(five_versions) -> None:
    registry, versions = five_versions
    with pytest.raises(RegistryError, match=r"max_versions_to_keep must be at least 1\. Got 0 instead\."):
        registry.prune(0)
    assert registry.versions() == versions


def test_a_kept_version_is_not_counted_away(five_versions) -> None:
    registry, versions = five_versions
    removed = registry.prune(2, keep=(versions[0],))
    assert registry.versions() == [versions[0], versions[1]] and removed == versions[2:]


V1, V2 = "v_20261101_000000", "v_20261102_000000"


@pytest.mark.parametrize(("shares", "valid"), [
    ((0.5, 0.5), True),            # all of the traffic: allowed
    ((0.5, 0.5 + 1e-12), True),    # floating-point slack: still all of it
    ((0.5, 0.5 + 1e-6), False),
])
def test_the_candidate_arms_take_at_most_all_of_the_traffic(shares, valid) -> None:
    arms = (TrafficArm(name="a", version=V1, share=shares[0]), TrafficArm(name="b", version=V2, share=shares[1]))
    if valid:
        split = TrafficSplit(arms=arms, salt="s")
        assert split.live_share == 0.0
        assert {split.assign(f"visitor-{i}") for i in range(200)} == {"a", "b"}
    else:
        with pytest.raises(ValueError, match="must add up to at most 1"):
            TrafficSplit(arms=arms, salt="s")


def test_the_tenth_name_of_a_second_is_never_issued_twice(registry_copy, monkeypatch) -> None:
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def]
            return datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

    root, _ = registry_copy()
    registry = Registry(root)
    bundle = registry.load()
    monkeypatch.setattr(local, "datetime", FrozenClock)
    names = [registry.save(bundle, metrics={}, metadata={}, set_current=False) for _ in range(10)]
    assert names[8:] == ["v_20300101_120000_9", "v_20300101_120000_10"]  # _10 sorts after _9, not as text
    registry.remove(names[-1])
    assert registry.save(bundle, metrics={}, metadata={}, set_current=False) == "v_20300101_120000_11"


def test_pruning_logs_what_it_deleted(five_versions, caplog) -> None:
    registry, versions = five_versions
    with caplog.at_level(logging.INFO, logger="efimero.registry.local"):
        registry.prune(3)
        registry.prune(3)  # nothing left to delete: nothing logged
    assert [r.getMessage() for r in caplog.records] == [f"pruned 2 version(s): {versions[0]}, {versions[2]}"]


def test_a_damaged_record_of_issued_names_stops_new_names(registry_copy) -> None:
    root, versions = registry_copy()
    registry = Registry(root)
    (root / ".last_issued").write_text("not a version\n", encoding="utf-8")
    with pytest.raises(RegistryFormatError) as caught:
        registry.save(registry.load(), metrics={}, metadata={})
    assert str(caught.value) == (f"{root / '.last_issued'}: must name a version (v_YYYYMMDD_HHMMSS[_n]). "
                                 "Got 'not a version' instead; write the newest version name into it.")
    assert registry.versions() == versions


def test_a_visitor_exactly_at_an_arm_edge_belongs_to_the_next_range() -> None:
    """Guards the documented assignment: ``sha256(salt, visitor key)`` mapped to [0, 1), each candidate a
    half-open range [start, start + share) from 0. A visitor whose position is exactly an arm's edge is past it."""
    digest = hashlib.sha256(b"s\x00visitor-0").digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    assert 0 < position < 1

    def arm_of(share: float) -> str:
        return TrafficSplit(arms=(TrafficArm(name="a", version=V1, share=share),), salt="s").assign("visitor-0")

    assert arm_of(position) == LIVE_ARM
    assert arm_of(math.nextafter(position, 1)) == "a"
