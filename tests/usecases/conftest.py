"""Small use cases written into a temporary folder, and the repository's worked examples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKED = REPO / "usecases"

WriteUseCase = Callable[..., Path]


def tiny_binary(key: str = "tiny", **changes: Any) -> dict[str, Any]:
    """A binary use case on 300 generated rows with one fast algorithm: trains in about a second."""
    document: dict[str, Any] = {
        "key": key, "department": "tests",
        "data": {"generator": {"kind": "classification", "rows": 300, "seed": 1, "features": 6}},
        "target": "label", "task": "binary",
        "algorithms": [{"name": "logistic_regression", "grid": {"C": [0.1, 1.0]}}],
        "cv": {"folds": 3},
    }
    return {**document, **changes}


@pytest.fixture
def write_usecase(tmp_path: Path) -> WriteUseCase:
    """Write a use-case document as ``<tmp>/usecases/<key>.yaml`` and return its path."""

    def write(document: dict[str, Any], *, name: str | None = None) -> Path:
        folder = tmp_path / "usecases"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name or document['key']}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models" / "usecases"
