"""One deployment or rollback per target at a time, across processes.

Two deployments interleaved read the same previous version, and one could remove a copy the
other had just made live. The lock is an exclusive ``flock`` on ``.deploy.lock`` in the
target directory, held for the whole deployment; the kernel drops it when the holder dies,
so a killed deployment never blocks the next one. The holder writes who it is into the file,
so that a deployment that gives up waiting can say whom it waited for.

``_io.exclusive_lock`` waits forever, which suits the registry's short critical sections but
not a deployment that can take minutes: here the wait is bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from efimero.deploy.history import _now
from efimero.errors import DeployError

LOCK_FILE = ".deploy.lock"
_POLL_S = 0.05


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as its holder wrote it (it may not have written yet)."""
    handle.seek(0)
    try:
        holder = json.loads(handle.read())
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']} ({holder['doing']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another process (it has not said which yet)"


@contextlib.contextmanager
def target_lock(directory: Path, *, target: str, doing: str, wait_s: float) -> Iterator[None]:
    """Hold the deployment lock of ``target`` for the ``with`` block.

    Waits up to ``wait_s`` seconds for a running deployment or rollback to finish.

    Raises:
        DeployError: the target is still busy after ``wait_s``; names the holder's pid and start.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DeployError(
                        f"target {target} is being deployed by {_holder(handle)}; retry when it has finished "
                        f"(waited {wait_s:g} s; --lock-wait sets how long)."
                    ) from None
                time.sleep(_POLL_S)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now(),
                                     "doing": doing}))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(fd, fcntl.LOCK_UN)
