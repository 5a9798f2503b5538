"""How would a candidate have done on the visits already logged? Off-policy evaluation.

Every logged prediction says which label each class slot served and with what probability
(:mod:`efimero.bandit.explore`), and its session says how that went (:mod:`efimero.bandit.reward`).
A candidate version is asked, row by row, how likely *it* would have been to serve the same
labels (its greedy choice, or its choice under the deployment's exploration policy, as it
would be deployed). Reweighting the logged rewards by the ratio of the two probabilities
estimates the candidate's mean reward before it reaches anyone:

* IPS, unbiased while every label the candidate serves had a logged propensity above 0;
* SNIPS, IPS divided by its mean weight: a little biased, far less variable;
* DR, a reward model's prediction for the candidate's choice corrected by the IPS residual,
  consistent if either the propensities or the reward model are right (Dudík et al. 2011).
  The reward model is XGBoost on the features and the served labels, cross-fitted over two
  folds, so no row is scored by a model that saw it.

The effective sample size, ``(Σw)² / Σw²``, says how many logged visits the estimate is worth;
the agreement share says how often the candidate's best labels are the ones served. With a
greedy logging policy the candidate is only credited where it agrees with what was served,
which is why the service can explore (within guardrails) at a small rate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from efimero.bandit.estimators import (
    MIN_ROWS,
    Estimate,
    direct_method,
    doubly_robust,
    effective_sample_size,
    ips,
    on_policy,
    snips,
)
from efimero.bandit.policy import slot_distribution
from efimero.bandit.reward import RewardFunction
from efimero.bandit.reward_model import CrossFittedRewardModel
from efimero.bundle import ModelBundle
from efimero.css import parse_css_variables
from efimero.errors import DataError, EfimeroError
from efimero.registry.exploration import ExplorationPolicy

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.registry import Registry

SUPPORT_MISSING = "support is missing"
SUPPORT_Z = 3.0
"""How many standard errors the mean importance weight may stray from 1 before support is in doubt."""


@dataclass(frozen=True)
class OfflineEvaluation:
    """A candidate's estimated mean reward on logged visits, beside what the logging arms earned."""

    candidate: str
    target_policy: str
    reward_version: str
    logged: int
    pending: int
    estimates: dict[str, Estimate]
    realised: dict[str, Estimate]
    effective_sample_size: float
    agreement: float
    notes: list[str] = field(default_factory=list)
    mean_weight: float | None = None
    """Σ w / n, 1 in expectation when the log supports every choice of the candidate: a check of support."""

    @property
    def used(self) -> int:
        return self.logged - self.pending

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate, "target_policy": self.target_policy, "reward_version": self.reward_version,
            "logged": self.logged, "pending": self.pending, "used": self.used,
            "estimates": {name: e.to_dict() for name, e in self.estimates.items()},
            "realised": {arm: e.to_dict() for arm, e in self.realised.items()},
            "effective_sample_size": self.effective_sample_size, "agreement": self.agreement,
            "mean_weight": self.mean_weight, "notes": self.notes,
        }


