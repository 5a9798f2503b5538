"""scikit-learn models load only when every type in the file is on efimero's allow-list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.svm import SVC

from efimero.errors import UntrustedModelError
from efimero.estimators import load_estimator, make_estimator
from efimero.estimators._skops import dump_trusted, load_trusted


class Payload:
    """A type no allow-list trusts: loading it would run this module's code."""

    def __init__(self) -> None:
        self.command = "echo pwned"


@pytest.fixture
def saved_forest(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).normal(size=(60, 3))
    make_estimator("random_forest", "binary", params={"n_estimators": 3}).fit(x, x[:, 0] > 0).save(tmp_path)
    return tmp_path


def test_a_model_file_with_an_untrusted_type_is_refused_naming_the_type(saved_forest: Path) -> None:
    (saved_forest / "model.skops").write_bytes(sio.dumps({"model": Payload()}))
    with pytest.raises(UntrustedModelError, match=r"test_skops\.Payload.*It was not loaded") as raised:
        load_estimator(saved_forest)
    assert raised.value.types == ["tests.estimators.test_skops.Payload"]
    assert raised.value.to_dict()["path"].endswith("model.skops")


def test_a_trusted_state_loads_and_one_untrusted_part_spoils_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "state.skops"
    path.write_bytes(dump_trusted({"model": None, "centroids": np.eye(2)}))
    np.testing.assert_array_equal(load_trusted(path)["centroids"], np.eye(2))
    x = np.random.default_rng(1).normal(size=(20, 2))
    path.write_bytes(sio.dumps({"model": SVC().fit(x, x[:, 0] > 0), "extra": Payload()}))
    with pytest.raises(UntrustedModelError, match="Payload"):
        load_trusted(path)
