"""Benchmark: the ``docker`` plugin on the real engine, in one run.

Figures (issue 10), each phase with its own ``owner`` label, removed afterwards:

1. launch-to-ready (the ``launch`` action, which returns once a real prediction
   passed) of the first and the tenth of ten deployments launched one after
   another, in ``shared`` and in ``dedicated`` mode, each with a model package
   of its own (ten copies of the iris package, each a different version, so a
   different archive: every launch delivers, unpacks and loads a new model); in
   shared mode the second to tenth are models added to a running container
   (``shared_add_model_s`` is the slowest of them);
2. ten replacements per mode under a steady, paced stream of predictions
   (``--rate`` requests/s, open loop): requests sent and failed, and per
   replacement the time from the ``replace_model`` call to the first answer by
   the new model;
3. a real ``pilothouse agent run`` with 50 deployments in one shared container:
   its RSS once all are ready; then ``docker kill`` of the server container and
   the time until the first ``failing`` event of a deployment is in the agent's
   event log (pushed from the engine's event stream: the health interval is an
   hour, so no health round can find it).

Targets: dedicated launch <= 5 s, adding a model to a running shared container
<= 1 s, 0 failed requests during replacements with >= 1,000 sent, kill to failing
event <= 2 s. The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import orjson
import yaml

from pilothouse.agent.plugin import DeploymentReport, PluginContext
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.events import Event
from pilothouse.plugins.docker import DockerPlugin

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
PACKAGES = {
    "iris-1": MODELS / "iris-1.0.0",
    "iris-2": MODELS / "iris-2.0.0",
    "rules": MODELS / "iris-rules-1.0.0",
}
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
TARGETS = (
    ("dedicated_launch_s", "<=", 5.0),
    ("shared_add_model_s", "<=", 1.0),
    ("replace_total_requests", ">=", 1000),
    ("replace_failed_requests", "<=", 0),
    ("kill_to_event_s", "<=", 2.0),
)


def say(phase: str, text: str) -> None:
    print(f"{phase:<10} {text}", flush=True)


# --- the plugin, driven directly ---------------------------------------------------


@contextlib.asynccontextmanager
async def plugin(
    image: str, mode: str, work: Path, packages: dict[str, Path] | None = None
) -> AsyncIterator[DockerPlugin]:
    """A started docker plugin with its own owner; everything it made is removed after."""
    owner = "bench" + hashlib.sha256(f"{mode}{time.time()}".encode()).hexdigest()[:8]
    events: list[Event] = []
    reports: list[DeploymentReport] = []
    ctx = PluginContext(
        prediction_environment_id=f"bench-{mode}",
        settings={
            "image": image,
            "owner": owner,
            "mode": mode,
            "pull": "never",
            "packages": {k: str(v) for k, v in (PACKAGES | (packages or {})).items()},
            "stop_servers_on_unload": True,
        },
        state_dir=work / mode,
        emit=events.append,
        logger=__import__("logging").getLogger("bench"),
        reports=reports.append,
    )
    started = DockerPlugin()
    try:
        await started.start(ctx)
        yield started
    finally:
        try:
            await started.stop()
        finally:
            await ctx.stop_tasks()
            await purge(owner)


async def purge(owner: str) -> None:
    """Remove every container and volume of ``owner``."""
    filters = {"label": [f"io.pilothouse.owner={owner}"]}
    async with aiodocker.Docker() as client:
        for c in await client.containers.list(all=True, filters=orjson.dumps(filters).decode()):
            with contextlib.suppress(aiodocker.DockerError):
                await c.delete(force=True, v=True)
        volumes = await client.volumes.list(filters=filters)
        for v in volumes.get("Volumes") or []:
            with contextlib.suppress(aiodocker.DockerError):
                await aiodocker.volumes.DockerVolume(client, v["Name"]).delete()


async def timed(call: Awaitable[Any]) -> float:
    began = time.perf_counter()
    await call
    return time.perf_counter() - began


def variants(out: Path, n: int) -> dict[str, Path]:
    """``n`` copies of the iris package, each another version (another archive, another sha256)."""
    found = {}
    for i in range(n):
        target = out / f"iris-1.0.{100 + i}"
        shutil.copytree(PACKAGES["iris-1"], target)
        manifest = yaml.safe_load((target / "model.yaml").read_text())
        manifest["version"] = f"1.0.{100 + i}"
        (target / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        found[target.name] = target
    return found


async def launches(image: str, mode: str, work: Path, n: int = 10) -> list[float]:
    """Launch-to-ready of ``n`` deployments launched one after another, each its own model."""
    packages = await asyncio.to_thread(variants, work / f"packages-{mode}", n)
    async with plugin(image, mode, work, packages) as p:
        times = []
        for i, package in enumerate(packages):
            spec = DesiredDeployment(id=f"d{i:02d}", model_package_id=package)
            times.append(await timed(p.launch(spec)))
            say(f"launch {mode}", f"deployment {i + 1}: ready in {times[-1]:.2f} s")
        return times


# --- replacements under a paced stream ------------------------------------------


@dataclass
class Stream:
    """A paced, open-loop stream of predictions and what each got."""

    url: str
    rate: float
    answers: list[tuple[float, float, int, str]] = field(default_factory=list)
    """(sent, answered, HTTP status, model package id) per request."""

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(256)
        pending: set[asyncio.Task[None]] = set()
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            due = loop.time()
            while not stop.is_set():
                due += 1 / self.rate
                await asyncio.sleep(max(0.0, due - loop.time()))
                await limit.acquire()
                task = asyncio.create_task(self._one(http, limit))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)

    async def _one(self, http: aiohttp.ClientSession, limit: asyncio.Semaphore) -> None:
        sent = time.perf_counter()
        try:
            async with http.post(self.url, json={"rows": [ROW]}) as resp:
                doc = orjson.loads(await resp.read() or b"{}")
                model = str(doc.get("model_package_id") or doc)[:300]
                self.answers.append((sent, time.perf_counter(), resp.status, model))
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            self.answers.append((sent, time.perf_counter(), 0, f"{type(exc).__name__}: {exc}"))
        finally:
            limit.release()


async def replacements(
    image: str, mode: str, work: Path, rate: float, n: int = 10
) -> dict[str, Any]:
    """``n`` replacements of one deployment under a stream at ``rate`` requests/s."""
    async with plugin(image, mode, work) as p:
        launched = await p.launch(DesiredDeployment(id="r", model_package_id="iris-1"))
        assert launched.prediction_url is not None
        stream = Stream(launched.prediction_url, rate)
        stop = asyncio.Event()
        runner = asyncio.create_task(stream.run(stop))
        to_serving: list[float] = []
        began = time.perf_counter()
        try:
            await asyncio.sleep(2.0)
            for k in range(n):
                package = "iris-2" if k % 2 == 0 else "iris-1"
                spec = DesiredDeployment(id="r", model_package_id=package, generation=k + 2)
                called = time.perf_counter()
                result = await p.replace_model(spec)
                if result.model_package_id != package or result.old_model_in_use:
                    raise RuntimeError(f"replacement {k + 1} did not serve {package}: {result}")
                await _until(lambda c=called, m=package: _first(stream, c, m) is not None)
                first = _first(stream, called, package)
                assert first is not None
                to_serving.append(first - called)
                say(
                    f"replace {mode}",
                    f"{k + 1}: new model answering {to_serving[-1]:.2f} s after the call",
                )
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            await runner
        elapsed = time.perf_counter() - began
    failed = [a for a in stream.answers if a[2] != 200]
    for _sent, answered, status, what in failed[:5]:
        say(f"replace {mode}", f"failed: {status} {what} ({answered - began:.2f} s in)")
    say(
        f"replace {mode}",
        f"{len(stream.answers)} requests in {elapsed:.1f} s "
        f"({len(stream.answers) / elapsed:.0f}/s), {len(failed)} failed",
    )
    return {
        "requests": len(stream.answers),
        "failed": len(failed),
        "rate_per_s": round(len(stream.answers) / elapsed, 1),
        "to_serving_median_s": round(statistics.median(to_serving), 3),
        "to_serving_max_s": round(max(to_serving), 3),
    }


def _first(stream: Stream, after: float, model: str) -> float | None:
    answered = [a[1] for a in stream.answers if a[0] >= after and a[3] == model and a[2] == 200]
    return min(answered) if answered else None


async def _until(predicate: Callable[[], bool], within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("condition not met in time")
        await asyncio.sleep(0.01)


# --- a real agent with 50 deployments ---------------------------------------------


async def agent_phase(image: str, work: Path, n: int = 50) -> dict[str, Any]:
    """RSS of an agent with ``n`` deployments in one shared container; kill to failing event."""
    owner = "benchagent" + hashlib.sha256(str(time.time()).encode()).hexdigest()[:6]
    state = work / "agent"
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    desired = work / "desired.yaml"
    deployments = [{"id": f"a{i:02d}", "model_package_id": "rules"} for i in range(n)]
    desired.write_text(yaml.safe_dump({"deployments": deployments}))
    config = work / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "prediction_environment": "bench-agent",
                "plugin": "docker",
                "state_dir": str(state),
                "plugin_settings": {
                    "image": image,
                    "owner": owner,
                    "pull": "never",
                    "packages": {"rules": str(PACKAGES["rules"])},
                    "stop_servers_on_unload": True,
                },
                "intake": {"desired_state_file": str(desired)},
                "health": {"interval_s": 3600, "heartbeat_interval_s": 3600},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    log = (work / "agent.log").open("wb")
    agent = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "pilothouse", "agent", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        env=env,
    )
    events = state / "events.jsonl"
    try:
        began = time.perf_counter()
        await _until(lambda: len(_ready(events)) >= n, 300)
        say("agent", f"{n} deployments ready in {time.perf_counter() - began:.1f} s")
        rss_mb, hwm_mb = _memory_mb(agent.pid)
        say("agent", f"RSS {rss_mb:.1f} MB (peak {hwm_mb:.1f} MB) with {n} deployments")
        before = len(_read(events))
        async with aiodocker.Docker() as client:
            servers = await client.containers.list(
                filters=orjson.dumps(
                    {"label": [f"io.pilothouse.owner={owner}", "io.pilothouse.role=server"]}
                ).decode()
            )
            killed_at = time.perf_counter()
            await servers[0].kill()
        await _until(lambda: _failing_after(events, before), 30)
        kill_to_event = time.perf_counter() - killed_at
        say("agent", f"docker kill -> failing event in the event log in {kill_to_event:.3f} s")
        await _until(lambda: len(_ready(events, before)) >= n, 120)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(agent.wait(), 60)
        finally:
            log.close()
            await purge(owner)
    return {
        "agent_rss_mb": round(rss_mb, 1),
        "agent_peak_rss_mb": round(hwm_mb, 1),
        "agent_deployments": n,
        "kill_to_event_s": round(kill_to_event, 3),
    }


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _ready(path: Path, after: int = 0) -> set[str]:
    return {e["deployment_id"] for e in _read(path)[after:] if e["type"] == "deployment.ready"}


def _failing_after(path: Path, after: int) -> bool:
    return any(e["status"] == "failing" and e.get("deployment_id") for e in _read(path)[after:])


def _memory_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


# --- the run -------------------------------------------------------------------------


def build_image() -> str:
    """The project's image under a tag of this checkout (``tools/docker_image.sh``, cached)."""
    tag = "pilothouse:bench-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    env = {**os.environ, "IMAGE": tag, "PIP": str(Path(sys.executable).with_name("pip"))}
    subprocess.run(
        ["bash", str(ROOT / "tools" / "docker_image.sh")],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return tag


def verdict(figures: dict[str, Any]) -> dict[str, Any]:
    """Which targets were met or missed."""
    missed = [
        name
        for name, op, bound in TARGETS
        if not (figures[name] <= bound if op == "<=" else figures[name] >= bound)
    ]
    return {"targets_met": not missed, "targets_missed": missed}


async def main(rate: float) -> dict[str, Any]:
    image = await asyncio.to_thread(build_image)
    say("image", image)
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        work = Path(tmp)
        shared = await launches(image, "shared", work / "l")
        dedicated = await launches(image, "dedicated", work / "l")
        replaced = {
            mode: await replacements(image, mode, work / "r", rate)
            for mode in ("shared", "dedicated")
        }
        agent = await agent_phase(image, work / "a")
    figures: dict[str, Any] = {
        "shared_first_launch_s": round(shared[0], 3),
        "shared_tenth_launch_s": round(shared[-1], 3),
        "shared_add_model_s": round(max(shared[1:]), 3),
        "shared_add_model_median_s": round(statistics.median(shared[1:]), 3),
        "dedicated_launch_s": round(dedicated[0], 3),
        "dedicated_tenth_launch_s": round(dedicated[-1], 3),
        "replace_total_requests": sum(r["requests"] for r in replaced.values()),
        "replace_failed_requests": sum(r["failed"] for r in replaced.values()),
        "replace_shared": replaced["shared"],
        "replace_dedicated": replaced["dedicated"],
        "replace_to_serving_shared_s": replaced["shared"]["to_serving_median_s"],
        "replace_to_serving_dedicated_s": replaced["dedicated"]["to_serving_median_s"],
        **agent,
    }
    return figures | verdict(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=150.0, help="requests/s during replacements")
    args = parser.parse_args()
    result = asyncio.run(main(args.rate))
    print(orjson.dumps(result).decode())
