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

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from efimero.bandit.reward import RewardFunction
from efimero.bandit.reward_model import CrossFittedRewardModel
from efimero.css import DEFAULT_TOKENS, StyleTokens
from efimero.errors import DataError
from efimero.schema import TabularTask
from efimero.store import iter_decisions
from efimero.store.read import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    from sqlalchemy import Engine

MIN_ROW_WEIGHT = 1e-3
"""The variables' regressor needs weights above 0: a session with reward 0 counts this little."""
MAX_WEIGHT = 1000.0
"""Largest weight a training file may hold."""


@dataclass
class _Logged:
    """The decisions of a window as the reward model needs them, nothing of the raw log kept.

    Filled chunk by chunk: features and variables as numeric frames, per class slot the served
    labels (the task's own label strings, shared, not one string per row) and their propensities,
    the rewards.
    """

    features: list[pd.DataFrame] = field(default_factory=list)
    values: list[pd.DataFrame] = field(default_factory=list)
    served: dict[str, list[str]] = field(default_factory=dict)
    propensity: dict[str, list[np.ndarray]] = field(default_factory=dict)
    rewards: list[np.ndarray] = field(default_factory=list)
    pending: int = 0

    def add(self, logged: pd.DataFrame, task: TabularTask, reward: RewardFunction, *, now: datetime,
            tokens: StyleTokens, window: str) -> None:
        """Keep the due decisions of one chunk of :func:`~efimero.store.iter_decisions`; count the pending ones.

        Raises:
            DataError: a decision lacks a feature, a variable or a class slot of ``task``.
        """
        rewards, ready = reward.of_decisions(logged, now=now)
        self.pending += int((~ready).sum())
        rows = logged[ready]
        if rows.empty:
            return
        try:
            features = pd.DataFrame([{name: f[name] for name in task.feature_names} for f in rows["features"]])
            values = pd.DataFrame([{t.name: tokens.parse_variables(v)[t.name] for t in task.regression_targets}
                                   for v in rows["css_variables"]])
            shared = {t.name: {label: label for label in t.labels} for t in task.class_targets}
            served = {slot: [labels.get(d["slots"][slot]["label"], d["slots"][slot]["label"])
                             for d in rows["decisions"]] for slot, labels in shared.items()}
            propensity = {slot: np.array([float(d["slots"][slot]["propensity"]) for d in rows["decisions"]])
                          for slot in shared}
        except KeyError as exc:
            raise DataError(f"the logged decisions of {window} have no {exc.args[0]!r}, "
                            f"which task {task.name} needs.") from None
        for slot in shared:
            self.served.setdefault(slot, []).extend(served[slot])
            self.propensity.setdefault(slot, []).append(propensity[slot])
        self.features.append(features)
        self.values.append(values)
        self.rewards.append(rewards[ready])


def reward_rows(
    engine: Engine, task: TabularTask, reward: RewardFunction, *, start: datetime, end: datetime, now: datetime,
    seed: int = 0, tokens: StyleTokens = DEFAULT_TOKENS, chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[pd.DataFrame, int]:
    """One training row per logged decision with a due reward in [start, end), and how many are pending.

    ``tokens`` read the logged CSS variables back into ``task``'s regression targets. The window
    is read ``chunk_rows`` decisions at a time (:func:`~efimero.store.iter_decisions`) and each
    chunk is reduced to the numbers the reward model needs before the next is read, so memory
    holds those (a few dozen numbers a row), never the raw logs of the whole window. The rows and
    their weights do not depend on ``chunk_rows``.

    Raises:
        DataError: a logged decision lacks a feature, a variable or a class slot of ``task`` (the log was
            written by a service serving another task).
    """
    if task.weight_column is None:
        raise DataError(f"task {task.name} has no weight column: learning from rewards weighs every row.")
    logged = _Logged()
    for chunk in iter_decisions(engine, start=start, end=end, chunk_rows=chunk_rows):
        logged.add(chunk, task, reward, now=now, tokens=tokens, window=f"{start:%Y-%m-%d} to {end:%Y-%m-%d}")
    columns = [*task.columns, *task.weight_columns]
    if not logged.rewards:
        return pd.DataFrame(columns=columns), logged.pending
    features = pd.concat(logged.features, ignore_index=True)
    values = pd.concat(logged.values, ignore_index=True)
    rewards = np.concatenate(logged.rewards)
    slots = {t.name: list(t.labels) for t in task.class_targets}
    model = CrossFittedRewardModel(np.hstack([features.to_numpy(float), values.to_numpy(float)]), slots,
                                   logged.served, rewards, seed=seed)
    frame = features
    for slot, labels in slots.items():
        frame[slot], frame[task.target_weight_column(slot)] = _best_labels(
            model, logged.served, slot, labels, rewards, np.concatenate(logged.propensity[slot]))
    for target in task.regression_targets:
        frame[target.name] = values[target.name].clip(target.minimum, target.maximum).round(3)
    frame[task.weight_column] = np.maximum(rewards, MIN_ROW_WEIGHT)
    return frame[columns], logged.pending


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
