"""Deployment to environments with contract check, validation, backup, smoke test, rollback and a log.

:func:`deploy`, :func:`rollback` and :func:`thresholds` load on first use: they run the
validation gate, which brings the training stack, and a reader of the deployment log (the
service's dashboard) must not pay for that.
"""

from typing import TYPE_CHECKING, Any

from efimero.deploy.contract import Contract, contract_changes
from efimero.deploy.history import DeploymentLog, DeploymentRecord, Step

if TYPE_CHECKING:
    from efimero.deploy.promote import deploy, rollback, thresholds

__all__ = [
    "Contract", "DeploymentLog", "DeploymentRecord", "Step", "contract_changes", "deploy", "rollback", "thresholds",
]


def __getattr__(name: str) -> Any:
    if name in ("deploy", "rollback", "thresholds"):
        from efimero.deploy import promote

        return getattr(promote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
