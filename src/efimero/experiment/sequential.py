"""An always-valid readout: the mixture sequential probability ratio test (mSPRT).

A fixed-horizon t-test read at every window is wrong far more often than its ``alpha`` says:
ten looks at 1.96 turn 5 % false positives into about 20 %. The mSPRT of Johari, Koomen,
Pekelis & Walsh (2017, "Peeking at A/B Tests: Why it matters, and what to do about it", KDD;
and Johari, Pekelis & Walsh, "Always Valid Inference", Operations Research 2022) gives a
p-value and a confidence interval that stay valid however often, and whenever, one looks.

For the difference of means ``Δ̂`` with (unpooled, plug-in) variance ``V`` and a normal mixture
``N(0, τ²)`` over the true difference, the likelihood ratio against ``Δ = θ₀`` is::

    Λ(θ₀) = sqrt(V / (V + τ²)) · exp(τ² (Δ̂ - θ₀)² / (2 V (V + τ²)))

Under ``Δ = θ₀`` it is a martingale with mean 1, so by Ville's inequality it ever exceeds
``1/α`` with probability at most ``α``. Hence the always-valid p-value ``min over looks of 1/Λ(0)``
and the confidence interval ``{θ₀ : Λ(θ₀) < 1/α}``, intersected over looks.

**Mixing variance.** ``τ²`` sets the effect size the test is tuned for. efimero ties it to
the planned size ``N*`` (from :func:`efimero.experiment.required_sample_size`): with ``V*`` the
variance ``Δ̂`` will have at ``N*`` sessions, ``τ² = r V*``, where ``r`` minimises the interval's
half-width at ``N*``. Differentiating the half-width gives ``r = 2 ln(1/α) + ln(1 + r)``, solved
in closed form with the Lambert W function (r ≈ 8.2 at α = 0.05; the rejection boundary
at ``N*`` is then |z| ≈ 3.0 rather than the fixed test's 1.96: the price of looking at will).
The idea of choosing the mixture for a target time is that of Howard, Ramdas, McAuliffe &
Sekhon (2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences"). The test stays
valid before and after ``N*``; it is just sharpest there. ``V`` uses the arms' sample variances
(the plug-in of Johari et al.), so validity is asymptotic: the first looks should have at
least some 100 sessions per arm, which :func:`efimero.experiment.verdict` requires anyway.
"""

from __future__ import annotations

import math

from numpy.typing import ArrayLike
from scipy.special import lambertw

from efimero.errors import ExperimentInputError
from efimero.experiment._base import level, positive, sample
from efimero.experiment.stats import Readout, standard_error, summarise


def mixing_ratio(alpha: float) -> float:
    """``τ² / V*``: the mixing variance over the estimate's variance at the planned size.

    The root of ``r = 2 ln(1/α) + ln(1 + r)``: with ``s = 1 + r``, ``s e^{-s} = e^{-(1 + 2 ln(1/α))}``,
    so ``s = -W₋₁(-e^{-(1 + 2 ln(1/α))})`` on the lower branch of the Lambert W function.

    Example:
        >>> round(mixing_ratio(0.05), 2)
        8.21
    """
    c = 1.0 + 2.0 * math.log(1.0 / level(alpha, "alpha"))
    return float(-lambertw(-math.exp(-c), k=-1).real) - 1.0


def msprt(
    control: ArrayLike,
    treatment: ArrayLike,
    *,
    planned_n: int,
    alpha: float = 0.05,
    previous: Readout | None = None,
) -> Readout:
    """The always-valid readout of treatment against control at this look.

    Pass the readout of the experiment's previous look as ``previous``: the p-value is then the
    running minimum over looks and the interval the running intersection, which is what makes
    "stop at the first look with ``p < alpha``" keep the false-positive rate at ``alpha``.

    Args:
        control: every session of the control arm so far (the metric, one value per session).
        treatment: the same for the treatment arm.
        planned_n: sessions (both arms) the test is tuned for; see the module docstring.
        alpha: significance level; the interval has confidence ``1 - alpha`` over all looks.
        previous: the readout of the previous look of the same experiment, or ``None`` at the first.

    Raises:
        ExperimentInputError: an arm is too short or not finite, both arms are constant, a
            setting is out of range, or ``previous`` is not an earlier mSPRT look with this ``alpha``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> c, t = rng.normal(100, 20, 1000), rng.normal(105, 20, 1000)
        >>> first = msprt(c[:300], t[:300], planned_n=2000)
        >>> later = msprt(c, t, planned_n=2000, previous=first)
        >>> later.p_value <= first.p_value
        True
    """
    c, t = sample(control, "control"), sample(treatment, "treatment")
    alpha = level(alpha, "alpha")
    planned = positive(planned_n, "planned_n")
    se = standard_error(c, t)
    # τ²/V = r V*/V with V* = V · n / N* (same allocation, same variances at the planned size).
    q = mixing_ratio(alpha) * (c.size + t.size) / planned
    difference = float(t.mean() - c.mean())
    z = difference / se
    log_ratio = -0.5 * math.log1p(q) + z * z * q / (2.0 * (1.0 + q))
    p_value = min(1.0, math.exp(-log_ratio))
    half_width = se * math.sqrt((1.0 + 1.0 / q) * (2.0 * math.log(1.0 / alpha) + math.log1p(q)))
    low, high = difference - half_width, difference + half_width
    if previous is not None:
        _check_previous(previous, alpha=alpha, n=c.size + t.size)
        p_value = min(p_value, previous.p_value)
        low, high = max(low, previous.ci_low), min(high, previous.ci_high)
    return summarise(
        c, t, method="msprt", ci_low=low, ci_high=high, p_value=p_value, alpha=alpha, planned_n=int(planned),
    )


def _check_previous(previous: Readout, *, alpha: float, n: int) -> None:
    """``previous`` must be an earlier look of the same sequential test."""
    if previous.method != "msprt" or previous.alpha != alpha or previous.n > n:
        raise ExperimentInputError(
            "previous must be the mSPRT readout of an earlier look of this experiment, with the same alpha "
            f"({alpha}) and no more sessions ({n}). Got a {previous.method} readout with alpha {previous.alpha} "
            f"and {previous.n} sessions instead."
        )
