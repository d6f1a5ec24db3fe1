"""The docker plugin's pure parts, as tables: error translation, quantities, settings, tracking.

No engine is needed here: what the engine says is given as it says it
(``DockerError`` statuses and messages, event documents).
"""

from __future__ import annotations

from typing import Any

import aiodocker
import pytest

from pilothouse.agent.errors import ConfigError, PermanentPluginError, TemporaryPluginError
from pilothouse.foundation.settings import validate
from pilothouse.plugins.docker import engine, resources
from pilothouse.plugins.docker.causes import of_state
from pilothouse.plugins.docker.containers import Endpoint, Server
from pilothouse.plugins.docker.settings import DockerPluginSettings
from pilothouse.plugins.docker.tracking import Death, Tracker
from pilothouse.plugins.fleet.runtime import WatchHooks

ENGINE_SAYS = [
    (
        900,
        "Cannot connect to Docker Engine via unix:///var/run/docker.sock",
        engine.EngineUnreachable,
    ),
    (
        500,
        "driver failed programming external connectivity on endpoint x: Bind for "
        "127.0.0.1:30000 failed: port is already allocated",
        engine.PortClash,
    ),
    (500, "listen tcp4 127.0.0.1:30000: bind: address already in use", engine.PortClash),
    (500, "write /var/lib/docker/tmp/x: no space left on device", engine.DiskFull),
    (
        400,
        'invalid mount config for type "bind": bind source path does not exist: /nope',
        engine.MountRefused,
    ),
    (404, "No such image: pilothouse:nope", engine.ImageMissing),
    (404, "pull access denied for nope, repository does not exist", engine.ImageMissing),
    (404, "No such container: abc", engine.NotFound),
    (409, "Conflict. The container name is already in use", engine.EngineBusy),
    (500, "something the engine did not explain", engine.EngineBusy),
    (400, "invalid reference format", engine.EngineRefused),
]


@pytest.mark.parametrize(("status", "message", "kind"), ENGINE_SAYS)
def test_each_engine_error_becomes_one_typed_plugin_error(
    status: int, message: str, kind: type[Exception]
) -> None:
    error = engine.from_docker(aiodocker.DockerError(status, message), "start container c")
    assert type(error) is kind
    assert str(error).startswith("start container c: ") and message in str(error)
    temporary = kind in (
        engine.EngineUnreachable,
        engine.PortClash,
        engine.DiskFull,
        engine.EngineBusy,
    )
    assert isinstance(error, TemporaryPluginError if temporary else PermanentPluginError)


def test_no_answer_from_the_engine_is_unreachable() -> None:
    unreachable = pytest.raises(engine.EngineUnreachable, match="inspect container c: no answer")
    with unreachable, engine.translated("inspect container c"):
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize(
    ("quantity", "nano"), [("500m", 500_000_000), ("1", 10**9), ("2.5", 2_500_000_000)]
)
def test_cpu_quantities(quantity: str, nano: int) -> None:
    assert resources.nano_cpus(quantity) == nano


@pytest.mark.parametrize(
    ("quantity", "size"),
    [("512Mi", 512 * 1024**2), ("1Gi", 1024**3), ("800M", 800 * 10**6), ("10000000", 10**7)],
)
def test_memory_quantities(quantity: str, size: int) -> None:
    assert resources.memory_bytes(quantity) == size


@pytest.mark.parametrize("quantity", ["", "lots", "512m", "1 Gi", "1Mi"])
def test_a_wrong_memory_quantity_says_what_was_expected(quantity: str) -> None:
    with pytest.raises(ValueError, match="memory"):
        resources.memory_bytes(quantity)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"mode": "dedicated", "network": "bridge"}, "network"),
        ({"ports": {"range": "2000-1000"}}, "ports.range"),
        ({"limits": {"memory": "lots"}}, "limits.memory"),
        ({"mounts": ["relative:/data"]}, "mounts"),
        ({"engine": {"url": "http://host"}}, "engine.url"),
        ({"owner": "Not A Word"}, "owner"),
    ],
)
def test_wrong_settings_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(DockerPluginSettings, raw, source="plugin settings", prefix="plugin_settings")
    assert [p for p in info.value.problems if p.startswith(f"plugin_settings.{field}: ")]


def _server(container_id: str) -> Server:
    endpoint = Endpoint("c", "published", "127.0.0.1", "127.0.0.1", 30000, container_id)
    return Server("shared", "token", endpoint, {})


def _event(action: str, container_id: str = "abc", **attributes: str) -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "id": container_id,
        "Actor": {"ID": container_id, "Attributes": {"name": "c", **attributes}},
    }


def test_the_tracker_tells_each_death_once_and_remembers_how() -> None:
    server = _server("abc")
    told: list[tuple[str, str]] = []
    tracker = Tracker(lambda cid: server if cid == "abc" else None)
    tracker.hooks = WatchHooks(
        lambda: None,
        lambda s: told.append(("died", s.key)),
        lambda s: told.append(("suspect", s.key)),
    )
    tracker.resync([{"Id": "abc", "State": "running"}])
    assert tracker.running("abc")
    for event in (
        _event("oom"),
        _event("die", exitCode="137"),
        _event("start"),
        _event("health_status: unhealthy"),
        _event("die", exitCode="1"),
        _event("destroy"),
        _event("die", "other", exitCode="1"),
    ):
        tracker.apply(event)
    assert told == [("died", "shared"), ("suspect", "shared"), ("died", "shared")]
    assert tracker.status["abc"] == "removed" and not tracker.running("abc")
    assert tracker.deaths["abc"] == Death(1, False)


def test_a_restarted_container_reports_how_it_last_ended() -> None:
    running = {"Status": "running", "ExitCode": 0, "OOMKilled": False}
    cause = of_state("c", running, Death(137, True), ["line"])
    assert cause.data["oom_killed"] is True and cause.data["exit_code"] == 137
    assert cause.summary.startswith("was OOM-killed") and "the engine started it again" in (
        cause.summary
    )
    exited = {"Status": "exited", "ExitCode": 1, "OOMKilled": False}
    assert of_state("c", exited, None, []).summary == "exited with code 1 (container c)"
