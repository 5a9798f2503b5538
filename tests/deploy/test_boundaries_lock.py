"""The deployment lock at its limit (found by `make mutation`): a busy target is refused once the
wait is over, naming who holds it; a released lock is free and says nobody."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from efimero.deploy._lock import LOCK_FILE, target_lock
from efimero.errors import DeployError


def test_a_busy_target_is_refused_after_the_wait_naming_the_holder(tmp_path) -> None:
    with target_lock(tmp_path, target="production", doing="deploy of v_1", wait_s=1):
        holder = json.loads((tmp_path / LOCK_FILE).read_text(encoding="utf-8"))
        assert (holder["pid"], holder["host"], holder["doing"]) == (os.getpid(), socket.gethostname(), "deploy of v_1")
        started = time.monotonic()
        with pytest.raises(DeployError) as refused, target_lock(tmp_path, target="production", doing="b", wait_s=0.2):
            pass
        assert time.monotonic() - started >= 0.2
    assert str(refused.value) == (
        f"target production is being deployed by pid {os.getpid()} on {socket.gethostname()} since "
        f"{holder['since']} (deploy of v_1); retry when it has finished (waited 0.2 s; --lock-wait sets how long).")
    assert (tmp_path / LOCK_FILE).read_text(encoding="utf-8") == ""  # released: nobody named
    with target_lock(tmp_path, target="production", doing="next", wait_s=0):
        pass


def test_a_holder_that_has_not_written_yet_is_named_as_such(tmp_path) -> None:
    import fcntl

    (tmp_path / LOCK_FILE).write_text("", encoding="utf-8")
    with open(tmp_path / LOCK_FILE, encoding="utf-8") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DeployError, match=r"being deployed by another process \(it has not said which yet\)"), \
                target_lock(tmp_path, target="production", doing="b", wait_s=0):
            pass
