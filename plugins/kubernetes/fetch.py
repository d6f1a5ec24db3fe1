r"""The pod's init step: fetch the model packages, verify them, tell the server what to load.

Run by the init container of every pod the plugin makes::

    python -m pilothouse.plugins.kubernetes.fetch --deployment ID --dest DIR --state-dir DIR \\
        --champion PACKAGE_ID SHA256 SOURCE [--challenger PACKAGE_ID SHA256 SOURCE]...

``SOURCE`` is ``http(s)://…`` (sent with ``Authorization: Bearer $PILOTHOUSE_PACKAGE_TOKEN``
when that is set) or ``file://…`` (a mounted ConfigMap). Each archive is
streamed to ``DEST/<sha256>.tar.gz`` while hashed and kept only if its sha256
is the one given; then ``STATE_DIR/deployments.json`` names the deployment's
champion and challengers, which ``pilothouse serve`` loads at start. Any
failure exits 1 with one line saying what and why (the pod's log, quoted by
the plugin in its finding).

A standalone program (its own process, no event loop): blocking I/O is right here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

TOKEN_ENV = "PILOTHOUSE_PACKAGE_TOKEN"
_CHUNK = 1 << 20


class FetchError(Exception):
    """A package could not be fetched or did not verify."""


def main(argv: list[str] | None = None) -> int:
    """Fetch every package, write the state file; 0 on success, 1 with a message otherwise."""
    args = _parser().parse_args(argv)
    try:
        entries = [
            fetch(pkg[0], pkg[1], pkg[2], Path(args.dest))
            for pkg in [*args.champion, *args.challenger]
        ]
        write_state(Path(args.state_dir), args.deployment, entries)
    except FetchError as exc:
        print(f"pilothouse fetch: {exc}", file=sys.stderr)
        return 1
    print(f"pilothouse fetch: {len(entries)} package(s) ready for {args.deployment}")
    return 0


def fetch(model_package_id: str, sha256: str, source: str, dest: Path) -> dict[str, Any]:
    """Copy ``source`` to ``dest/<sha256>.tar.gz`` if its sha256 matches; its server entry."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{sha256.lower()}.tar.gz"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.partial")
        try:
            with _open(source) as src, partial.open("wb") as out:
                digest = _copy(src, out)
            if digest != sha256.lower():
                raise FetchError(
                    f"{model_package_id} from {_safe(source)}: sha256 {digest}, "
                    f"expected {sha256.lower()}"
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return {"model_package_id": model_package_id, "archive": str(target), "sha256": sha256.lower()}


def write_state(state_dir: Path, deployment_id: str, entries: list[dict[str, Any]]) -> None:
    """The server's ``deployments.json``: this deployment, champion first."""
    state_dir.mkdir(parents=True, exist_ok=True)
    champion, challengers = entries[0], entries[1:]
    doc = {deployment_id: {**champion, "challengers": challengers}}
    tmp = state_dir / "deployments.json.partial"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    tmp.replace(state_dir / "deployments.json")


def _open(source: str) -> BinaryIO:
    if source.startswith("file://"):
        try:
            return Path(source.removeprefix("file://")).open("rb")
        except OSError as exc:
            raise FetchError(f"cannot read {source}: {exc}") from exc
    if not source.startswith(("http://", "https://")):
        raise FetchError(f"unsupported package source {source!r}: expected http(s):// or file://")
    request = urllib.request.Request(source)
    token = os.environ.get(TOKEN_ENV)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        response: BinaryIO = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{_safe(source)} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{_safe(source)} unreachable: {exc}") from exc
    return response


def _copy(src: BinaryIO, out: BinaryIO) -> str:
    digest = hashlib.sha256()
    try:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    except OSError as exc:
        raise FetchError(f"reading the package failed: {exc}") from exc
    return digest.hexdigest()


def _safe(source: str) -> str:
    """The source without any query string (it might carry a credential)."""
    return source.split("?", 1)[0]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pilothouse.plugins.kubernetes.fetch",
        description="Fetch and verify model packages for a pod.",
    )
    p.add_argument("--deployment", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument(
        "--champion",
        nargs=3,
        action="append",
        required=True,
        metavar=("PACKAGE_ID", "SHA256", "SOURCE"),
    )
    p.add_argument(
        "--challenger",
        nargs=3,
        action="append",
        default=[],
        metavar=("PACKAGE_ID", "SHA256", "SOURCE"),
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
