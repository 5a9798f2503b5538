"""How long does `efimero train` take compared with fitting the same models with plain XGBoost?

For each data size, times (median of --repeats runs, after one untimed warm-up run):

  xgboost.train, 100 rounds        read the CSV, encode labels, 3 multi:softprob boosters + 1
                                   multi-output reg:squarederror booster (one_output_per_tree),
                                   100 rounds each on every row: eta 0.1, max_depth 6, hist
  xgboost.train, early stopping    the same, fitted on 72% of the rows with early stopping
                                   (10 rounds) on 8%: the split and stopping efimero uses
  efimero train, cv_folds=0        efimero._api.train: read + validate the data, split, scale,
                                   fit the 4 models with early stopping, score the test rows,
                                   save a registry version
  efimero train, 5-fold CV         the same with the default cv_folds=5 (5 extra fits per model)

"vs 100 rounds" and "vs early stop" divide the median by the two plain-XGBoost rows' medians
("vs early stop" is efimero's overhead for the same work). "rounds" sums the boosted rounds of the 4 models,
since early stopping usually keeps far fewer than 100. No absolute thresholds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import efimero
import numpy as np
import pandas as pd
import xgboost as xgb
from efimero._api import train
from efimero.config import load_training_config
from efimero.schema import CLASS_TARGET_NAMES, FEATURE_NAMES, REGRESSION_TARGET_NAMES

from _common import print_environment, print_load_after, print_table

PARAMS = {"eta": 0.1, "max_depth": 6, "tree_method": "hist", "alpha": 0.1, "seed": 42}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000], help="data sizes (default 5000 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant and size (default 3)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data (default 42)")
    return parser.parse_args()


def plain_xgboost(path: Path, *, early_stopping: bool) -> int:
    """Fit the 4 boosters with xgboost.train alone; return their total boosted rounds."""
    frame = pd.read_csv(path)
    x = frame[FEATURE_NAMES].to_numpy(dtype=float)
    fit_rows, stop_rows = (slice(0, int(len(x) * 0.72)), slice(int(len(x) * 0.72), int(len(x) * 0.8)))
    jobs: list[tuple[dict[str, object], np.ndarray]] = []
    for target in CLASS_TARGET_NAMES:
        codes, labels = pd.factorize(frame[target])
        jobs.append(({"objective": "multi:softprob", "num_class": len(labels)}, codes))
    regression = frame[REGRESSION_TARGET_NAMES].to_numpy(dtype=float)
    jobs.append(({"objective": "reg:squarederror", "multi_strategy": "one_output_per_tree"}, regression))
    rounds = 0
    for extra, y in jobs:
        if not early_stopping:
            booster = xgb.train(PARAMS | extra, xgb.DMatrix(x, label=y), num_boost_round=100)
            rounds += booster.num_boosted_rounds()
            continue
        train_matrix = xgb.DMatrix(x[fit_rows], label=y[fit_rows])
        stop_matrix = xgb.DMatrix(x[stop_rows], label=y[stop_rows])
        booster = xgb.train(PARAMS | extra, train_matrix, num_boost_round=100, evals=[(stop_matrix, "stop")],
                            early_stopping_rounds=10, verbose_eval=False)
        rounds += booster.best_iteration + 1
    return rounds


def efimero_train(path: Path, models: Path, *, cv_folds: int) -> int:
    config = load_training_config(overrides={"training": {"data": {"cv_folds": cv_folds}}})
    run = train(path, output=models, config=config)
    return sum(model.booster.num_boosted_rounds() for model in run.result.bundle.models.values())


def timed(fn: Callable[[], int], repeats: int) -> tuple[list[float], int]:
    seconds, rounds = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        rounds = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, rounds


def variants(data: Path, root: Path) -> dict[str, Callable[[], int]]:
    """The four timed runs on ``data``; each efimero run saves into a fresh registry folder."""
    runs = itertools.count()
    return {
        "xgboost.train, 100 rounds": partial(plain_xgboost, data, early_stopping=False),
        "xgboost.train, early stopping": partial(plain_xgboost, data, early_stopping=True),
        "efimero train, cv_folds=0": lambda: efimero_train(data, root / f"models-{next(runs)}", cv_folds=0),
        "efimero train, 5-fold CV": lambda: efimero_train(data, root / f"models-{next(runs)}", cv_folds=5),
    }


def main() -> None:
    args = parse_args()
    print_environment("training time (bench/bench_train.py)")
    settings = load_training_config().training
    print(f"efimero settings: classifier {settings.models.classifier.model_dump()}")
    print(f"                  regressor  {settings.models.regressor.model_dump()}")
    print(f"                  n_jobs={settings.n_jobs}, device={settings.device}, test_size={settings.data.test_size},"
          f" validation_split={settings.data.validation_split}\n")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="efimero-bench-") as tmp:
        root = Path(tmp)
        warmup = efimero.generate(1000, output=root / "warmup.csv", seed=args.seed).output
        efimero_train(warmup, root / "warmup-models", cv_folds=0)
        plain_xgboost(warmup, early_stopping=True)
        for size in args.sizes:
            data = efimero.generate(size, output=root / f"data-{size}.csv", seed=args.seed).output
            medians: list[float] = []
            for label, fn in variants(data, root).items():
                seconds, rounds = timed(fn, args.repeats)
                medians.append(statistics.median(seconds))
                ratios = [f"{medians[-1] / base:.2f}x" for base in medians[:2]] + ["-"] * (2 - len(medians[:2]))
                rows.append([str(size), label, f"{medians[-1]:.2f}", f"{min(seconds):.2f}", f"{max(seconds):.2f}",
                             *ratios, str(rounds)])
                print(f"  {size} rows, {label}: {', '.join(f'{s:.2f}' for s in seconds)} s", flush=True)
    print(f"\nmedian of {args.repeats} runs per row (seconds)\n")
    print_table(["rows", "run", "median s", "min s", "max s", "vs 100 rounds", "vs early stop", "rounds"], rows, left=2)
    print_load_after()


if __name__ == "__main__":
    main()
