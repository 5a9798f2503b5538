"""Every docstring example of efimero.experiment runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

import efimero.experiment as experiment

MODULES = ["stats", "sequential", "covariate", "srm", "decision"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"efimero.experiment.{name}")
    result = doctest.testmod(module, extraglobs={"np": np, **vars(experiment)}, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0
