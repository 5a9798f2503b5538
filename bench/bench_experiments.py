"""Do efimero's experiment statistics keep their promises on efimero's own visitor simulator?

Builds a pool of simulated visitors offline, without a server: visits from
`efimero.simulate.draw_visits`, each visitor's hidden preference, the style served to them, and
their session duration (the primary metric) from `efimero.simulate.behave`. Two served styles:

  model      a version trained on 3,000 generated rows serves each visitor its own prediction:
             an A/B test between model versions, the case efimero runs
  one style  every visitor gets the same style (the commonest preferred classes, the median
             preferred variables): the site before personalisation, where visitors' fit varies most

Each experiment takes sessions from the pool in random order, assigns each to control or
treatment with probability 1/2, and is read as the sessions arrive:

  A/A             both arms alike: how often does a readout still name a winner? The mSPRT
                  (stop at the first look with p < alpha) beside Welch's t-test read at every look
  planted effect  treatment sessions last --lift longer: power by the horizon, sessions to a verdict
  CUPED           the same experiments on CUPED-adjusted durations, with two pre-period covariates:
                  the visitor's avg_session_duration as the simulator draws it, and the mean of the
                  visitor's earlier sessions simulated by the same behaviour model
  SRM             A/A experiments whose treatment loses its shortest sessions (--lost of them: visitors
                  who leave before a slow stylesheet loads never log), so its mean looks better;
                  beside the SRM check on session counts, the logging check on served vs logged

The fixed-horizon plan is `required_sample_size` for the lift at 80 % power; the mSPRT is tuned
for that size (its `planned_n`) and may run to HORIZON_FACTOR times it. Experiments draw their
sessions from one pool per style, so they share some visitors: the binomial intervals printed
assume independent experiments and are a little too narrow. Figures are printed and written to
--output, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from _common import Tee, print_environment, print_load_after, print_table
from scipy import stats

import efimero
from efimero._api import train
from efimero.config import load_training_config
from efimero.css import class_key, css_variables
from efimero.experiment import (
    Decision,
    LossResult,
    Readout,
    SampleSize,
    cuped,
    logging_mismatch,
    msprt,
    required_sample_size,
    sample_ratio_mismatch,
    verdict,
    welch,
)
from efimero.schema import CLASS_TARGET_NAMES, REGRESSION_TARGET_NAMES
from efimero.simulate import behave, draw_visits, intended_features, preferences

HORIZON_FACTOR = 2
"""The sequential test, tuned for the fixed plan, may run to this many times it (its boundary is wider)."""

FIXED = "Welch once, at the fixed plan"

MAX_EARLIER_SESSIONS = 10
"""Earlier sessions simulated per returning visitor for the pre-period covariate (cost bound)."""

Style = dict[str, Any]
"""A `/v1/predict` response: what `behave` reads."""

Reader = Callable[[int, Readout | None], Readout]
"""Reads an experiment's first ``n`` sessions, given the readout of the previous look."""

Outcome = tuple[int, Decision] | None
"""The sessions at the first decisive verdict and that verdict, or None if none came by the horizon."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=200, help="experiments per question (default 200)")
    parser.add_argument("--looks", type=int, default=10, help="equally spaced looks of the A/A test (default 10)")
    parser.add_argument("--effect-looks", type=int, default=50,
                        help="looks for the planted effect, CUPED and SRM, to time the verdict finely (default 50)")
    parser.add_argument("--lift", type=float, default=0.05, help="planted lift of treatment sessions (default 0.05)")
    parser.add_argument("--lost", type=float, default=0.1,
                        help="in the SRM experiments, the treatment loses its sessions shorter than this quantile "
                             "of the pool (default 0.1)")
    parser.add_argument("--pool", type=int, default=100_000,
                        help="simulated visitors per served style (default 100000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of everything (default 42)")
    parser.add_argument("--output", type=Path,
                        default=Path("bench/results") / f"{datetime.now(UTC):%Y-%m-%d}-experiments.txt",
                        help="where the printed report is also written (default bench/results/<today>-experiments.txt)")
    return parser.parse_args()


def response(classes: dict[str, str], values: dict[str, float]) -> Style:
    """Class labels and variable values (by target name) as the service's response."""
    return {"css_classes": {class_key(t): label for t, label in classes.items()},
            "css_variables": css_variables(values)}


def model_styles(features: pd.DataFrame, seed: int) -> list[Style]:
    """Each visitor's prediction by a version trained on 3,000 generated rows."""
    with tempfile.TemporaryDirectory(prefix="efimero-bench-") as tmp:
        data, models = Path(tmp) / "train.csv", Path(tmp) / "models"
        efimero.generate(3000, output=data, seed=seed)
        train(data, output=models, config=load_training_config(overrides={"training": {"data": {"cv_folds": 0}}}))
        bundle = efimero.load(models)
    return [response({t: c.label for t, c in p.classes.items()}, p.values) for p in bundle.predict_rows(features)]


