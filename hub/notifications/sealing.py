"""Keeping channel URLs and secrets encrypted at rest.

A Slack incoming-webhook URL is a credential (whoever has it can post), and a
webhook signing secret is one by definition; a copy of the database must give
away neither. Both are sealed with Fernet (AES-128-CBC with HMAC-SHA256,
authenticated) under a key derived by HKDF-SHA256 from the hub's *secret key*:
the ``secret_key`` setting, or ``secret_key_file`` (a secret mounted into every
replica), or, when neither is set, 32 random bytes generated once into
``<state_dir>/secret-key`` (mode 0600), next to the admin token. Hub replicas
over one database must share it: set it, or share the state directory. The API
never shows a sealed value: a URL is shown :func:`masked` — its origin and the last four characters.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import yarl
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pilothouse.foundation.errors import ConfigError
from pilothouse.hub.errors import StorageError
from pilothouse.hub.settings import HubSettings

_PURPOSE = b"pilothouse hub: notification channel secrets"
MIN_KEY_CHARS = 32


class Sealer:
    """Encrypts and decrypts short secrets with a key derived from the hub's secret key."""

    def __init__(self, secret_key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
            secret_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, text: str) -> bytes:
        """``text``, encrypted and authenticated."""
        return self._fernet.encrypt(text.encode())

    def unseal(self, sealed: bytes) -> str:
        """The text sealed in ``sealed``; ``StorageError`` if this key did not seal it."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise StorageError(
                "cannot decrypt a channel secret: the hub's secret key is not the one it was "
                "sealed with (set it again, or re-enter the channel's URL and secret)"
            ) from None


def masked(url: str) -> str:
    """Enough of a secret URL to recognise it, not enough to use it: ``https://host/…wxyz``."""
    try:
        parsed = yarl.URL(url)
        host = f"[{parsed.host}]" if ":" in (parsed.host or "") else parsed.host
        origin = f"{parsed.scheme}://{host}" + (
            f":{parsed.explicit_port}" if parsed.explicit_port else ""
        )
    except (ValueError, TypeError):
        return "…"
    rest = url[len(origin) :] if url.startswith(origin) else ""
    return f"{origin}/…{rest[-4:]}" if len(rest) > 8 else f"{origin}/…"


def new_secret() -> str:
    """A fresh webhook signing secret (shown once)."""
    return "whsec_" + secrets.token_urlsafe(32)


def secret_key(settings: HubSettings) -> bytes:
    """The hub's secret key: from the settings, ``secret_key_file``, else its file. Blocking."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.secret_key_file is not None:
        return _shared(settings.secret_key_file)
    path = settings.secret_key_path
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        return _generate(path)


def _shared(path: Path) -> bytes:
    """The key from a file every replica reads: it must exist and hold 32 characters or more."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError([f"secret_key_file: cannot read {path} ({exc.strerror or exc})"]) from exc
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError([f"secret_key_file: {path} holds {len(key)} characters; at least 32"])
    return key


def _generate(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another hub on this state directory was first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key