def evaluate_offline(
    logged: pd.DataFrame, candidate: ModelBundle, *, reward: RewardFunction, now: datetime,
    exploration: ExplorationPolicy | None = None, confidence: float = 0.95, seed: int = 0,
) -> OfflineEvaluation:
    """Estimate ``candidate``'s mean reward on ``logged`` (rows of :func:`efimero.store.decisions`).

    Args:
        exploration: the policy the candidate would be deployed with; None evaluates its greedy labels.
        now: the end of the evaluated window; a row's reward is due once its wait window has passed by it.

    Raises:
        DataError: nothing to evaluate, or the candidate's class targets or features differ from the log's.
    """
    rewards, ready = reward.of_decisions(logged, now=now)
    rows = logged[ready].reset_index(drop=True)
    rewards = rewards[ready]
    if rows.empty:
        raise DataError(f"no logged decision with a due reward to evaluate on ({len(logged)} logged, all pending)."
                        if len(logged) else "no logged decision in the window: serve with efimero 0.5+ first.")
    slots = _slots(candidate, rows)
    features = _matrix(candidate, rows)
    outputs = candidate.predict_outputs(features)
    logged_values, target_values, notes = _variables(candidate, rows, outputs)
    contexts = rows["context"].tolist()
    holdouts = [bool(d.get("holdout")) for d in rows["decisions"]]
    served = {slot: [d["slots"][slot]["label"] for d in rows["decisions"]] for slot in slots}
    distributions = {slot: _distributions(slot, labels, outputs[name], exploration, contexts, holdouts)
                     for slot, (name, labels) in slots.items()}
    target = np.prod([[dist[i][served[slot][i]] for i in range(len(rows))]
                      for slot, dist in distributions.items()], axis=0)
    logged_propensity = rows["decisions"].map(lambda d: float(d["propensity"])).to_numpy(float)
    model = CrossFittedRewardModel(np.hstack([features, logged_values]),
                                   {slot: labels for slot, (_, labels) in slots.items()}, served, rewards, seed=seed)
    predicted_logged = model.predict(served)
    predicted_target = _expected_under(model, slots, distributions, np.hstack([features, target_values]))
    agrees = np.all([np.asarray(labels, dtype=object)[outputs[name].argmax(axis=1)]
                     == np.asarray(served[slot], dtype=object) for slot, (name, labels) in slots.items()], axis=0)
    estimates = {
        "ips": ips(rewards, logged_propensity, target, confidence=confidence),
        "snips": snips(rewards, logged_propensity, target, confidence=confidence),
        "dr": doubly_robust(rewards, logged_propensity, target, predicted_logged, predicted_target,
                            confidence=confidence),
        "dm": direct_method(predicted_target, confidence=confidence),
    } if target.sum() > 0 else {"dm": direct_method(predicted_target, confidence=confidence)}
    if target.sum() == 0:
        notes.append("the candidate never chooses what was served: only the reward model's estimate (dm) is possible")
    weights = target / logged_propensity
    mean_weight = on_policy(weights, confidence=confidence) if len(weights) >= MIN_ROWS else None
    if mean_weight is not None and abs(mean_weight.value - 1) > SUPPORT_Z * max(mean_weight.std_error, 1e-12):
        notes.append(f"{SUPPORT_MISSING}: the importance weights average {mean_weight.value:.3f} "
                     f"(± {mean_weight.std_error:.3f}) where they average 1 when every choice of the candidate could "
                     "have been logged; some of its choices (several slots explored at once, or held-out visitors) "
                     "are missing from the log, and IPS, SNIPS and DR are biased")
    arms = rows["arm"].to_numpy()
    realised = {str(arm): on_policy(rewards[arms == arm], confidence=confidence) for arm in sorted(set(arms))
                if (arms == arm).sum() >= MIN_ROWS}
    return OfflineEvaluation(
        candidate=candidate.version or "", target_policy="greedy" if exploration is None else exploration.policy_id,
        reward_version=reward.version, logged=len(logged), pending=int((~ready).sum()), estimates=estimates,
        realised=realised, effective_sample_size=effective_sample_size(logged_propensity, target),
        agreement=float(agrees.mean()), notes=notes,
        mean_weight=mean_weight.value if mean_weight is not None else None,
    )


def _variables(
    candidate: ModelBundle, rows: pd.DataFrame, outputs: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The served values of the candidate's regression targets, logged and as the candidate would serve them.

    Values are never explored, so only the reward model can tell what other values would earn: they
    enter its context columns (DR and DM see them; IPS and SNIPS assume the logged values).
    """
    names = [t for model in candidate.models.values() if model.labels is None for t in model.targets]
    try:
        logged = np.array([[parse_css_variables(v)[name] for name in names] for v in rows["css_variables"]],
                          dtype=float).reshape(len(rows), len(names))
    except (KeyError, ValueError, TypeError):
        return np.empty((len(rows), 0)), np.empty((len(rows), 0)), [
            "the logged predictions do not hold the candidate's variables: the estimates assume the logged ones"]
    served = np.hstack([outputs[name] for name, model in candidate.models.items() if model.labels is None]
                       or [np.empty((len(rows), 0))])
    notes = ["variables are not explored: what the candidate's own values would change is estimated by the reward "
             "model alone (DR, DM); IPS and SNIPS assume the logged values"] if names else []
    return logged, served, notes


def _expected_under(
    model: CrossFittedRewardModel, slots: Mapping[str, tuple[str, list[str]]],
    distributions: Mapping[str, list[dict[str, float]]], context: np.ndarray,
) -> np.ndarray:
    """Σ_a π(a|x) q̂(x, a) over every joint action the candidate may take, with the candidate's values in ``context``."""
    n = len(context)
    expected = np.zeros(n)
    for action in itertools.product(*(labels for _, labels in slots.values())):
        weight = np.prod([[distributions[slot][i][label] for i in range(n)]
                          for slot, label in zip(slots, action, strict=True)], axis=0)
        if weight.any():
            chosen = {slot: [label] * n for slot, label in zip(slots, action, strict=True)}
            expected += weight * model.predict(chosen, context)
    return np.clip(expected, 0.0, 1.0)


def _slots(candidate: ModelBundle, rows: pd.DataFrame) -> dict[str, tuple[str, list[str]]]:
    """Per class target: the candidate's model name and labels; the log must hold the same targets."""
    slots = {model.targets[0]: (name, list(model.labels)) for name, model in candidate.models.items()
             if model.labels is not None}
    logged = set(rows["decisions"].iloc[0]["slots"])
    if set(slots) != logged:
        raise DataError(f"{candidate.version}: predicts the class targets {sorted(slots)} but the log holds "
                        f"decisions for {sorted(logged)}; a candidate is evaluated on the decisions it would make.")
    return slots


def _matrix(candidate: ModelBundle, rows: pd.DataFrame) -> np.ndarray:
    try:
        return np.array([[row[name] for name in candidate.feature_names] for row in rows["features"]], dtype=float)
    except KeyError as exc:
        raise DataError(f"{candidate.version}: needs feature {exc.args[0]!r}, which the logged predictions "
                        "do not hold.") from None


def _distributions(
    slot: str, labels: list[str], probabilities: np.ndarray, exploration: ExplorationPolicy | None,
    contexts: list[dict[str, Any]], holdouts: list[bool],
) -> list[dict[str, float]]:
    """Row by row, the candidate's probability of serving each label of ``slot`` (a held-out row: greedy)."""
    return [slot_distribution(slot, dict(zip(labels, row, strict=True)), None if held else exploration, context)[0]
            for row, context, held in zip(probabilities, contexts, holdouts, strict=True)]


@dataclass(frozen=True)
class GateVerdict:
    """The off-policy check before a canary: passed, failed, or could not run (``passed`` None), and why."""

    passed: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason}


