"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` on a free port.

The cluster is made once per session (:func:`postgres_cluster`) in a temporary
directory and removed at the end; each test that needs a database gets a fresh one
(``CREATE DATABASE … TEMPLATE``), which costs a few tens of milliseconds instead of a
cluster. The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``, package
``postgresql``, which ``.ci/run`` installs); ``PILOTHOUSE_PG_BIN`` names another
directory. ``initdb`` refuses to run as root, so as root every server command runs as
the ``postgres`` user (``runuser``) over a directory that user owns.

The server is tuned for tests, not for durability: no fsync, no full-page writes.
Nothing here is skipped: without PostgreSQL the tests that need it fail, naming
what is missing.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SERVER_USER = "postgres"
"""The account the server runs as when the tests run as root."""
SUPERUSER = "postgres"
"""The cluster's superuser (trust authentication on 127.0.0.1 and the socket)."""
START_TIMEOUT_S = 60
TEST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_statement": "none",
}


def bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``PILOTHOUSE_PG_BIN``, else the newest installed."""
    given = os.environ.get("PILOTHOUSE_PG_BIN")
    if given:
        return Path(given)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install -y postgresql, or set PILOTHOUSE_PG_BIN",
            pytrace=False,
        )
    return Path(found[-1]).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One PostgreSQL server: its data directory, port and the commands that drive it."""

    bin: Path
    root: Path
    port: int
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` as the superuser."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, timeout: float = START_TIMEOUT_S) -> str:
        """Run a server binary (as the server's user when we are root); return its output."""
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def init(self) -> None:
        """``initdb`` the data directory."""
        self.run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(f"-c {key}={value}" for key, value in TEST_SETTINGS.items())
        options += f" -p {self.port} -k {self.root}"
        self.run(
            "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data),
            "-l", str(self.log_file), "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as if it crashed)."""
        self.run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data))

    def restart(self) -> None:
        """Stop the server at once (every connection drops) and start it again on its port."""
        self.stop("immediate")
        self.start()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql over the socket; return its unaligned output."""
        return self.run(
            "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.root),
            "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql,
        ).strip()  # fmt: skip

    def new_database(self, template: str = "template0") -> str:
        """Create a fresh database copied from ``template``; return its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending whatever is still connected to it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Databases:
    """Fresh databases made ahead of need, and used ones dropped, by one thread.

    ``CREATE DATABASE`` copies its template (a few MiB): ~0.15 s. A test should not
    wait for it, so a thread keeps ``ahead`` databases ready and drops the ones
    handed back, while the tests run.
    """

    def __init__(self, made: Cluster, template: str = "template0", ahead: int = 2) -> None:
        self._cluster = made
        self._template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self._dropped: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="test databases", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """A fresh database's name (raises what stopped the thread from making one)."""
        got = self._ready.get(timeout=START_TIMEOUT_S)
        if isinstance(got, BaseException):
            raise got
        return got

    def give_back(self, name: str) -> None:
        """Drop ``name`` in the background."""
        self._dropped.put(name)

    def close(self) -> None:
        """Stop the thread (databases left are dropped with the cluster)."""
        self._stop.set()
        self._dropped.put(None)
        with contextlib.suppress(queue.Empty):
            while True:
                self._ready.get_nowait()
        self._thread.join(timeout=START_TIMEOUT_S)

    def _work(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                while (name := self._dropped.get_nowait()) is not None:
                    self._cluster.drop_database(name)
            try:
                made: str | BaseException = self._cluster.new_database(self._template)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                made = exc
            while not self._stop.is_set():
                try:
                    self._ready.put(made, timeout=0.05)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        name = self._dropped.get(timeout=0.05)
                        if name is not None:
                            self._cluster.drop_database(name)


def hub_template(made: Cluster, name: str = "hub_template") -> str:
    """A database migrated to the hub's schema, to copy for each test; its name."""
    import asyncio

    import asyncpg

    from pilothouse.hub.store.postgres import migrations

    async def migrate() -> None:
        conn = await asyncpg.connect(made.url(name))
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()

    made.psql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    asyncio.run(migrate())
    return name


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """A started cluster in a fresh temporary directory; stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="pilothouse-pg-"))
    if os.geteuid() == 0:
        server = pwd.getpwnam(SERVER_USER)
        os.chown(root, server.pw_uid, server.pw_gid)
    made = Cluster(bin_dir(), root, free_port())
    try:
        made.init()
        made.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield made
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            made.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def wait_until_up(made: Cluster, timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until the server answers a query."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            made.psql("SELECT 1")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
