"""Synthetic visits with targets produced by documented design rules.

The generator draws raw visit contexts from realistic distributions (phones are small, dense
and mostly on mobile networks; visits follow the daily traffic curve; most visitors are
recent and casual), turns them into features with the shared feature processor and derives
the targets from the design rules below plus seeded noise. The rules are what a model has to
learn, so they are written out here once:

Classes (sampled from a softmax over rule scores, so each rule is a tendency, not a law):

* theme: night (21:00–05:59) → ``tema-oscuro``, evening (18–20 h) and phones lean dark too;
  business hours → ``tema-claro``; accessibility needs → ``tema-alto-contraste``.
* density: phones, accessibility needs and casual visitors → ``densidad-baja``; large
  desktop viewports and power users → ``densidad-alta``; tablets → ``densidad-media``.
* font: accessibility needs → ``fuente-grande``; power users on desktops → ``fuente-mono``;
  long readers (sessions over 5 min), evenings and weekends → ``fuente-serif``; else sans.

Variables (rule value + Gaussian noise, clipped to the schema range):

* font size 16 px, +1 on phones, +0.5 on tablets, +3.5 with accessibility needs, −1 on high
  density, +0.8 on low density, +0.5 on large screens.
* line height 1.5, +0.15 accessibility, +0.05 phones, −0.1 high density, +0.08 serif.
* spacing 8 px, +4 low density, −3 high density, +1 tablets, +2 accessibility.
* radius 6 px, +6 phones, +4 tablets, +2 casual visitors.
* hue 210°, +45 at night, +20 in the evening, −15 in business hours, +10 at weekends.
* saturation 70 %, −10 at night, +15 for high contrast; lightness 45 %, +20 on the dark
  theme, −12 on high contrast.
* animation 280 ms (220 on phones), −120 under 1.5 Mbit/s, −60 under 5 Mbit/s, ×0.25 with
  accessibility needs (reduced motion).

Patterns: ``realistic`` uses the distributions above; ``extreme`` widens them to edge
cases (any hour, tiny and huge viewports, DPR 1–4, very slow and very fast networks, more
accessibility needs); ``balanced`` draws a large realistic pool and resamples it with weights
inverse to the class frequencies, so every class label is about equally common.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from efimero.css import CLASS_TARGET_PREFIX, DEFAULT_TOKENS, StyleTokens
from efimero.features import DEVICE_TYPES, HOURLY_TRAFFIC, engineer_features
from efimero.schema import CSS_TASK

GENERATOR_VERSION = "1.0.0"
Pattern = Literal["realistic", "extreme", "balanced"]
PATTERNS: tuple[str, ...] = ("realistic", "extreme", "balanced")

_DEVICE_SHARE = {"realistic": (0.55, 0.10, 0.35), "extreme": (1 / 3, 1 / 3, 1 / 3)}
_MOBILE_WIDTHS = np.array([360, 375, 390, 393, 412, 414, 430])
_TABLET_WIDTHS = np.array([744, 768, 810, 820, 834, 1024])
_DESKTOP_WIDTHS = np.array([1280, 1366, 1440, 1536, 1680, 1920, 2560])
_DPR_CHOICES = {
    "mobile": np.array([2.0, 2.625, 3.0, 3.5]),
    "tablet": np.array([1.5, 2.0]),
    "desktop": np.array([1.0, 1.25, 1.5, 2.0]),
}
_MEDIAN_DOWNLINK = {"mobile": 6.0, "tablet": 20.0, "desktop": 40.0}
_BALANCED_POOL_FACTOR = 8
_RAKING_ROUNDS = 20
_DECISIVENESS = 2.0
"""Scale of rule scores against the unit Gumbel noise: higher makes the rules more certain."""


def _viewports(
    rng: np.random.Generator, device: np.ndarray, extreme: bool
) -> tuple[np.ndarray, np.ndarray]:
    n = device.size
    width = np.empty(n)
    height = np.empty(n)
    for kind, widths, height_ratio in (
        ("mobile", _MOBILE_WIDTHS, (1.45, 2.4)),
        ("tablet", _TABLET_WIDTHS, (1.2, 1.45)),
        ("desktop", _DESKTOP_WIDTHS, (0.5, 0.65)),
    ):
        mask = device == kind
        count = int(mask.sum())
        if extreme:
            low, high = widths.min() * 0.6, widths.max() * 1.5
            width[mask] = np.round(rng.uniform(low, high, count))
        else:
            width[mask] = rng.choice(widths, count)
        height[mask] = np.round(width[mask] * rng.uniform(*height_ratio, count))
    # Tablets (and, in extreme data, any device) are sometimes held in landscape.
    flip_share = np.where(device == "tablet", 0.3, 0.15 if extreme else 0.0)
    flip = rng.random(n) < flip_share
    width[flip], height[flip] = height[flip], width[flip].copy()
    return width, height


def sample_contexts(rng: np.random.Generator, size: int, *, extreme: bool = False) -> pd.DataFrame:
    """Draw ``size`` raw visit contexts (see :mod:`efimero.features` for the columns)."""
    hour_weights = np.ones(24) if extreme else HOURLY_TRAFFIC
    hour = rng.choice(24, size, p=hour_weights / hour_weights.sum())
    weekday = rng.integers(0, 7, size)
    device = rng.choice(DEVICE_TYPES, size, p=_DEVICE_SHARE["extreme" if extreme else "realistic"])
    width, height = _viewports(rng, device, extreme)
    if extreme:
        dpr = np.round(rng.uniform(1.0, 4.0, size) * 4) / 4
    else:
        dpr = np.empty(size)
        for kind, choices in _DPR_CHOICES.items():
            mask = device == kind
            dpr[mask] = rng.choice(choices, int(mask.sum()))
    touch_share = np.where(device == "desktop", 0.12, 0.99)
    touch_points = np.where(rng.random(size) < touch_share, rng.choice([5, 10], size), 0)

    returning = rng.random(size) >= 0.3
    days = np.where(returning, np.ceil(rng.exponential(90, size)), 0).clip(0, 3650)
    visits = 1 + rng.poisson(days / 7)
    interactions = np.round(visits * rng.lognormal(np.log(6), 0.6, size)).astype(np.int64)
    session_median = np.where(device == "desktop", 190.0, 130.0)
    session = rng.lognormal(np.log(session_median), 0.7, size).clip(5, 7200)

    median_downlink = np.array([_MEDIAN_DOWNLINK[kind] for kind in device])
    spread = 1.8 if extreme else 1.0
    downlink = rng.lognormal(np.log(median_downlink), spread, size).clip(0.05, 1000)
    accessibility = (rng.random(size) < (0.3 if extreme else 0.08)).astype(int)
    return pd.DataFrame(
        {
            "local_hour": hour,
            "weekday": weekday,
            "device_type": device,
            "max_touch_points": touch_points,
            "device_pixel_ratio": dpr,
            "viewport_width": width,
            "viewport_height": height,
            "avg_session_duration": np.round(session, 1),
            "total_interactions": interactions,
            "days_since_first_visit": days.astype(np.int64),
            "downlink_mbps": np.round(downlink, 2),
            "accessibility_needs": accessibility,
        }
    )


def _sample_class(rng: np.random.Generator | None, labels: tuple[str, ...], scores: list) -> np.ndarray:
    """One label per row: sampled from a softmax over the rule scores (Gumbel-max), or with
    no ``rng`` the highest-scoring label."""
    logits = _DECISIVENESS * np.column_stack([np.broadcast_to(np.asarray(s, float), scores[0].shape) for s in scores])
    if rng is not None:
        logits = logits + rng.gumbel(size=logits.shape)
    return np.asarray(labels, dtype=object)[np.argmax(logits, axis=1)]


def preferred_style(features: pd.DataFrame, *, classes: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The design rules without noise: the most likely classes and the rule values per row.

    This is the "true taste" the rules encode; the visitor simulator uses it as each
    visitor's hidden preference. ``classes`` imposes class labels (target → one label per
    row); the variables then follow the rules for those classes.
    """
    return _rule_targets(None, features, classes=classes)


