from __future__ import annotations

import pandas as pd
import pytest

from efimero.features import engineer_features
from efimero.schema import FEATURE_NAMES

PHONE_AT_NIGHT = dict(local_hour=23, weekday=5, device_type="mobile", max_touch_points=5,
                      device_pixel_ratio=3.0, viewport_width=390, viewport_height=844,
                      avg_session_duration=95.0, total_interactions=40, days_since_first_visit=12,
                      downlink_mbps=4.5, accessibility_needs=0)


def test_features_of_a_phone_at_night() -> None:
    row = engineer_features(pd.DataFrame([PHONE_AT_NIGHT])).iloc[0]
    assert list(row.index) == FEATURE_NAMES
    assert (row.is_mobile, row.is_tablet, row.is_desktop, row.touch_enabled) == (1, 0, 0, 1)
    assert (row.is_weekend, row.is_business_hours, row.user_density_group) == (1, 0, 1)
    assert row.viewport_area == 390 * 844
    assert row.aspect_ratio == pytest.approx(390 / 844, abs=1e-4)
    assert row.pixel_density == 480.0


def test_business_hours_and_intensity() -> None:
    frame = pd.DataFrame([PHONE_AT_NIGHT | {"local_hour": h, "weekday": 2} for h in (8, 9, 17, 18)])
    features = engineer_features(frame)
    assert features.is_business_hours.tolist() == [0, 1, 1, 0]
    assert features.time_intensity.between(0, 1).all()
