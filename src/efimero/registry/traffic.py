"""Which versions of a registry are live, and for what share of visitors: ``traffic.json``.

The ``current`` pointer names the live version; ``traffic.json`` beside it names at most
:data:`MAX_CANDIDATES` candidate versions, each with a share of the visitors. Everyone not
assigned to a candidate gets the live version (arm :data:`LIVE_ARM`). Without the file, all
traffic goes to ``current``: the registry behaves exactly as it did before splits existed.

Assignment is a stable hash of the visitor: ``sha256(salt, visitor key)`` mapped to [0, 1),
and the candidates take consecutive ranges from 0 in the order listed. Two properties follow
that rollouts and experiments rely on:

- A visitor keeps their arm for as long as the split's salt and shares stay put, in every
  worker and every process, with no shared state: the page never flips between arms.
- Raising a candidate's share only adds visitors to it (5 % → 10 % keeps the first 5 %), so a
  gradual rollout never moves a visitor back and forth.

A new experiment takes a new salt, so that the same visitors are not always the exposed ones.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from efimero._io import read_model, write_or_remove_model
from efimero.registry import _layout as layout

TRAFFIC = "traffic.json"
LIVE_ARM = "live"
MAX_CANDIDATES = 3
"""Most candidate versions served beside the live one; each costs memory in every worker."""

_HASH_SPACE = float(2**64)


def _version_name(name: str) -> str:
    if not layout.is_version_name(name):
        raise ValueError(f"version must be a version name (v_YYYYMMDD_HHMMSS[_n]). Got {name!r} instead.")
    return name


class TrafficArm(BaseModel):
    """One candidate: its arm name (stored with every prediction it serves), version and share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="Arm name, e.g. canary or treatment")
    version: Annotated[str, AfterValidator(_version_name)]
    share: float = Field(..., gt=0, le=1, allow_inf_nan=False, description="Share of visitors, (0, 1]")


class TrafficSplit(BaseModel):
    """The candidates served beside the live version, and the salt that assigns visitors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arms: tuple[TrafficArm, ...] = Field(..., min_length=1, max_length=MAX_CANDIDATES)
    salt: str = Field(..., min_length=1, max_length=64, description="Changes who is assigned where")
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    owner: str = Field("", max_length=200, description="What set this split: a rollout or an experiment id")

    @model_validator(mode="after")
    def _consistent(self) -> TrafficSplit:
        names = [arm.name for arm in self.arms]
        if LIVE_ARM in names:
            raise ValueError(f"arm names must not be {LIVE_ARM!r}: that arm is the current version.")
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique. Got {', '.join(names)} instead.")
        versions = [arm.version for arm in self.arms]
        if len(set(versions)) != len(versions):
            raise ValueError(f"each version may take one arm. Got {', '.join(versions)} instead.")
        total = math.fsum(arm.share for arm in self.arms)
        if total > 1 + 1e-9:
            raise ValueError(f"the shares of the candidate arms must add up to at most 1. Got {total:g} instead.")
        return self

    @property
    def live_share(self) -> float:
        return max(0.0, 1 - math.fsum(arm.share for arm in self.arms))

    def arm(self, name: str) -> TrafficArm | None:
        return next((arm for arm in self.arms if arm.name == name), None)

    def assign(self, visitor_key: str) -> str:
        """The arm of the visitor with this key: a candidate's name or :data:`LIVE_ARM`."""
        position = stable_unit(self.salt, visitor_key)
        edge = 0.0
        for arm in self.arms:
            edge += arm.share
            if position < edge:
                return arm.name
        return LIVE_ARM


def stable_unit(*parts: str) -> float:
    """A number in [0, 1) fixed by ``parts`` alone: the same in every worker, process and run."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def read_traffic(root: Path) -> TrafficSplit | None:
    """The split of the registry at ``root``, or None when all traffic goes to ``current``.

    Raises:
        RegistryFormatError: the file exists but is not a valid split (named, with the field).
    """
    return read_model(root / TRAFFIC, TrafficSplit, "a valid traffic split")


def write_traffic(root: Path, split: TrafficSplit | None) -> None:
    """Replace the split atomically; None removes it (all traffic to ``current``).

    The caller holds the registry lock and has checked that every arm's version exists.
    """
    write_or_remove_model(root / TRAFFIC, split)
