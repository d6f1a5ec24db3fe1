"""Shared pieces of the process-plugin end-to-end tests.

Every test here starts real ``python -m pilothouse.serving`` processes. They run in
their own session (they survive the agent on purpose), so a failing test
could leave them behind: :func:`reaped` kills, by pid, every process whose
command line names the test's own temporary directory, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from pilothouse.plugins.process.servers import Server
from tests.modelpkg.factory import SETOSA, VIRGINICA, python_package

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"
IRIS_1 = EXAMPLES / "iris-1.0.0"
IRIS_2 = EXAMPLES / "iris-2.0.0"
RULES = EXAMPLES / "iris-rules-1.0.0"
ROWS = [SETOSA, VIRGINICA]
TIMEOUT = 30.0
"""Generous: two-core CI machines, each server imports NumPy and scikit-learn."""


# --- processes ---------------------------------------------------------------------


def pids_naming(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text`` (zombies excluded)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return sorted(found)


def serve_pids(root: Path) -> list[int]:
    """Pids of the prediction servers (``-m pilothouse.serving``) with state under ``root``."""
    return [p for p in pids_naming(str(root)) if _is_server(p)]


def _is_server(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"pilothouse.serving" in argv


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (and is not a zombie)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def kill_all(root: Path) -> list[int]:
    """SIGKILL every process naming ``root`` (the test's own processes only); their pids."""
    pids = pids_naming(str(root))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


async def kill_and_reap(root: Path, timeout: float = 10.0) -> list[int]:
    """:func:`kill_all`, then wait in the loop until this process's children among them are reaped.

    asyncio's child watcher reaps a child in a thread and tells the loop with a
    thread-safe callback. A server killed just before the test returns is reaped
    after its loop has closed: the callback is dropped, the subprocess transport
    never learns that its process ended, and it warns when the garbage collector
    meets it — in whichever later test that happens (the "leaked subprocess" warning).
    """
    pids = kill_all(root)
    ours = [pid for pid in pids if _parent(pid) == os.getpid()]
    await asyncio.to_thread(_until_gone, ours, timeout)
    await asyncio.sleep(0.05)  # the watcher's callbacks, queued after each waitpid, run here
    return pids


def _until_gone(pids: list[int], timeout: float) -> None:
    """Wait until no ``/proc`` entry is left for ``pids`` (reaped, not merely dead)."""
    deadline = time.monotonic() + timeout
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.asynccontextmanager
async def reaped(root: Path) -> AsyncIterator[None]:
    """Kill (and reap) whatever the block started under ``root``, even when the test fails."""
    try:
        yield
    finally:
        await kill_and_reap(root)


async def release(*found: Server | None) -> None:
    """Stop server processes a plugin lost track of, and close their clients.

    A plugin closes what its ``servers`` dict holds; a server object it lost
    (a regression of the races in test_server_failures.py) would otherwise
    warn at garbage collection, failing some later test instead of this one.
    """
    for server in found:
        if server is None:
            continue
        if server.process is not None and server.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                server.process.kill()
            await server.process.wait()
        if server.api is not None:
            await server.api.close()


def server_records(plugin_state: Path) -> dict[str, Any]:
    """``servers.json`` of a process plugin (its ``state_dir``)."""
    path = plugin_state / "servers.json"
    if not path.exists():
        return {}
    records: dict[str, Any] = orjson.loads(path.read_bytes())
    return records


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.02)


# --- packages ------------------------------------------------------------------------


def broken_at_load(path: Path) -> Path:
    """A python-format package whose class raises when constructed."""
    return python_package(
        path, name="iris-broken-load", init="raise RuntimeError('weights are corrupt')"
    )


def broken_at_predict(path: Path) -> Path:
    """A python-format package whose ``predict`` raises (so its warm-up fails)."""
    return python_package(
        path, name="iris-broken-predict", predict="raise ValueError('cannot predict')"
    )


def breakable(path: Path, flag: Path) -> Path:
    """A package that loads and predicts, until ``flag`` exists: then ``predict`` raises."""
    check = (
        f"if __import__('os').path.exists({str(flag)!r}):\n"
        "            raise RuntimeError('the feature store is gone')"
    )
    return python_package(path, name="iris-breakable", predict=check)


# --- clients -------------------------------------------------------------------------


async def predict(
    http: aiohttp.ClientSession, url: str, rows: list[dict[str, Any]] = ROWS
) -> tuple[int, dict[str, Any]]:
    """POST ``{"rows": rows}`` to a plain prediction URL; (status, body)."""
    async with http.post(url, json={"rows": rows}) as resp:
        return resp.status, await _json(resp)


async def infer_v2(
    http: aiohttp.ClientSession, base: str, name: str, rows: list[dict[str, Any]] = ROWS
) -> tuple[int, dict[str, Any]]:
    """Open Inference Protocol V2 inference, one tensor of rows by features."""
    body = {
        "id": "e2e",
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), 4],
                "datatype": "FP64",
                "data": [list(r.values()) for r in rows],
            }
        ],
        "outputs": [{"name": "predict"}],
    }
    async with http.post(f"{base}/v2/models/{name}/infer", json=body) as resp:
        return resp.status, await _json(resp)


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    raw = await resp.read()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"raw": raw.decode(errors="replace")}
    return doc if isinstance(doc, dict) else {"value": doc}


def base_url(prediction_url: str) -> str:
    """``http://host:port`` of a prediction URL."""
    return prediction_url.split("/v1/", 1)[0]


@contextlib.asynccontextmanager
async def traffic(url: str, clients: int = 4) -> AsyncIterator[list[tuple[int, str]]]:
    """A steady stream of predictions to ``url`` for the block; yields what each got.

    Each entry is (HTTP status, model package id); a connection error is
    recorded with status 0 and the error as the id.
    """
    seen: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def client(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            try:
                status, doc = await predict(http, url)
            except (aiohttp.ClientError, TimeoutError) as exc:
                seen.append((0, f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(0.01)
                continue
            seen.append((status, str(doc.get("model_package_id", doc))))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(clients)]
        try:
            yield seen
        finally:
            stop.set()
            await asyncio.gather(*tasks)


IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def iris_rows() -> list[dict[str, float]]:
    """The 150 iris flowers as rows of the iris example's features."""
    from sklearn.datasets import load_iris  # slow to import: only the tests that use it pay

    data = load_iris().data
    return [dict(zip(IRIS_FEATURES, map(float, row), strict=True)) for row in data]


@contextlib.asynccontextmanager
async def steady(url: str, clients: int = 2) -> AsyncIterator[list[tuple[int, str]]]:
    """Single iris rows, one after another per client: (status, answering package or error)."""
    seen: list[tuple[int, str]] = []
    stop = asyncio.Event()
    rows = iris_rows()

    async def client(http: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while not stop.is_set():
            row = rows[i % len(rows)]
            i += 7  # a stride coprime with 150: every row, in a mixed order
            try:
                async with http.post(url, json={"rows": [row]}) as resp:
                    doc = await resp.json()
                    seen.append((resp.status, str(doc.get("model_package_id"))))
            except (aiohttp.ClientError, TimeoutError) as exc:
                seen.append((0, f"{type(exc).__name__}: {exc}"))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        workers = [asyncio.create_task(client(http, n * 75)) for n in range(clients)]
        try:
            yield seen
        finally:
            stop.set()
            await asyncio.gather(*workers)
