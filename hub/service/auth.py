"""Who is asking: the admin, the agent of one prediction environment, or a package reader.

Three kinds of bearer token. The *admin token* comes from the settings, or from
``admin_token_file`` (a secret mounted into every replica), or, when neither is
set, is generated once and kept in ``<state_dir>/admin-token`` (mode 0600,
reused on every later start, shared by replicas that share the state directory).
*Agent tokens* are made per PE by the admin; the hub keeps only their sha256, so
a stolen database reveals none.
An agent token reaches only its own PE: its desired state and watch stream, its
heartbeat, events and deployment status; model packages are readable by every
agent. Tokens are compared in constant time. The admin may list a PE's agent
tokens and revoke one: it is refused from the next request on, and an open
watch stream of it ends at its next wake-up (:meth:`Authenticator.still_valid`).

*Package tokens* (``php_…``) are read-only and PE-scoped, for what runs the
PE's models without being its agent (a Kubernetes pod's init container): they
may only ``GET`` the archive of a model package that a live deployment of
their PE wants or runs (champion or challenger, desired or observed) — 403 for
any other package and any other endpoint. The admin issues, lists and revokes
them; so may the PE's own agent, which holds more than they grant. They are
stored hashed beside the agent tokens (``kind = 'package'``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pilothouse.foundation.errors import ConfigError
from pilothouse.hub.errors import Forbidden, Unauthorized
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.interface import Store


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: the admin, or the agent of ``prediction_environment_id``."""

    admin: bool
    prediction_environment_id: str | None = None
    token_id: str | None = None
    """The agent token's id (None for the admin)."""
    packages_only: bool = False
    """A package token: it may only download the archives of packages its PE uses."""

    def require_admin(self) -> None:
        """``Forbidden`` unless the admin asks."""
        if not self.admin:
            raise Forbidden("this needs the admin token")

    def require_environment(self, pe_id: str) -> None:
        """``Forbidden`` unless the admin or the agent of ``pe_id`` asks."""
        if not self.admin and self.prediction_environment_id != pe_id:
            raise Forbidden(f"this agent token is not for prediction environment {pe_id!r}")


ADMIN = Principal(admin=True)


def new_agent_token() -> str:
    """A fresh agent token (shown once)."""
    return "pha_" + secrets.token_urlsafe(32)


def new_package_token() -> str:
    """A fresh read-only package token (shown once)."""
    return "php_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the hub stores of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def admin_token(settings: HubSettings) -> str:
    """The admin token: from the settings, ``admin_token_file`` or its generated file. Blocking."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    if settings.admin_token_file is not None:
        return _shared(settings.admin_token_file, "admin_token_file")
    path = settings.admin_token_path
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return _generate(path)


def _generate(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "phadm_" + secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another hub on this state directory was first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


def _shared(path: Path, setting: str) -> str:
    """A secret from a file every replica reads (it must exist and hold something)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError([f"{setting}: cannot read {path} ({exc.strerror or exc})"]) from exc
    if not text:
        raise ConfigError([f"{setting}: {path} is empty"])
    return text


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`."""

    def __init__(self, admin: str, store: Store) -> None:
        self._admin = admin.encode()
        self._store = store

    async def authenticate(self, header: str | None) -> Principal:
        """The caller, or ``Unauthorized`` for a missing, malformed or unknown token."""
        token = _bearer(header)
        if hmac.compare_digest(token.encode(), self._admin):
            return ADMIN
        found = await self._store.environment_for_token(token_hash(token))
        if found is None:
            raise Unauthorized("unknown or revoked token")
        token_id, pe_id, kind = found
        return Principal(
            admin=False,
            prediction_environment_id=pe_id,
            token_id=token_id,
            packages_only=kind == "package",
        )

    async def still_valid(self, who: Principal) -> bool:
        """Whether ``who`` may still be served (False once its agent token is revoked)."""
        return who.token_id is None or await self._store.token_live(who.token_id)


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header (expected 'Bearer <token>')")
    return token.strip()
