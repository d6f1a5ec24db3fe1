"""The demo stack (docker-compose.yml) on the real engine, with Debian's docker-compose.

One stack, under a project name of its own, is brought up once for the module (by the same
``tools/demo.py`` that ``make demo`` runs) and the tests run in order against it: a
prediction from a server container the agent started; a second ``up`` that creates nothing;
a model replaced through the hub API under a steady stream of requests with no failure; the
agent container restarted (it adopts the server: same container, no launch, no failed
request); the hub stopped and started while the agent has events to send (every event of
the agent's log reaches the hub exactly once); SIGTERM to the agent (exit 0 within its grace
period); ``down`` (nothing of the stack left but its named volumes) and ``clean`` (those
too).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tools import demo

GRACE_S = 10.0
"""The agent's shutdown grace period in docker-compose.yml (PILOTHOUSE_SHUTDOWN__GRACE_PERIOD_S)."""
READY_S = 120.0
HEALTHY_S = 30.0
"""The image's HEALTHCHECK: its first check 5 s after the start, one every 5 s after that."""


@pytest.fixture(scope="module")
def stack(pilothouse_image: str, docker_compose: list[str]) -> Iterator[demo.Stack]:
    """The stack, up and serving; always removed with its volumes afterwards."""
    project = f"pht-{uuid.uuid4().hex[:10]}"
    stack = demo.Stack(project=project, image=pilothouse_image, hub_port="")
    with serving(stack):
        yield stack


@contextlib.contextmanager
def serving(stack: demo.Stack) -> Iterator[float]:
    """``stack`` up until its first prediction (the seconds that took); always removed after."""
    try:
        started = time.monotonic()
        stack.up()
        demo.served(stack.hub_url(), stack.admin_token(), demo.DEPLOYMENT, READY_S)
        yield time.monotonic() - started
    finally:
        try:
            stack.clean()
        finally:
            print("\n".join(stack.log[-6:]))


