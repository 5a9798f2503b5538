from __future__ import annotations

import importlib

import pytest

import efimero
from efimero.errors import PredictionInputError
from efimero.registry import Registry


def test_predict_follows_the_current_pointer_without_reloading(registry_copy, small_frame) -> None:
    root, (old, new) = registry_copy()
    row = small_frame.iloc[5].to_dict()
    assert efimero.predict(row, models=root).model_version == new
    cached = efimero._api._cache[(str(root), new)]
    assert efimero.predict(row, models=root).model_version == new
    assert efimero._api._cache[(str(root), new)] is cached
    Registry(root).set_current(old)
    assert efimero.predict(row, models=root).model_version == old
    assert efimero.predict(row, models=root, version=new).model_version == new


def test_bad_context_is_a_clear_error(tiny_registry, small_frame) -> None:
    bundle = efimero.load(tiny_registry[0])
    row = small_frame.iloc[0].to_dict()
    with pytest.raises(PredictionInputError, match="missing feature 'hour_of_day'"):
        bundle.predict({k: v for k, v in row.items() if k != "hour_of_day"})
    with pytest.raises(PredictionInputError, match="'is_mobile' must be a number. Got 'yes' instead"):
        bundle.predict(row | {"is_mobile": "yes"})
    with pytest.raises(PredictionInputError, match="must be finite"):
        bundle.predict(row | {"viewport_area": float("nan")})


def test_single_and_batch_predictions_agree(tiny_registry, small_frame) -> None:
    bundle = efimero.load(tiny_registry[0])
    frame = bundle.predict_frame(small_frame.iloc[:20])
    for i in range(20):
        single = bundle.predict(small_frame.iloc[i].to_dict())
        assert single.classes["css_class_theme"].label == frame.css_class_theme[i]
        assert single.values["font_size_base"] == pytest.approx(frame.font_size_base[i])


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, efimero; print(sorted(m for m in ('xgboost', 'pandas', 'sklearn') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_lazy_api_names_stay_functions_after_submodules_load(small_csv, tmp_path) -> None:
    efimero.load  # noqa: B018 - loads efimero._api and the training subpackage
    importlib.import_module("efimero.collect")  # subpackages must not shadow the lazy names
    importlib.import_module("efimero.deploy")
    for name in efimero.__all__:
        if name not in {"__version__", "CSS_TASK", "Registry"}:
            assert callable(getattr(efimero, name)), name
    run = efimero.train(small_csv, output=tmp_path / "models", config=__import__("tests.conftest").conftest.fast_config())
    assert efimero.load(tmp_path / "models").version == run.version
