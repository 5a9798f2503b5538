"""One number per session: how well the served style did, from what the visitor then did.

The reward is a weighted mean of four parts, each in [0, 1]:

=================  =============================================  ============
part               value                                          weight (v1)
=================  =============================================  ============
duration           ``min(session seconds / duration_cap_s, 1)``   0.4
scroll             the scroll depth reached                       0.2
stayed             ``1 - bounce``                                 0.2
rating             ``(stars - 1) / 4``, when the visitor rated    0.2
=================  =============================================  ============

Most visitors never rate, so an unrated session weighs its other parts by their own weights
renormalised to 1: a rating sharpens the reward, its absence does not lower it.

A session whose log did not arrive within ``wait_minutes`` of its prediction gets
``default_reward`` instead, as Personalizer did: the estimate of a policy must not depend on
which logs happened to come back quickly. A prediction still inside its wait window has no
reward yet and is left out.

The function is versioned: :attr:`RewardFunction.version` names its weights, so an estimate
or a model trained on rewards says which definition of "good" it used.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

REWARD_DEFINITION = 1
"""Bumped when the formula (not the weights) changes."""


class RewardFunction(BaseModel):
    """The weights and the wait window of the session reward (``retraining.bandit.reward``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_weight: float = Field(0.4, ge=0, allow_inf_nan=False)
    duration_cap_s: float = Field(300.0, gt=0, allow_inf_nan=False, description="Sessions this long score 1")
    scroll_weight: float = Field(0.2, ge=0, allow_inf_nan=False)
    stayed_weight: float = Field(0.2, ge=0, allow_inf_nan=False, description="Weight of not bouncing")
    rating_weight: float = Field(0.2, ge=0, allow_inf_nan=False)
    wait_minutes: float = Field(30.0, gt=0, allow_inf_nan=False, description="Logs arriving later get the default")
    default_reward: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _some_weight(self) -> RewardFunction:
        if self.duration_weight + self.scroll_weight + self.stayed_weight == 0:
            raise ValueError("duration_weight, scroll_weight and stayed_weight must not all be 0: "
                             "an unrated session would have no reward.")
        return self

    @property
    def version(self) -> str:
        """``r<definition>-<digest of the settings>``: equal versions mean equal rewards."""
        digest = hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:8]
        return f"r{REWARD_DEFINITION}-{digest}"

    def of_sessions(self, sessions: pd.DataFrame) -> np.ndarray:
        """The reward of each logged session (columns of the interaction log), in [0, 1]."""
        parts = {
            "duration": np.minimum(sessions["session_duration_ms"].to_numpy(float) / 1000 / self.duration_cap_s, 1.0),
            "scroll": np.clip(sessions["scroll_depth"].to_numpy(float), 0, 1),
            "stayed": 1 - np.clip(sessions["bounce_rate"].to_numpy(float), 0, 1),
        }
        weights = {"duration": self.duration_weight, "scroll": self.scroll_weight, "stayed": self.stayed_weight}
        total = sum(weights[name] * parts[name] for name in parts)
        stars = pd.to_numeric(sessions["user_satisfaction"], errors="coerce").to_numpy(float)
        rated = ~np.isnan(stars)
        rating = np.where(rated, (np.clip(np.nan_to_num(stars, nan=1.0), 1, 5) - 1) / 4, 0.0)
        base = sum(weights.values())
        weight_sum = np.where(rated, base + self.rating_weight, base)
        return np.clip((total + np.where(rated, self.rating_weight * rating, 0.0)) / weight_sum, 0.0, 1.0)

    def of_decisions(self, logged: pd.DataFrame, *, now: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Rewards of logged predictions, and which of them have one yet.

        ``logged`` holds ``created_at`` and ``received_at`` (None without a log) beside the log's
        columns. A log received within the wait window counts; a later or missing one gets
        ``default_reward`` once the window has passed by ``now``; before that the row is pending.
        """
        wait = pd.Timedelta(timedelta(minutes=self.wait_minutes))
        created = pd.to_datetime(logged["created_at"], utc=True)
        received = pd.to_datetime(logged["received_at"], utc=True)
        in_time = (received.notna() & (received - created <= wait)).to_numpy()
        due = (created + wait <= pd.Timestamp(now)).to_numpy()
        rewards = np.full(len(logged), self.default_reward)
        if in_time.any():
            rewards[in_time] = self.of_sessions(logged.loc[in_time])
        return rewards, in_time | due