def _signals(f: pd.DataFrame) -> dict[str, np.ndarray]:
    """The visitor traits the design rules read (1.0 where a trait holds), from the features."""
    hour = f["hour_of_day"].to_numpy()
    group = f["user_density_group"].to_numpy()
    speed = f["estimated_network_speed"].to_numpy()
    return {
        "night": ((hour >= 21) | (hour < 6)).astype(float),
        "evening": ((hour >= 18) & (hour < 21)).astype(float),
        "business": f["is_business_hours"].to_numpy(float),
        "weekend": f["is_weekend"].to_numpy(float),
        "mobile": f["is_mobile"].to_numpy(float),
        "tablet": f["is_tablet"].to_numpy(float),
        "desktop": f["is_desktop"].to_numpy(float),
        "access": f["accessibility_needs"].to_numpy(float),
        "casual": (group == 0).astype(float),
        "power": (group == 2).astype(float),
        "big_screen": (f["viewport_area"].to_numpy() > 1.5e6).astype(float),
        "long_reader": (f["avg_session_duration"].to_numpy() > 300).astype(float),
        "slow_network": (speed < 1.5).astype(float),
    }


def _teacher_targets(rng: np.random.Generator | None, f: pd.DataFrame, tokens: StyleTokens) -> pd.DataFrame:
    """Targets for a site's own style tokens, which have no design rules: a fixed random teacher.

    Each class option and each variable gets weights over the visitor traits of :func:`_signals`,
    drawn from a seed derived from the tokens alone (so every chunk, seed and machine sees the
    same relation): options are sampled from a softmax over their scores like the design rules',
    variables are placed in their range by a sigmoid of their score plus noise. It makes data a
    model can learn and a page can be styled from before the site has real traffic.
    """
    signal = np.column_stack(list(_signals(f).values())) - 0.5  # centred on a fixed point: row by row
    digest = hashlib.sha256(json.dumps(tokens.to_dict(), sort_keys=True).encode()).digest()
    teacher = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    frame = {}
    for group in tokens.classes:
        weights = teacher.normal(0, 1.5, (signal.shape[1], len(group.options)))
        frame[group.target] = _sample_class(rng, group.options, list((signal @ weights).T))
    for variable in tokens.variables:
        score = signal @ teacher.normal(0, 1.0, signal.shape[1])
        if rng is not None:
            score = score + rng.normal(0, 0.3, len(f))
        share = 0.15 + 0.7 / (1 + np.exp(-score))
        frame[variable.target] = np.round(variable.min + share * (variable.max - variable.min), 3)
    return pd.DataFrame(frame, index=f.index)


