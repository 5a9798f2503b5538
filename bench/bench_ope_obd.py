"""Do efimero's off-policy estimators recover a real policy's click rate from another policy's logs?

The Open Bandit Dataset (Saito et al., NeurIPS 2021 Datasets and Benchmarks, arXiv 2008.07146) was
logged on ZOZOTOWN, a fashion e-commerce site, by two policies that served side by side in one A/B
test: Uniform Random and Bernoulli Thompson Sampling (BTS), each choosing 3 of 80 items for 3
positions, with the propensity of every logged choice and whether it was clicked. The source
distribution of obp 0.5.7 ships a 10,000-row sample per policy and the Beta priors BTS served with.

  truth      BTS's on-policy click rate: the mean click in its own logs (efimero.bandit.on_policy)
  estimates  BTS's click rate from the Random logs alone, with efimero's ips, snips, doubly_robust
             and direct_method; BTS's probability of each item at each position (its action
             distribution) is computed here by Monte Carlo from the shipped "all" campaign prior,
             as OBP's BernoulliTS.compute_batch_action_dist does
  model      DR's and DM's reward model: a logistic regression of click on the user features,
             item and position (one-hot), cross-fitted over --folds folds; its L2 strength is the
             one of C_GRID with the lowest cross-fitted log loss on the Random log (never the truth)

A row is one (impression, position), as in the OBP pipeline: the logging propensity is 1/80 per
position for Random, and BTS's target propensity of a row is its probability of showing that item
at that position. Relative error = |estimate - truth| / truth, as in the paper. Beside it, the
mean relative error over --bootstrap resamples of the Random log, which is how the zr-obp README
reports its run on the same sample. With 38 clicks in the Random sample and 42 in the BTS sample,
the truth itself is uncertain by about +-30 %: these figures check that the estimators are wired
right on real logs, not which estimator is best (the paper uses the full data, millions of rows).

Needs the network once: `pip download` fetches the sdist into --cache; later runs read the cache.
Figures are printed and written to --output, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import shlex
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _common import Tee, print_environment, print_load_after, print_table
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from efimero.bandit.estimators import (
    Estimate,
    direct_method,
    doubly_robust,
    effective_sample_size,
    ips,
    on_policy,
    snips,
)

OBP = "obp==0.5.7"
SDIST = "obp-0.5.7.tar.gz"
ROOT = "obp-0.5.7/obp/"
MEMBERS = {
    "random": "dataset/obd/random/all/all.csv",
    "bts": "dataset/obd/bts/all/all.csv",
    "items": "dataset/obd/random/all/item_context.csv",
    "prior": "policy/conf/prior_bts.yaml",
}
"""What the bench reads from the sdist (under ROOT): the ALL campaign's two logs, its items, BTS's priors."""

LEN_LIST = 3
"""Positions per impression in the ZOZOTOWN interface."""

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
"""Inverse L2 strengths tried for the reward model when --C is not given."""

ZR_OBP_README = ("st-tech/zr-obp examples/obd/README.md at commit b8ea3ef (2022-01-13, obp 0.5.2): "
              "evaluate_off_policy_estimators.py --n_runs 30 --base_model logistic_regression "
              "--evaluation_policy bts --behavior_policy random --campaign all, on this 10,000-row sample")
ZR_OBP_RELATIVE_EE = {"dm": (0.156876, 0.109898), "ips": (0.311082, 0.311170), "snips": (0.311795, 0.334736),
                   "dr": (0.292464, 0.315485)}
"""Mean (std) relative error over 30 bootstrap resamples, as printed in ZR_OBP_README (3-fold cross-fitted
logistic regression with C=100 on user features and item features, per-position models)."""

NAMES = {"ips": "IPS", "snips": "SNIPS", "dr": "DR", "dm": "DM (reward model only)"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("bench/.cache/obp"),
                        help="where the obp sdist is downloaded and its data extracted (default bench/.cache/obp)")
    parser.add_argument("--draws", type=int, default=100_000,
                        help="Monte-Carlo draws of BTS's action distribution (default 100000)")
    parser.add_argument("--folds", type=int, default=2, help="cross-fitting folds of the reward model (default 2)")
    parser.add_argument("--C", type=float, default=None,
                        help="inverse L2 strength of the reward model's logistic regression (default: the one of "
                             f"{C_GRID} with the lowest cross-fitted log loss)")
    parser.add_argument("--bootstrap", type=int, default=30,
                        help="bootstrap resamples of the Random log for the mean relative error (default 30; 0 skips)")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the intervals (default 0.95)")
    parser.add_argument("--seed", type=int, default=42, help="seed of everything (default 42)")
    parser.add_argument("--output", type=Path,
                        default=Path("bench/results") / f"{datetime.now(UTC):%Y-%m-%d}-ope-obd.txt",
                        help="where the printed report is also written (default bench/results/<today>-ope-obd.txt)")
    return parser.parse_args()


def fetch(cache: Path) -> Path:
    """The obp sdist in ``cache``, downloaded with pip the first time; exits non-zero if that fails.

    ``--ignore-requires-python``: obp declares Python < 3.11, which would stop pip before it
    downloads anything, although only the data files are used here, never obp's code.
    """
    sdist = cache / SDIST
    if sdist.exists():
        return sdist
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--ignore-requires-python", "--dest", str(cache), OBP]
    print(f"downloading {OBP}: {shlex.join(command)}", file=sys.stderr)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SystemExit(f"could not download {OBP} with pip ({exc}). Check the network, or put {SDIST} "
                         f"in {cache} yourself.") from None
    if done.returncode != 0 or not sdist.exists():
        raise SystemExit(f"could not download {OBP} with pip (exit {done.returncode}):\n{done.stderr.strip()[-2000:]}\n"
                         f"Check the network or proxy settings, or put {SDIST} in {cache} yourself.")
    return sdist


def extract(sdist: Path, cache: Path) -> dict[str, Path]:
    """Only the MEMBERS files of the sdist, extracted under ``cache``/data (once)."""
    target = cache / "data"
    paths = {key: target / member for key, member in MEMBERS.items()}
    if all(path.exists() for path in paths.values()):
        return paths
    try:
        with tarfile.open(sdist) as tar:
            for key, member in MEMBERS.items():
                source = tar.extractfile(ROOT + member)
                if source is None:
                    raise KeyError(f"{ROOT + member} is not a file")
                paths[key].parent.mkdir(parents=True, exist_ok=True)
                paths[key].write_bytes(source.read())
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise SystemExit(f"{sdist} is not the obp sdist expected ({exc}). Delete it and run again.") from None
    return paths


def bts_action_dist(alpha: np.ndarray, beta: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """P(item at position) under Bernoulli TS: sample Beta(alpha, beta) per item, rank, keep the top LEN_LIST.

    Returns an (items, LEN_LIST) array whose columns each sum to 1. OBP's BernoulliTS with the
    ZOZOTOWN prior and no updates does exactly this draw per impression.
    """
    counts = np.zeros((alpha.size, LEN_LIST))
    for start in range(0, draws, 20_000):
        size = min(20_000, draws - start)
        theta = rng.beta(alpha, beta, size=(size, alpha.size))
        top = np.argpartition(-theta, LEN_LIST, axis=1)[:, :LEN_LIST]
        order = np.argsort(-np.take_along_axis(theta, top, axis=1), axis=1)
        ranked = np.take_along_axis(top, order, axis=1)
        for position in range(LEN_LIST):
            counts[:, position] += np.bincount(ranked[:, position], minlength=alpha.size)
    return counts / draws


@dataclass(frozen=True)
class Log:
    """One policy's logged rows: item, position (0-based), click, logging propensity, user features."""

    item: np.ndarray
    position: np.ndarray
    click: np.ndarray
    propensity: np.ndarray
    users: np.ndarray

    def take(self, rows: np.ndarray) -> Log:
        return Log(self.item[rows], self.position[rows], self.click[rows], self.propensity[rows], self.users[rows])


