"""The npm package built once per run (``make client``), and the trained registry of tests/serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.first_paint import CLIENT, build_client
from tests.serve.conftest import client, registry_dir, served_registry  # noqa: F401 - shared fixtures


@pytest.fixture(scope="session")
def built_client() -> Path:
    """``client/`` after ``make client``: ``npm ci`` from the lock file, dist/ built and type-checked, the example
    app built."""
    build_client()
    return CLIENT
