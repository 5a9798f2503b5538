"""The versioned model registry: immutable, checksummed versions and a ``current`` pointer."""

from efimero.registry._layout import DEPLOYMENTS as DEPLOYMENT_LOG_FILE
from efimero.registry.exploration import ExplorationPolicy, Guardrail
from efimero.registry.local import Registry, VersionInfo
from efimero.registry.manifest import FORMAT_VERSION, verify
from efimero.registry.traffic import LIVE_ARM, MAX_CANDIDATES, TrafficArm, TrafficSplit

__all__ = [
    "DEPLOYMENT_LOG_FILE",
    "FORMAT_VERSION",
    "LIVE_ARM",
    "MAX_CANDIDATES",
    "ExplorationPolicy",
    "Guardrail",
    "Registry",
    "TrafficArm",
    "TrafficSplit",
    "VersionInfo",
    "verify",
]
