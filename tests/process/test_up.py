"""``pilothouse up`` as a real process: hub, agent, prediction server, and what it prints."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import tritonclient.grpc.aio as triton_aio

from tests.process.support import ROOT, TIMEOUT, free_port, reaped, serve_pids, until

pytestmark = pytest.mark.anyio

HUB_LINE = re.compile(r"^pilothouse: hub at (http://\S+) \(admin token in (.+)\)$")
UI_LINE = re.compile(r"^pilothouse: web UI at (http://\S+/) \(log in with the admin token\)$")
ACTIVITY_LINE = re.compile(r"^pilothouse: its live activity: (http://\S+/#/deployments/(\S+))$")
READY_LINE = re.compile(r"^pilothouse: deployment (\S+) is ready; try:$")
GRPC_LINE = re.compile(
    r"^pilothouse: gRPC \(Open Inference Protocol\) at (\S+), model name '(\S+)'$"
)


@dataclass
class Up:
    """A running ``pilothouse up`` and what it printed."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    async def read_until(self, text: str) -> None:
        """Read stdout until a line contains ``text``."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(TIMEOUT * 2):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"up exited ({await self.proc.wait()}) before printing {text!r}: "
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if text in line:
                    return

    def match(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """The first printed line matching ``pattern``."""
        for line in self.lines:
            found = pattern.match(line)
            if found:
                return found
        raise AssertionError(f"no line matches {pattern.pattern!r}: {self.lines}")

    def curl(self) -> list[str]:
        """The printed curl command, as argv."""
        (line,) = [ln for ln in self.lines if ln.strip().startswith("curl ")]
        return shlex.split(line)

    async def interrupt(self) -> tuple[int, str]:
        """SIGINT; the exit code and the rest of stdout."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            rest = (await self.proc.stdout.read()).decode()
            code = await self.proc.wait()
        return code, rest


