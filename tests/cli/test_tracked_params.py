"""Flags logged as MLflow run parameters never carry a database password."""

from __future__ import annotations

import pytest

from efimero.cli._tracking import loggable


@pytest.mark.parametrize(("value", "logged"), [
    ("postgresql://bob:s3cret@db.example:5432/efimero", "postgresql://bob:***@db.example:5432/efimero"),
    ("redis://:token@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("postgresql+psycopg://u:p@ss@h/d", "postgresql+psycopg://u:***@h/d"),
    ("sqlite:///data/efimero.db", "sqlite:///data/efimero.db"),
    (7, 7),
])
def test_a_url_flag_is_logged_without_its_password(value: object, logged: object) -> None:
    assert loggable(value) == logged
