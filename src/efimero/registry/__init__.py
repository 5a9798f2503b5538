"""The versioned model registry: immutable, checksummed versions and a ``current`` pointer."""

from efimero.registry._layout import DEPLOYMENTS as DEPLOYMENT_LOG_FILE
from efimero.registry.local import Registry, VersionInfo
from efimero.registry.manifest import FORMAT_VERSION, verify

__all__ = ["DEPLOYMENT_LOG_FILE", "FORMAT_VERSION", "Registry", "VersionInfo", "verify"]
