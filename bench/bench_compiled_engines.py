"""Which compiled form of the boosters: treelite + tl2cgen or ONNX Runtime? (the choice of #13)

Trains a small registry version, then times one row through each model of it, per engine,
interleaved call by call:

  xgboost     booster.predict on a DMatrix of the row (nthread=1), what efimero did before
  tl2cgen     the library `efimero models compile` builds, called through ctypes as serving does
  onnx        onnxmltools' conversion run by ONNX Runtime (one thread), one session per model

and prints p50 microseconds per model and for all four, the largest difference from XGBoost
on 512 rows, and the time to build each form. Needs `pip install onnxmltools onnxruntime`
(they are not efimero dependencies: this bench is why).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xgboost as xgb

import efimero
from efimero._api import train
from efimero.compiled import entries
from efimero.config import load_training_config
from efimero.registry import Registry

from _common import print_environment, print_load_after, print_table

try:
    import onnxruntime
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
except ImportError as missing:
    raise SystemExit(f"this bench needs onnxmltools and onnxruntime ({missing.name} is missing): "
                     "pip install onnxmltools onnxruntime") from None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="timed calls per model and engine (default 3000)")
    parser.add_argument("--rows", type=int, default=5000, help="rows of the training data (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the training data (default 42)")
    return parser.parse_args()


def onnx_session(booster: xgb.Booster, n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    model = convert_xgboost(booster, initial_types=[("input", FloatTensorType([None, n_features]))], target_opset=15)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its shape warnings for multi-output regressors, once per call
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda rows: session.run(None, {"input": rows.astype(np.float32)})[-1]


def median_us(call: Callable[[], object], n: int) -> float:
    spent = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        spent.append(time.perf_counter_ns() - start)
    return float(np.median(spent)) / 1000


def main() -> None:
    args = parse_args()
    print_environment("compiled engines per model (bench/bench_compiled_engines.py)")
    print(f"onnxruntime {onnxruntime.__version__}")
    with tempfile.TemporaryDirectory(prefix="efimero-bench-") as tmp:
        data, models = Path(tmp) / "train.csv", Path(tmp) / "models"
        efimero.generate(args.rows, output=data, seed=args.seed)
        train(data, output=models, config=load_training_config(overrides={"training": {"data": {"cv_folds": 0}}}))
        report = Registry(models).compile()
        bundle = Registry(models).load()
        n_features = len(bundle.feature_names)
        sample = np.random.default_rng(args.seed).standard_normal((512, n_features)).astype(np.float32)
        row = sample[:1]
        converted = entries(row, n_features)
        rows, totals = [], {"xgboost": 0.0, "tl2cgen": 0.0, "onnx": 0.0}
        onnx_build = 0.0
        for name, model in bundle.models.items():
            started = time.perf_counter()
            onnx = onnx_session(model.booster, n_features)
            onnx_build += time.perf_counter() - started
            compiled = model.compiled
            assert compiled is not None, bundle.inference
            reference = model.booster.predict(xgb.DMatrix(sample), validate_features=False).reshape(len(sample), -1)
            diffs = {"tl2cgen": np.abs(compiled.predict(sample) - reference).max(),
                     "onnx": np.abs(np.asarray(onnx(sample)).reshape(reference.shape) - reference).max()}
            calls = {"xgboost": lambda m=model: m.booster.predict(xgb.DMatrix(row, nthread=1), validate_features=False),
                     "tl2cgen": lambda c=compiled: c.predict_entries(converted),
                     "onnx": lambda o=onnx: o(row)}
            for call in calls.values():
                median_us(call, 300)  # warm-up
            times = {engine: median_us(call, args.n) for engine, call in calls.items()}
            for engine, value in times.items():
                totals[engine] += value
            rows.append([name, f"{model.booster.num_boosted_rounds()}", *(f"{times[e]:.1f}" for e in totals),
                         f"{diffs['tl2cgen']:.1e}", f"{diffs['onnx']:.1e}"])
        rows.append(["all four", "", *(f"{totals[e]:.1f}" for e in totals), "", ""])
    print(f"\none row, p50 of {args.n} calls per model (microseconds); max |engine - XGBoost| on 512 rows\n")
    print_table(["model", "rounds", "xgboost us", "tl2cgen us", "onnx us", "tl2cgen diff", "onnx diff"], rows)
    print(f"\nbuild: tl2cgen (gcc -O1) {report.seconds:.1f} s for the four; onnxmltools conversion {onnx_build:.1f} s")
    print_load_after()


if __name__ == "__main__":
    main()