@contextlib.asynccontextmanager
async def up(state: Path, port: int, log: Path) -> AsyncIterator[Up]:
    """Run ``pilothouse up`` from the repository root (its default examples dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilothouse", "up", "--state-dir", str(state),
            "--port", str(port), cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        yield Up(proc)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _curl_request(argv: list[str]) -> tuple[str, str, dict[str, str], str]:
    """(method, url, headers, data) of ``curl -s -X POST URL -H ... -d ...``."""
    assert argv[0] == "curl"
    method, url, headers, data = "GET", "", {}, ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = next(args)
        elif arg == "-s":
            continue
        else:
            assert not url, f"unexpected curl argument {arg!r}"
            url = arg
    return method, url, headers, data


async def _run_printed_request(up_: Up) -> dict[str, Any]:
    method, url, headers, data = _curl_request(up_.curl())
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, data=data) as resp,
    ):
        doc: dict[str, Any] = orjson.loads(await resp.read())
        assert resp.status == 200, doc
    return doc


@pytest.mark.anyio
async def test_up_prints_serves_stops_and_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    async with reaped(tmp_path):
        # --- first start: registers everything, deploys iris-1.0.0 -----------------------------
        async with up(state, port, tmp_path / "up.log") as first:
            await first.read_until("Ctrl-C stops everything")
            url, token_file = first.match(HUB_LINE).groups()
            assert url == f"http://127.0.0.1:{port}"
            assert Path(token_file) == state / "admin-token"
            assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
            dep_id = first.match(READY_LINE).group(1)
            assert first.match(UI_LINE).group(1) == f"{url}/"
            assert first.match(ACTIVITY_LINE).group(2) == dep_id
            async with aiohttp.ClientSession() as http, http.get(f"{url}/") as page:
                assert page.status == 200 and "<title>Pilothouse</title>" in await page.text()
            setup = orjson.loads((state / "up.json").read_bytes())
            assert stat.S_IMODE(os.stat(state / "up.json").st_mode) == 0o600
            assert dep_id == setup["deployment"]
            assert sorted(setup["packages"]) == [
                "iris-1.0.0", "iris-2.0.0", "iris-flaky-2.0.0", "iris-rules-1.0.0"
            ]  # fmt: skip

            doc = await _run_printed_request(first)
            assert doc["model_package_id"] == setup["packages"]["iris-1.0.0"]
            assert doc["deployment_id"] == dep_id and len(doc["predictions"]) == 1
            grpc_target, model = first.match(GRPC_LINE).groups()
            assert model == dep_id and await _grpc_model_ready(grpc_target, model)
            servers = serve_pids(state)
            assert len(servers) == 1, servers

            code, rest = await first.interrupt()
        assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
        assert "pilothouse: stopped" in rest
        assert not serve_pids(state), "Ctrl-C stopped the prediction server too"

        # --- second start on the same state dir: resumes ---------------------------------------
        async with up(state, port, tmp_path / "up.log") as second:
            await second.read_until("Ctrl-C stops everything")
            assert second.match(READY_LINE).group(1) == dep_id, "the same deployment"
            assert orjson.loads((state / "up.json").read_bytes()) == setup
            token = (await asyncio.to_thread(Path(token_file).read_text)).strip()
            auth = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(url, headers=auth) as hub:
                async with hub.get("/api/v1/prediction-environments") as resp:
                    pes = (await resp.json())["items"]
                async with hub.get("/api/v1/deployments") as resp:
                    deps = (await resp.json())["items"]
            assert [pe["id"] for pe in pes] == [setup["pe"]], "no second PE"
            assert [d["id"] for d in deps] == [dep_id], "no second deployment"

            doc = await _run_printed_request(second)
            assert doc["model_package_id"] == setup["packages"]["iris-1.0.0"]
            assert len(serve_pids(state)) == 1

            code, rest = await second.interrupt()
        assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
        assert "pilothouse: stopped" in rest
        assert not serve_pids(state)


@pytest.mark.anyio
async def test_up_resumes_a_replaced_model_without_acting_again(tmp_path: Path) -> None:
    """Replace the model through the hub, Ctrl-C, start again: the new model, no new action."""
    state, port, log = tmp_path / "state", free_port(), tmp_path / "up.log"
    agent_log = state / "agent" / "events.jsonl"
    async with reaped(tmp_path):
        async with up(state, port, log) as first:
            await first.read_until("Ctrl-C stops everything")
            url, token_file = first.match(HUB_LINE).groups()
            dep_id = first.match(READY_LINE).group(1)
            setup = orjson.loads((state / "up.json").read_bytes())
            iris_2 = setup["packages"]["iris-2.0.0"]
            token = (await asyncio.to_thread(Path(token_file).read_text)).strip()
            async with aiohttp.ClientSession(
                url, headers={"Authorization": f"Bearer {token}"}
            ) as hub:
                body = {"action": "replace_model", "model_package_id": iris_2}
                async with hub.post(f"/api/v1/deployments/{dep_id}/actions", json=body) as resp:
                    assert resp.status == 200, await resp.text()
                await _until_observed(hub, dep_id, generation=2)
            assert (await _run_printed_request(first))["model_package_id"] == iris_2
            code, _ = await first.interrupt()
        assert code == 0, log.read_text()[-3000:]
        assert not serve_pids(state)
        first_run = len(_logged(agent_log))

        async with up(state, port, log) as second:
            await second.read_until("Ctrl-C stops everything")
            assert second.match(READY_LINE).group(1) == dep_id
            assert (await _run_printed_request(second))["model_package_id"] == iris_2
            async with aiohttp.ClientSession(
                url, headers={"Authorization": f"Bearer {token}"}
            ) as hub:
                async with hub.get(f"/api/v1/deployments/{dep_id}") as resp:
                    desired = (await resp.json())["desired"]
                params = {"deployment_id": dep_id, "source": "user", "limit": "100"}
                async with hub.get("/api/v1/events", params=params) as resp:
                    by_users = [e["type"] for e in (await resp.json())["items"]]
            code, _ = await second.interrupt()
        assert code == 0, log.read_text()[-3000:]

    # Nothing asked for anything new: the replacement is still the last change...
    assert (desired["generation"], desired["model_package_id"]) == (2, iris_2)
    assert sorted(by_users) == ["deployment.action_requested", "deployment.created"]
    # ...and the second agent only brought back what Ctrl-C stopped: iris-2, at generation 2.
    second_run = _logged(agent_log)[first_run:]
    actions = [
        (e["type"], e["data"]["generation"], e["data"]["model_package_id"])
        for e in second_run
        if e["type"].startswith("action.")
    ]
    assert actions == [("action.launch.succeeded", 2, iris_2)], actions
    (reconciled,) = [e for e in second_run if e["type"] == "agent.reconciled"]
    assert reconciled["data"]["plan"] == {"launch": 1}, reconciled


async def _grpc_model_ready(target: str, model: str) -> bool:
    """Whether the deployment answers ModelReady over gRPC (``tritonclient.grpc``)."""
    client = triton_aio.InferenceServerClient(target)
    try:
        return bool(await client.is_model_ready(model))
    finally:
        await client.close()


async def _until_observed(hub: aiohttp.ClientSession, dep_id: str, generation: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            async with hub.get(f"/api/v1/deployments/{dep_id}") as resp:
                observed = (await resp.json())["observed"]
            if observed["state"] == "ready" and observed["generation"] >= generation:
                return
            await asyncio.sleep(0.1)


def _logged(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _interrupted_while_starting(up_: Up, log: Path) -> None:
    """SIGINT now: ``up`` must end promptly and cleanly, without waiting to be ready."""
    loop = asyncio.get_running_loop()
    sent = loop.time()
    code, rest = await up_.interrupt()
    took = loop.time() - sent
    printed = "\n".join(up_.lines) + rest
    assert code == 0, _tail(log)
    assert "pilothouse: stopped" in rest
    assert "is ready" not in printed and "not ready yet" not in printed, printed
    assert took < TIMEOUT, f"took {took:.1f}s to stop"


@pytest.mark.anyio
async def test_up_stops_on_the_first_ctrl_c_while_it_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    log = tmp_path / "up.log"
    async with reaped(tmp_path):
        # Ctrl-C as soon as the hub listens: the first start's registration (a few
        # requests) is let finish, so up.json records all of it or nothing.
        async with up(state, port, log) as first:
            await until(lambda: first.proc.returncode is not None or _listening(port),
                        what="the hub listens")  # fmt: skip
            await _interrupted_while_starting(first, log)
        assert not _listening(port)
        assert not serve_pids(state)
        if (state / "up.json").exists():
            assert orjson.loads((state / "up.json").read_bytes())["deployment"]

        # Ctrl-C while the agent starts, before the example deployment is ready.
        async with up(state, port, log) as second:
            await until(lambda: (state / "up.json").exists(), what="the first start's setup")
            await until(lambda: (state / "agent").exists(), what="the agent starts")
            await _interrupted_while_starting(second, log)
        assert not _listening(port)
        assert not serve_pids(state), "Ctrl-C stopped the prediction server too"