def _rule_targets(
    rng: np.random.Generator | None, f: pd.DataFrame, *, classes: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Apply the design rules of the module docstring to features ``f`` (noise from ``rng``)."""
    signal = _signals(f)
    night, evening, business, weekend = (signal[k] for k in ("night", "evening", "business", "weekend"))
    mobile, tablet, desktop, access = (signal[k] for k in ("mobile", "tablet", "desktop", "access"))
    casual, power, big_screen = signal["casual"], signal["power"], signal["big_screen"]
    long_reader = signal["long_reader"]
    speed = f["estimated_network_speed"].to_numpy()
    n = len(f)
    labels = {t.name: t.labels for t in CSS_TASK.class_targets}

    theme = _sample_class(rng, labels["css_class_theme"], [
        0.8 + 1.5 * business,
        3.2 * night + 1.4 * evening + 0.4 * mobile,
        4.5 * access - 1.5 + np.zeros(n),
    ])
    density = _sample_class(rng, labels["css_class_density"], [
        2.0 * mobile + 2.5 * access + 1.0 * casual,
        1.2 + 1.0 * tablet + np.zeros(n),
        2.5 * desktop * big_screen + 1.5 * power - 1.0 * mobile,
    ])
    font = _sample_class(rng, labels["css_class_font"], [
        1.5 + np.zeros(n),
        2.0 * long_reader + 0.6 * weekend + 0.6 * evening,
        2.5 * power * desktop - 0.5,
        5.0 * access - 1.5,
    ])
    imposed = classes or {}
    theme = np.asarray(imposed.get("css_class_theme", theme), dtype=object)
    density = np.asarray(imposed.get("css_class_density", density), dtype=object)
    font = np.asarray(imposed.get("css_class_font", font), dtype=object)
    low, high = (density == "densidad-baja"), (density == "densidad-alta")
    dark, contrast = (theme == "tema-oscuro"), (theme == "tema-alto-contraste")

    def noisy(value: np.ndarray, sd: float) -> np.ndarray:
        return value if rng is None else value + rng.normal(0, sd, n)

    animation = np.where(mobile == 1, 220.0, 280.0) - 120 * (speed < 1.5) - 60 * ((speed >= 1.5) & (speed < 5))
    targets = {
        "css_class_density": density,
        "css_class_font": font,
        "css_class_theme": theme,
        "font_size_base": noisy(16 + mobile + 0.5 * tablet + 3.5 * access - high + 0.8 * low + 0.5 * big_screen, 0.6),
        "line_height_base": noisy(
            1.5 + 0.15 * access + 0.05 * mobile - 0.1 * high + 0.08 * (font == "fuente-serif"), 0.04
        ),
        "spacing_base": noisy(8 + 4.0 * low - 3.0 * high + tablet + 2 * access, 1.0),
        "border_radius_base": noisy(6 + 6 * mobile + 4 * tablet + 2 * casual, 1.5),
        "color_primary_h": noisy(210 + 45 * night + 20 * evening - 15 * business + 10 * weekend, 12),
        "color_primary_s": noisy(70 - 10 * night + 15 * contrast, 6),
        "color_primary_l": noisy(45 + 20 * dark - 12 * contrast, 4),
        "animation_duration": noisy(animation * np.where(access == 1, 0.25, 1.0), 15),
    }
    frame = pd.DataFrame(targets, index=f.index)
    for target in CSS_TASK.regression_targets:
        frame[target.name] = frame[target.name].clip(target.minimum, target.maximum)
    decimals = {"line_height_base": 3, "animation_duration": 0}
    return frame.round({t: decimals.get(t, 2) for t in CSS_TASK.regression_target_names})


def _generate_rows(rng: np.random.Generator, size: int, *, extreme: bool, tokens: StyleTokens) -> pd.DataFrame:
    features = engineer_features(sample_contexts(rng, size, extreme=extreme))
    targets = _rule_targets(rng, features) if tokens == DEFAULT_TOKENS else _teacher_targets(rng, features, tokens)
    return pd.concat([features, targets], axis=1)


def _balance(rng: np.random.Generator, pool: pd.DataFrame, size: int, targets: list[str]) -> pd.DataFrame:
    """Resample ``pool`` so every class label is about equally common.

    The row weights are fitted by raking (iterative proportional fitting): each round
    rescales them so one target's weighted label shares become uniform, cycling through
    the targets until all marginals are close to uniform at once.
    """
    weights = np.ones(len(pool))
    for _ in range(_RAKING_ROUNDS):
        for target in targets:
            labels = pool[target].to_numpy()
            share = pd.Series(weights).groupby(labels).sum() / weights.sum()
            weights = weights / (share.reindex(labels).to_numpy() * share.size)
    chosen = rng.choice(len(pool), size, replace=False, p=weights / weights.sum())
    return pool.iloc[np.sort(chosen)].reset_index(drop=True)


def generate_dataset(size: int = 1000, *, seed: int | Sequence[int] = 42,
                     pattern: Pattern = "realistic", tokens: StyleTokens = DEFAULT_TOKENS) -> pd.DataFrame:
    """Generate ``size`` labelled visits; the same seed, pattern and tokens give the same rows.

    The default tokens' targets follow the design rules of the module docstring; a site's own
    tokens get the fixed random teacher of :func:`_teacher_targets`.

    Example:
        >>> frame = generate_dataset(200, seed=7)
        >>> frame.shape
        (200, 30)
    """
    if size < 1:
        raise ValueError(f"size must be at least 1. Got {size} instead.")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}. Got {pattern!r} instead.")
    rng = np.random.default_rng(seed)
    if pattern == "balanced":
        pool = _generate_rows(rng, size * _BALANCED_POOL_FACTOR, extreme=False, tokens=tokens)
        return _balance(rng, pool, size, tokens.task.class_target_names)
    return _generate_rows(rng, size, extreme=pattern == "extreme", tokens=tokens)


CHUNK_ROWS = 250_000
"""Rows per chunk (and part file) of a partitioned dataset."""


def generate_chunks(size: int, *, seed: int = 42, pattern: Pattern = "realistic", chunk_rows: int = CHUNK_ROWS,
                    tokens: StyleTokens = DEFAULT_TOKENS) -> Iterator[pd.DataFrame]:
    """Generate ``size`` rows as chunks of ``chunk_rows``, one at a time (bounded memory).

    Chunk ``i`` is generated from its own seed sequence ``(seed, i)``, so the rows depend only
    on the seed, the pattern and the chunk size, never on the machine or on the other chunks;
    ``balanced`` balances each chunk on its own.

    Example:
        >>> [len(chunk) for chunk in generate_chunks(5, seed=1, chunk_rows=2)]
        [2, 2, 1]
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1. Got {chunk_rows} instead.")
    for index, start in enumerate(range(0, size, chunk_rows)):
        yield generate_dataset(min(chunk_rows, size - start), seed=[seed, index], pattern=pattern, tokens=tokens)


class DatasetDescription:
    """:func:`describe_dataset` accumulated chunk by chunk: counts, min, max and sums per column."""

    def __init__(self, *, seed: int, pattern: str) -> None:
        self.seed, self.pattern, self.rows = seed, pattern, 0
        self.classes: dict[str, pd.Series] = {}
        self.low: pd.Series | None = None
        self.high: pd.Series | None = None
        self.total: pd.Series | None = None

    def add(self, frame: pd.DataFrame) -> None:
        numeric = frame.select_dtypes("number")
        self.rows += len(frame)
        for name in [column for column in frame.columns if column.startswith(CLASS_TARGET_PREFIX)]:
            counts = frame[name].value_counts()
            self.classes[name] = counts if name not in self.classes else self.classes[name].add(counts, fill_value=0)
        low, high, total = numeric.min(), numeric.max(), numeric.sum()
        self.low = low if self.low is None else self.low.where(self.low <= low, low)
        self.high = high if self.high is None else self.high.where(self.high >= high, high)
        self.total = total if self.total is None else self.total + total

    def to_dict(self) -> dict:
        assert self.low is not None and self.high is not None and self.total is not None, "add() a chunk first"
        return {
            "generator_version": GENERATOR_VERSION,
            "size": self.rows,
            "seed": self.seed,
            "pattern": self.pattern,
            "class_frequencies": {
                name: {str(k): int(v) for k, v in counts.sort_index().items()} for name, counts in self.classes.items()
            },
            "columns": {
                name: {
                    "min": float(self.low[name]),
                    "mean": round(float(self.total[name]) / self.rows, 6),
                    "max": float(self.high[name]),
                }
                for name in self.total.index
            },
        }


def describe_dataset(frame: pd.DataFrame, *, seed: int, pattern: str) -> dict:
    """Metadata of a generated dataset: class frequencies and per-column min/mean/max."""
    description = DatasetDescription(seed=seed, pattern=pattern)
    description.add(frame)
    return description.to_dict()
