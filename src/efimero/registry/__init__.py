"""The versioned model registry: immutable, checksummed versions and a ``current`` pointer."""

from efimero.registry._layout import DEPLOYMENTS as DEPLOYMENT_LOG_FILE
from efimero.registry.manifest import FORMAT_VERSION, verify
from efimero.registry.store import Registry, VersionInfo

__all__ = ["DEPLOYMENT_LOG_FILE", "FORMAT_VERSION", "Registry", "VersionInfo", "verify"]
