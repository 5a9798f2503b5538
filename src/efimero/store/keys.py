"""The store's two secrets: the prediction-id signing key and the user-id pepper.

Prediction ids are signed (HMAC-SHA256, the pattern of Django's ``signing`` and
itsdangerous) with a key kept in the store's own meta table, so any worker or host on the
same database can check that an id was issued by efimero without asking the process that
issued it, and without the prediction row having been written yet.

User ids are stored only as an HMAC under a *pepper*: a secret kept outside the database
(an environment variable or a file), so someone holding a copy of the database cannot test
guessed ids against the hashes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import uuid
from pathlib import Path

from efimero.errors import StoreError

logger = logging.getLogger(__name__)

PEPPER_ENV = "EFIMERO_USER_ID_PEPPER"
"""Environment variable holding the pepper itself (wins over any file)."""

PEPPER_FILE_NAME = "user_id_pepper"
SERVER_PEPPER_FILE = Path("data") / PEPPER_FILE_NAME
"""The pepper file of a store on a database server, unless configured."""


def default_pepper_file(db_url: str) -> Path:
    """Where the pepper lives unless configured: beside a SQLite file, else ``data/user_id_pepper``."""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        return Path(db_url.removeprefix("sqlite:///")).parent / PEPPER_FILE_NAME
    return SERVER_PEPPER_FILE

MIN_PEPPER_LENGTH = 16
_SIGNATURE_BYTES = 12


class PredictionIds:
    """Issue and verify signed prediction ids of the form ``<uuid4>.<signature>``.

    Example:
        >>> ids = PredictionIds(b"k" * 32)
        >>> ids.verify(ids.issue())
        True
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode("ascii"), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).decode("ascii")

    def issue(self) -> str:
        token = str(uuid.uuid4())
        return f"{token}.{self._sign(token)}"

    def verify(self, prediction_id: str) -> bool:
        """True when ``prediction_id`` was issued with this key (constant-time comparison)."""
        token, _, signature = prediction_id.partition(".")
        if not signature or not token.isascii():
            return False
        return hmac.compare_digest(signature, self._sign(token))


def user_hash(secret: bytes, user_id: str) -> str:
    """HMAC-SHA256 of a user id under ``secret``: stable per deployment, meaningless without it."""
    return hmac.new(secret, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def load_pepper(path: Path, *, create: bool = False) -> bytes:
    """The user-id pepper: ``$EFIMERO_USER_ID_PEPPER``, else the contents of ``path``.

    Args:
        path: pepper file (see :func:`default_pepper_file`).
        create: make a new random pepper file when there is none. The service does this on
            first start; readers (``efimero store forget``) never do, since a new pepper
            would match nothing.

    Raises:
        StoreError: the pepper is too short, or the file is missing and ``create`` is False.
    """
    from_env = os.environ.get(PEPPER_ENV)
    if from_env is not None:
        return _checked(from_env, f"${PEPPER_ENV}")
    path = Path(path)
    if not path.is_file():
        if not create:
            raise StoreError(
                f"no user-id pepper: set ${PEPPER_ENV} or point --pepper-file at the file the service "
                f"uses. Got {path} instead, which does not exist."
            )
        _create_exclusively(path)
    return _checked(path.read_text(encoding="utf-8").strip(), str(path))


def _checked(pepper: str, source: str) -> bytes:
    if len(pepper) < MIN_PEPPER_LENGTH:
        raise StoreError(f"the user-id pepper in {source} must be at least {MIN_PEPPER_LENGTH} characters. "
                         f"Got {len(pepper)} instead.")
    return pepper.encode("utf-8")


def _create_exclusively(path: Path) -> None:
    """Write a new pepper to ``path`` unless another process got there first (link never replaces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp_name, path)
            logger.warning("created a new user-id pepper in %s; give every host of the deployment the same "
                           "one (or set $%s) and keep it out of database backups", path, PEPPER_ENV)
    finally:
        os.unlink(tmp_name)