def read_log(path: Path, n_items: int, user_columns: pd.Index | None = None) -> tuple[Log, pd.Index]:
    """A log CSV as a :class:`Log`; user features one-hot (drop-first, as OBP's pre_process does)."""
    frame = pd.read_csv(path, index_col=0)
    if set(frame["position"].unique()) != {1, 2, 3} or not frame["item_id"].between(0, n_items - 1).all():
        raise SystemExit(f"{path}: positions must be 1-3 and items 0-{n_items - 1}; the file is not the OBD sample.")
    users = pd.get_dummies(frame.filter(like="user_feature"), drop_first=True, dtype=float)
    if user_columns is not None:
        users = users.reindex(columns=user_columns, fill_value=0.0)
    log = Log(frame["item_id"].to_numpy(), frame["position"].to_numpy() - 1, frame["click"].to_numpy(dtype=float),
              frame["propensity_score"].to_numpy(dtype=float), users.to_numpy())
    return log, users.columns


@dataclass(frozen=True)
class Predictions:
    """Cross-fitted q̂ of the logged action and q̂ under BTS, plus the model's log losses."""

    logged: np.ndarray
    target: np.ndarray
    log_loss: float
    log_loss_constant: float

    @property
    def relative_cross_entropy(self) -> float:
        """1 - log loss / log loss of predicting each fold's training click rate: above 0 means the model helps."""
        return 1 - self.log_loss / self.log_loss_constant


