"""A real ``pilothouse serve`` subprocess for the Open Inference Protocol client tests."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.serving.harness import TOKEN


@dataclass(frozen=True)
class Served:
    """Where the server answers."""

    http: str
    """``127.0.0.1:PORT`` (tritonclient.http takes no scheme)."""
    grpc: str | None
    """``127.0.0.1:PORT`` of the gRPC endpoint, when started with one."""
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serve(state: Path, *extra: str) -> Iterator[Served]:
    """Start ``pilothouse serve`` (port 0), wait until ready, SIGTERM it at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pilothouse", "serve", "--port", "0", "--admin-token", TOKEN,
         "--state-dir", str(state), *extra],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    http = grpc = None
    deadline = time.monotonic() + 60
    try:
        while http is None or ("--grpc-port" in extra and grpc is None):
            assert time.monotonic() < deadline, "the server did not start listening"
            line = proc.stderr.readline().decode()
            assert line, "the server exited before listening"
            if found := re.search(r"listening on http://(127\.0\.0\.1:\d+)", line):
                http = found.group(1)
            if found := re.search(r"gRPC .*listening on (127\.0\.0\.1:\d+)", line):
                grpc = found.group(1)
        wait_ready(f"http://{http}/v2/health/ready", deadline)
        yield Served(http, grpc, proc)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert b"Traceback" not in err, err.decode()


def wait_ready(url: str, deadline: float) -> None:
    while True:
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError),
            urllib.request.urlopen(url, timeout=5) as resp,
        ):
            if resp.status == 200:
                return
        assert time.monotonic() < deadline, f"{url} never answered 200"
        time.sleep(0.05)
