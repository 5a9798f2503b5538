"""How fast does `efimero train --engine dask` train compared with the local path, and in how much memory?

For each size (default 1M and 10M rows) the script generates partitioned Parquet
(`efimero data generate --output DIR/`, 250,000 rows per part file) once, then times, each in a
fresh Python process so that peak memory is the run's own:

  local          efimero._api.train on the directory: validate chunk by chunk, concatenate,
                 split, scale, fit the 4 models (one process, n_jobs=-1), score, save a version
  dask, N x M    the same through xgboost.dask on a LocalCluster of N worker processes limited
                 to M each (1 thread each); validation, scaler moments and test metrics run on
                 the workers too

Reported per run: wall seconds of the whole `train` call (validation, training, test metrics and
registry save), rows/s (all rows of the dataset / wall seconds), the peak RSS of the driver
process (ru_maxrss) and, for Dask, the peak RSS of each worker process, sampled every 0.2 s
with psutil (the peak may be missed by up to one sample), and the mean accuracy / mean R² of the
version saved. A run that fails (out of memory, all workers killed by their nannies) is reported
as failed with its reason. Boosting rounds are capped (`--rounds`, default 10, early stopping after 5) so
that the whole bench fits in about 25 minutes on 2 shared cores: the rows/s are those of short
trainings, in which fixed costs (cluster start, validation, reading) weigh more than they would
with the default 200 rounds.

The "larger than a worker's memory" case is the 10M row run with workers limited to 1 GiB: the
dataset is about 2.4 GB as a pandas frame (30 columns, 10M rows), more than each worker's limit
and more than both together; each worker holds only its share of the scaled float32 features
(and spills persisted partitions to disk past 60 % of its limit).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import print_environment, print_load_after, print_table

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="rows (default 1M 10M)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    parser.add_argument("--worker-memory", nargs="+", default=["1GiB"],
                        help="memory limit per worker, one run per value (default 1GiB)")
    parser.add_argument("--rounds", type=int, default=10, help="boosting rounds per model (default 10)")
    parser.add_argument("--skip-local-above", type=int, default=10_000_000,
                        help="skip the local run above this many rows (default 10M: none skipped)")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse generated data here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data (default 42)")
    parser.add_argument("--one", nargs=4, metavar=("DATA", "MODELS", "ENGINE", "MEMORY"), help=argparse.SUPPRESS)
    return parser.parse_args()


def _config(rounds: int):  # type: ignore[no-untyped-def]
    from efimero.config import load_training_config

    few = {"n_estimators": rounds, "early_stopping_rounds": 5}
    return load_training_config(overrides={"training": {"data": {"cv_folds": 0},
                                                        "models": {"classifier": few, "regressor": few}}})


class WorkerMemory:
    """Peak RSS of every worker process this process starts (a restarted worker is a new process,
    with a peak of its own), sampled every 0.2 s in a thread."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peaks: dict[int, int] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(0.2):
            for process in self.me.children(recursive=True):
                try:
                    if "resource_tracker" in " ".join(process.cmdline()):
                        continue
                    self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), process.memory_info().rss)
                except Exception:  # a worker that just ended: keep the peak seen
                    continue

    def stop(self) -> list[int]:
        self.done.set()
        self.thread.join()
        return list(self.peaks.values())


def run_one(data: str, models: str, engine: str, memory: str, rounds: int, workers: int) -> dict:
    """One timed training in this process; the result as a dict (printed as JSON by --one)."""
    from efimero._api import train
    from efimero.training import DaskEngine

    config = _config(rounds)
    peaks: list[int] = []
    started = time.perf_counter()
    if engine == "local":
        run = train(data, output=models, config=config)
    else:  # efimero's own LocalCluster, whose workers it restarts after validation
        monitor = WorkerMemory()
        try:
            run = train(data, output=models, config=config, engine=DaskEngine(workers=workers, worker_memory=memory))
        finally:
            peaks = monitor.stop()
    seconds = time.perf_counter() - started
    summary = run.result.metrics["summary"]
    return {"seconds": seconds, "rows": run.result.n_rows["total"], "driver_peak": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss * 1024, "worker_peaks": peaks, "accuracy": summary["mean_accuracy"],
        "r2": summary["mean_r2"], "version": run.version,
        "trees": sum(m.booster.num_boosted_rounds() for m in run.result.bundle.models.values())}


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


def spawn(args: argparse.Namespace, data: Path, models: Path, engine: str, memory: str) -> dict:
    command = [sys.executable, str(HERE / "bench_dask.py"), "--rounds", str(args.rounds), "--workers",
               str(args.workers), "--one", str(data), str(models), engine, memory]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"exit {done.returncode}: {tail[:160]}"}
    return json.loads(lines[-1])


def main() -> None:
    args = parse_args()
    if args.one:
        data, models, engine, memory = args.one
        print(json.dumps(run_one(data, models, engine, memory, args.rounds, args.workers)))
        return
    from efimero._api import generate

    print_environment("local vs Dask training (bench/bench_dask.py)")
    print(f"settings: {args.rounds} boosting rounds per model at most (early stopping after 5), cv_folds=0, "
          f"Dask: {args.workers} worker processes x 1 thread, memory limits {', '.join(args.worker_memory)}\n")
    table: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="efimero-bench-dask-") as tmp:
        root = args.data_dir or Path(tmp)
        for size in args.sizes:
            data = root / f"data-{size}"
            if not data.is_dir():
                started = time.perf_counter()
                generate(size, output=data, seed=args.seed)
                print(f"  generated {size} rows in {time.perf_counter() - started:.1f} s", flush=True)
            runs = [("local", "-")] if size <= args.skip_local_above else []
            runs += [("dask", memory) for memory in args.worker_memory]
            for engine, memory in runs:
                result = spawn(args, data, Path(tmp) / f"models-{size}-{engine}-{memory}", engine, memory)
                label = "local (1 process)" if engine == "local" else f"dask, {args.workers} x {memory}"
                print(f"  {size} rows, {label}: {json.dumps(result)}", flush=True)
                if "failed" in result:
                    table.append([str(size), label, "failed", "-", "-", "-", "-", result["failed"]])
                    continue
                workers = " / ".join(_gib(p) for p in result["worker_peaks"]) or "-"
                speed = f"{result['rows'] / result['seconds']:,.0f}"
                table.append([str(size), label, f"{result['seconds']:.1f}", speed,
                              _gib(result["driver_peak"]), workers, str(result["trees"]),
                              f"acc {result['accuracy']:.3f}, R² {result['r2']:.3f}"])
    print()
    print_table(["rows", "engine", "wall s", "rows/s", "driver peak GiB", "worker peaks GiB", "trees", "quality"],
                table, left=2)
    print_load_after()


if __name__ == "__main__":
    main()
