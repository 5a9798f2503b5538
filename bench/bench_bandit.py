"""Does off-policy evaluation predict what a candidate then earns? What does exploring cost? Do rewards teach?

Everything runs over real HTTP against real `efimero serve` subprocesses: the service's own code
chooses the served labels (`efimero.bandit.explore`) and logs each slot's propensity in the store
(`predictions.decisions`); visitors come from `efimero.simulate.simulate`, each with a hidden
preference, and behave by how well the served style fits it. Rewards are the config's
`retraining.bandit.reward` (`RewardFunction`), one per session, in [0, 1].

  1. off-policy vs realised  a base version (--base-rows generated rows) serves --log-visits
                             visits while exploring (epsilon_greedy, --epsilon, --holdout) in a
                             stationary world (no drift). Each candidate (other data sizes, seeds,
                             depths, generator patterns, rows of the simulator's own preferences,
                             before and after its drift) is estimated on those logs by
                             `evaluate_offline` as it would be deployed (same exploration policy):
                             IPS, SNIPS and DR with 95 % intervals, effective sample size, agreement.
                             Then it is made current (same policy) and serves --eval-visits fresh
                             visits (same world, its own seed): its realised mean reward is the
                             on-policy mean of its own logged sessions. Is the realised reward
                             inside each estimator's interval?
  2. exploration cost        the base version serves the same visitors (the logging seed) greedily;
                             greedy minus epsilon-greedy reward, paired visit by visit (same visitor,
                             same behaviour stream), with a 95 % interval; and the off-policy
                             estimate of greedy serving from the explored logs beside it.
  3. rewards vs heuristics   two services, each with its own store and registry, both exploring:
                             a week before the drift and the drift day served by the base version,
                             then each following day both retrain on the collected logs of the
                             last --collect-days days, one with the heuristic labels
                             (`collect(labels="heuristic")`), one with rewards
                             (`collect(labels="reward")`: each slot's best label by a doubly robust
                             estimate, weighted by its margin),
                             and serve that day's visitors (the same visitors for both).
                             Skipped, and said so, where `collect` has no `labels` argument yet.

A coverage check reads two numbers: whether the realised mean lies inside the estimate's interval
(what the issue asks), and z = (estimate - realised) / sqrt(se_estimate^2 + se_realised^2), which
also accounts for the realised mean being itself a noisy sample. Even with an unbiased estimator,
the interval covers a noisy realised mean less often than 95 %: the "expected" column gives that
rate, 2 Phi(1.96 se_e / sqrt(se_e^2 + se_r^2)) - 1. Figures are printed and written to --output,
never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import Tee, print_environment, print_load_after, print_table
from scipy import stats

from efimero._api import train
from efimero.bandit.estimators import Estimate, on_policy
from efimero.bandit.evaluate import OfflineEvaluation, evaluate_offline
from efimero.bandit.reward import RewardFunction
from efimero.config import TrainingConfig, load_retraining_config, load_training_config
from efimero.css import css_variables
from efimero.data.generate import generate_dataset
from efimero.demo import Server, free_port, stop, wait_ready
from efimero.errors import EfimeroError
from efimero.registry import ExplorationPolicy, Registry
from efimero.schema import CSS_TASK
from efimero.simulate import (
    DRIFT_PREFERENCE,
    SimulationResult,
    draw_visits,
    intended_features,
    preferences,
    simulate,
)
from efimero.simulate.visitors import is_night
from efimero.store import decisions, open_engine

FIRST_MONDAY = date(2026, 11, 2)
"""Day 0 of the simulated calendar; every simulation of part 1 and 2 gets its own later week."""
SERVED_TIMEOUT_S = 30.0
ESTIMATORS = ("ips", "snips", "dr")
KINDS = ("same variables, <=1 slot apart", "same variables, 2+ slots apart", "other variables")
"""Candidates by what separates them from the logging version: only labels, one slot at a time on (almost)
every visit; only labels, but two or more slots at once on some visits; the CSS variables too."""
TWO_SLOTS_SHARE = 0.02
"""A candidate whose best labels differ from the logging version's in 2+ slots on this share of visits or more."""
Z95 = float(stats.norm.ppf(0.975))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (about 2 minutes): 1500 logged visits, 1000 per candidate, 5 candidates, "
                             "150 visitors a day in part 3")
    parser.add_argument("--log-visits", type=int, default=None, help="visits logged by the exploring base (8000)")
    parser.add_argument("--eval-visits", type=int, default=None, help="visits served by each candidate (4000)")
    parser.add_argument("--base-rows", type=int, default=3000, help="generated rows the base is trained on (3000)")
    parser.add_argument("--epsilon", type=float, default=0.1, help="exploration rate (0.1)")
    parser.add_argument("--holdout", type=float, default=0.05, help="share of visitors never explored (0.05)")
    parser.add_argument("--day-visits", type=int, default=None, help="visitors per simulated day in part 3 (800)")
    parser.add_argument("--days-after", type=int, default=7, help="retraining days after the drift in part 3 (7)")
    parser.add_argument("--collect-days", type=int, default=7,
                        help="part 3 retrains on the logs of this many last days (7, collect's default window)")
    parser.add_argument("--concurrency", type=int, default=8, help="visits in flight at once (8)")
    parser.add_argument("--seed", type=int, default=42, help="seed of everything (42)")
    parser.add_argument("--parts", default="123", help="which parts to run, e.g. 12 (default 123)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep registries, stores and server logs here (default: a temporary folder)")
    parser.add_argument("--output", type=Path,
                        default=Path("bench/results") / f"{datetime.now(UTC):%Y-%m-%d}-bandit.txt",
                        help="where the printed report is also written (default bench/results/<today>-bandit.txt)")
    args = parser.parse_args(argv)
    defaults = (1500, 1000, 150) if args.quick else (8000, 4000, 800)
    for name, default in zip(("log_visits", "eval_visits", "day_visits"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


# -- numbers -------------------------------------------------------------------------------------

def ci(estimate: Estimate | None, digits: int = 4) -> str:
    if estimate is None:
        return "-"
    return f"{estimate.value:.{digits}f} [{estimate.ci_low:.{digits}f}, {estimate.ci_high:.{digits}f}]"


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and normal 95 % interval of ``values``."""
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return mean, mean - Z95 * se, mean + Z95 * se


def fmt_ci(triple: tuple[float, float, float], digits: int = 4, sign: bool = False) -> str:
    mean, low, high = triple
    spec = f"+.{digits}f" if sign else f".{digits}f"
    return f"{mean:{spec}} [{low:{spec}}, {high:{spec}}]"


def per_visit(logs: pd.DataFrame, reward: RewardFunction) -> pd.DataFrame:
    """One row per logged visit: its session id, reward, session length and whether a slot was explored."""
    rewards, ready = reward.of_decisions(logs, now=datetime.now(UTC))
    return pd.DataFrame({
        "session_id": logs["context"].map(lambda c: c["session_id"]).to_numpy(),
        "reward": rewards,
        "ready": ready,
        "session_s": logs["session_duration_ms"].to_numpy(float) / 1000,
        "explored": logs["decisions"].map(
            lambda d: any(s["label"] != s["greedy"] for s in d["slots"].values())).to_numpy(bool),
        "holdout": logs["decisions"].map(lambda d: bool(d.get("holdout"))).to_numpy(bool),
    })


def paired(a: pd.DataFrame, b: pd.DataFrame, column: str) -> tuple[np.ndarray, int]:
    """b - a for the visits both hold (matched by session id), and how many matched."""
    both = a[["session_id", column]].merge(b[["session_id", column]], on="session_id", suffixes=("_a", "_b"))
    return (both[f"{column}_b"] - both[f"{column}_a"]).to_numpy(float), len(both)


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """b - a with a normal 95 % interval from the two samples' standard errors."""
    diff = float(b.mean() - a.mean())
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return diff, diff - Z95 * se, diff + Z95 * se


# -- the services --------------------------------------------------------------------------------

@dataclass
class Service:
    """One `efimero serve` subprocess: its registry, its store, its URL."""

    name: str
    registry: Registry
    db_url: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    simulated_s: float = 0.0
    visits: int = 0

    def deploy(self, source: Registry, version: str, policy: ExplorationPolicy | None) -> None:
        """Make ``version`` (trained in ``source``) current with ``policy`` and wait until the server serves both."""
        if source.root.resolve() != self.registry.root.resolve():
            self.registry.adopt(source.path(version))
        self.registry.set_current(version)
        self.registry.set_exploration(policy)
        self.wait_served(version, policy)

    def wait_served(self, version: str, policy: ExplorationPolicy | None) -> None:
        import httpx

        wanted = (version, policy.policy_id if policy else None)
        seen: Any = None
        deadline = time.monotonic() + SERVED_TIMEOUT_S
        while time.monotonic() < deadline:
            info = httpx.get(f"{self.url}/v1/model", timeout=5).json()
            seen = (info["version"], (info.get("exploration") or {}).get("policy_id"))
            if seen == wanted:
                return
            time.sleep(0.1)
        raise EfimeroError(f"{self.name}: the server still serves {seen} after {SERVED_TIMEOUT_S:g} s; wanted {wanted}")

    def visit(self, visitors: int, *, seed: int, start: date, days: int, drift_day: int | None = None,
              concurrency: int = 8) -> tuple[SimulationResult, pd.DataFrame]:
        """Simulate the visits and return the simulator's summary and their logged decisions."""
        started = time.perf_counter()
        result = simulate(self.url, visitors=visitors, days=days, drift_day=drift_day, seed=seed, start_date=start,
                          concurrency=concurrency)
        self.simulated_s += time.perf_counter() - started
        self.visits += visitors
        if result.failures:
            raise EfimeroError(f"{self.name}: {result.failures} of {visitors} visits failed, e.g. {result.errors[:1]}")
        begin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
        logs = self.logs(begin, begin + timedelta(days=days))
        if len(logs) != visitors:
            raise EfimeroError(f"{self.name}: {len(logs)} logged decisions for {visitors} visits in {start}+{days}d")
        return result, logs

    def logs(self, start: datetime, end: datetime) -> pd.DataFrame:
        engine = open_engine(self.db_url, create=False)
        try:
            deadline = time.monotonic() + 10
            while True:  # the store writes in the background: wait until every visit's log is in
                frame = decisions(engine, start=start, end=end)
                if (frame["received_at"].notna().all() and len(frame)) or time.monotonic() > deadline:
                    return frame
                time.sleep(0.2)
        finally:
            engine.dispose()


@contextlib.contextmanager
def serving(workdir: Path, name: str, registry: Registry) -> Iterator[Service]:
    """`efimero serve` on ``registry`` with its own SQLite store, monitor off, until the block ends."""

    port = free_port()
    db_url = f"sqlite:///{(workdir / f'{name}.db').resolve()}"
    log = workdir / f"serve-{name}.log"
    command = [sys.executable, "-m", "efimero.cli.main", "serve", "--models", str(registry.root), "--db", db_url,
               "--port", str(port), "--monitor-interval", "0", "--poll-interval", "0.2", "--no-access-log"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(process, Server(process.pid, url, log))
            yield Service(name, registry, db_url, url, process, log)
        finally:
            stop(process)


class Calendar:
    """Hands out disjoint simulated weeks, so each simulation's logs have their own window."""

    def __init__(self, start: date = FIRST_MONDAY) -> None:
        self.next = start

    def weeks(self, days: int) -> date:
        start = self.next
        self.next += timedelta(days=7 * (math.ceil(days / 7) + 1))
        return start


# -- training ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """How a candidate is trained."""

    name: str
    what: str
    rows: int
    seed: int
    source: str = "generated"
    """generated (generate_dataset), simulated (the simulator's hidden preferences), simulated-drifted."""
    pattern: str = "realistic"
    classifier: dict[str, Any] = field(default_factory=dict)
    relabel: str | None = None
    """noisy: half the density and font labels drawn at random; night: density and font at night set to the
    drifted preference; night-density: only density. Each keeps the features, the theme (the split's strata)
    and the variables' targets, so the regressors, hence the served variables, are the base's own."""


def training_config(classifier: dict[str, Any] | None = None) -> TrainingConfig:
    training: dict[str, Any] = {"data": {"cv_folds": 0}, "n_jobs": 1}
    if classifier:
        training["models"] = {"classifier": classifier}
    return load_training_config(overrides={"training": training, "registry": {"max_versions_to_keep": 1000}})


def training_rows(spec: Spec) -> pd.DataFrame:
    if spec.source == "generated":
        frame = generate_dataset(spec.rows, seed=spec.seed, pattern=spec.pattern)  # type: ignore[arg-type]
        return relabelled(frame, spec.relabel, spec.seed)
    # the simulator's own visitors, labelled with their hidden (noise-free) preference
    visits = draw_visits(np.random.default_rng(spec.seed), visits=spec.rows, days=7,
                         drift_day=0 if spec.source == "simulated-drifted" else None)
    features = intended_features(visits)
    preferred = preferences(features, visits["after_drift"].to_numpy())
    return pd.concat([features.reset_index(drop=True), preferred.reset_index(drop=True)], axis=1)[CSS_TASK.columns]


def relabelled(frame: pd.DataFrame, how: str | None, seed: int) -> pd.DataFrame:
    """``frame`` with its density and font labels changed as :attr:`Spec.relabel` says."""
    if how is None:
        return frame
    frame = frame.copy()
    if how == "noisy":
        rng = np.random.default_rng(seed + 10_000)
        for target in DRIFT_PREFERENCE:
            labels = frame[target].unique()
            chosen = rng.random(len(frame)) < 0.5
            frame.loc[chosen, target] = rng.choice(labels, int(chosen.sum()))
        return frame
    night = is_night(frame["hour_of_day"])
    for target, label in DRIFT_PREFERENCE.items():
        if how == "night" or target == "css_class_density":
            frame.loc[night, target] = label
    return frame


def train_spec(spec: Spec, lab: Registry, workdir: Path) -> str:
    data = workdir / f"train-{spec.name}.csv"
    training_rows(spec).to_csv(data, index=False)
    return train(data, output=lab.root, config=training_config(spec.classifier)).version


def candidate_specs(args: argparse.Namespace) -> list[Spec]:
    s = args.seed
    rows = args.base_rows
    specs = [
        Spec("base", f"the logging version itself ({rows} generated rows)", rows, s),
        Spec("stump", "base rows; classifiers max_depth 1 x 3 trees", rows, s,
             classifier={"max_depth": 1, "n_estimators": 3, "early_stopping_rounds": 2}),
        Spec("noisy", "base rows; half the density and font labels random", rows, s, relabel="noisy"),
        Spec("night-dense", "base rows; density and font at night: dense, serif", rows, s, relabel="night"),
        Spec("night-dense1", "base rows; density at night: dense (one slot)", rows, s, relabel="night-density"),
        Spec("big", "8000 generated rows, another seed", 8000, s + 1),
        Spec("tiny", "100 generated rows: clearly worse", 100, s + 2),
        Spec("sim-prefs", "3000 simulator visitors labelled with their true preference", 3000, s + 5,
             source="simulated"),
        Spec("sim-drifted", "3000 simulator visitors after the drift (70 % night, dense serif)", 3000, s + 6,
             source="simulated-drifted"),
    ]
    if args.quick:
        specs = [spec for spec in specs
                 if spec.name in ("base", "stump", "night-dense", "night-dense1", "tiny", "sim-prefs")]
    return specs


def differences(logged: pd.DataFrame, bundle: Any) -> tuple[float, float]:
    """Shares of the logged visits on which the candidate would serve other CSS variables than were served,
    and on which its best labels differ from the logging version's in two or more slots."""
    features = pd.DataFrame(list(logged["features"]))
    predicted = bundle.predict_frame(features)
    names = [t for t in CSS_TASK.regression_target_names if t in predicted.columns]
    differ = [css_variables({t: float(row[t]) for t in names}) != served
              for row, served in zip(predicted.to_dict("records"), logged["css_variables"], strict=True)]
    slots = CSS_TASK.class_target_names
    greedy = np.array([[d["slots"][slot]["greedy"] for slot in slots] for d in logged["decisions"]], dtype=object)
    own = predicted[slots].to_numpy(dtype=object)
    return float(np.mean(differ)), float(((own != greedy).sum(axis=1) >= 2).mean())


# -- part 1 and 2 --------------------------------------------------------------------------------

@dataclass
class Coverage:
    spec: Spec
    version: str
    offline: OfflineEvaluation
    realised: Estimate
    session_s: float
    variables_differ: float
    two_slots_differ: float

    @property
    def kind(self) -> str:
        """Which assumption of the estimate the candidate strains (see KINDS)."""
        if self.variables_differ > 0:
            return KINDS[2]
        return KINDS[1] if self.two_slots_differ >= TWO_SLOTS_SHARE else KINDS[0]

    @property
    def mean_weight(self) -> float | None:
        """IPS / SNIPS: the mean importance weight, 1 in expectation; well below 1, weight the logs never drew."""
        ips_, snips_ = self.offline.estimates.get("ips"), self.offline.estimates.get("snips")
        return ips_.value / snips_.value if ips_ and snips_ and snips_.value else None

    def covered(self, name: str) -> bool | None:
        e = self.offline.estimates.get(name)
        return None if e is None else e.ci_low <= self.realised.value <= e.ci_high

    def z(self, name: str) -> float | None:
        e = self.offline.estimates.get(name)
        return None if e is None else (e.value - self.realised.value) / math.hypot(e.std_error,
                                                                                   self.realised.std_error)

    def expected(self, name: str) -> float | None:
        e = self.offline.estimates.get(name)
        if e is None:
            return None
        return float(2 * stats.norm.cdf(Z95 * e.std_error / math.hypot(e.std_error, self.realised.std_error)) - 1)


def part_one_and_two(args: argparse.Namespace, workdir: Path, reward: RewardFunction,
                     policy: ExplorationPolicy) -> None:
    lab = Registry(workdir / "lab")
    calendar = Calendar()
    specs = candidate_specs(args)
    started = time.perf_counter()
    versions = {spec.name: train_spec(spec, lab, workdir) for spec in specs}
    print(f"trained {len(specs)} versions in {time.perf_counter() - started:.0f} s "
          "(cv_folds 0, n_jobs 1; classifiers max_depth 6 x up to 100 trees unless said)\n")
    base = versions["base"]
    served = Registry(workdir / "served")
    served.adopt(lab.path(base))
    served.set_current(base)
    log_seed, greedy_week = args.seed + 100, None
    with serving(workdir, "part1", served) as service:
        service.deploy(lab, base, policy)
        week = calendar.weeks(7)
        _, logged = service.visit(args.log_visits, seed=log_seed, start=week, days=7, concurrency=args.concurrency)
        explored = per_visit(logged, reward)
        print(f"part 1: {base} served {len(logged)} visits ({week} + 7 days, seed {log_seed}) exploring with "
              f"{policy.mode} epsilon {policy.epsilon:g}, holdout {policy.holdout_share:.0%}, "
              f"policy {policy.policy_id}; "
              f"{explored['explored'].mean():.1%} of them had at least one slot explored, "
              f"{explored['holdout'].mean():.1%} were held out\n")
        results = []
        for i, spec in enumerate(specs):
            bundle = lab.load(versions[spec.name])
            offline = evaluate_offline(logged, bundle, reward=reward, now=datetime.now(UTC), exploration=policy,
                                       seed=args.seed)
            service.deploy(lab, versions[spec.name], policy)
            seed = args.seed + 200 + i
            _, own = service.visit(args.eval_visits, seed=seed, start=calendar.weeks(7), days=7,
                                   concurrency=args.concurrency)
            mine = per_visit(own, reward)
            results.append(Coverage(spec, versions[spec.name], offline, on_policy(mine["reward"][mine["ready"]]),
                                    float(mine["session_s"].mean()), *differences(logged, bundle)))
            print(f"  {spec.name}: estimated on the logs, then served {len(own)} visits (seed {seed}); "
                  f"realised {results[-1].realised.value:.4f}", file=sys.stderr)
        report_part_one(args, results, logged, reward)
        # part 2: the same visitors (the logging seed), served greedily
        service.deploy(lab, base, None)
        greedy_week = calendar.weeks(7)
        _, greedy_logs = service.visit(args.log_visits, seed=log_seed, start=greedy_week, days=7,
                                       concurrency=args.concurrency)
    greedy = per_visit(greedy_logs, reward)
    estimate = evaluate_offline(logged, lab.load(base), reward=reward, now=datetime.now(UTC), exploration=None,
                                seed=args.seed)
    report_part_two(args, explored, greedy, estimate)
    print(f"\nparts 1-2: {service.visits} simulated visits in {service.simulated_s:.0f} s "
          f"({service.visits / service.simulated_s:.0f} visits/s over HTTP)")


def report_part_one(args: argparse.Namespace, results: list[Coverage], logged: pd.DataFrame,
                    reward: RewardFunction) -> None:
    live = on_policy(per_visit(logged, reward)["reward"])
    print(f"reward {reward.version}; logging arm (base, exploring) realised {ci(live)} on its {len(logged)} logged "
          "visits\n")
    print("1a. off-policy estimates on the base's explored logs (95 % CI), the candidate as it would be deployed "
          "(same exploration policy)\n")
    print_table(
        ["candidate", "what", "vars differ", "2+ slots", "agree", "ESS", "mean w", "IPS", "SNIPS", "DR"],
        [[r.spec.name, r.spec.what, f"{r.variables_differ:.0%}", f"{r.two_slots_differ:.0%}",
          f"{r.offline.agreement:.1%}", f"{r.offline.effective_sample_size:.0f}",
          "-" if r.mean_weight is None else f"{r.mean_weight:.3f}",
          *(ci(r.offline.estimates.get(name)) for name in ESTIMATORS)]
         for r in results],
        left=2,
    )
    print("\nvars differ: share of the logged visits on which the candidate would serve other CSS variables than "
          "were served (only class labels are explored and reweighted: the estimate is of the candidate's labels "
          "served with the logged variables). 2+ slots: share on which its best labels differ from the logging "
          "version's in two or more slots (the logs then hold the candidate's combination only where two slots "
          "were explored at once, about (epsilon/k)^2). mean w: IPS/SNIPS, the mean importance weight, 1 in "
          "expectation; below 1 the logs lack weight the candidate would need (rare doubly explored visits not "
          "drawn, held-out visitors on which the candidate disagrees).")
    print(f"\n1b. realised when deployed (same policy, {args.eval_visits} fresh visits, one seed per candidate) "
          "against the estimates\n")
    rows = []
    for r in results:
        cells = [r.spec.name, f"{r.session_s:.1f}", ci(r.realised)]
        for name in ESTIMATORS:
            covered, z, expected = r.covered(name), r.z(name), r.expected(name)
            cells.append("-" if covered is None else
                         f"{'yes' if covered else 'NO '} z {z:+.2f} ({expected:.0%})")
        rows.append(cells)
    print_table(["candidate", "session s", "realised reward", *(f"in {n.upper()} CI, z (expected)"
                                                               for n in ESTIMATORS)], rows)
    print()
    groups = [("all", results)] + [(kind, [r for r in results if r.kind == kind]) for kind in KINDS]
    for group, members in groups:
        n = len(members)
        if not n:
            continue
        print(f"{group}: {', '.join(r.spec.name for r in members)}")
        for name in ESTIMATORS:
            hits = sum(bool(r.covered(name)) for r in members)
            consistent = sum(z is not None and abs(z) < Z95 for z in (r.z(name) for r in members))
            expected_hits = float(sum(r.expected(name) or 0.0 for r in members))
            print(f"  {name.upper():5} CI covered the realised reward for {hits} of {n} candidates "
                  f"(~{expected_hits:.1f} expected if unbiased: the realised mean is noisy too); |z| < 1.96 for "
                  f"{consistent} of {n}")
    order_true = [r.spec.name for r in sorted(results, key=lambda r: -r.realised.value)]
    for name in ESTIMATORS:
        order = [r.spec.name for r in sorted(results, key=lambda r: -(r.offline.estimates[name].value
                                                                       if name in r.offline.estimates else -1))]
        rho = stats.spearmanr([order_true.index(x) for x in order_true], [order.index(x) for x in order_true])[0]
        print(f"{name.upper():5} ranks the candidates {' > '.join(order)} (Spearman {rho:+.2f} with the realised "
              f"order {' > '.join(order_true)})")
    print()
    read_part_one(results)


def read_part_one(results: list[Coverage]) -> None:
    """What the coverage table says, by kind of candidate, in words (the figures are this run's)."""

    def gap(r: Coverage, name: str) -> str:
        e = r.offline.estimates.get(name)
        return "-" if e is None else f"{e.value - r.realised.value:+.3f}"

    print("reading (estimate - realised per estimator):")
    for kind in KINDS:
        members = [r for r in results if r.kind == kind]
        if not members:
            continue
        covered = sum(bool(r.covered("dr")) for r in members)
        print(f"- {kind}: DR covered {covered} of {len(members)}; " + "; ".join(
            f"{r.spec.name} IPS {gap(r, 'ips')} SNIPS {gap(r, 'snips')} DR {gap(r, 'dr')}"
            + (f" (mean w {r.mean_weight:.3f})" if r.mean_weight is not None else "") for r in members))
    print("""  Only the class labels are explored, and a candidate is judged on the logged rewards of the labels it
  would choose: the CSS variables (font size, spacing, hue, animation: 30 % of the simulator's match score)
  are those the logging version served. A candidate with other variables earns more (better ones) or less
  (worse ones) than its estimate, whatever the estimator. And the propensity of a visit is the product over
  the three slots: a candidate that differs from the logging version in two slots of a visit has its
  combination in the logs only where both were explored at once ((epsilon/k)^2, about 1 visit in 1200,
  weight about 1000). Those rows decide the estimate, and in a week of logs there are few or none: IPS
  comes out low with an interval too narrow when none was drawn ("mean w" < 1), far too high when one
  was ("mean w" > 1); SNIPS and DR fall back towards the rows where the candidate agrees with the
  logging version and come out too high for a worse candidate. The world is stationary in part 1 (no
  drift), so non-stationarity plays no part here.
""")


def report_part_two(args: argparse.Namespace, explored: pd.DataFrame, greedy: pd.DataFrame,
                    estimate: OfflineEvaluation) -> None:
    print(f"2. the exploration cost: the base version, the same {args.log_visits} visitors (seed {args.seed + 100}, "
          "same behaviour streams), served greedily and exploring\n")
    rows = []
    for name, frame in (("greedy", greedy), (f"epsilon {args.epsilon:g}", explored)):
        rows.append([name, f"{frame['explored'].mean():.1%}", fmt_ci(mean_ci(frame["session_s"].to_numpy()), 1),
                     fmt_ci(mean_ci(frame["reward"].to_numpy()))])
    diff_r, matched = paired(greedy, explored, "reward")
    diff_s, _ = paired(greedy, explored, "session_s")
    rows.append([f"epsilon - greedy, paired ({matched} visits)", "", fmt_ci(mean_ci(diff_s), 2, sign=True),
                 fmt_ci(mean_ci(diff_r), 4, sign=True)])
    rows.append(["epsilon - greedy, unpaired", "", fmt_ci(welch(greedy["session_s"].to_numpy(),
                                                                explored["session_s"].to_numpy()), 2, sign=True),
                 fmt_ci(welch(greedy["reward"].to_numpy(), explored["reward"].to_numpy()), 4, sign=True)])
    print_table(["served", "explored visits", "session s", "reward"], rows)
    touched = explored[explored["explored"]]
    on_explored, _ = paired(greedy, touched, "reward")
    if len(on_explored) > 1:
        print(f"\non the {len(touched)} visits where a slot was explored, the reward moved by "
              f"{fmt_ci(mean_ci(on_explored), 4, sign=True)} per visit")
    real = on_policy(greedy["reward"])
    print("greedy serving estimated off-policy from the explored logs: "
          + ", ".join(f"{n.upper()} {ci(estimate.estimates.get(n))}" for n in ESTIMATORS)
          + f" (ESS {estimate.effective_sample_size:.0f}); realised greedily {ci(real)}")
    dr = estimate.estimates.get("dr")
    if dr is not None:
        print(f"  DR CI {'covers' if dr.ci_low <= real.value <= dr.ci_high else 'does NOT cover'} the realised greedy "
              f"reward; z {(dr.value - real.value) / math.hypot(dr.std_error, real.std_error):+.2f}")
    cost, low, high = mean_ci(diff_r)
    greedy_mean = float(greedy["reward"].mean())
    print(f"reading: exploring at epsilon {args.epsilon:g} cost {-cost:.4f} reward per visit [{-high:.4f}, {-low:.4f}] "
          f"({-cost / greedy_mean:.1%} of greedy serving's) and {-mean_ci(diff_s)[0]:.1f} s of session; the cost is "
          f"carried by the {explored['explored'].mean():.0%} of visits with an explored slot.")
    print()


# -- part 3 --------------------------------------------------------------------------------------

def reward_labels_available() -> bool:
    from efimero.collect import collect

    return "labels" in inspect.signature(collect).parameters


ACCURACY_VISITS = 4000


@dataclass
class Arm:
    labels: str
    service: Service
    base: str = ""
    versions: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    days: list[pd.DataFrame] = field(default_factory=list)
    sims: list[SimulationResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def retrain_arm(arm: Arm, reward: RewardFunction, workdir: Path, first: date, last: date, day: int) -> None:
    """Collect the arm's logs of [first, last] with its labels, train on them and make the result current."""
    from efimero.collect import collect

    data = workdir / f"collected-{arm.labels}-{day}.csv"
    options: dict[str, Any] = {"labels": arm.labels, "reward": reward} if arm.labels == "reward" else {}
    result = collect(arm.service.db_url, start_date=first, end_date=last, min_session_duration_ms=0, output=data,
                     **options)
    arm.rows.append(len(result.frame))
    try:
        version = train(data, output=arm.service.registry.root, config=training_config()).version
    except EfimeroError as exc:  # too few rows, one class only...: keep serving what serves
        arm.notes.append(f"day {day}: training on {len(result.frame)} {arm.labels} rows failed: {exc}")
        arm.versions.append(arm.versions[-1] if arm.versions else "")
        return
    arm.versions.append(version)
    arm.service.wait_served(version, arm.service.registry.exploration())


def part_three(args: argparse.Namespace, workdir: Path, reward: RewardFunction, policy: ExplorationPolicy) -> None:
    if not reward_labels_available():
        print("3. rewards vs heuristic labels: SKIPPED, efimero.collect.collect has no labels= argument in this "
              "checkout\n")
        return
    lab = Registry(workdir / "lab3")
    base = train_spec(Spec("base3", "", args.base_rows, args.seed), lab, workdir)
    seed, per_day = args.seed + 300, args.day_visits
    start = FIRST_MONDAY
    drift = start + timedelta(days=7)
    print(f"3. learning from rewards vs heuristic labels: two services (own store and registry) each serve "
          f"{7 * per_day} visits in the week before the drift ({start}) and {per_day} on the drift day ({drift}) "
          f"with {base}, exploring ({policy.policy_id}); then each day both retrain on the logs of the last "
          f"{args.collect_days} days and serve the same {per_day} visitors\n")
    with contextlib.ExitStack() as stack:
        arms = []
        for labels in ("heuristic", "reward"):
            registry = Registry(workdir / f"served-{labels}")
            registry.adopt(lab.path(base))
            registry.set_current(base)
            service = stack.enter_context(serving(workdir, f"part3-{labels}", registry))
            service.deploy(registry, base, policy)
            arms.append(Arm(labels, service, base))
        before: list[tuple[pd.DataFrame, SimulationResult]] = []
        for arm in arms:
            arm.service.visit(7 * per_day, seed=seed, start=start, days=7, concurrency=args.concurrency)
            sim, logs = arm.service.visit(per_day, seed=seed + 1, start=drift, days=1, drift_day=0,
                                          concurrency=args.concurrency)
            before.append((per_visit(logs, reward), sim))
        for day in range(1, args.days_after + 1):
            today = drift + timedelta(days=day)
            first = max(start, today - timedelta(days=args.collect_days))
            for arm in arms:
                retrain_arm(arm, reward, workdir, first, today - timedelta(days=1), day)
                sim, logs = arm.service.visit(per_day, seed=seed + 1 + day, start=today, days=1, drift_day=0,
                                              concurrency=args.concurrency)
                arm.days.append(per_visit(logs, reward))
                arm.sims.append(sim)
            print(f"  day {day}: retrained and served", file=sys.stderr)
    report_part_three(args, arms, before, drift)


def report_part_three(args: argparse.Namespace, arms: list[Arm],
                      before: list[tuple[pd.DataFrame, SimulationResult]], drift: date) -> None:
    heuristic, rewarded = arms

    def day_cells(frame: pd.DataFrame, sim: SimulationResult) -> list[str]:
        return [f"{frame['session_s'].mean():.1f}", f"{frame['reward'].mean():.4f}",
                f"{sim.overall.match_rate:.0%}"]

    rows = [["0 (drift day, base)", str(drift), "", "", *day_cells(*before[0]), *day_cells(*before[1]), ""]]
    for i in range(len(heuristic.days)):
        diff, _ = paired(heuristic.days[i], rewarded.days[i], "reward")
        rows.append([str(i + 1), str(drift + timedelta(days=i + 1)), str(heuristic.rows[i]), str(rewarded.rows[i]),
                     *day_cells(heuristic.days[i], heuristic.sims[i]), *day_cells(rewarded.days[i], rewarded.sims[i]),
                     fmt_ci(mean_ci(diff), 4, sign=True)])
    print_table(["day after drift", "date", "rows H", "rows R", "session s H", "reward H", "classes ok H",
                 "session s R", "reward R", "classes ok R", "reward R - H (paired)"], rows, left=2)
    print("\nH: heuristic labels, R: reward labels; rows: training rows collected; classes ok: share of visits "
          "served all three preferred class labels (the simulator's match_rate)")
    all_h, all_r = pd.concat(heuristic.days), pd.concat(rewarded.days)
    diff_r, matched = paired(all_h, all_r, "reward")
    diff_s, _ = paired(all_h, all_r, "session_s")
    last_r, _ = paired(heuristic.days[-1], rewarded.days[-1], "reward")
    last_s, _ = paired(heuristic.days[-1], rewarded.days[-1], "session_s")
    print(f"\nover the {len(heuristic.days)} retrained days ({matched} visitor pairs): reward labels minus heuristic "
          f"labels, reward {fmt_ci(mean_ci(diff_r), 4, sign=True)}, session {fmt_ci(mean_ci(diff_s), 2, sign=True)} s")
    print(f"on the last day alone: reward {fmt_ci(mean_ci(last_r), 4, sign=True)}, "
          f"session {fmt_ci(mean_ci(last_s), 2, sign=True)} s")
    for arm in arms:
        for note in arm.notes:
            print(f"note ({arm.labels}): {note}")
    print()
    print(f"final models against the hidden preference of {ACCURACY_VISITS} fresh drifted visitors "
          "(share of visitors whose preferred label each model predicts, at night / by day)\n")
    visits = draw_visits(np.random.default_rng(args.seed + 400), visits=ACCURACY_VISITS, days=7, drift_day=0)
    features = intended_features(visits)
    preferred = preferences(features, visits["after_drift"].to_numpy())
    night = is_night(features["hour_of_day"])
    rows = []
    for name, registry, version in (("base (before retraining)", heuristic.service.registry, heuristic.base),
                                    ("heuristic labels, day 7", heuristic.service.registry, heuristic.versions[-1]),
                                    ("reward labels, day 7", rewarded.service.registry, rewarded.versions[-1])):
        predicted = registry.load(version).predict_frame(features)
        cells = [name]
        for target in CSS_TASK.class_target_names:
            right = predicted[target].to_numpy() == preferred[target].to_numpy()
            cells.append(f"{right[night].mean():.0%} / {right[~night].mean():.0%}")
        rows.append(cells)
    print_table(["model", *(t.removeprefix("css_class_") for t in CSS_TASK.class_target_names)], rows)
    total, low, high = mean_ci(diff_r)
    verdict = "won" if low > 0 else "did not win" if high < 0 else "were not told apart"
    print(f"\nreading: reward labels {verdict}: {total:+.4f} [{low:+.4f}, {high:+.4f}] reward per visit over the "
          f"retrained days, {mean_ci(last_r)[0]:+.4f} on the last day. Heuristic labels learn from what visitors "
          "say (explicit feedback names the preferred labels) and from behaviour rules; reward labels only from "
          "rewards: each slot takes the label with the best doubly robust estimate for the visit (a cross-fitted "
          "reward model of context, variables and labels, corrected by (reward - model) / propensity on the "
          "served label), weighted by its margin over the runner-up.")
    print()


# -- main ----------------------------------------------------------------------------------------

def run(args: argparse.Namespace, workdir: Path) -> None:
    started = time.perf_counter()
    print(f"command  .venv/bin/python bench/bench_bandit.py {shlex.join(sys.argv[1:])}".rstrip())
    print_environment("off-policy evaluation, exploration cost and reward labels on the simulator "
                      "(bench/bench_bandit.py)")
    settings = load_retraining_config().retraining.bandit
    reward = settings.reward
    policy = ExplorationPolicy.model_validate(settings.exploration.model_dump() | {
        "mode": "epsilon_greedy", "epsilon": args.epsilon, "holdout_share": args.holdout,
        "salt": f"bench-{args.seed}"})
    print(f"sizes: {args.log_visits} logged visits, {args.eval_visits} per candidate, {args.day_visits} a day in "
          f"part 3; seed {args.seed}; exploration {policy.mode} epsilon {policy.epsilon:g} holdout "
          f"{policy.holdout_share:g} with {len(policy.guardrails)} guardrail(s) from the config; "
          f"reward {reward.version} (weights duration {reward.duration_weight:g} cap {reward.duration_cap_s:g} s, "
          f"scroll {reward.scroll_weight:g}, stayed {reward.stayed_weight:g}, rating {reward.rating_weight:g})\n")
    if "1" in args.parts or "2" in args.parts:
        part_one_and_two(args, workdir, reward, policy)
    if "3" in args.parts:
        part_three(args, workdir, reward, policy)
    print(f"total {time.perf_counter() - started:.0f} s")
    print_load_after()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(level=logging.ERROR)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="efimero-bandit-")))
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        out = stack.enter_context(args.output.open("w"))
        stack.enter_context(contextlib.redirect_stdout(Tee(sys.stdout, out)))
        run(args, workdir)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
