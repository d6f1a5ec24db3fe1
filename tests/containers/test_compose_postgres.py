"""The compose stack's ``postgres`` profile on the real engine, with Debian's docker-compose.

One stack (PostgreSQL built here from the local base, two hub replicas on it, setup, an
agent given both replicas), under a project name of its own, is brought up once for the
module by the same ``tools/demo.py`` that ``make demo PROFILE=postgres`` runs, and the tests
run in order against it: everything healthy, both replicas serving the same state, a
prediction from a server container the agent started; ``docker kill`` of the replica the
agent watches, then a model replaced through the other one reaches the agent (the new
model answers) and every event of the agent's log is at the hub exactly once; ``down``
(nothing left but the named volumes) and ``clean`` (those too).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.containers.test_compose_stack import (
    Hub,
    down_leaving_only,
    every_event_once,
    inspect,
    observed_serving,
    serving,
    wait_for,
)
from tools import demo

PROFILE = demo.PROFILES["postgres"]
SERVICES = ("postgres", *PROFILE.hubs, PROFILE.agent)
"""The long-running services (hub-keys and setup are one-shot)."""


@pytest.fixture(scope="module")
def stack(
    pilothouse_image: str, postgres_image: str, docker_compose: list[str]
) -> Iterator[demo.Stack]:
    """The stack, up and serving; always removed with its volumes afterwards."""
    project = f"phtpg-{uuid.uuid4().hex[:10]}"
    stack = demo.Stack(
        project=project, image=pilothouse_image, hub_port="", profile=PROFILE,
        postgres_image=postgres_image,
    )  # fmt: skip
    with serving(stack) as took:
        print(f"\npostgres stack up to the first prediction in {took:.1f} s")
        yield stack


def metric(url: str, name: str) -> float:
    """One unlabelled sample of a hub's ``/metrics`` (open to anyone)."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{url}/metrics has no {name}")


def test_every_service_healthy_and_both_replicas_serve_one_state(stack: demo.Stack) -> None:
    for service in SERVICES:
        # The agent restarts until setup has written its config: its first check may be due.
        wait_for(
            f"{service} healthy",
            lambda s=service: (
                inspect(stack.container_id(s))["State"]["Health"]["Status"] == "healthy"
            ),
            timeout=60,
        )
        state = inspect(stack.container_id(service))
        assert state["HostConfig"]["ReadonlyRootfs"] is True, service
        assert state["Config"]["User"] == "10001:10001", service
    a, b = (Hub(stack, hub) for hub in PROFILE.hubs)
    assert a.url != b.url
    assert a.token == b.token  # the shared admin token, not one generated per replica
    for path in ("/prediction-environments", "/model-packages", "/deployments"):
        assert sorted(x["id"] for x in a.items(path)) == sorted(x["id"] for x in b.items(path))
    assert len(a.items("/deployments")) == 2
    # The background work runs on exactly one replica.
    assert sum(metric(hub.url, "pilothouse_hub_lease_held") for hub in (a, b)) == 1
    # The agent watches one replica (its live stream), which either replica can change.
    assert sum(metric(hub.url, "pilothouse_hub_sse_clients") for hub in (a, b)) == 1

    dep = b.deployment(demo.DEPLOYMENT)
    answer = demo.predict(dep["observed"]["prediction_url"], [demo.SAMPLE])
    assert answer["predictions"] == ["setosa"]
    servers = stack.servers(running_only=True)
    assert servers and all(
        inspect(s)["Config"]["Labels"]["io.pilothouse.role"] == "server" for s in servers
    )


def test_a_change_through_the_other_replica_reaches_the_agent_after_its_replica_dies(
    stack: demo.Stack,
) -> None:
    hubs = {service: Hub(stack, service) for service in PROFILE.hubs}
    (watched,) = [s for s, hub in hubs.items() if metric(hub.url, "pilothouse_hub_sse_clients")]
    (other,) = [s for s in hubs if s != watched]
    hub = hubs[other]
    dep = hub.deployment(demo.DEPLOYMENT)
    pe_id = dep["prediction_environment_id"]
    iris_2 = ("iris", "2.0.0")  # not iris-flaky 2.0.0, also uploaded
    (new,) = [p["id"] for p in hub.items("/model-packages")
              if (p["manifest"]["name"], p["manifest"]["version"]) == iris_2]  # fmt: skip
    assert dep["observed"]["model_package_id"] != new

    demo.docker("kill", stack.container_id(watched))
    killed = time.monotonic()
    hub.call("POST", f"/deployments/{dep['id']}/actions",
             {"action": "replace_model", "model_package_id": new})  # fmt: skip
    answer = wait_for(
        "the new model answering",
        lambda: (
            (a := demo.predict(dep["observed"]["prediction_url"], [demo.SAMPLE]))
            and a["model_package_id"] == new
            and a
        ),
    )
    replaced = time.monotonic()
    assert answer["predictions"] == ["setosa"]
    observed = observed_serving(hub, new, "the replacement observed through the surviving replica")
    assert observed["prediction_url"] == dep["observed"]["prediction_url"]
    assert metric(hub.url, "pilothouse_hub_sse_clients") == 1  # the agent moved here
    # And so did the background work, once the database has dropped the dead replica's
    # session (at once when the kernel closed its connection; else by TCP keepalive, 11 s).
    wait_for("the lease on the survivor", lambda: metric(hub.url, "pilothouse_hub_lease_held"), 30)
    leased = time.monotonic()
    print(f"\n{watched} killed; the model replaced through {other} answered "
          f"{replaced - killed:.1f} s later; the survivor held the lease after "
          f"{leased - killed:.1f} s")  # fmt: skip

    every_event_once(stack, hub, pe_id)
    replaced_events = [
        e for e in hub.agent_events(pe_id)
        if e["type"] == "action.replace_model.succeeded" and e.get("deployment_id") == dep["id"]
    ]  # fmt: skip
    assert len(replaced_events) == 1, "the replacement ran once, and was reported once"


def test_down_leaves_nothing_but_the_named_volumes(stack: demo.Stack) -> None:
    down_leaving_only(stack, ("agent-state", "hub-state", "secrets", "pg-data"))


def test_clean_removes_the_named_volumes_too(stack: demo.Stack) -> None:
    stack.clean()
    project = f"label=com.docker.compose.project={stack.project}"
    assert demo.docker("volume", "ls", "-q", "--filter", project).split() == []
