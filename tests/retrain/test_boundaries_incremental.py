"""The two gates of incremental retraining at their boundaries (found by `make mutation`).

A version is saved only when its gain on held-out new rows reaches ``min_improvement_threshold``
and its original test score falls by no more than ``forgetting_tolerance``; fewer new rows than
``min_samples`` skip the run; without a record of the training data the forgetting check says it
did not run. Each boundary is set to the value a first run measured, then to the
next float beyond it, so the same deterministic run lands exactly at, then just past, the limit.
"""

from __future__ import annotations

import math

from efimero.config import IncrementalParameters
from efimero.registry import Registry
from efimero.retrain import incremental
from tests.retrain.test_incremental import new_rows

NEVER_SAVE = 10.0
"""A required gain of 1000 %: the run measures and decides, but never saves."""


def test_forgetting_exactly_the_tolerance_passes_and_a_hair_more_fails(registry_copy, tmp_path) -> None:
    root, versions = registry_copy()
    data = [new_rows(tmp_path, seed=22, contradict=True)]

    def run(tolerance: float):
        settings = IncrementalParameters(min_samples=50, min_improvement_threshold=NEVER_SAVE,
                                         forgetting_tolerance=tolerance)
        return incremental(data, models=root, settings=settings)

    measured = run(math.inf).scores["forgetting_check"]
    drop = measured["drop"]
    assert measured["ran"] and measured["passed"] and drop > 0, measured
    assert measured["tolerance"] == math.inf  # the record holds both scores and the limit it was held to
    assert measured["current"]["combined"] - measured["updated"]["combined"] == drop

    at = run(drop)
    assert at.scores["forgetting_check"]["passed"] and at.scores["forgetting_check"]["drop"] == drop
    assert at.status == "no_improvement" and "below 1000%" in at.reason  # stopped by the gain, not forgetting

    past = run(math.nextafter(drop, 0))
    assert not past.scores["forgetting_check"]["passed"]
    assert past.status == "no_improvement" and "catastrophic forgetting" in past.reason
    assert Registry(root).versions() == versions


def test_a_gain_of_exactly_the_threshold_is_saved_and_a_hair_less_is_not(registry_copy, tmp_path) -> None:
    root, versions = registry_copy()
    data = [new_rows(tmp_path, seed=21)]

    def run(threshold: float):
        settings = IncrementalParameters(min_samples=400, min_improvement_threshold=threshold,
                                         forgetting_tolerance=1.0)
        return incremental(data, models=root, settings=settings)

    gain = run(NEVER_SAVE).scores["improvement"]
    assert -1 <= gain < NEVER_SAVE

    short = run(math.nextafter(gain, math.inf))
    assert short.status == "no_improvement" and short.version is None and short.scores["improvement"] == gain
    assert Registry(root).versions() == versions

    at = run(gain)  # 400 new rows and min_samples 400: enough
    assert at.status == "success" and at.version is not None, at.reason
    assert Registry(root).versions() == [*versions, at.version]


def test_fewer_new_rows_than_min_samples_skip_the_run(registry_copy, tmp_path) -> None:
    root, versions = registry_copy()
    result = incremental([new_rows(tmp_path, seed=21)], models=root, settings=IncrementalParameters(min_samples=401))
    assert result.status == "skipped" and result.rows == {"new": 400}
    assert result.reason == "400 new rows, fewer than min_samples 401"
    assert Registry(root).versions() == versions


def test_without_recorded_training_data_the_forgetting_check_says_it_did_not_run(registry_copy, tmp_path) -> None:
    root, _ = registry_copy()
    registry = Registry(root)
    live = registry.load()
    unrecorded = {k: v for k, v in live.metadata.items() if k not in ("data_files", "data_file", "data_sha256")}
    version = registry.save(live, metrics=live.metrics, metadata=unrecorded)
    settings = IncrementalParameters(min_samples=50, min_improvement_threshold=-1.0)
    result = incremental([new_rows(tmp_path, seed=21)], models=root, settings=settings)
    check = result.scores["forgetting_check"]
    reason = f"the original test set cannot be rebuilt: version {version} records no training data file"
    assert check == {"ran": False, "reason": reason}
    assert result.status == "success" and result.reason.endswith(f"; forgetting check not run: {check['reason']}")