def design(log: Log, n_items: int) -> np.ndarray:
    """User one-hot, item one-hot and position one-hot of each logged row."""
    rows = np.arange(log.item.size)
    items = np.zeros((rows.size, n_items))
    items[rows, log.item] = 1
    positions = np.zeros((rows.size, LEN_LIST))
    positions[rows, log.position] = 1
    return np.hstack([log.users, items, positions])


def cross_fit(log: Log, policy: np.ndarray, folds: int, c: float, seed: int) -> Predictions:
    """q̂(x, a, position) by a logistic regression fitted on the other folds; q̂ under ``policy`` by its logits.

    The model is linear in the one-hots, so the logit of any item at the row's position is the
    row's user-and-position part plus that item's coefficient: q̂ under BTS needs no 80-fold
    design matrix.
    """
    n_items = policy.shape[0]
    x = design(log, n_items)
    n_users = log.users.shape[1]
    logged, target = np.empty(log.click.size), np.empty(log.click.size)
    constant = np.empty(log.click.size)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, log.click):
        model = LogisticRegression(C=c, max_iter=2000).fit(x[train], log.click[train])
        coef = model.coef_[0]
        item_coef = coef[n_users:n_users + n_items]
        base = model.intercept_[0] + log.users[test] @ coef[:n_users] + coef[n_users + n_items:][log.position[test]]
        q_all = 1 / (1 + np.exp(-(base[:, None] + item_coef[None, :])))        # (rows, items)
        logged[test] = q_all[np.arange(test.size), log.item[test]]
        target[test] = (q_all * policy[:, log.position[test]].T).sum(axis=1)
        constant[test] = log.click[train].mean()
    return Predictions(logged, target, float(log_loss(log.click, logged, labels=[0, 1])),
                       float(log_loss(log.click, constant, labels=[0, 1])))


def choose_c(log: Log, policy: np.ndarray, folds: int, seed: int) -> tuple[float, dict[float, float]]:
    """The C of C_GRID whose cross-fitted reward model has the lowest log loss, and every C's log loss."""
    losses = {c: cross_fit(log, policy, folds, c, seed).log_loss for c in C_GRID}
    return min(losses, key=lambda c: losses[c]), losses


def estimates(
    log: Log, policy: np.ndarray, args: argparse.Namespace, c: float, seed: int
) -> tuple[dict[str, Estimate], Predictions]:
    """efimero's IPS, SNIPS, DR and DM of ``policy``'s click rate from ``log``."""
    target = policy[log.item, log.position]
    predictions = cross_fit(log, policy, args.folds, c, seed)
    level = args.confidence
    return {
        "ips": ips(log.click, log.propensity, target, confidence=level),
        "snips": snips(log.click, log.propensity, target, confidence=level),
        "dr": doubly_robust(log.click, log.propensity, target, predictions.logged, predictions.target,
                            confidence=level),
        "dm": direct_method(predictions.target, confidence=level),
    }, predictions


def relative_error(estimate: float, truth: float) -> float:
    return abs(estimate - truth) / truth


