"""Statistics of A/B experiments between model versions: readouts, checks and a verdict.

Pure functions on arrays of a metric (session duration, one value per session), no I/O and
no knowledge of CSS, so the rollout controller, the CLI and the benchmarks share them::

    plan = required_sample_size(effect=10.0, sd=120.0)            # sessions for a 10 s effect
    srm = sample_ratio_mismatch([len(c), len(t)], [0.5, 0.5])    # is the split as planned?
    readout = msprt(c, t, planned_n=plan.total, previous=readout)  # at every window
    verdict(readout, srm).decision                                # 'inconclusive', ...

* :func:`welch` — the guidelines' t-test (Welch), read once at the planned size.
* :func:`msprt` — the always-valid sequential readout, safe to look at every window.
* :func:`cuped` — variance reduction with the visitor's pre-period (history) covariate.
* :func:`sample_ratio_mismatch` — χ² check of the split; a mismatch blocks every verdict.
* :func:`logging_mismatch` — χ² check that the arms log the same share of what they served; same.
* :func:`required_sample_size` — sessions needed for an effect (statsmodels power).
* :func:`verdict` — treatment_better, control_better, no_difference, inconclusive, blocked_srm.

The serving path never imports this package (it needs scipy and statsmodels).
"""

from efimero.errors import ExperimentInputError
from efimero.experiment.covariate import CupedAdjustment, cuped
from efimero.experiment.decision import MIN_SAMPLES_PER_ARM, Decision, Verdict, verdict
from efimero.experiment.sequential import mixing_ratio, msprt
from efimero.experiment.srm import SRM_THRESHOLD, LossResult, SrmResult, logging_mismatch, sample_ratio_mismatch
from efimero.experiment.stats import Readout, SampleSize, required_sample_size, welch

__all__ = [
    "MIN_SAMPLES_PER_ARM",
    "SRM_THRESHOLD",
    "CupedAdjustment",
    "Decision",
    "ExperimentInputError",
    "LossResult",
    "Readout",
    "SampleSize",
    "SrmResult",
    "Verdict",
    "cuped",
    "logging_mismatch",
    "mixing_ratio",
    "msprt",
    "required_sample_size",
    "sample_ratio_mismatch",
    "verdict",
    "welch",
]
