"""What the engine or the server refuses is a typed error naming the cause, and leaves nothing.

A missing image, a package whose sha256 does not match (checked by the server
inside the container, before anything is unpacked), a host port someone else
holds, a mount the engine cannot make: each launch fails with an error that
says whether retrying can help and what to fix — never a crash of the plugin
— and no container or volume of it stays behind.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pilothouse.agent.errors import PermanentPluginError, TemporaryPluginError
from pilothouse.agent.plugin import FetchedPackage
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.modelpkg import build_package
from pilothouse.plugins.docker.engine import ImageMissing, MountRefused, PortClash
from tests.docker.support import RULES, loaded, new_owner, owned, purge, settings

pytestmark = pytest.mark.anyio

SPEC = DesiredDeployment(id="a", model_package_id="rules")


async def test_a_missing_image_is_a_permanent_error_naming_it(
    tmp_path: Path, pilothouse_image: str
) -> None:
    owner = new_owner()
    try:
        plugin_settings = settings(
            "pilothouse-no-such-image:nope", owner, packages={"rules": RULES}
        )
        async with loaded(tmp_path, plugin_settings) as it:
            with pytest.raises(ImageMissing) as info:
                await it.plugin.launch(SPEC)
            assert isinstance(info.value, PermanentPluginError)
            assert "pilothouse-no-such-image:nope" in str(info.value)
            assert "make image" in str(info.value), "it says how to fix it"
            assert (await it.plugin.environment_status()).status.value != "failing"
        assert await owned(owner) == ([], [])
    finally:
        await purge(owner)


async def test_a_package_whose_sha256_does_not_match_is_refused_in_the_container(
    tmp_path: Path, pilothouse_image: str
) -> None:
    info, archive = build_package(RULES, tmp_path / "rules.tar.gz")
    claimed = "0" * 64
    assert info.sha256 != claimed

    async def tampered(model_package_id: str) -> FetchedPackage:
        return FetchedPackage(model_package_id, archive, claimed)

    owner = new_owner()
    try:
        async with loaded(
            tmp_path / "state", settings(pilothouse_image, owner), fetch_package=tampered
        ) as it:
            with pytest.raises(PermanentPluginError) as refused:
                await it.plugin.launch(DesiredDeployment(id="a", model_package_id="from-hub"))
            message = str(refused.value)
            assert claimed in message and info.sha256 in message, message
            server = it.plugin.servers["shared"]
            assert server.api is not None and await server.api.deployments() == []
    finally:
        await purge(owner)


async def test_a_taken_host_port_is_skipped_then_reported_when_none_is_left(
    tmp_path: Path, pilothouse_image: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        owner = new_owner()
        try:
            only = {"range": f"{taken}-{taken}"}
            async with loaded(
                tmp_path / "one",
                settings(pilothouse_image, owner, ports=only, packages={"rules": RULES}),
            ) as it:
                with pytest.raises(PortClash) as clash:
                    await it.plugin.launch(SPEC)
                assert isinstance(clash.value, TemporaryPluginError)
                assert f"{taken}-{taken}" in str(clash.value), clash.value
            assert await owned(owner) == ([], [])
            two = {"range": f"{taken}-{taken + 1}"}
            async with loaded(
                tmp_path / "two",
                settings(pilothouse_image, owner, ports=two, packages={"rules": RULES}),
            ) as it:
                launched = await it.plugin.launch(SPEC)
                assert f":{taken + 1}/" in str(launched.prediction_url), launched.prediction_url
        finally:
            await purge(owner)


async def test_a_refused_mount_is_a_permanent_error_naming_it(
    tmp_path: Path, pilothouse_image: str
) -> None:
    owner = new_owner()
    missing = tmp_path / "not-there"
    try:
        mounts = [f"{missing}:/data:ro"]
        async with loaded(
            tmp_path, settings(pilothouse_image, owner, mounts=mounts, packages={"rules": RULES})
        ) as it:
            with pytest.raises(MountRefused) as refused:
                await it.plugin.launch(SPEC)
            assert isinstance(refused.value, PermanentPluginError)
            assert str(missing) in str(refused.value), refused.value
        assert await owned(owner) == ([], [])
    finally:
        await purge(owner)