def main() -> None:
    args = parse_args()
    sdist = fetch(args.cache)          # before the report file opens: a failed download leaves no report
    paths = extract(sdist, args.cache)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w") as out, contextlib.redirect_stdout(Tee(sys.stdout, out)):
        run(args, sdist, paths)
    print(f"written to {args.output}")


def run(args: argparse.Namespace, sdist: Path, paths: dict[str, Path]) -> None:
    started = time.perf_counter()
    print(f"command  .venv/bin/python bench/bench_ope_obd.py {shlex.join(sys.argv[1:])}".rstrip())
    print_environment("off-policy estimators on the Open Bandit Dataset sample (bench/bench_ope_obd.py)")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    print(f"data: {OBP} sdist (sha256 {digest[:16]}...), ALL campaign, files {', '.join(MEMBERS.values())}")

    items = pd.read_csv(paths["items"], index_col=0)
    n_items = len(items)
    prior = yaml.safe_load(paths["prior"].read_text())["all"]
    alpha, beta = np.asarray(prior["alpha"], dtype=float), np.asarray(prior["beta"], dtype=float)
    if alpha.size != n_items or beta.size != n_items:
        raise SystemExit(f"{paths['prior']}: the 'all' prior has {alpha.size} items, the item file {n_items}.")
    random_log, user_columns = read_log(paths["random"], n_items)
    bts_log, _ = read_log(paths["bts"], n_items, user_columns)

    seeds = np.random.SeedSequence(args.seed).spawn(2)
    policy = bts_action_dist(alpha, beta, args.draws, np.random.default_rng(seeds[0]))
    logged_bts = bts_log.propensity
    computed_bts = policy[bts_log.item, bts_log.position]
    print(f"\nBTS action distribution: {args.draws} Monte-Carlo draws of Beta(alpha_i, beta_i) for {n_items} items, "
          f"top {LEN_LIST}; top item per position: "
          + ", ".join(f"{policy[:, p].argmax()} ({policy[:, p].max():.3f})" for p in range(LEN_LIST)))
    correlation = np.corrcoef(computed_bts, logged_bts)[0, 1]
    print(f"check against the propensities BTS logged itself ({logged_bts.size} rows): median |computed - logged| "
          f"{np.median(np.abs(computed_bts - logged_bts)):.4f}, correlation {correlation:.3f}, "
          f"mean logged {logged_bts.mean():.4f} vs computed {computed_bts.mean():.4f}")
    served = empirical_action_dist(bts_log, n_items)
    print("total variation distance, per position, between the computed distribution and the items BTS served in "
          "its log: " + ", ".join(f"{0.5 * np.abs(policy[:, p] - served[:, p]).sum():.2f}" for p in range(LEN_LIST)))
    print("  The production BTS updated its Beta parameters during the logged week (its logged propensity of one item "
          "at one position varies from row to row), so the fixed-prior policy evaluated here, as in OBP's protocol, "
          "only approximates the policy whose click rate is the truth.")

    truth = on_policy(bts_log.click, confidence=args.confidence)
    random_mean = on_policy(random_log.click, confidence=args.confidence)
    level = f"{args.confidence:.0%}"
    print(f"\ntruth: BTS on-policy click rate {truth.value:.5f} [{level} CI {truth.ci_low:.5f}, {truth.ci_high:.5f}] "
          f"({int(bts_log.click.sum())} clicks / {truth.n} rows)")
    print(f"Random's own click rate {random_mean.value:.5f} ({int(random_log.click.sum())} clicks / "
          f"{random_mean.n} rows): relative error {relative_error(random_mean.value, truth.value):.3f}, "
          "what not re-weighting at all would give")

    fold_seed = int(seeds[1].generate_state(1)[0])
    if args.C is None:
        c, losses = choose_c(random_log, policy, args.folds, fold_seed)
        choice = "chosen by cross-fitted log loss from " + ", ".join(f"C={k:g}: {v:.5f}" for k, v in losses.items())
    else:
        c, choice = args.C, "as given"
    results, predictions = estimates(random_log, policy, args, c, fold_seed)
    target = policy[random_log.item, random_log.position]
    ess = effective_sample_size(random_log.propensity, target)
    weights = target / random_log.propensity
    print(f"\nRandom log: n {random_log.click.size}, logging propensity {np.unique(random_log.propensity)} per "
          f"position; weights mean {weights.mean():.3f}, max {weights.max():.1f}; ESS {ess:.0f} "
          f"({ess / weights.size:.1%} of n)")
    print(f"reward model: logistic regression (C={c:g}, {choice}) on {predictions_columns(random_log, n_items)} "
          f"one-hot columns, {args.folds}-fold cross-fitted; log loss {predictions.log_loss:.5f} vs "
          f"{predictions.log_loss_constant:.5f} for the fold click rate (relative cross-entropy "
          f"{predictions.relative_cross_entropy:+.4f}: above 0 means the features predict clicks)")

    boot = bootstrap(random_log, policy, truth.value, args, c) if args.bootstrap else {}
    z = (truth.ci_high - truth.value) / truth.std_error
    rows = []
    for name, estimate in results.items():
        gap_se = float(np.hypot(estimate.std_error, truth.std_error))
        gap = estimate.value - truth.value
        boot_cell = f"{np.mean(boot[name]):.3f} ({np.std(boot[name], ddof=1):.3f})" if boot else "-"
        zr = ZR_OBP_RELATIVE_EE.get(name)
        rows.append([NAMES[name], f"{estimate.value:.5f}", f"[{estimate.ci_low:.5f}, {estimate.ci_high:.5f}]",
                     f"{estimate.std_error:.5f}", f"{relative_error(estimate.value, truth.value):.3f}",
                     f"{gap:+.5f} [{gap - z * gap_se:+.5f}, {gap + z * gap_se:+.5f}]", boot_cell,
                     f"{zr[0]:.3f} ({zr[1]:.3f})" if zr else "-"])
    print(f"\nBTS click rate estimated from the Random log; truth {truth.value:.5f} "
          f"(its std error {truth.std_error:.5f})\n")
    print_table(["estimator", "estimate", f"{level} CI", "std err", "rel. error", f"estimate - truth [{level} CI]",
                 f"rel. error, {args.bootstrap} bootstraps: mean (sd)", "zr-obp README: mean (sd)"], rows)
    print(f"\nESS {ess:.0f} of n {random_log.click.size} (IPS/SNIPS/DR weights). The difference's interval combines "
          "both standard errors: the truth is itself a 10,000-row mean.")
    served_target = served[random_log.item, random_log.position]
    alternative = ips(random_log.click, random_log.propensity, served_target, confidence=args.confidence)
    print("sensitivity to the evaluated policy: IPS with BTS's served item frequencies (per position, from its own "
          f"log) as the policy instead gives {alternative.value:.5f} "
          f"[{alternative.ci_low:.5f}, {alternative.ci_high:.5f}], "
          f"relative error {relative_error(alternative.value, truth.value):.3f}")
    print(f"zr-obp README figures: {ZR_OBP_README}.")
    print("OBP paper (arXiv 2008.07146): its relative-error table for Random -> Bernoulli TS, ALL campaign, on the "
          "full data could not be retrieved as text here; no figures from it are quoted.")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    print_load_after()


def predictions_columns(log: Log, n_items: int) -> int:
    return log.users.shape[1] + n_items + LEN_LIST


def empirical_action_dist(log: Log, n_items: int) -> np.ndarray:
    """How often each item was served at each position in ``log``: an (items, LEN_LIST) array of column shares."""
    counts = np.zeros((n_items, LEN_LIST))
    np.add.at(counts, (log.item, log.position), 1)
    return counts / counts.sum(axis=0, keepdims=True)


def bootstrap(
    log: Log, policy: np.ndarray, truth: float, args: argparse.Namespace, c: float
) -> dict[str, list[float]]:
    """Relative errors over ``args.bootstrap`` resamples of the log (with replacement), as OBP's example reports."""
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 1]))
    errors: dict[str, list[float]] = {name: [] for name in NAMES}
    for b in range(args.bootstrap):
        sample = log.take(rng.integers(0, log.click.size, log.click.size))
        results, _ = estimates(sample, policy, args, c, seed=b)
        for name, estimate in results.items():
            errors[name].append(relative_error(estimate.value, truth))
    return errors


if __name__ == "__main__":
    main()
