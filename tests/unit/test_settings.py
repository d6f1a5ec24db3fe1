"""Agent settings: defaults, YAML file, environment, flags, and clear refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent import command as agent_cmd
from pilothouse.agent.errors import ConfigError
from pilothouse.agent.settings import AgentSettings
from pilothouse.cli import build_parser
from pilothouse.foundation.domain.vocabulary import OrphanPolicy

ROOT = Path(__file__).resolve().parents[2]

FILE = """\
prediction_environment: pe-file
plugin: fromfile
actions:
  timeout_s: 10
  max_attempts: 7
log:
  level: ERROR
  format: json
http:
  host: 0.0.0.0
  port: 9000
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PILOTHOUSE_"):
            monkeypatch.delenv(key)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(FILE)
    return path


def refusal(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        AgentSettings.load(config_file, overrides)
    return str(info.value)


def test_defaults_without_any_source() -> None:
    s = AgentSettings.load()
    assert (s.prediction_environment, s.plugin, s.plugin_settings) == ("local", "test", {})
    assert s.state_dir == Path(".pilothouse/agent")
    assert s.event_log_path == Path(".pilothouse/agent/events.jsonl")
    assert (s.actions.timeout_s, s.actions.max_attempts, s.actions.max_concurrent) == (300, 4, 64)
    assert s.supervisor.crash_loop_failures == 5
    assert s.reconcile.orphans is OrphanPolicy.STOP
    assert (s.http.enabled, s.http.port, s.log.level, s.log.format) == (False, 8701, "INFO", "auto")


def test_file_values_are_used(config: Path) -> None:
    s = AgentSettings.load(config)
    assert (s.prediction_environment, s.plugin) == ("pe-file", "fromfile")
    assert (s.actions.timeout_s, s.actions.max_attempts) == (10, 7)
    assert s.actions.max_concurrent == 64  # not in the file: the default
    assert (s.log.level, s.log.format, s.http.host, s.http.port) == (
        "ERROR",
        "json",
        "0.0.0.0",
        9000,
    )


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n")
    assert AgentSettings.load(empty) == AgentSettings.load()


def test_environment_overrides_the_file_field_by_field(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_PLUGIN", "fromenv")
    monkeypatch.setenv("PILOTHOUSE_ACTIONS__TIMEOUT_S", "20")
    s = AgentSettings.load(config)
    assert s.plugin == "fromenv"
    assert (s.actions.timeout_s, s.actions.max_attempts) == (20, 7)  # max_attempts: file
    assert s.prediction_environment == "pe-file"


def test_overrides_beat_environment_and_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTHOUSE_PLUGIN", "fromenv")
    monkeypatch.setenv("PILOTHOUSE_ACTIONS__TIMEOUT_S", "20")
    s = AgentSettings.load(config, {"plugin": "fromflag", "actions": {"timeout_s": 30}})
    assert s.plugin == "fromflag"
    assert (s.actions.timeout_s, s.actions.max_attempts) == (30, 7)  # deep merge keeps the file
    assert (s.log.level, s.log.format) == ("ERROR", "json")


@pytest.mark.parametrize(
    ("overrides", "field", "given", "expected"),
    [
        ({"actions": {"timeout_s": -1}}, "actions.timeout_s", "-1", "greater than 0"),
        ({"actions": {"max_attempts": 0}}, "actions.max_attempts", "0", "greater than or equal"),
        ({"http": {"port": 70000}}, "http.port", "70000", "less than or equal to 65535"),
        ({"health": {"interval_s": "often"}}, "health.interval_s", "'often'", "valid number"),
        ({"reconcile": {"orphans": "burn"}}, "reconcile.orphans", "'burn'", "'adopt', 'stop'"),
        ({"prediction_environment": "bad id!"}, "prediction_environment", "'bad id!'", "pattern"),
    ],
)
def test_wrong_value_names_field_value_and_expectation(
    overrides: dict[str, Any], field: str, given: str, expected: str
) -> None:
    message = refusal(None, overrides)
    assert f"{field}: got {given}" in message
    assert expected in message


def test_expected_values_are_quoted_as_they_must_be_written() -> None:
    message = refusal(None, {"log": {"level": "LOUD"}})
    assert "log.level: got 'LOUD'" in message
    assert "'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in message


def test_every_problem_is_listed(config: Path) -> None:
    message = refusal(config, {"actions": {"timeout_s": 0}, "http": {"port": -1}})
    assert message.startswith(f"invalid configuration ({config}):")
    assert message.count("\n  - ") == 2


def test_wrong_value_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTHOUSE_ACTIONS__TIMEOUT_S", "soon")
    assert "actions.timeout_s: got 'soon'" in refusal()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("plugn: docker\n", "plugn"),
        ("actions:\n  timeout: 5\n", "actions.timeout"),
        ("log:\n  colour: true\n", "log.colour"),
    ],
)
def test_unknown_keys_in_the_file_are_refused(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(text)
    message = refusal(path)
    # The one explainer's wording for every part (settings, manifests, plugin settings).
    assert f"{field}: unknown field (got " in message


def test_unknown_keys_in_overrides_and_nested_env_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "bogus: unknown field (got 1)" in refusal(None, {"bogus": 1})
    monkeypatch.setenv("PILOTHOUSE_ACTIONS__BOGUS", "1")
    assert "actions.bogus: unknown field (got '1')" in refusal()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("actions: [unclosed\n", "not valid YAML"),
        ("plugin: a\n  bad indent: b\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping at the top level, got list"),
        ("just a string\n", "expected a mapping at the top level, got str"),
    ],
    ids=["unclosed", "indent", "list", "scalar"],
)
def test_file_that_is_not_a_yaml_mapping_is_refused(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert problem in refusal(path)


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "directory",
        pytest.param(
            "binary",
        ),
    ],
)
def test_unreadable_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = {"missing": tmp_path / "nowhere.yaml", "directory": tmp_path}.get(kind)
    if path is None:
        path = tmp_path / "binary.yaml"
        path.write_bytes(b"\xff\xfe\x00\x80binary")
    assert str(path) in refusal(path)


