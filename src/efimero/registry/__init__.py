"""The versioned model registry: immutable, checksummed versions and a ``current`` pointer."""

from efimero.registry.manifest import FORMAT_VERSION, verify
from efimero.registry.store import Registry, VersionInfo

__all__ = ["FORMAT_VERSION", "Registry", "VersionInfo", "verify"]