def offline_verdict(
    evaluation: OfflineEvaluation, *, estimator: str, margin: float, min_effective_sample_size: float,
    live_arm: str = "live",
) -> GateVerdict:
    """Whether the candidate's estimate is no worse than the live arm's realised reward beyond ``margin``.

    Too few effective visits, a log that misses some of the candidate's choices (the mean weight
    far from 1), or no live sessions to compare with, means the check could not run: that is
    reported as such, never as a pass.
    """
    estimate = evaluation.estimates.get(estimator)
    live = evaluation.realised.get(live_arm)
    if estimate is None:
        return GateVerdict(None, f"no {estimator} estimate: {'; '.join(evaluation.notes) or 'not computed'}")
    if live is None:
        return GateVerdict(None, f"no session of the {live_arm} arm in the window to compare with")
    missing = next((note for note in evaluation.notes if note.startswith(SUPPORT_MISSING)), None)
    if missing is not None:
        return GateVerdict(None, missing)
    if evaluation.effective_sample_size < min_effective_sample_size:
        return GateVerdict(None, f"effective sample size {evaluation.effective_sample_size:.0f} is below "
                           f"{min_effective_sample_size:g}: explore more, or wait for more visits")
    shortfall = live.value - estimate.value
    summary = (f"{estimator} estimate {estimate.value:.4f} [{estimate.ci_low:.4f}, {estimate.ci_high:.4f}] against "
               f"live {live.value:.4f} (ESS {evaluation.effective_sample_size:.0f})")
    if shortfall > margin:
        return GateVerdict(False, f"{summary}: worse by {shortfall:.4f}, more than the margin {margin:g}")
    return GateVerdict(True, f"{summary}: within the margin {margin:g}")


def evaluate_in_store(
    engine: Engine, registry: Registry, version: str, *, start: datetime, end: datetime, reward: RewardFunction,
    exploration: ExplorationPolicy | None, confidence: float = 0.95, seed: int = 0,
) -> OfflineEvaluation:
    """:func:`evaluate_offline` of registry ``version`` on the decisions logged for visits in [start, end).

    Raises:
        VersionNotFoundError, ModelIntegrityError: the candidate cannot be loaded.
        DataError: see :func:`evaluate_offline`.
        StoreError: the store cannot be read.
    """
    from efimero.store import decisions

    candidate = registry.load(version)
    logged = decisions(engine, start=start, end=end)
    return evaluate_offline(logged, candidate, reward=reward, now=datetime.now(UTC), exploration=exploration,
                            confidence=confidence, seed=seed)


def offline_precheck(
    db_url: str, *, reward: RewardFunction, estimator: str, margin: float, min_effective_sample_size: float,
    window: timedelta,
) -> Callable[[Registry, str, Registry], tuple[bool | None, str]]:
    """A rollout precheck (:data:`efimero.deploy.rollout.Precheck`): the candidate, as the target would
    serve it (under its exploration policy), estimated on the ``window`` of logged visits before the
    newest one, must not fall short of the live arm's realised reward by more than ``margin``."""

    def check(source: Registry, version: str, target: Registry) -> tuple[bool | None, str]:
        from efimero.store import decisions, end_after_newest_visit, open_engine

        try:
            engine = open_engine(db_url, create=False)
            try:
                end = end_after_newest_visit(engine) or datetime.now(UTC)
                evaluation = evaluate_offline(
                    decisions(engine, start=end - window, end=end), source.load(version), reward=reward,
                    now=datetime.now(UTC), exploration=target.exploration())
            finally:
                engine.dispose()
        except EfimeroError as exc:
            return None, str(exc)
        verdict = offline_verdict(evaluation, estimator=estimator, margin=margin,
                                  min_effective_sample_size=min_effective_sample_size)
        return verdict.passed, verdict.reason

    return check
