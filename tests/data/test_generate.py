from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from efimero._api import generate
from efimero.data import read_table
from efimero.data.generate import generate_dataset
from efimero.data.validate import validate_frame
from efimero.schema import CSS_TASK


def test_columns_are_exactly_the_schema() -> None:
    assert list(generate_dataset(50, seed=1).columns) == CSS_TASK.columns


def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path) -> None:
    paths = [generate(400, output=tmp_path / f"{name}.csv", seed=seed).output
             for name, seed in (("a", 5), ("b", 5), ("c", 6))]
    a, b, c = (path.read_bytes() for path in paths)
    assert a == b
    assert a != c


@pytest.mark.parametrize("pattern", ["realistic", "extreme", "balanced"])
def test_every_pattern_passes_validation(pattern: str) -> None:
    validate_frame(generate_dataset(1500, seed=2, pattern=pattern))


def test_devices_are_plausible() -> None:
    frame = generate_dataset(4000, seed=4)
    mobile, desktop = frame[frame.is_mobile == 1], frame[frame.is_desktop == 1]
    assert mobile.viewport_area.median() < desktop.viewport_area.median() / 4
    assert mobile.device_pixel_ratio.median() > desktop.device_pixel_ratio.median()
    assert mobile.touch_enabled.mean() > 0.9 > 0.3 > desktop.touch_enabled.mean()
    assert mobile.estimated_network_speed.median() < desktop.estimated_network_speed.median()


def test_business_hours_follow_the_hour_and_weekday() -> None:
    frame = generate_dataset(3000, seed=5)
    expected = frame.hour_of_day.between(9, 17) & (frame.is_weekend == 0)
    assert (frame.is_business_hours == expected.astype(int)).all()


def test_design_rules_show_in_the_targets() -> None:
    frame = generate_dataset(6000, seed=6)
    night = (frame.hour_of_day >= 21) | (frame.hour_of_day < 6)
    dark_share = frame.css_class_theme.eq("tema-oscuro").groupby(night).mean()
    assert dark_share[True] > dark_share[False] + 0.3
    access = frame.accessibility_needs == 1
    assert frame[access].font_size_base.mean() > frame[~access].font_size_base.mean() + 2
    assert frame[access].css_class_theme.eq("tema-alto-contraste").mean() > 0.5
    assert frame.css_class_density.eq("densidad-baja").groupby(frame.is_mobile).mean()[1] > 0.6
    slow = frame.estimated_network_speed < 1.5
    assert frame[slow & ~access].animation_duration.mean() < frame[~slow & ~access].animation_duration.mean() - 80


def test_extreme_widens_and_balanced_equalises() -> None:
    realistic = generate_dataset(3000, seed=8)
    extreme = generate_dataset(3000, seed=8, pattern="extreme")
    balanced = generate_dataset(3000, seed=8, pattern="balanced")
    for column in ("viewport_area", "estimated_network_speed"):
        spread = lambda f: np.log(f[column]).std()  # noqa: E731
        assert spread(extreme) > spread(realistic)
    assert extreme.accessibility_needs.mean() > 2 * realistic.accessibility_needs.mean()
    for target in CSS_TASK.class_target_names:
        assert balanced[target].value_counts(normalize=True).min() > realistic[target].value_counts(normalize=True).min()
    assert balanced.css_class_theme.value_counts(normalize=True).min() > 0.2


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_other_formats_round_trip(tmp_path, suffix: str) -> None:
    result = generate(120, output=tmp_path / f"data{suffix}", seed=9)
    frame = read_table(result.output)
    pd.testing.assert_frame_equal(validate_frame(frame)[0], generate_dataset(120, seed=9), check_dtype=False)


def test_metadata_describes_the_file(tmp_path) -> None:
    result = generate(200, output=tmp_path / "train.csv", seed=10, pattern="balanced", export_metadata=True)
    assert result.metadata_path == tmp_path / "train_metadata.json"
    metadata = json.loads(result.metadata_path.read_text())
    assert (metadata["size"], metadata["seed"], metadata["pattern"]) == (200, 10, "balanced")
    assert sum(metadata["class_frequencies"]["css_class_theme"].values()) == 200
    assert set(metadata["columns"]["hour_of_day"]) == {"min", "mean", "max"}
    assert metadata["generator_version"]


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size must be at least 1"):
        generate_dataset(0)
