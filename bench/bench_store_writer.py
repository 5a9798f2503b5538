"""What does one prediction log cost the serving process's CPU, by how many share a transaction?

The store's writer thread runs in the serving process, so its CPU is taken from requests. This
writes the same prediction rows (the shape /v1/predict logs) through the writer's own insert
(``InteractionStore._insert``: one transaction per batch) in batches of 1, 8 and 64 rows into a
fresh SQLite store, and reports the writer thread's CPU per row (``time.thread_time``, so other
work on the machine moves it little). It is why prediction records wait ``linger_s`` (20 ms) for
company before they are committed (``efimero.store.repo.InteractionStore``).

    python bench/bench_store_writer.py [--rows 2048] [--db postgresql://127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efimero.store import InteractionStore, open_engine
from efimero.store.repo import _Item

from _common import print_environment

CONTEXT = {"local_time": "2026-11-25T23:00:00", "viewport_width": 390, "viewport_height": 844, "screen_width": 390,
           "screen_height": 844, "device_pixel_ratio": 3, "max_touch_points": 5, "pointer": "coarse",
           "ua_mobile": True, "prefers_color_scheme": "dark"}


def prediction_row() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"prediction_id": uuid.uuid4().hex, "created_at": now, "event_time": now, "model_version": "v_1",
            "arm": "live", "latency_ms": 1.2, "context": CONTEXT, "features": {f"f{i}": float(i) for i in range(19)},
            "css_classes": {"density": "densidad-baja", "font": "fuente-sans", "theme": "tema-oscuro"},
            "css_variables": {f"--v{i}": "1.000rem" for i in range(8)},
            "confidences": {"density": 0.5, "font": 0.4, "theme": 0.9},
            "decisions": {"policy_id": "greedy", "mode": "greedy", "holdout": False, "propensity": 1.0,
                          "slots": {t: {"label": "a", "propensity": 1.0, "greedy": "a"} for t in "abc"}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048, help="rows written per batch size (default 2048)")
    parser.add_argument("--db", default=None, help="store URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    print_environment("prediction log CPU by batch size (bench/bench_store_writer.py)")
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'store.db'}"
        store = InteractionStore(open_engine(url, create=True), pepper=b"bench-pepper-0123456789")
        print(f"\nstore: {url.split('://')[0]}, {args.rows} rows per batch size\n")
        print(f"{'rows per transaction':>22}  {'writer CPU per row':>18}")
        for batch in (1, 8, 64):
            rows = [_Item("prediction", prediction_row()) for _ in range(args.rows)]
            started = time.thread_time()
            for start in range(0, len(rows), batch):
                store._insert(rows[start:start + batch])
            print(f"{batch:>22}  {(time.thread_time() - started) / len(rows) * 1e6:>15.0f} µs")


if __name__ == "__main__":
    main()
