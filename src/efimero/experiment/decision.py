"""One decision from a readout and the SRM check: which arm wins, or why nobody does yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from efimero.experiment._base import positive
from efimero.experiment.srm import LossResult, SrmResult
from efimero.experiment.stats import Readout

Decision = Literal["treatment_better", "control_better", "no_difference", "inconclusive", "blocked_srm"]

MIN_SAMPLES_PER_ARM = 100
"""The guidelines' ``min_samples_per_variant``: fewer sessions in an arm never give a verdict."""


@dataclass(frozen=True)
class Verdict:
    """The decision on an experiment at one look, why, and the evidence it rests on."""

    decision: Decision
    reason: str
    readout: Readout
    srm: SrmResult
    loss: LossResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict with its readout, SRM and logging checks, as a JSON-ready mapping."""
        return {
            "decision": self.decision, "reason": self.reason, "readout": self.readout.to_dict(),
            "srm": self.srm.to_dict(), "logging": self.loss.to_dict() if self.loss is not None else None,
        }


def verdict(
    readout: Readout,
    srm: SrmResult,
    *,
    min_samples: int = MIN_SAMPLES_PER_ARM,
    higher_is_better: bool = True,
    loss: LossResult | None = None,
) -> Verdict:
    """Decide an experiment from a readout, refusing whenever the evidence cannot be trusted.

    In order: a sample ratio mismatch blocks everything (the assignment is broken, so the metric
    is too; the check fires only once the traffic can show the loss, see
    :mod:`efimero.experiment.srm`), and so do arms that log different shares of what they served
    (``loss``: it sees a loss of logs far sooner); an arm below ``min_samples`` is inconclusive;
    a fixed-horizon (Welch) readout before its ``planned_n`` is inconclusive, since reading it
    early is the peeking that inflates false positives. Then an interval that excludes 0 names
    the better arm; one that includes 0 means ``no_difference`` for a Welch readout at its
    planned size, and only ``inconclusive`` (not significant yet) for a sequential one, which
    never stops for the null.

    Args:
        readout: from :func:`efimero.experiment.welch` or :func:`efimero.experiment.msprt`.
        srm: from :func:`efimero.experiment.sample_ratio_mismatch` on the same sessions' counts.
        min_samples: sessions each arm needs before any verdict.
        higher_is_better: ``False`` for metrics to minimise (bounce rate, load time).
        loss: from :func:`efimero.experiment.logging_mismatch` on the same arms, when the served counts are known.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> readout = welch(rng.normal(100, 20, 500), rng.normal(110, 20, 500), planned_n=1000)
        >>> verdict(readout, sample_ratio_mismatch([500, 500], [0.5, 0.5])).decision
        'treatment_better'
        >>> verdict(readout, sample_ratio_mismatch([520, 400], [0.5, 0.5])).decision
        'blocked_srm'
    """
    positive(min_samples, "min_samples")

    def decide(decision: Decision, reason: str) -> Verdict:
        return Verdict(decision, reason, readout, srm, loss)

    if srm.mismatch:
        return decide("blocked_srm", (
            f"sample ratio mismatch: counts {srm.counts} against planned shares "
            f"{[round(s, 4) for s in srm.expected_shares]} (chi-squared p = {srm.p_value:.2g} < {srm.threshold}). "
            "Assignment or logging is broken; fix it and restart the experiment, no metric can be trusted."
        ))
    if loss is not None and loss.mismatch:
        return decide("blocked_srm", (
            f"the arms logged different shares of what they served: {loss.logged} of {loss.served} (chi-squared "
            f"p = {loss.p_value:.2g} < {loss.threshold}). Logs are lost unevenly; the metric compares different "
            "visitors, so no verdict can be trusted."
        ))
    smallest = min(readout.n_control, readout.n_treatment)
    if smallest < min_samples:
        return decide("inconclusive", f"only {smallest} sessions in an arm; at least {min_samples} are needed.")
    if readout.method == "welch" and readout.n < readout.planned_n:
        return decide("inconclusive", (
            f"a fixed-horizon test is read once, at its planned {readout.planned_n} sessions; "
            f"{readout.n} so far. Use the sequential readout (msprt) to look earlier."
        ))
    interval = f"[{readout.ci_low:.4g}, {readout.ci_high:.4g}]"
    confidence = f"{1 - readout.alpha:.0%}"
    if readout.ci_low > readout.ci_high:
        return decide("inconclusive", (
            f"the intervals of successive looks do not overlap ({interval}): the effect changed during the "
            "experiment, so no single difference describes it."
        ))
    if readout.ci_low > 0 or readout.ci_high < 0:
        treatment_higher = readout.ci_low > 0
        winner: Decision = "treatment_better" if treatment_higher == higher_is_better else "control_better"
        return decide(winner, f"the {confidence} interval of treatment - control, {interval}, excludes 0 "
                              f"(p = {readout.p_value:.2g}).")
    if readout.method == "welch":
        return decide("no_difference", f"the {confidence} interval {interval} includes 0 at the planned size.")
    return decide("inconclusive", f"the {confidence} always-valid interval {interval} still includes 0.")