def one_style(preferred: pd.DataFrame) -> list[Style]:
    """The same style for everyone: the commonest preferred classes, the median preferred variables."""
    style = response({t: str(preferred[t].mode()[0]) for t in CLASS_TARGET_NAMES},
                     {t: float(preferred[t].median()) for t in REGRESSION_TARGET_NAMES})
    return [style] * len(preferred)


@dataclass(frozen=True)
class Pool:
    """Simulated visitors under one served style: their session and two pre-period covariates."""

    name: str
    session_s: np.ndarray
    drawn_history: np.ndarray
    pre_period: np.ndarray

    def covariates(self) -> dict[str, np.ndarray]:
        """The pre-period covariates by the name the tables show."""
        return {"history as drawn": self.drawn_history, "earlier sessions": self.pre_period}


def build_pool(
    name: str, visits: pd.DataFrame, preferred: pd.DataFrame, served: list[Style], rng: np.random.Generator
) -> Pool:
    """Each visitor's session under ``served`` and, for returning visitors, their earlier sessions.

    A visitor first seen ``d`` days ago made ``d // 7`` earlier visits (as
    `efimero.simulate.browser_contexts` counts them), simulated here with the same style and
    behaviour model, at most MAX_EARLIER_SESSIONS. New visitors carry the pooled mean (no adjustment).
    """
    earlier = np.minimum(visits["days_since_first_visit"].to_numpy() // 7, MAX_EARLIER_SESSIONS)
    session, pre = np.empty(len(visits)), np.full(len(visits), np.nan)
    tastes = cast(list[dict[str, Any]], preferred.to_dict("records"))
    rows = zip(served, tastes, visits["downlink_mbps"], earlier, strict=True)
    for i, (style, taste, downlink, k) in enumerate(rows):
        seconds = [behave(style, taste, rng, downlink_mbps=downlink)["session_duration"] / 1000 for _ in range(k + 1)]
        session[i] = seconds[-1]
        if k:
            pre[i] = np.mean(seconds[:-1])
    pre[np.isnan(pre)] = np.nanmean(pre)
    return Pool(name, session, visits["avg_session_duration"].to_numpy(dtype=float), pre)


def assign(rng: np.random.Generator, pool: Pool, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """One experiment: ``plan.horizon`` distinct pool visitors in arrival order, each treated with probability 1/2."""
    return rng.choice(pool.session_s.size, plan.horizon, replace=False), rng.random(plan.horizon) < 0.5


def first_decision(looks: Iterable[int], read: Reader, loss_at: Callable[[int], LossResult] | None = None) -> Outcome:
    """Read at each look until the verdict is a winner or a block; the sessions then and the decision.

    ``loss_at(n)``, when given, is the logging check at the look of ``n`` logged sessions.
    """
    readout = None
    for n in looks:
        readout = read(n, readout)
        srm = sample_ratio_mismatch([readout.n_control, readout.n_treatment], [0.5, 0.5])
        decision = verdict(readout, srm, loss=loss_at(n) if loss_at is not None else None).decision
        if decision in ("treatment_better", "control_better", "blocked_srm"):
            return n, decision
    return None


def sequential(y: np.ndarray, treated: np.ndarray, planned_n: int, covariate: np.ndarray | None = None) -> Reader:
    """The mSPRT reader of one experiment, on CUPED-adjusted values when ``covariate`` is given."""

    def read(n: int, previous: Readout | None) -> Readout:
        values = y[:n] if covariate is None else cuped(y[:n], covariate[:n]).adjusted
        arm = treated[:n]
        return msprt(values[~arm], values[arm], planned_n=planned_n, previous=previous)

    return read


def naive(y: np.ndarray, treated: np.ndarray) -> Reader:
    """Welch's test read at every look as if that look were the planned size: the peeking mistake."""

    def read(n: int, _previous: Readout | None) -> Readout:
        arm = treated[:n]
        return welch(y[:n][~arm], y[:n][arm], planned_n=n)

    return read


def spaced(horizon: int, looks: int) -> list[int]:
    """Session counts of ``looks`` equally spaced looks up to ``horizon``."""
    return [horizon * k // looks for k in range(1, looks + 1)]


def rate(outcomes: list[Outcome], decisions: tuple[Decision, ...]) -> str:
    """Share of experiments that ended in one of ``decisions``, with its 95 % Clopper–Pearson interval."""
    hits = sum(o is not None and o[1] in decisions for o in outcomes)
    low, high = stats.binomtest(hits, len(outcomes)).proportion_ci()
    return f"{hits / len(outcomes):6.1%} [{low:.1%}, {high:.1%}]"


def median_sessions(outcomes: list[Outcome], decision: Decision) -> float:
    """Median sessions to ``decision``, counting experiments that never reached it as never (inf)."""
    return float(np.median([o[0] if o is not None and o[1] == decision else np.inf for o in outcomes]))


def shown(sessions: float, horizon: int) -> str:
    """Sessions for the table; ``> horizon`` when most experiments never got there."""
    return f"> {horizon}" if np.isinf(sessions) else f"{sessions:.0f}"


@dataclass(frozen=True)
class Plan:
    """Sessions of the fixed-horizon plan (also the mSPRT's ``planned_n``) and the sequential horizon."""

    fixed: SampleSize
    horizon: int


def plan_for(pool: Pool, lift: float) -> Plan:
    """The fixed plan for ``lift`` at 80 % power from the pool's mean and sd, and the sequential horizon."""
    fixed = required_sample_size(lift * pool.session_s.mean(), pool.session_s.std(ddof=1))
    return Plan(fixed, HORIZON_FACTOR * fixed.total)


def report_pools(scenarios: list[tuple[Pool, Plan]], lift: float) -> None:
    rows = []
    for pool, plan in scenarios:
        y = pool.session_s
        reductions = [f"{cuped(y, x).variance_reduction:.1%}" for x in pool.covariates().values()]
        rows.append([pool.name, f"{y.size}", f"{y.mean():.1f}", f"{y.std(ddof=1):.1f}", *reductions,
                     f"{plan.fixed.total}", f"{plan.horizon}"])
    print_table(["served style", "visitors", "mean s", "sd s", "CUPED var. red. (history as drawn)",
                 "(earlier sessions)", f"fixed plan, +{lift:.0%} at 80 %", "sequential horizon"], rows)


def run_aa(scenarios: list[tuple[Pool, Plan]], args: argparse.Namespace, rng: np.random.Generator) -> None:
    rows = []
    for pool, plan in scenarios:
        results: dict[tuple[str, int], list[Outcome]] = {}
        for _ in range(args.experiments):
            index, treated = assign(rng, pool, plan)
            y, pre = pool.session_s[index], pool.pre_period[index]
            for looks in (args.looks, args.effect_looks):
                at = spaced(plan.horizon, looks)
                for label, read in (("mSPRT", sequential(y, treated, plan.fixed.total)),
                                    ("mSPRT + CUPED (earlier sessions)", sequential(y, treated, plan.fixed.total, pre)),
                                    ("Welch at every look (naive)", naive(y, treated))):
                    results.setdefault((label, looks), []).append(first_decision(at, read))
            once = first_decision([plan.fixed.total], naive(y, treated))
            results.setdefault((FIXED, 1), []).append(once)
        for (label, looks), outcomes in results.items():
            rows.append([pool.name, label, f"{looks}", rate(outcomes, ("treatment_better", "control_better")),
                         rate(outcomes, ("blocked_srm",))])
    print_table(["served style", "readout", "looks", "false positives [95 % CI]", "SRM blocked"], rows, left=2)


def run_effect(scenarios: list[tuple[Pool, Plan]], args: argparse.Namespace, rng: np.random.Generator) -> None:
    rows = []
    for pool, plan in scenarios:
        at = spaced(plan.horizon, args.effect_looks)
        readers = ["mSPRT", *(f"mSPRT + CUPED ({name})" for name in pool.covariates())]
        results: dict[str, list[Outcome]] = {name: [] for name in [FIXED, *readers]}
        for _ in range(args.experiments):
            index, treated = assign(rng, pool, plan)
            y = pool.session_s[index] * np.where(treated, 1 + args.lift, 1.0)
            results[FIXED].append(first_decision([plan.fixed.total], naive(y, treated)))
            for name, covariate in zip(readers, [None, *pool.covariates().values()], strict=True):
                x = None if covariate is None else covariate[index]
                results[name].append(first_decision(at, sequential(y, treated, plan.fixed.total, x)))
        base = median_sessions(results["mSPRT"], "treatment_better")
        for name, outcomes in results.items():
            sessions = median_sessions(outcomes, "treatment_better")
            gain = f"{1 - sessions / base:+.1%}" if np.isfinite(sessions + base) else "n/a"
            rows.append([pool.name, name, rate(outcomes, ("treatment_better",)), rate(outcomes, ("control_better",)),
                         shown(sessions, plan.horizon), "" if name == FIXED else gain])
    print_table(["served style", "readout", "power [95 % CI]", "wrong direction", "median sessions to verdict",
                 "fewer sessions vs mSPRT"], rows, left=2)


def last_readout(looks: Iterable[int], read: Reader) -> Readout | None:
    """The readout at the last look, after reading every look (the running p-value and interval)."""
    readout = None
    for n in looks:
        readout = read(n, readout)
    return readout


def run_srm(scenarios: list[tuple[Pool, Plan]], args: argparse.Namespace, rng: np.random.Generator) -> None:
    rows = []
    for pool, plan in scenarios:
        short = np.quantile(pool.session_s, args.lost)
        outcomes, logged_outcomes, unchecked = [], [], 0
        for _ in range(args.experiments):
            index, assigned = assign(rng, pool, plan)
            kept = ~assigned | (pool.session_s[index] >= short)     # the treatment's short sessions never log
            y, treated = pool.session_s[index][kept], assigned[kept]
            at, read = spaced(treated.size, args.effect_looks), sequential(y, treated, plan.fixed.total)
            outcomes.append(first_decision(at, read))
            logged_outcomes.append(first_decision(at, read, served_and_logged(assigned, kept)))
            final = last_readout(at, read)
            unchecked += final is not None and final.ci_low > 0
        rows.append([pool.name, f"{args.lost:.0%}", rate(outcomes, ("blocked_srm",)),
                     shown(median_sessions(outcomes, "blocked_srm"), plan.horizon),
                     rate(outcomes, ("treatment_better",)), f"{unchecked / args.experiments:.1%}",
                     rate(logged_outcomes, ("blocked_srm",)),
                     shown(median_sessions(logged_outcomes, "blocked_srm"), plan.horizon),
                     rate(logged_outcomes, ("treatment_better",))])
    print_table(["served style", "shortest treatment sessions lost", "blocked by SRM", "median sessions to block",
                 "false winner before the block", "false winner without SRM check",
                 "blocked by the logging check", "median sessions to block", "false winner before it"], rows)


def served_and_logged(assigned: np.ndarray, kept: np.ndarray) -> Callable[[int], LossResult]:
    """The logging check at the look of ``n`` logged sessions: what each arm served up to then, and logged."""
    positions = np.flatnonzero(kept)

    def loss_at(n: int) -> LossResult:
        upto = positions[n - 1] + 1
        served = [int((~assigned[:upto]).sum()), int(assigned[:upto].sum())]
        logged_treated = int((assigned[:upto] & kept[:upto]).sum())
        return logging_mismatch(served, [served[0], logged_treated])

    return loss_at


def main() -> None:
    args = parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w") as out, contextlib.redirect_stdout(Tee(sys.stdout, out)):
        run(args)
    print(f"written to {args.output}")


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    print_environment("experiment statistics on the visitor simulator (bench/bench_experiments.py)")
    print("  ".join(f"{name} {metadata.version(name)}" for name in ("scipy", "statsmodels")))
    seeds = np.random.SeedSequence(args.seed).spawn(6)
    visits = draw_visits(np.random.default_rng(seeds[0]), visits=args.pool, days=28)
    features = intended_features(visits)
    preferred = preferences(features, after_drift=False)
    pools = [
        build_pool("model", visits, preferred, model_styles(features, args.seed), np.random.default_rng(seeds[1])),
        build_pool("one style", visits, preferred, one_style(preferred), np.random.default_rng(seeds[2])),
    ]
    scenarios = [(pool, plan_for(pool, args.lift)) for pool in pools]
    for pool, plan in scenarios:
        if plan.horizon > args.pool:
            raise SystemExit(f"--pool must hold at least the {plan.horizon} sessions of the '{pool.name}' horizon. "
                             f"Got {args.pool} instead; raise --pool or --lift.")
    print(f"\n{args.pool} simulated visitors per served style, {time.perf_counter() - started:.0f} s; "
          f"session duration in seconds, alpha 0.05\n")
    report_pools(scenarios, args.lift)
    print(f"\nA/A: {args.experiments} experiments per row, stopped at the first look naming a winner\n")
    run_aa(scenarios, args, np.random.default_rng(seeds[3]))
    print(f"\nplanted effect: treatment sessions x {1 + args.lift}, {args.experiments} experiments, "
          f"{args.effect_looks} looks to the horizon\n")
    run_effect(scenarios, args, np.random.default_rng(seeds[4]))
    print(f"\nSRM: A/A whose treatment loses its shortest {args.lost:.0%} of sessions, {args.experiments} "
          f"experiments, {args.effect_looks} looks\n")
    run_srm(scenarios, args, np.random.default_rng(seeds[5]))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print_load_after()


if __name__ == "__main__":
    main()
