"""Hub settings: flags over environment over the YAML file over defaults; clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.agent.errors import ConfigError
from pilothouse.hub.settings import HubSettings

pytestmark = pytest.mark.backends("sqlite")  # settings only: no store is opened


def test_defaults() -> None:
    s = HubSettings.load()
    assert (s.listen.host, s.listen.port) == ("127.0.0.1", 8700)
    assert s.database_path == Path(".pilothouse/hub/hub.db")
    assert s.admin_token is None and s.limits.max_event_batch == 5000


def test_precedence_flags_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        "listen: {host: 0.0.0.0, port: 1000}\nlimits: {max_event_batch: 10, max_package_files: 5}\n"
        "agents: {heartbeat_timeout_s: 7}\n"
    )
    monkeypatch.setenv("PILOTHOUSE_HUB_LISTEN__PORT", "2000")
    monkeypatch.setenv("PILOTHOUSE_HUB_LIMITS__MAX_EVENT_BATCH", "20")
    s = HubSettings.load(config, {"limits": {"max_event_batch": 30}})
    assert (s.listen.host, s.listen.port) == ("0.0.0.0", 2000)
    assert (s.limits.max_event_batch, s.limits.max_package_files) == (30, 5)
    assert s.agents.heartbeat_timeout_s == 7


def test_database_url(tmp_path: Path) -> None:
    s = HubSettings.load(None, {"database": {"url": f"sqlite:///{tmp_path}/x.db"}})
    assert s.database_path == tmp_path / "x.db" and not s.uses_postgres
    for url in ("postgresql://hub:pw@db:5432/hub", "postgres://db/hub"):
        assert HubSettings.load(None, {"database": {"url": url}}).uses_postgres
    for wrong in ("mysql://db/hub", "postgresql://", "sqlite:///"):
        with pytest.raises(ConfigError, match=r"database\.url"):
            HubSettings.load(None, {"database": {"url": wrong}})


def test_wrong_values_are_refused_naming_each_field(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("limits: {max_event_batch: 0}\nlisten: {port: 70000}\nnope: 1\n")
    with pytest.raises(ConfigError) as info:
        HubSettings.load(config)
    text = str(info.value)
    assert "limits.max_event_batch" in text and "listen.port" in text and "nope" in text
