"""Atomic file replacement, hashing and locks: the only code that replaces files.

A crash at any point leaves either the old file or the new one, never a torn mix: the new
bytes go to a temporary file in the same directory, are fsynced, renamed over the target
with ``os.replace`` and the directory itself is fsynced so the rename survives power loss.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from efimero.errors import RegistryFormatError

_CHUNK = 1 << 20
_Model = TypeVar("_Model", bound=BaseModel)


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry so that renames inside it are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, payload: Any) -> None:
    """Replace ``path`` with ``payload`` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_model(path: Path, model: type[_Model], what: str) -> _Model | None:
    """The ``model`` saved as JSON at ``path`` (a state file beside a registry), or None when there is none.

    Raises:
        RegistryFormatError: the file cannot be read or is not ``what``; names each bad field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryFormatError(f"{path}: cannot be read ({exc}).") from exc
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}" for error in exc.errors()
        )
        raise RegistryFormatError(f"{path}: is not {what} ({problems}).") from exc


def write_model(path: Path, value: BaseModel) -> None:
    """Replace ``path`` with ``value`` as indented JSON, atomically (what :func:`read_model` reads back)."""
    atomic_write_text(path, value.model_dump_json(indent=2) + "\n")


def write_or_remove_model(path: Path, value: BaseModel | None) -> None:
    """:func:`write_model`, or remove ``path`` (durably) when ``value`` is None: a state file that is optional."""
    if value is not None:
        write_model(path, value)
    elif path.exists():
        path.unlink()
        fsync_dir(path.parent)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` for the ``with`` block.

    Serialises writers of a registry across processes; readers never take it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Build a directory in a hidden sibling and put it in ``target``'s place when the block ends.

    The files written into the yielded staging directory become ``target`` only if the block
    finishes; on an exception the staging directory is removed and ``target`` is left as it was.
    An existing ``target`` is moved aside, replaced by a rename, then deleted, so readers see the
    old directory or the new one, never a mix (a crash in between leaves the old one beside it).
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(staging, _FILE_MODE | (_FILE_MODE & 0o444) >> 2)  # mkdtemp gives 0o700; a plain mkdir 0o777 & ~umask
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(staging)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        os.replace(target, old)
    os.replace(staging, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