class Hub:
    """The stack's hub API (its first hub, or the replica ``service``), as the admin."""

    def __init__(self, stack: demo.Stack, service: str | None = None) -> None:
        self.url = stack.hub_url(service)
        self.token = stack.admin_token()

    def call(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + "/api/v1" + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        return text if raw else json.loads(text) if text else None

    def items(self, path: str) -> list[dict[str, Any]]:
        return list(self.call("GET", path + ("&" if "?" in path else "?") + "limit=500")["items"])

    def deployment(self, name: str) -> dict[str, Any]:
        (found,) = [d for d in self.items("/deployments") if d["name"] == name]
        return found

    def agent_events(self, pe_id: str) -> list[dict[str, Any]]:
        path = f"/events/export?format=jsonl&source=agent&prediction_environment_id={pe_id}"
        text = self.call("GET", path, raw=True)
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class Stream:
    """Predictions sent one after another from a thread, until stopped; failures kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: Counter[str] = Counter()
        """Requests answered, per model package."""
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction stream")

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = demo.predict(self.url, [demo.SAMPLE])
                self.answers[answer["model_package_id"]] += 1
            except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
                self.failures.append(f"{time.time():.3f} {type(exc).__name__}: {exc}")
            self._stop.wait(0.02)

    @property
    def total(self) -> int:
        return sum(self.answers.values())


def wait_for(what: str, check: Any, timeout: float = READY_S) -> Any:
    """``check()``'s first truthy result; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError, KeyError, RuntimeError) as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last error: {last})")


def observed_serving(hub: Hub, package: str, what: str) -> dict[str, Any]:
    """The demo deployment's observed state, once ``package`` is ready in it."""
    return wait_for(  # type: ignore[no-any-return]
        what,
        lambda: (
            (o := hub.deployment(demo.DEPLOYMENT)["observed"])["model_package_id"] == package
            and o["state"] == "ready"
            and o
        ),
    )


def every_event_once(stack: demo.Stack, hub: Hub, pe_id: str) -> None:
    """Wait until the hub holds every event of the agent's log; none may arrive twice."""

    def shipped() -> bool:
        ids = [e["id"] for e in hub.agent_events(pe_id)]
        return set(ids) == {e["id"] for e in agent_log(stack)}

    wait_for("every event of the agent's log at the hub", shipped)
    ids = [e["id"] for e in hub.agent_events(pe_id)]
    assert len(ids) == len(set(ids)), "an event arrived twice"


def inspect(container: str) -> dict[str, Any]:
    return dict(demo.docker_json("inspect", container)[0])


def agent_log(stack: demo.Stack) -> list[dict[str, Any]]:
    """The agent's own event log, in its volume."""
    agent = stack.profile.agent
    text = stack.compose("exec", "-T", agent, "cat", "/var/lib/pilothouse/agent/events.jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_predicts_from_a_server_container_the_agent_started(stack: demo.Stack) -> None:
    hub = Hub(stack)
    dep = hub.deployment(demo.DEPLOYMENT)
    answer = demo.predict(dep["observed"]["prediction_url"], [demo.SAMPLE])
    assert answer["predictions"] == ["setosa"]
    servers = stack.servers(running_only=True)
    assert servers, "no server container carries the stack's owner label"
    assert all(inspect(s)["Config"]["Labels"]["io.pilothouse.role"] == "server" for s in servers)

    agent = inspect(stack.container_id("agent"))
    assert agent["Config"]["User"] == "10001:10001"
    assert agent["HostConfig"]["GroupAdd"] == [str(demo.docker_gid())]
    for service in ("hub", "agent"):  # everything they write is under their volumes
        assert inspect(stack.container_id(service))["HostConfig"]["ReadonlyRootfs"] is True
    # The stack predicts before the engine's first health check of the agent may have run
    # (the image's HEALTHCHECK interval, 5 s after the start; setup does not wait for it).
    for service in ("hub", "agent"):
        container = stack.container_id(service)
        wait_for(
            f"{service} healthy",
            lambda c=container: inspect(c)["State"]["Health"]["Status"] == "healthy",
            HEALTHY_S,
        )


def test_a_second_up_creates_nothing(stack: demo.Stack) -> None:
    hub = Hub(stack)

    def inventory() -> tuple[list[str], list[str], list[str], list[str]]:
        return (
            sorted(pe["id"] for pe in hub.items("/prediction-environments")),
            sorted(p["id"] for p in hub.items("/model-packages")),
            sorted(d["id"] for d in hub.items("/deployments")),
            sorted(t["id"] for pe in hub.items("/prediction-environments")
                   for t in hub.items(f"/prediction-environments/{pe['id']}/agent-tokens")),
        )  # fmt: skip

    before = inventory()
    # Every example package is uploaded: iris 1.0.0 and 2.0.0, iris-rules, iris-flaky.
    assert [len(part) for part in before] == [1, 4, 2, 1]
    stack.up()
    assert inventory() == before
    assert "setup: done" in stack.compose("logs", "setup")


def test_a_model_is_replaced_under_a_steady_stream_without_a_failure(stack: demo.Stack) -> None:
    hub = Hub(stack)
    dep = hub.deployment(demo.DEPLOYMENT)
    old = dep["observed"]["model_package_id"]
    iris_2 = ("iris", "2.0.0")  # not iris-flaky 2.0.0, also uploaded
    (new,) = [p["id"] for p in hub.items("/model-packages")
              if (p["manifest"]["name"], p["manifest"]["version"]) == iris_2]  # fmt: skip
    with Stream(dep["observed"]["prediction_url"]) as stream:
        wait_for("the stream's first answers", lambda: stream.total >= 20)
        hub.call("POST", f"/deployments/{dep['id']}/actions",
                 {"action": "replace_model", "model_package_id": new})  # fmt: skip
        wait_for("the new model's answers", lambda: stream.answers[new] >= 20)
    print(f"\nreplacement under a stream: {dict(stream.answers)}, {len(stream.failures)} failed")
    assert stream.failures == []
    assert stream.answers[old] >= 20
    observed = observed_serving(hub, new, "the replacement observed")
    assert observed["prediction_url"] == dep["observed"]["prediction_url"]


def test_a_restarted_agent_adopts_the_running_server(stack: demo.Stack) -> None:
    hub = Hub(stack)
    dep = hub.deployment(demo.DEPLOYMENT)
    servers = {s: inspect(s)["State"]["StartedAt"] for s in stack.servers(running_only=True)}
    agent = stack.container_id("agent")
    restarted_at = time.time()
    with Stream(dep["observed"]["prediction_url"]) as stream:
        wait_for("the stream's first answers", lambda: stream.total >= 10)
        demo.docker("restart", "--time", str(int(GRACE_S) + 5), agent)
        wait_for(
            "the restarted agent reconciled",
            lambda: any(
                e["type"] == "agent.reconciled" and e["time"] >= _iso(restarted_at)
                for e in agent_log(stack)
            ),
        )
        after = stream.total
        wait_for("answers after the restart", lambda: stream.total >= after + 10)
    assert stream.failures == []
    assert inspect(agent)["State"]["Health"]["Status"] in ("healthy", "starting")
    assert {s: inspect(s)["State"]["StartedAt"] for s in stack.servers(running_only=True)} == (
        servers
    ), "the server container was replaced or restarted"
    since = [e for e in agent_log(stack) if e["time"] >= _iso(restarted_at)]
    launches = [
        e["type"] for e in since if e["type"].startswith(("action.launch", "action.relaunch"))
    ]
    assert launches == [], f"the restarted agent launched again: {launches}"


def test_a_restarted_hub_gets_every_event_of_the_agent_once(stack: demo.Stack) -> None:
    hub = Hub(stack)
    pe_id = hub.deployment(demo.DEPLOYMENT)["prediction_environment_id"]
    stack.compose("stop", "hub")
    assert stack.container_state("hub")["ExitCode"] == 0  # SIGTERM as PID 1: a clean stop
    logged = len(agent_log(stack))
    # While the hub is away the agent has something to tell: its server dies.
    for server in stack.servers(running_only=True):
        demo.docker("kill", server)
    wait_for("the agent's events about the dead server", lambda: len(agent_log(stack)) > logged)
    stack.compose("start", "hub")
    hub = Hub(stack)  # its port on the host may have changed

    every_event_once(stack, hub, pe_id)
    assert wait_for("the agent back online", lambda: hub.call(
        "GET", f"/prediction-environments/{pe_id}")["agent"]["online"])  # fmt: skip
    wait_for("the deployment serving again", lambda: demo.predict(
        hub.deployment(demo.DEPLOYMENT)["observed"]["prediction_url"], [demo.SAMPLE]))  # fmt: skip


def test_sigterm_stops_the_agent_with_exit_0_within_its_grace_period(stack: demo.Stack) -> None:
    agent = stack.container_id("agent")
    started = time.monotonic()
    demo.docker("stop", "--time", "60", agent)  # SIGTERM; SIGKILL only after 60 s
    took = time.monotonic() - started
    state = inspect(agent)["State"]
    print(f"\nagent stopped in {took:.1f} s")
    assert state["ExitCode"] == 0, state
    assert took < GRACE_S + 5, f"the agent took {took:.1f} s to stop"


def test_down_leaves_nothing_but_the_named_volumes(stack: demo.Stack) -> None:
    down_leaving_only(stack, ("agent-state", "hub-state", "secrets"))
    owned = demo.docker(
        "volume", "ls", "-q", "--filter", f"label={demo.OWNER_LABEL}={stack.project}"
    )
    assert owned.split() == []


def down_leaving_only(stack: demo.Stack, used: tuple[str, ...]) -> None:
    """``down``: no container, server or network of the stack is left; volumes as below."""
    stack.down()
    project = f"label=com.docker.compose.project={stack.project}"
    assert demo.docker("ps", "-a", "-q", "--filter", project).split() == []
    assert stack.servers() == []
    assert demo.docker("network", "ls", "-q", "--filter", f"name=^{stack.project}$").split() == []
    assert_only_named_volumes_left(stack, used)


def assert_only_named_volumes_left(stack: demo.Stack, used: tuple[str, ...]) -> None:
    """The stack's volumes: those its services use, and at most the others compose names."""
    project = f"label=com.docker.compose.project={stack.project}"
    volumes = set(demo.docker("volume", "ls", "-q", "--filter", project).split())
    # Debian's docker-compose 1.29 makes every volume of the file, whichever the profile.
    declared = {f"{stack.project}_{name}" for name in stack.compose("config", "--volumes").split()}
    assert {f"{stack.project}_{name}" for name in used} <= volumes <= declared


def test_clean_removes_the_named_volumes_too(stack: demo.Stack) -> None:
    stack.clean()
    project = f"label=com.docker.compose.project={stack.project}"
    assert demo.docker("volume", "ls", "-q", "--filter", project).split() == []


def _iso(epoch: float) -> str:
    """An event time for comparison as text (the events' ``…Z`` ISO form)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
