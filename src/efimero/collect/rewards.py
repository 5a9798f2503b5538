"""Training rows that learn from rewards instead of from guessed labels (``collect --labels reward``).

The heuristic labels of :mod:`efimero.collect.targets` say which style a session *should* have
had; they partly measure the heuristic, and on a greedy deployment they mostly teach the live
model its own choices back. Here every logged decision with a due reward becomes a row, and each
class slot's label is the one with the highest **doubly robust** reward estimate for that visit
(policy learning as cost-sensitive classification, Dudík, Langford and Li 2011):

``score(a) = q̂(x, a) + 1{a = served} · (reward − q̂(x, served)) / p(served | x)``

where q̂ is a cross-fitted reward model of the context, the served variables and the served labels
of every slot (:class:`~efimero.bandit.reward_model.CrossFittedRewardModel`), the other slots kept
as served. The row's weight for that head (``sample_weight__<target>``) is the gap between the best
score and the runner-up: a visit where the labels would earn alike teaches little, one where the
choice matters teaches much. The reward model generalises across visitors, so a label the
deployment explored on a few visitors informs every similar one; the IPS correction keeps the
scores unbiased where the model is wrong. (Weighting the served label by reward / propensity alone
was measured too: with rewards that are all positive it learns the most-served labels back and
lost to the heuristic labels by 0.12 reward a session on the simulator, ``bench/bench_bandit.py``.)

Only class labels are explored, so the variables keep what was served, their regressor weighted by
the reward (``sample_weight``): styles that did well count more.

A decision whose reward is not due yet (its log may still arrive, see
:meth:`~efimero.bandit.reward.RewardFunction.of_decisions`) is left out and counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from efimero.bandit.reward import RewardFunction
from efimero.bandit.reward_model import CrossFittedRewardModel
from efimero.css import DEFAULT_TOKENS, StyleTokens
from efimero.errors import DataError
from efimero.schema import TabularTask
from efimero.store import decisions

if TYPE_CHECKING:
    from sqlalchemy import Engine

MIN_ROW_WEIGHT = 1e-3
"""The variables' regressor needs weights above 0: a session with reward 0 counts this little."""
MAX_WEIGHT = 1000.0
"""Largest weight a training file may hold."""


def reward_rows(
    engine: Engine, task: TabularTask, reward: RewardFunction, *, start: datetime, end: datetime, now: datetime,
    seed: int = 0, tokens: StyleTokens = DEFAULT_TOKENS,
) -> tuple[pd.DataFrame, int]:
    """One training row per logged decision with a due reward in [start, end), and how many are pending.

    ``tokens`` read the logged CSS variables back into ``task``'s regression targets.

    Raises:
        DataError: a logged decision lacks a feature, a variable or a class slot of ``task`` (the log was
            written by a service serving another task).
    """
    if task.weight_column is None:
        raise DataError(f"task {task.name} has no weight column: learning from rewards weighs every row.")
    logged = decisions(engine, start=start, end=end)
    rewards, ready = reward.of_decisions(logged, now=now)
    rows = logged[ready].reset_index(drop=True)
    rewards = rewards[ready]
    columns = [*task.columns, *task.weight_columns]
    if rows.empty:
        return pd.DataFrame(columns=columns), int((~ready).sum())
    try:
        features = pd.DataFrame([{name: f[name] for name in task.feature_names} for f in rows["features"]])
        values = pd.DataFrame([{t.name: tokens.parse_variables(v)[t.name] for t in task.regression_targets}
                               for v in rows["css_variables"]])
        slots = {t.name: list(t.labels) for t in task.class_targets}
        served = {slot: [d["slots"][slot]["label"] for d in rows["decisions"]] for slot in slots}
        propensity = {slot: np.array([float(d["slots"][slot]["propensity"]) for d in rows["decisions"]])
                      for slot in slots}
    except KeyError as exc:
        raise DataError(f"the logged decisions of {start:%Y-%m-%d} to {end:%Y-%m-%d} have no {exc.args[0]!r}, "
                        f"which task {task.name} needs.") from None
    model = CrossFittedRewardModel(np.hstack([features.to_numpy(float), values.to_numpy(float)]), slots, served,
                                   rewards, seed=seed)
    frame = features.copy()
    for slot, labels in slots.items():
        frame[slot], frame[task.target_weight_column(slot)] = _best_labels(model, served, slot, labels,
                                                                           rewards, propensity[slot])
    for target in task.regression_targets:
        frame[target.name] = values[target.name].clip(target.minimum, target.maximum).round(3)
    frame[task.weight_column] = np.maximum(rewards, MIN_ROW_WEIGHT)
    return frame[columns], int((~ready).sum())


def _best_labels(
    model: CrossFittedRewardModel, served: dict[str, list[str]], slot: str, labels: list[str], rewards: np.ndarray,
    propensity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the label of ``slot`` with the best doubly robust score, and its margin over the runner-up."""
    n = len(rewards)
    scores = np.column_stack([model.predict({**served, slot: [label] * n}) for label in labels])
    taken = np.array([labels.index(label) for label in served[slot]])
    rows = np.arange(n)
    scores[rows, taken] += (rewards - scores[rows, taken]) / propensity
    ranked = np.sort(scores, axis=1)
    gap = ranked[:, -1] - ranked[:, -2] if len(labels) > 1 else np.ones(n)
    return np.asarray(labels, dtype=object)[scores.argmax(axis=1)], np.clip(gap, 0.0, MAX_WEIGHT)
