"""The archive limits have one definition, :class:`~pilothouse.modelpkg.ArchiveLimits`.

Before, the hub and the prediction server each declared their own limits with
different defaults (1 GiB against 2 GiB per member): the hub could accept a
package that its servers refused, or the other way round.
"""

from __future__ import annotations

import pytest

from pilothouse.hub.settings import LimitSettings
from pilothouse.modelpkg import DEFAULT_LIMITS, ArchiveLimits
from pilothouse.serving import ServerSettings


def test_hub_and_server_default_to_the_same_limits() -> None:
    hub = LimitSettings().archive_limits()
    server = ServerSettings.load({"admin_token": "x" * 16}).limits
    assert isinstance(server, ArchiveLimits)
    assert hub == server == DEFAULT_LIMITS


def test_hub_settings_translate_field_by_field() -> None:
    limits = LimitSettings(
        max_package_bytes=5 * 1024, max_package_files=7, max_member_bytes=3 * 1024,
        max_unpacked_bytes=9 * 1024,
    )  # fmt: skip
    assert limits.archive_limits() == ArchiveLimits(
        max_archive_bytes=5 * 1024, max_members=7, max_member_bytes=3 * 1024,
        max_total_bytes=9 * 1024,
    )  # fmt: skip


def test_server_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTHOUSE_SERVE_LIMITS__MAX_MEMBERS", "12")
    settings = ServerSettings.load({"admin_token": "x" * 16})
    assert settings.limits.max_members == 12
    assert settings.limits.max_member_bytes == DEFAULT_LIMITS.max_member_bytes
