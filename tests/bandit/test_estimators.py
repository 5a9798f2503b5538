"""Off-policy estimators on a synthetic contextual bandit whose true policy values are known exactly."""

from __future__ import annotations

import doctest
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from efimero.bandit import estimators
from efimero.bandit.estimators import (
    Estimate,
    direct_method,
    doubly_robust,
    effective_sample_size,
    ips,
    on_policy,
    snips,
)
from efimero.errors import EfimeroError, ExperimentInputError

N_CONTEXTS, N_ACTIONS = 6, 4
REPLICATIONS = 200
ROWS = 2000


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Bandit:
    """Contexts drawn with probability ``p_context``; rewards with mean ``q[x, a]``.

    Rewards are clicks (Bernoulli) unless ``noise_sd`` is set: then q plus normal noise, a
    continuous reward (a session duration) that a reward model can predict closely.
    """

    p_context: np.ndarray
    q: np.ndarray
    logging: np.ndarray
    target: np.ndarray
    noise_sd: float | None = None

    @property
    def truth(self) -> float:
        """The target policy's exact mean reward: Σ_x p(x) Σ_a π(a|x) q(x, a)."""
        return float(self.p_context @ (self.target * self.q).sum(axis=1))

    def log(self, rng: np.random.Generator, n: int, model: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``n`` rows logged by the logging policy, with predictions of ``model`` (default: the true q)."""
        model = self.q if model is None else model
        x = rng.choice(N_CONTEXTS, size=n, p=self.p_context)
        cumulative = self.logging[x].cumsum(axis=1)
        a = np.minimum((rng.random((n, 1)) > cumulative).sum(axis=1), N_ACTIONS - 1)
        if self.noise_sd is None:
            r = (rng.random(n) < self.q[x, a]).astype(float)
        else:
            r = self.q[x, a] + rng.normal(0, self.noise_sd, n)
        return {"rewards": r, "logged": self.logging[x, a], "target": self.target[x, a],
                "predicted_logged": model[x, a], "predicted_target": (self.target[x] * model[x]).sum(axis=1)}


def make_bandit(target_temperature: float = 1.0, noise_sd: float | None = None, seed: int = 7) -> Bandit:
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, size=(N_CONTEXTS, N_ACTIONS))
    logging = softmax(rng.normal(size=(N_CONTEXTS, N_ACTIONS)))
    target = softmax(4.0 * q / target_temperature)   # prefers the better actions
    return Bandit(np.full(N_CONTEXTS, 1 / N_CONTEXTS), q, logging, target, noise_sd)


def run_all(rows: dict[str, np.ndarray]) -> dict[str, Estimate]:
    return {
        "ips": ips(rows["rewards"], rows["logged"], rows["target"]),
        "snips": snips(rows["rewards"], rows["logged"], rows["target"]),
        "dr": doubly_robust(rows["rewards"], rows["logged"], rows["target"], rows["predicted_logged"],
                            rows["predicted_target"]),
    }


@pytest.fixture(scope="module")
def replications() -> tuple[Bandit, list[dict[str, Estimate]]]:
    """REPLICATIONS independent logs of ROWS rows; DR uses a biased model (true q + 0.1)."""
    bandit = make_bandit()
    rng = np.random.default_rng(2026)
    biased = np.clip(bandit.q + 0.1, 0, 1)
    return bandit, [run_all(bandit.log(rng, ROWS, biased)) for _ in range(REPLICATIONS)]


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_ci_covers_the_true_value_about_95_percent_of_the_time(
    replications: tuple[Bandit, list[dict[str, Estimate]]], name: str
) -> None:
    bandit, runs = replications
    covered = np.mean([run[name].ci_low <= bandit.truth <= run[name].ci_high for run in runs])
    assert 0.88 <= covered <= 0.99, f"{name} covered the truth in {covered:.1%} of {REPLICATIONS} logs"


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_estimates_centre_on_the_truth(replications: tuple[Bandit, list[dict[str, Estimate]]], name: str) -> None:
    bandit, runs = replications
    values = np.array([run[name].value for run in runs])
    # The mean of 200 estimates is within 3 standard errors of that mean, and each is near the truth.
    assert abs(values.mean() - bandit.truth) < 3 * values.std(ddof=1) / np.sqrt(REPLICATIONS)
    assert np.median(np.abs(values - bandit.truth)) < 0.03
    # The reported standard error matches the spread of the estimates across logs.
    reported = np.mean([run[name].std_error for run in runs])
    assert reported == pytest.approx(values.std(ddof=1), rel=0.2)


def test_the_target_differs_from_logging_so_the_estimates_are_not_the_logged_mean() -> None:
    bandit = make_bandit()
    logged_value = float(bandit.p_context @ (bandit.logging * bandit.q).sum(axis=1))
    assert bandit.truth - logged_value > 0.05
    rows = bandit.log(np.random.default_rng(1), 50_000)
    assert abs(on_policy(rows["rewards"]).value - bandit.truth) > 0.04
    assert ips(rows["rewards"], rows["logged"], rows["target"]).value == pytest.approx(bandit.truth, abs=0.01)


@pytest.mark.parametrize(("noise_sd", "ratio"), [(None, 0.75), (0.1, 0.3)])
def test_dr_with_a_good_model_has_a_smaller_standard_error_than_ips(noise_sd: float | None, ratio: float) -> None:
    """With the true q as the model, DR is left with the reward noise only: far less for a continuous reward."""
    bandit = make_bandit(noise_sd=noise_sd)
    rows = bandit.log(np.random.default_rng(3), ROWS)
    results = run_all(rows)
    assert results["dr"].std_error < ratio * results["ips"].std_error
    assert abs(results["dr"].value - bandit.truth) < 3 * results["dr"].std_error
    # A model that knows nothing (a constant) gives DR no edge over IPS.
    rows_constant = bandit.log(np.random.default_rng(3), ROWS, np.full_like(bandit.q, bandit.q.mean()))
    constant = run_all(rows_constant)
    assert constant["dr"].std_error > results["dr"].std_error


def test_dm_with_the_true_model_is_near_the_truth_but_a_biased_model_misleads_it() -> None:
    bandit = make_bandit()
    rng = np.random.default_rng(4)
    exact = direct_method(bandit.log(rng, ROWS)["predicted_target"])
    biased = direct_method(bandit.log(rng, ROWS, np.clip(bandit.q + 0.1, 0, 1))["predicted_target"])
    assert exact.ci_low <= bandit.truth <= exact.ci_high
    assert biased.ci_low > bandit.truth   # its interval knows nothing of the model's bias


def test_when_the_target_is_the_logging_policy_ips_is_the_on_policy_mean_and_ess_is_n() -> None:
    bandit = make_bandit()
    rows = bandit.log(np.random.default_rng(5), 500)
    same = rows["logged"]
    weighted, mean = ips(rows["rewards"], rows["logged"], same).to_dict(), on_policy(rows["rewards"]).to_dict()
    assert weighted.pop("estimator") == "ips" and mean.pop("estimator") == "on_policy"
    assert weighted == mean   # exactly: every weight is 1.0
    assert weighted["value"] == rows["rewards"].mean()
    assert snips(rows["rewards"], rows["logged"], same).value == pytest.approx(rows["rewards"].mean())
    assert effective_sample_size(rows["logged"], same) == pytest.approx(500)


def test_ess_drops_as_the_policies_disagree() -> None:
    rng = np.random.default_rng(6)
    sizes = []
    for temperature in (4.0, 1.0, 0.25):   # the lower, the more the target concentrates on few actions
        bandit = make_bandit(target_temperature=temperature)
        rows = bandit.log(rng, ROWS)
        sizes.append(effective_sample_size(rows["logged"], rows["target"]))
    assert ROWS > sizes[0] > sizes[1] > sizes[2]
    assert sizes[2] < ROWS / 2
    assert effective_sample_size([0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]) == 1.0
    assert effective_sample_size([0.5, 0.5], [0.0, 0.0]) == 0.0


def test_snips_stays_within_the_reward_range_when_ips_does_not() -> None:
    rewards, logged, target = [1.0, 1.0, 0.0, 0.0], [0.1, 0.1, 0.9, 0.9], [1.0, 1.0, 0.0, 0.0]
    assert ips(rewards, logged, target).value == pytest.approx(5.0)
    assert snips(rewards, logged, target).value == pytest.approx(1.0)


def test_estimate_to_dict_and_confidence_level() -> None:
    estimate = on_policy([0.0, 1.0, 1.0, 0.0, 1.0], confidence=0.9)
    assert estimate.to_dict() == {"estimator": "on_policy", "value": 0.6, "ci_low": estimate.ci_low,
                                  "ci_high": estimate.ci_high, "std_error": estimate.std_error, "n": 5}
    wide = on_policy([0.0, 1.0, 1.0, 0.0, 1.0], confidence=0.99)
    assert wide.ci_low < estimate.ci_low < estimate.value < estimate.ci_high < wide.ci_high
    assert estimate.ci_high - estimate.value == pytest.approx(1.6448536 * estimate.std_error)


OK: dict[str, list[Any]] = {"rewards": [1.0, 0.0, 1.0], "logged": [0.5, 0.5, 0.25], "target": [1.0, 0.0, 0.5]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rewards": [1.0, 0.0]}, "lengths differ: rewards 2, logged_propensities 3"),
        ({"rewards": [], "logged": [], "target": []}, "at least 2 logged rows"),
        ({"rewards": [1.0], "logged": [0.5], "target": [0.5]}, "at least 2 logged rows"),
        ({"rewards": [1.0, np.nan, 0.0]}, "rewards must hold only finite numbers. Got nan at row(s) 1"),
        ({"target": [1.0, np.inf, 0.0]}, "target_propensities must hold only finite numbers"),
        ({"logged": [0.5, 0.0, 0.5]}, "logged_propensities must lie in (0, 1]. Got 0.0 at row(s) 1"),
        ({"logged": [0.5, 1.5, 0.5]}, "logged_propensities must lie in (0, 1]. Got 1.5"),
        ({"target": [-0.1, 0.5, 0.5]}, "target_propensities must lie in [0, 1]. Got -0.1 at row(s) 0"),
        ({"target": [0.5, 1.01, 0.5]}, "target_propensities must lie in [0, 1]. Got 1.01"),
        ({"rewards": ["a", "b", "c"]}, "rewards must be an array of numbers"),
        ({"rewards": [[1.0, 0.0, 1.0]]}, "must be a 1-D array"),
    ],
)
@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_invalid_inputs_are_refused_with_a_message_naming_the_problem(
    change: dict[str, list[Any]], message: str, estimator: str
) -> None:
    data = {**OK, **change}
    r, mu, pi = data["rewards"], data["logged"], data["target"]
    with pytest.raises(ExperimentInputError) as caught:
        if estimator == "ips":
            ips(r, mu, pi)
        elif estimator == "snips":
            snips(r, mu, pi)
        else:
            doubly_robust(r, mu, pi, [0.5] * len(mu), [0.5] * len(mu))
    assert message in str(caught.value)
    assert isinstance(caught.value, EfimeroError) and isinstance(caught.value, ValueError)


def test_dr_checks_its_predictions_too() -> None:
    with pytest.raises(ExperimentInputError, match="predicted_logged must hold only finite"):
        doubly_robust(OK["rewards"], OK["logged"], OK["target"], [0.5, np.nan, 0.5], [0.5] * 3)
    with pytest.raises(ExperimentInputError, match="predicted_target 2"):
        doubly_robust(OK["rewards"], OK["logged"], OK["target"], [0.5] * 3, [0.5] * 2)


def test_snips_with_all_zero_weights_says_the_policy_never_agrees_with_the_logs() -> None:
    with pytest.raises(ExperimentInputError, match="never agrees with the logged actions"):
        snips([1.0, 0.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0])
    assert ips([1.0, 0.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]).value == 0.0   # IPS says 0, silently


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.2, float("nan")])
def test_confidence_outside_zero_one_is_refused(confidence: float) -> None:
    with pytest.raises(ExperimentInputError, match="confidence must lie strictly between 0 and 1"):
        ips(OK["rewards"], OK["logged"], OK["target"], confidence=confidence)
    with pytest.raises(ExperimentInputError, match="confidence"):
        direct_method([0.1, 0.2], confidence=confidence)


def test_single_argument_estimators_check_their_input() -> None:
    with pytest.raises(ExperimentInputError, match="predicted_target must hold only finite"):
        direct_method([0.1, np.nan])
    with pytest.raises(ExperimentInputError, match="rewards must hold at least 2"):
        on_policy([1.0])
    with pytest.raises(ExperimentInputError, match="lengths differ"):
        effective_sample_size([0.5, 0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ExperimentInputError, match=r"logged_propensities must lie in \(0, 1\]"):
        effective_sample_size([0.5, -0.5], [0.5, 0.5])


def test_docstring_examples_run() -> None:
    result = doctest.testmod(estimators, raise_on_error=False)
    assert result.attempted >= 7
    assert result.failed == 0
