"""The verdict: SRM blocks it, small or early samples leave it open, the interval names the winner."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from efimero.experiment import ExperimentInputError, Readout, msprt, sample_ratio_mismatch, verdict, welch

BALANCED = sample_ratio_mismatch([1000, 1000], [0.5, 0.5])


@pytest.fixture
def clear_win() -> Readout:
    rng = np.random.default_rng(21)
    return welch(rng.normal(100, 20, 1000), rng.normal(110, 20, 1000), planned_n=2000)


def test_a_significant_welch_readout_at_its_planned_size_names_the_winner(clear_win: Readout) -> None:
    result = verdict(clear_win, BALANCED)
    assert result.decision == "treatment_better"
    assert "excludes 0" in result.reason
    assert verdict(clear_win, BALANCED, higher_is_better=False).decision == "control_better"


def test_a_sample_ratio_mismatch_blocks_even_a_clear_win(clear_win: Readout) -> None:
    srm = sample_ratio_mismatch([1040, 960], [0.5, 0.5])          # χ² = 3.2: not a mismatch
    assert verdict(clear_win, srm).decision == "treatment_better"
    srm = sample_ratio_mismatch([5200, 4800], [0.5, 0.5])
    result = verdict(clear_win, srm)
    assert result.decision == "blocked_srm"
    assert "[5200, 4800]" in result.reason and "Assignment or logging is broken" in result.reason


def test_too_few_sessions_in_an_arm_is_inconclusive(clear_win: Readout) -> None:
    result = verdict(clear_win, BALANCED, min_samples=1001)
    assert result.decision == "inconclusive"
    assert "only 1000 sessions in an arm; at least 1001" in result.reason


def test_a_fixed_horizon_readout_before_its_planned_size_is_not_judged(clear_win: Readout) -> None:
    early = replace(clear_win, planned_n=4000)
    result = verdict(early, BALANCED)
    assert result.decision == "inconclusive"
    assert "planned 4000 sessions; 2000 so far" in result.reason


def test_no_difference_only_for_a_fixed_horizon_readout_at_its_planned_size() -> None:
    rng = np.random.default_rng(22)
    control, treatment = rng.normal(100, 20, 1000), rng.normal(100, 20, 1000)
    fixed = welch(control, treatment, planned_n=2000)
    sequential = msprt(control, treatment, planned_n=2000)
    assert not fixed.significant and not sequential.significant
    assert verdict(fixed, BALANCED).decision == "no_difference"
    assert verdict(sequential, BALANCED).decision == "inconclusive"


def test_a_sequential_readout_names_the_winner_from_its_always_valid_interval() -> None:
    rng = np.random.default_rng(23)
    readout = msprt(rng.normal(100, 20, 1000), rng.normal(95, 20, 1000), planned_n=2000)
    assert readout.ci_high < 0
    assert verdict(readout, BALANCED).decision == "control_better"
    assert verdict(readout, BALANCED, higher_is_better=False).decision == "treatment_better"


def test_looks_whose_intervals_do_not_overlap_give_no_winner(clear_win: Readout) -> None:
    disjoint = replace(clear_win, method="msprt", ci_low=12.0, ci_high=8.0, p_value=0.001)
    result = verdict(disjoint, BALANCED)
    assert result.decision == "inconclusive"
    assert "do not overlap" in result.reason


def test_verdict_is_json_ready(clear_win: Readout) -> None:
    payload = json.loads(json.dumps(verdict(clear_win, BALANCED).to_dict()))
    assert payload["decision"] == "treatment_better"
    assert payload["readout"]["significant"] is True
    assert payload["srm"]["mismatch"] is False


def test_min_samples_must_be_positive(clear_win: Readout) -> None:
    with pytest.raises(ExperimentInputError, match="min_samples must be a finite number above 0"):
        verdict(clear_win, BALANCED, min_samples=0)
