"""A store filled by simulated visitors against a live service, for collection and retraining."""

from __future__ import annotations

from pathlib import Path

import pytest

from efimero.serve import ServeSettings
from efimero.simulate import simulate
from tests.serve.conftest import LiveServer, registry_dir, served_registry  # noqa: F401 - fixtures


@pytest.fixture
def simulated(registry_dir, tmp_path: Path):  # noqa: F811
    """(registry root, versions, store URL) after 600 simulated visits over 8 days, drift on day 4."""
    root, versions = registry_dir
    url = f"sqlite:///{tmp_path}/store.db"
    with LiveServer(ServeSettings(models_dir=root, db_url=url)) as server:
        result = simulate(server.url, visitors=600, days=8, drift_day=4, seed=3, concurrency=4)
    assert result.failures == 0
    return root, versions, url