def parse(*argv: str) -> tuple[Path | None, dict[str, Any]]:
    args = build_parser().parse_args(["agent", "run", *argv])
    return args.config, agent_cmd.overrides(args)


def test_flags_become_nested_overrides() -> None:
    _, flags = parse("--plugin", "docker", "--http-port", "0", "--log-level", "DEBUG")
    assert flags == {
        "plugin": "docker",
        "http": {"port": 0, "enabled": True},
        "log": {"level": "DEBUG"},
    }
    assert parse()[1] == {}


def test_flags_beat_environment_which_beats_the_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_PLUGIN", "fromenv")
    monkeypatch.setenv("PILOTHOUSE_LOG__LEVEL", "WARNING")
    s = agent_cmd.load(*parse("--config", str(config)))
    assert (s.plugin, s.log.level, s.log.format) == ("fromenv", "WARNING", "json")
    s = agent_cmd.load(
        *parse("--config", str(config), "--plugin", "fromflag", "--log-format", "text")
    )
    assert (s.plugin, s.log.level, s.log.format) == ("fromflag", "WARNING", "text")
    s = agent_cmd.load(*parse("--config", str(config), "--log-level", "DEBUG", "--http-port", "0"))
    assert (s.log.level, s.log.format) == ("DEBUG", "json")
    assert (s.http.enabled, s.http.host, s.http.port) == (True, "0.0.0.0", 0)
    assert (s.actions.timeout_s, s.prediction_environment) == (10, "pe-file")


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "pilothouse", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("actions:\n  max_attempts: lots\n", ["actions.max_attempts", "'lots'"]),
        ("plugn: docker\n", ["plugn"]),
        ("- not a mapping\n", ["expected a mapping"]),
        pytest.param(
            "\udcff\udcfe binary",
            [],
        ),
    ],
    ids=["wrong-value", "unknown-key", "not-a-mapping", "not-utf8"],
)
def test_cli_refuses_bad_config_with_exit_2_and_no_traceback(
    tmp_path: Path, content: str, names: list[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content.encode("utf-8", "surrogateescape"))
    proc = run_cli("agent", "run", "--config", str(bad), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr
    for name in names:
        assert name in proc.stderr
