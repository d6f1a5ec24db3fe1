"""Secret settings from files (``PILOTHOUSE_X_FILE``, the Docker-secrets convention).

Every ``SecretStr`` setting of every process may come from a file its ``…_FILE`` variable
names: the agent's hub token, the prediction server's admin token. Both variables set, or a
file that cannot be read, is a ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation.errors import ConfigError
from pilothouse.foundation.settings import secret_fields
from pilothouse.hub import HubSettings
from pilothouse.serving.settings import ServerSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PILOTHOUSE_"):
            monkeypatch.delenv(key)


def secret(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secret"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_agent_token_comes_from_the_file_its_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_HUB__TOKEN_FILE", str(secret(tmp_path, "  tok-from-file\n")))
    settings = AgentSettings.load()
    assert settings.hub.token is not None
    assert settings.hub.token.get_secret_value() == "tok-from-file"


def test_the_server_admin_token_comes_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_SERVE_ADMIN_TOKEN_FILE", str(secret(tmp_path, "admin-secret\n")))
    assert ServerSettings.load().admin_token.get_secret_value() == "admin-secret"


def test_a_file_ranks_with_the_environment_below_flags_above_the_yaml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("hub: {url: 'http://hub:8700', token: from-yaml}\n")
    monkeypatch.setenv("PILOTHOUSE_HUB__TOKEN_FILE", str(secret(tmp_path, "from-file")))
    from_file = AgentSettings.load(config).hub
    assert from_file.token is not None and from_file.token.get_secret_value() == "from-file"
    assert from_file.url == "http://hub:8700"  # the rest of the group still from the YAML
    flagged = AgentSettings.load(config, {"hub": {"token": "from-flag"}}).hub.token
    assert flagged is not None and flagged.get_secret_value() == "from-flag"


def test_the_value_and_its_file_both_set_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_HUB__TOKEN", "direct")
    monkeypatch.setenv("PILOTHOUSE_HUB__TOKEN_FILE", str(secret(tmp_path, "from-file")))
    with pytest.raises(ConfigError) as caught:
        AgentSettings.load()
    assert "PILOTHOUSE_HUB__TOKEN and PILOTHOUSE_HUB__TOKEN_FILE are both set" in str(caught.value)


def test_an_unreadable_file_is_refused_naming_the_variable_and_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-secret"
    monkeypatch.setenv("PILOTHOUSE_SERVE_ADMIN_TOKEN_FILE", str(missing))
    with pytest.raises(ConfigError) as caught:
        ServerSettings.load()
    message = str(caught.value)
    assert f"PILOTHOUSE_SERVE_ADMIN_TOKEN_FILE: cannot read {missing}" in message
    assert "No such file or directory" in message


def test_a_file_that_is_no_text_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00token")
    monkeypatch.setenv("PILOTHOUSE_HUB__TOKEN_FILE", str(binary))
    with pytest.raises(ConfigError, match=r"PILOTHOUSE_HUB__TOKEN_FILE: .* not UTF-8"):
        AgentSettings.load()


def test_the_file_value_is_validated_like_any_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's admin token needs 8 characters: a short one from a file is refused too.
    monkeypatch.setenv("PILOTHOUSE_SERVE_ADMIN_TOKEN_FILE", str(secret(tmp_path, "short\n")))
    with pytest.raises(Exception, match="admin_token"):
        ServerSettings.load()


def test_every_secret_setting_of_every_process_is_covered() -> None:
    assert list(secret_fields(AgentSettings)) == [("hub", "token")]
    assert list(secret_fields(ServerSettings)) == [("admin_token",)]
    # The hub's admin token and secret key have explicit *_file settings of their own, whose
    # variables (PILOTHOUSE_HUB_ADMIN_TOKEN_FILE) already follow the convention; the
    # retraining webhooks' signing secret (issue 14) is read from a file the generic way.
    assert list(secret_fields(HubSettings)) == [("monitoring", "retraining_secret")]


def test_the_retraining_secret_is_read_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret(tmp_path, "retraining-signing-secret\n")
    monkeypatch.setenv("PILOTHOUSE_HUB_MONITORING__RETRAINING_SECRET_FILE", str(path))
    secret_value = HubSettings.load().monitoring.retraining_secret
    assert secret_value is not None
    assert secret_value.get_secret_value() == "retraining-signing-secret"


def test_the_hubs_own_file_settings_keep_their_meaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret(tmp_path, "hub-admin-token")
    monkeypatch.setenv("PILOTHOUSE_HUB_ADMIN_TOKEN_FILE", str(path))
    settings = HubSettings.load()
    assert settings.admin_token_file == path
    assert settings.admin_token is None


def test_a_hub_secret_and_its_file_both_set_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_HUB_ADMIN_TOKEN", "direct-admin-token")
    monkeypatch.setenv("PILOTHOUSE_HUB_ADMIN_TOKEN_FILE", str(secret(tmp_path, "from-file")))
    with pytest.raises(ConfigError, match="admin_token and admin_token_file are both set"):
        HubSettings.load()
