"""``pilothouse package build|inspect``: make and look into model packages.

``build`` validates a package directory and packs it reproducibly (the same
files always give the same sha256); ``inspect`` shows the manifest, the
sha256 and the files of a directory or an archive, as text or ``--json``.
Exit codes: 0 done, 1 the package is invalid (the message says why).
``modelpkg`` is imported when a command runs, so other commands start faster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from pilothouse.modelpkg import PackageInfo


def register(sub: Any) -> None:
    """Add ``package build`` and ``package inspect``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "package", help="build and inspect model packages"
    )
    package_sub = parser.add_subparsers(dest="package_command", required=True, metavar="COMMAND")
    build = package_sub.add_parser(
        "build",
        help="validate a package directory and pack it reproducibly",
        description="Validate DIR (model.yaml, artifact, samples) and write a .tar.gz whose "
        "sha256 depends only on the files' contents.",
    )
    build.add_argument("directory", type=Path, metavar="DIR", help="package directory")
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="archive to write (default NAME-VERSION.tar.gz)",
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.set_defaults(handler=run_build)
    inspect = package_sub.add_parser(
        "inspect",
        help="show a package's manifest, sha256 and files",
        description="Validate a package directory or archive and show what it holds; archives "
        "are read with the same checks the prediction server applies.",
    )
    inspect.add_argument("path", type=Path, metavar="FILE_OR_DIR", help="archive or directory")
    inspect.add_argument("--json", action="store_true", help="print as JSON")
    inspect.set_defaults(handler=run_inspect)


def run_build(args: argparse.Namespace) -> int:
    """Build the archive and print its sha256."""
    from pilothouse.modelpkg import PackageError, build_package

    try:
        info, out = build_package(args.directory, args.output)
    except PackageError as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps({"archive": str(out), **info.to_dict()}).decode())
    else:
        print(f"{out}  sha256 {info.sha256}  ({len(info.files)} files, {info.size:,} bytes)")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Print what a package holds."""
    from pilothouse.modelpkg import PackageError, inspect_path

    try:
        info = inspect_path(args.path)
    except PackageError as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(info.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(describe(info))
    return 0


def describe(info: PackageInfo) -> str:
    """A human-readable summary, the file list and the manifest."""
    from pilothouse.modelpkg import dump_manifest

    m = info.manifest
    target = m.target.type.value + f" ({m.target.name})"
    if m.target.classes:
        target += ": " + ", ".join(m.target.classes)
    features = ", ".join(f"{f.name} ({f.type.value})" for f in m.features)
    baseline = "none"
    if m.baseline is not None:
        baseline = f"{len(m.baseline.features)} features"
        baseline += ", predictions" if m.baseline.prediction is not None else ""
    width = max((len(f.path) for f in info.files), default=0)
    lines = [
        f"name:      {m.name}",
        f"version:   {m.version}",
        f"format:    {m.format.value} (artifact {m.artifact})",
        f"sha256:    {info.sha256}",
        f"size:      {info.size:,} bytes in {len(info.files)} files",
        f"target:    {target}",
        f"features:  {features}",
        f"baseline:  {baseline}",
        f"samples:   {len(m.samples)}",
        "files:",
        *(f"  {f.path.ljust(width)}  {f.size:>12,}" for f in info.files),
        "manifest:",
        *("  " + line for line in dump_manifest(m).decode().splitlines()),
    ]
    return "\n".join(lines)
