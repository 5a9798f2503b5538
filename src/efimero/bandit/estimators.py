"""Off-policy estimates of a candidate policy's mean reward from logged decisions.

A served style is logged with the propensity with which the serving (logging) policy chose it,
μ(a|x). A candidate policy π was never served, yet its mean reward V(π) = E_x Σ_a π(a|x) q(x, a)
can be estimated from those logs, because each logged row can be re-weighted by how much more
(or less) often π would have made the same choice: w = π(a|x) / μ(a|x).

- :func:`ips` (inverse propensity scoring) averages w·r: unbiased when μ is logged exactly, but
  its variance grows with the weights, i.e. with how much π and μ disagree.
- :func:`snips` (self-normalised IPS) divides by the mean weight instead of by n: slightly biased
  (consistent), but bounded by the rewards seen and far steadier when the weights are large.
- :func:`direct_method` averages a reward model's prediction under π: low variance, but biased by
  however wrong the model is, and the data cannot tell how wrong.
- :func:`doubly_robust` is the direct method plus an IPS correction of the model's error on the
  logged action: unbiased when the propensities are right (whatever the model), and of lower
  variance than IPS when the model is good.
- :func:`on_policy` is the plain mean of rewards a policy actually earned when it served: the
  ground truth that the off-policy estimates of that same policy try to reach.
- :func:`effective_sample_size` says how many equally weighted rows the weighted rows are worth:
  n when π agrees with μ, far fewer when a few rows carry all the weight.

Every estimate is an :class:`Estimate` with a normal-approximation confidence interval. IPS, DR,
DM and the on-policy mean are averages of one term per row, so their standard error is those
terms' sample standard deviation over √n. SNIPS is a ratio of two averages; its standard error
comes from the delta method (the ratio linearised around the estimate). The intervals assume
independent rows: rows of one visitor's sessions are not, and then they are too narrow.

The functions are generic: a row is any logged decision (one slot of a served style, one position
of a ranked list), and per-slot or per-position propensities are the caller's choice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from efimero.errors import ExperimentInputError, format_list

EstimatorName = Literal["ips", "snips", "dr", "dm", "on_policy"]

MIN_ROWS = 2
"""A standard error (and so any interval) needs at least two rows."""


@dataclass(frozen=True)
class Estimate:
    """One estimate of a policy's mean reward, with its confidence interval.

    ``value`` is the point estimate; ``ci_low``/``ci_high`` bound it at the confidence asked for
    (normal approximation, ``value ± z · std_error``); ``n`` is the number of logged rows used.
    """

    estimator: EstimatorName
    value: float
    ci_low: float
    ci_high: float
    std_error: float
    n: int

    def to_dict(self) -> dict[str, float | int | str]:
        """The estimate as a JSON-ready mapping."""
        return asdict(self)


def _numbers(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a 1-D float array (one value per logged row), refused when it is not one."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ExperimentInputError(f"{name} must be an array of numbers. Got {values!r:.80} instead.") from None
    if array.ndim != 1:
        raise ExperimentInputError(f"{name} must be a 1-D array, one value per logged row. Got shape {array.shape}.")
    return array


def _checked(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` refused when it holds fewer than MIN_ROWS rows or a value that is not finite."""
    if array.size < MIN_ROWS:
        raise ExperimentInputError(
            f"{name} must hold at least {MIN_ROWS} logged rows for a standard error. Got {array.size}."
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ExperimentInputError(
            f"{name} must hold only finite numbers. Got {array[bad[0]]} at row(s) {format_list(bad.tolist())}. "
            "Drop or repair those rows before estimating."
        )
    return array


def _array(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a 1-D float array of finite numbers with at least MIN_ROWS entries."""
    return _checked(_numbers(values, name), name)


def _arrays(**named: ArrayLike) -> list[np.ndarray]:
    """Each argument as by :func:`_array`; first refused unless all have one length (one value per row)."""
    arrays = [_numbers(values, name) for name, values in named.items()]
    lengths = {name: array.size for name, array in zip(named, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} {size}" for name, size in lengths.items())
        raise ExperimentInputError(f"every input must hold one value per logged row, but the lengths differ: {shown}.")
    return [_checked(array, name) for name, array in zip(named, arrays, strict=True)]


def _in_range(values: np.ndarray, name: str, *, open_low: bool) -> None:
    """Refuse probabilities outside (0, 1] (``open_low``) or [0, 1], naming the first bad rows."""
    low_bad = values <= 0 if open_low else values < 0
    bad = np.flatnonzero(low_bad | (values > 1))
    if bad.size:
        interval = "(0, 1]" if open_low else "[0, 1]"
        hint = (
            " A logged action with propensity 0 could not have been chosen: the propensity was logged wrongly."
            if open_low
            else ""
        )
        raise ExperimentInputError(
            f"{name} must lie in {interval}. Got {values[bad[0]]} at row(s) {format_list(bad.tolist())}.{hint}"
        )


def _weights(logged_propensities: np.ndarray, target_propensities: np.ndarray) -> np.ndarray:
    """Importance weights π(a|x) / μ(a|x) after checking both propensities' ranges."""
    _in_range(logged_propensities, "logged_propensities", open_low=True)
    _in_range(target_propensities, "target_propensities", open_low=False)
    return target_propensities / logged_propensities


def _z(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.96 at 0.95)."""
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise ExperimentInputError(f"confidence must lie strictly between 0 and 1. Got {confidence!r}.")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _estimate(name: EstimatorName, value: float, terms: np.ndarray, confidence: float) -> Estimate:
    """An :class:`Estimate` whose standard error is that of the mean of ``terms`` (one per row).

    For the plain averages ``terms`` are the averaged terms themselves; for SNIPS they are the
    linearised (influence) terms, whose mean is 0 but whose spread is the estimate's.
    """
    z = _z(confidence)
    std_error = float(terms.std(ddof=1) / math.sqrt(terms.size))
    return Estimate(name, float(value), float(value - z * std_error), float(value + z * std_error), std_error,
                    int(terms.size))


def ips(
    rewards: ArrayLike, logged_propensities: ArrayLike, target_propensities: ArrayLike, *, confidence: float = 0.95
) -> Estimate:
    """Inverse propensity scoring: the mean of w·r, w = target / logged propensity of the logged action.

    Unbiased for the target policy's mean reward whenever the logged propensities are the true
    ones and the logging policy gave every action the target might choose a propensity above 0.
    Its variance grows with the spread of the weights; read :func:`effective_sample_size` beside it.

    Args:
        rewards: the reward of each logged row.
        logged_propensities: μ(a_i|x_i), the logging policy's probability of the logged action, in (0, 1].
        target_propensities: π(a_i|x_i), the evaluated policy's probability of that same action, in [0, 1].
        confidence: level of the normal-approximation interval.

    Raises:
        ExperimentInputError: inputs of different lengths, fewer than 2 rows, non-finite values,
            propensities out of range, or ``confidence`` outside (0, 1).

    Example:
        >>> estimate = ips([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 1.0, 0.0])
        >>> estimate.value, estimate.n
        (1.0, 4)
    """
    r, mu, pi = _arrays(rewards=rewards, logged_propensities=logged_propensities,
                        target_propensities=target_propensities)
    terms = _weights(mu, pi) * r
    return _estimate("ips", terms.mean(), terms, confidence)


def snips(
    rewards: ArrayLike, logged_propensities: ArrayLike, target_propensities: ArrayLike, *, confidence: float = 0.95
) -> Estimate:
    """Self-normalised IPS: Σ w·r / Σ w, the IPS estimate divided by the mean weight.

    The mean weight is 1 in expectation; dividing by its realised value cancels much of the
    noise that large weights bring, and keeps the estimate within the range of logged rewards.
    The cost is a bias of order 1/n. The standard error is the delta method's: the standard
    deviation of w·(r − V̂) / mean(w) over √n.

    Raises:
        ExperimentInputError: as :func:`ips`, and when every weight is 0, i.e. the evaluated
            policy never chooses any of the logged actions, so the logs say nothing about it.

    Example:
        >>> snips([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.5, 0.5]).value
        0.75
    """
    r, mu, pi = _arrays(rewards=rewards, logged_propensities=logged_propensities,
                        target_propensities=target_propensities)
    w = _weights(mu, pi)
    mean_weight = w.mean()
    if mean_weight == 0:
        raise ExperimentInputError(
            "every importance weight is 0: the evaluated policy never agrees with the logged actions "
            "(its target propensity is 0 on every logged row), so these logs cannot estimate its reward. "
            "Log sessions where the serving policy explores the candidate's choices."
        )
    value = float((w * r).sum() / w.sum())
    return _estimate("snips", value, w * (r - value) / mean_weight, confidence)


def doubly_robust(
    rewards: ArrayLike,
    logged_propensities: ArrayLike,
    target_propensities: ArrayLike,
    predicted_logged: ArrayLike,
    predicted_target: ArrayLike,
    *,
    confidence: float = 0.95,
) -> Estimate:
    """Doubly robust: the reward model's value of the target policy plus an IPS correction of its error.

    Each row contributes q̂(x_i, π) + w_i·(r_i − q̂(x_i, a_i)). The correction has mean 0 when the
    model is right, and removes the model's bias when the propensities are right, so the estimate
    is unbiased if either holds. With a good model the residuals r − q̂ are smaller than r, so
    the weighted term, and with it the variance, shrinks compared with IPS. Fit the model on
    other rows than it predicts (cross-fitting), or its overfit residuals understate the error.

    Args:
        rewards, logged_propensities, target_propensities: as for :func:`ips`.
        predicted_logged: q̂(x_i, a_i), the model's predicted reward of the logged action.
        predicted_target: Σ_a π(a|x_i) q̂(x_i, a), the model's predicted reward under the target policy.
        confidence: level of the normal-approximation interval.

    Raises:
        ExperimentInputError: as :func:`ips`, also for the two prediction arrays.

    Example:
        >>> doubly_robust([1, 0], [0.5, 0.5], [1.0, 0.0], [0.75, 0.25], [0.75, 0.75]).value
        1.0
    """
    r, mu, pi, q_logged, q_target = _arrays(
        rewards=rewards, logged_propensities=logged_propensities, target_propensities=target_propensities,
        predicted_logged=predicted_logged, predicted_target=predicted_target,
    )
    terms = q_target + _weights(mu, pi) * (r - q_logged)
    return _estimate("dr", terms.mean(), terms, confidence)


def direct_method(predicted_target: ArrayLike, *, confidence: float = 0.95) -> Estimate:
    """Direct method: the mean of the reward model's prediction under the target policy.

    Steady (no weights), but as wrong as the model: its interval covers only the sampling noise
    of the contexts, never the model's bias, so it is overconfident whenever the model is off.

    Raises:
        ExperimentInputError: fewer than 2 rows, non-finite values or ``confidence`` outside (0, 1).

    Example:
        >>> direct_method([0.25, 0.75]).value
        0.5
    """
    terms = _array(predicted_target, "predicted_target")
    return _estimate("dm", terms.mean(), terms, confidence)


def on_policy(rewards: ArrayLike, *, confidence: float = 0.95) -> Estimate:
    """The mean logged reward: what the logging policy itself earned, with its interval.

    This is the ground truth an off-policy estimate of that same policy, made from another
    policy's logs, is compared with.

    Raises:
        ExperimentInputError: fewer than 2 rows, non-finite values or ``confidence`` outside (0, 1).

    Example:
        >>> on_policy([1, 0, 0, 1]).value
        0.5
    """
    terms = _array(rewards, "rewards")
    return _estimate("on_policy", terms.mean(), terms, confidence)


def effective_sample_size(logged_propensities: ArrayLike, target_propensities: ArrayLike) -> float:
    """Kish's effective sample size of the importance weights: (Σ w)² / Σ w².

    n when every weight is equal (the target policy re-weights nothing), and down towards 1 when a
    single row carries all the weight. An off-policy estimate from n rows is about as precise as
    an on-policy mean of this many rows; a small value warns that its interval is unreliable.
    Returns 0.0 when every weight is 0 (the policies never agree on a logged action).

    Raises:
        ExperimentInputError: inputs of different lengths, fewer than 2 rows, non-finite values
            or propensities out of range.

    Example:
        >>> effective_sample_size([0.5, 0.5, 0.5, 0.5], [1.0, 1.0, 0.0, 0.0])
        2.0
    """
    mu, pi = _arrays(logged_propensities=logged_propensities, target_propensities=target_propensities)
    w = _weights(mu, pi)
    squares = float((w**2).sum())
    return float(w.sum() ** 2 / squares) if squares > 0 else 0.0
