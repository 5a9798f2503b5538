"""Helpers shared by the benchmark scripts: an environment header, a plain-text table, a tee to the results file."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import TextIO


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _gpus() -> str:
    """What ``nvidia-smi -L`` lists, or why nothing is listed."""
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found"
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi failed ({exc})"
    lines = listing.stdout.strip().splitlines()
    return "; ".join(lines) if listing.returncode == 0 and lines else "nvidia-smi found, no GPU listed"


def print_environment(title: str) -> None:
    """Print the machine and library versions the numbers below were measured with."""
    import xgboost

    rows = [
        ("benchmark", title),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("platform", platform.platform()),
        ("processor", platform.processor() or platform.machine()),
        ("cpu count", f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable by this process"),
        ("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min; other work skews timings)"),
        ("python", sys.version.split()[0]),
        ("efimero", _version("efimero")),
        ("xgboost", xgboost.__version__),
        ("numpy", _version("numpy")),
        ("scikit-learn", _version("scikit-learn")),
        ("pandas", _version("pandas")),
        ("xgboost USE_CUDA", str(bool(xgboost.build_info().get("USE_CUDA")))),
        ("GPU (nvidia-smi)", _gpus()),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> None:
    """Print ``rows`` under ``headers``: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_load_after() -> None:
    """Print the load average once the timings are done: a high one means they were contended."""
    print("\nload average after the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)")


class Tee:
    """A text stream that writes to several: the terminal and the results file."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()
