"""Training rows that learn from rewards instead of from guessed labels (``collect --labels reward``).

The heuristic labels of :mod:`efimero.collect.targets` say which style a session *should* have
had; they partly measure the heuristic, and on a greedy deployment they mostly teach the live
model its own choices back. Here every logged decision becomes a row whose class targets are the
labels that were served, each class head weighted by its slot's ``reward / propensity``:

* a weighted classifier's best label maximises the expected weight, and
  ``E[reward · 1{served = a} / p(a | x)] = E[reward | x, a]``: the head learns the label with the
  highest expected reward, not the label most often served (the reduction of policy learning to
  weighted classification, as in Vowpal Wabbit's ``--cb`` and Zadrozny's cost-proportionate weighting);
* labels the deployment explored carry weight ``1 / p``, so a good label shown rarely still counts;
* a reward of 0 teaches nothing (weight 0).

Only class labels are explored, so the variables keep what was served, their regressor weighted by
the reward alone (``sample_weight``): styles that did well count more.

A decision whose reward is not due yet (its log may still arrive, see
:meth:`~efimero.bandit.reward.RewardFunction.of_decisions`) is left out and counted.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from efimero.bandit.reward import RewardFunction
from efimero.css import parse_css_variables
from efimero.errors import DataError
from efimero.schema import TabularTask
from efimero.store import decisions

if TYPE_CHECKING:
    from sqlalchemy import Engine

MIN_ROW_WEIGHT = 1e-3
"""The variables' regressor needs weights above 0: a session with reward 0 counts this little."""
MAX_WEIGHT = 1000.0
"""Largest weight a training file may hold; larger inverse propensities are clipped (clipped IPS)."""


def reward_rows(
    engine: Engine, task: TabularTask, reward: RewardFunction, *, start: datetime, end: datetime, now: datetime,
) -> tuple[list[dict[str, Any]], int]:
    """One training row per logged decision with a due reward in [start, end), and how many are pending.

    Raises:
        DataError: a logged decision lacks a feature or a class slot of ``task`` (the log was written
            by a service serving another task).
    """
    if task.weight_column is None:
        raise DataError(f"task {task.name} has no weight column: learning from rewards weighs every row.")
    logged = decisions(engine, start=start, end=end)
    rewards, ready = reward.of_decisions(logged, now=now)
    rows = []
    for record, value in zip(logged[ready].to_dict("records"), rewards[ready], strict=True):
        try:
            rows.append(_row(task, record, float(value)))
        except KeyError as exc:
            raise DataError(f"prediction {record['prediction_id']}: its logged decision has no {exc.args[0]!r}, "
                            f"which task {task.name} needs.") from None
    return rows, int((~ready).sum())


def _row(task: TabularTask, record: Mapping[Hashable, Any], value: float) -> dict[str, Any]:
    features, slots = record["features"], record["decisions"]["slots"]
    values = parse_css_variables(record["css_variables"])
    row: dict[str, Any] = {name: features[name] for name in task.feature_names}
    for slot in task.class_targets:
        choice = slots[slot.name]
        row[slot.name] = choice["label"]
        row[task.target_weight_column(slot.name) or ""] = min(value / float(choice["propensity"]), MAX_WEIGHT)
    for target in task.regression_targets:
        row[target.name] = round(min(max(values[target.name], target.minimum), target.maximum), 3)
    row[task.weight_column or ""] = max(value, MIN_ROW_WEIGHT)
    return row
