"""Deployment to environments with contract check, validation, backup, smoke test, rollback and a log."""

from efimero.deploy.contract import Contract, contract_changes
from efimero.deploy.history import DeploymentLog, DeploymentRecord, Step
from efimero.deploy.promote import deploy, rollback, thresholds

__all__ = [
    "Contract", "DeploymentLog", "DeploymentRecord", "Step", "contract_changes", "deploy", "rollback", "thresholds",
]
