"""The deployment log of a target: who deployed or rolled back what, when, and how it went.

Kept as ``deployments.json`` in the target's registry directory and rewritten atomically
under the registry lock. A record is written ``in_progress`` before the first step, so a
deployment killed mid-way stays visible as interrupted rather than vanishing.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efimero._io import atomic_write_json, exclusive_lock
from efimero.errors import RegistryFormatError
from efimero.registry import DEPLOYMENT_LOG_FILE

LOG_FILE = DEPLOYMENT_LOG_FILE  # the registry reads it too, to find the version live before a damaged one
_LOCK = ".deployments.lock"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    duration_ms: float = 0.0

    def line(self) -> str:
        return f"{'✅' if self.ok else '❌'} {self.name}: {self.detail}"


@dataclass
class DeploymentRecord:
    """One deploy or rollback and every step it took."""

    action: str
    target: str
    version: str
    previous_version: str | None
    source: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    user: str = field(default_factory=lambda: _safe_user())
    host: str = field(default_factory=socket.gethostname)
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    status: str = "in_progress"
    error: str | None = None
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def log(self) -> list[str]:
        return [step.line() for step in self.steps]


def _safe_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class DeploymentLog:
    """Read and write ``deployments.json`` of one target directory."""

    def __init__(self, target_dir: Path) -> None:
        self.path = Path(target_dir) / LOG_FILE

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as exc:
            raise RegistryFormatError(f"{self.path}: is not valid JSON ({exc}).") from exc
        return content.get("deployments", [])

    def save(self, record: DeploymentRecord) -> None:
        """Insert or replace ``record`` (by id)."""
        with exclusive_lock(self.path.parent / _LOCK):
            records = [r for r in self.records() if r["id"] != record.id]
            records.append(record.to_dict())
            records.sort(key=lambda r: r["started_at"])
            atomic_write_json(self.path, {"deployments": records})

    def last_success(self, version: str) -> dict[str, Any] | None:
        """The newest successful record that made ``version`` current."""
        for record in reversed(self.records()):
            if record["status"] == "success" and record["version"] == version:
                return record
        return None
