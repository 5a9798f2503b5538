"""Deployment to environments with validation, backup, smoke test, rollback and a log."""

from efimero.deploy.history import DeploymentLog, DeploymentRecord, Step
from efimero.deploy.promote import deploy, rollback, thresholds

__all__ = ["DeploymentLog", "DeploymentRecord", "Step", "deploy", "rollback", "thresholds"]
