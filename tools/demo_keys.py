"""The ``postgres`` profile's one-shot ``hub-keys`` service (docker-compose.yml): shared secrets.

Hub replicas must share their admin token and the secret key that seals notification
channel secrets (a key per replica would leave each unable to read what another stored),
and the hubs and PostgreSQL must agree on the database password. This writes them, once,
into the directory ``DEMO_KEYS_DIR`` (``secrets/`` on the replicas' shared ``hub-state``
volume; made mode 0700), each file mode 0600:

- ``admin-token`` — read by every replica through ``PILOTHOUSE_HUB_ADMIN_TOKEN_FILE``;
- ``secret-key`` — through ``PILOTHOUSE_HUB_SECRET_KEY_FILE``;
- ``db-password`` — PostgreSQL's ``POSTGRES_PASSWORD_FILE``, on its first start;
- ``pgpass`` — the same password for the hubs' client (``PGPASSFILE``, libpq's format), so
  the database URL in the compose file carries none.

A file already there is kept (``pgpass`` is rewritten from ``db-password``): a second run
changes nothing, and a stack brought up again keeps its tokens. Files are written under a
temporary name and renamed, so no reader sees half of one. Standard library only.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

DB_USER = "pilothouse"
DB_NAME = "pilothouse"
GENERATED: dict[str, Callable[[], str]] = {
    "admin-token": lambda: secrets.token_urlsafe(32),
    "secret-key": lambda: secrets.token_urlsafe(48),
    # Letters and digits only: the PostgreSQL entrypoint puts it in SQL text.
    "db-password": lambda: secrets.token_hex(24),
}


def say(message: str) -> None:
    """One line on stdout (``docker-compose logs hub-keys``)."""
    print(f"hub-keys: {message}", flush=True)


def write_private(path: Path, text: str) -> None:
    """``text`` into ``path``, mode 0600, replaced whole."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    partial.replace(path)


def ensure_keys(directory: Path) -> list[str]:
    """Make every missing secret in ``directory``; the names of those made."""
    directory.mkdir(mode=0o700, exist_ok=True)
    made = []
    for name, generate in GENERATED.items():
        path = directory / name
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            continue
        write_private(path, generate() + "\n")
        made.append(name)
    password = (directory / "db-password").read_text(encoding="utf-8").strip()
    write_private(directory / "pgpass", f"*:*:{DB_NAME}:{DB_USER}:{password}\n")
    return made


def main() -> int:
    """Make the secrets; exit 1 naming the directory when it cannot be written."""
    directory = Path(os.environ.get("DEMO_KEYS_DIR", "/var/lib/pilothouse/secrets"))
    try:
        made = ensure_keys(directory)
    except OSError as exc:
        say(f"cannot write the secrets into {directory}: {exc.strerror or exc}")
        return 1
    say(f"made {', '.join(made)}" if made else "every secret is in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
