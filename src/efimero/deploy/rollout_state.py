"""The state of a gradual rollout on disk: ``rollout.json`` in the target's registry.

Kept apart from the controller (:mod:`efimero.deploy.rollout`) so that a plain deploy or
rollback can refuse to touch a target whose traffic a running rollout controls.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from efimero._io import read_model, write_model
from efimero.errors import DeployError
from efimero.registry import TrafficArm, TrafficSplit

STATE_FILE = "rollout.json"
CANARY_ARM = "canary"
DEFAULT_STAGES = (0.05, 0.10, 0.25, 0.50, 1.0)

Status = Literal["running", "completed", "rolled_back", "aborted"]
Clock = Literal["wall", "store"]
RECORD_STATUS: dict[str, str] = {"running": "running", "completed": "success", "rolled_back": "rolled_back",
                                 "aborted": "aborted"}
"""The deployment record's status for each rollout status (a completed rollout is a successful deployment)."""


class RolloutPlan(BaseModel):
    """The schedule: the share of each stage and how long each holds; validated before anything runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[float, ...] = Field(DEFAULT_STAGES, min_length=1, description="Candidate share per stage; ends at 1")
    hold_minutes: float = Field(5.0, gt=0, description="How long each stage holds before its checks can pass it")

    @field_validator("stages")
    @classmethod
    def _increasing_to_all(cls, stages: tuple[float, ...]) -> tuple[float, ...]:
        shown = ", ".join(f"{share:g}" for share in stages)
        if any(not 0 < share <= 1 for share in stages):
            raise ValueError(f"every stage must be a share in (0, 1]. Got {shown} instead.")
        if any(later <= earlier for earlier, later in pairwise(stages)):
            raise ValueError(f"stages must strictly increase. Got {shown} instead.")
        if stages[-1] != 1:
            raise ValueError(f"the last stage must be 1 (every visitor on the candidate). Got {shown} instead.")
        return stages


class RolloutEvent(BaseModel):
    """One thing the rollout did, at the rollout clock's time, and why."""

    at: datetime
    event: str
    share: float
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


class RolloutState(BaseModel):
    """Everything a rollout round needs to continue, as written to ``rollout.json``."""

    id: str
    target: str
    version: str
    previous_version: str
    plan: RolloutPlan
    salt: str
    stage_index: int = 0
    share: float
    status: Status = "running"
    stage_started_at: datetime
    record_id: str
    clock: Clock = Field("wall", description="Time of the stage windows: the wall clock or the store's newest visit")
    db_url: str = Field("sqlite:///data/efimero.db", description="Interaction store the checks read")
    last_check: RolloutEvent | None = None
    events: list[RolloutEvent] = Field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def split(self) -> TrafficSplit:
        return TrafficSplit(arms=(TrafficArm(name=CANARY_ARM, version=self.version, share=self.share),),
                            salt=self.salt, owner=f"rollout {self.id}")


def read_state(root: Path) -> RolloutState | None:
    """The target's rollout (running or the last finished one), or None when it never had one."""
    return read_model(root / STATE_FILE, RolloutState, "a rollout state")


def write_state(root: Path, state: RolloutState) -> None:
    write_model(root / STATE_FILE, state)


def ensure_no_rollout(root: Path, *, doing: str) -> None:
    """Refuse ``doing`` on a target whose traffic a running rollout controls."""
    state = read_state(root)
    if state is not None and state.running:
        raise DeployError(
            f"a rollout of {state.version} to {state.target} is running (stage {state.stage_index + 1} of "
            f"{len(state.plan.stages)}, {state.share:.0%} of visitors); {doing} would fight it. Let it finish, or "
            f"stop it with `efimero rollout abort --target {state.target}`."
        )


