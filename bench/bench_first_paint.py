"""Does the page paint in its default style before efimero's style arrives, and what does avoiding it cost?

Builds the npm package and its example app (`make client`), trains a version on --rows generated
visits in a temporary folder and serves it with the example app on one origin. Debian's Chromium
(Playwright, device emulation) then loads the same page four ways, in rotating order, a first and a
returning visit each (one browser profile per pair: the remembered style, the cached stylesheet):

  today             the client as the demo page uses it: a module calls adapt() once the page is parsed
  hide-page         today's client behind the page-hiding snippet of A/B tools (Google Optimize's:
                    <html> at opacity 0 until the style is applied, at most 4 s)
  new               <link rel="stylesheet" href="/v1/style.css"> (predicted from client hints) and the
                    head snippet (the remembered style), then adapt()
  new-hide-regions  the head snippet alone: with nothing to apply it hides only the regions marked
                    data-efimero-hide, at most 1 s

on a phone (390x844 at DPR 3, iPhone user agent, 150 ms round trips at 1.6 Mbit/s: Lighthouse's
mobile network) and a desktop (1920x1080, 40 ms at 10 Mbit/s). Per path, device and visit it
prints the median over --runs of: frames with content painted in the default style, navigation
start to the first paint in a predicted style and to the first paint at all (ms), how often the
shown style changed after that (the refinement), the cumulative layout shift, and the time
anything was hidden (User Timing). The probe and the pages are those of tests/client
(tests/client/first_paint.py), so the tests assert on what this script reports.

Targets (reported, not asserted here; tests/client asserts them): no frame in the default style
for returning visitors and for the stylesheet path, no hidden time, CLS under 0.1.

  .venv/bin/python bench/bench_first_paint.py            # --runs 5 --rows 3000 --seed 21
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import _version, print_environment, print_load_after, print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness lives with the tests that assert on it

from tests._browser import CHROMIUM, FLAGS  # noqa: E402
from tests.client.first_paint import (  # noqa: E402
    CLIENT,
    DEVICES,
    NETWORKS,
    PATHS,
    Visit,
    build_client,
    example_server,
    median_visit,
    visit_twice,
    write_site,
)

from efimero._api import train  # noqa: E402
from efimero.config import load_training_config  # noqa: E402
from efimero.data import write_table  # noqa: E402
from efimero.data.generate import generate_dataset  # noqa: E402

VISITS = ("first", "returning")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="page-load pairs per path and device (median reported)")
    parser.add_argument("--rows", type=int, default=3000, help="generated visits the served version is trained on")
    parser.add_argument("--seed", type=int, default=21)
    return parser.parse_args()


def print_client() -> None:
    """The package's size and the browser, beside the environment."""
    minified = (CLIENT / "dist" / "efimero.min.js").read_bytes()
    snippet = (CLIENT / "dist" / "head-snippet.min.js").read_bytes().strip()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"node {node}; {chromium}; playwright {_version('playwright')}")
    print(f"efimero.min.js {len(minified)} B, {len(gzip.compress(minified, compresslevel=9))} B min+gzip; "
          f"head snippet {len(snippet)} B")
    for device, network in NETWORKS.items():
        viewport = DEVICES[device]["viewport"]
        print(f"{device}: {viewport['width']}x{viewport['height']} at DPR {DEVICES[device]['device_scale_factor']}, "
              f"{network['latency']} ms round trips, {network['mbps']} Mbit/s")
    print()


def measure(args: argparse.Namespace, base: str) -> dict[tuple[str, str, str], list[Visit]]:
    """``--runs`` first-and-returning pairs per path and device, the path order rotating per run."""
    from playwright.sync_api import sync_playwright

    results: dict[tuple[str, str, str], list[Visit]] = defaultdict(list)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        for run in range(args.runs):
            order = PATHS[run % len(PATHS):] + PATHS[:run % len(PATHS)]
            for device in DEVICES:
                for path in order:
                    for which, seen in zip(VISITS, visit_twice(browser, base, path, device), strict=True):
                        results[(path, device, which)].append(seen)
        browser.close()
    return results


def report(results: dict[tuple[str, str, str], list[Visit]]) -> None:
    def ms(value: float | None) -> str:
        return "never" if value is None else f"{value:.0f}"

    rows = []
    for device in DEVICES:
        for path in PATHS:
            for which in VISITS:
                seen = median_visit(results[(path, device, which)])
                rows.append([path, device, which, f"{seen.default_frames:g}", ms(seen.first_styled_ms),
                             ms(seen.first_paint_ms), f"{seen.restyles:g}", f"{seen.cls:.3f}", ms(seen.hidden_ms)])
    print_table(["path", "device", "visit", "default-style frames", "first styled paint ms", "first paint ms",
                 "restyles", "CLS", "hidden ms"], rows, left=3)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    print_environment("first paint in the predicted style, in Chromium (bench/bench_first_paint.py)")
    build_client()
    print_client()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = write_table(generate_dataset(args.rows, seed=args.seed), tmp / "train.csv")
        config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}, "n_jobs": 1}})
        train(data, output=tmp / "models", config=config)
        with example_server(tmp / "models", f"sqlite:///{tmp}/store.db", write_site(tmp / "site")) as server:
            results = measure(args, server.url)
    print(f"median of {args.runs} runs per row; frames at the display's rate (60 Hz)\n")
    report(results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print_load_after()


if __name__ == "__main__":
    main()
