"""Agent tokens can be listed and revoked; a revoked token is refused at once, streams included.

Issue 9, item 9: there was no way to revoke an agent token. Now ``GET
…/{id}/agent-tokens`` lists a PE's tokens (never their secrets), ``DELETE
…/{id}/agent-tokens/{token_id}`` revokes one, and ``pilothouse pe token
issue|list|revoke`` does the same from the command line. A revoked token gets
401 on its next request, and a watch stream it already had open ends.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import orjson
import pytest

from tests.hub.support import ADMIN, V1, Running, answer, next_message, ok

pytestmark = pytest.mark.anyio


async def _issue(hub: Running, pe_id: str) -> dict[str, Any]:
    issued: dict[str, Any] = await ok(
        hub.admin.post(f"{V1}/prediction-environments/{pe_id}/agent-tokens"), 201
    )
    return issued


async def test_list_never_shows_secrets_and_revoke_is_refused_at_once(hub: Running) -> None:
    pe = await hub.pe()
    first, second = await _issue(hub, pe["id"]), await _issue(hub, pe["id"])
    tokens = f"{V1}/prediction-environments/{pe['id']}/agent-tokens"
    listed = await ok(hub.admin.get(tokens))
    assert [t["id"] for t in listed["items"]] == [second["id"], first["id"]]
    assert all(set(t) == {"id", "prediction_environment_id", "created_at", "revoked_at"}
               for t in listed["items"])  # fmt: skip
    assert first["token"] not in orjson.dumps(listed).decode()

    agent = hub.session(first["token"])
    await ok(agent.get(f"{V1}/prediction-environments/{pe['id']}/desired-state"))
    revoked = await ok(hub.admin.delete(f"{tokens}/{first['id']}"))
    assert revoked["id"] == first["id"] and revoked["revoked_at"] is not None
    status, body = await answer(agent.get(f"{V1}/prediction-environments/{pe['id']}/desired-state"))
    assert status == 401 and "revoked" in body["message"], body
    await ok(hub.session(second["token"]).get(f"{V1}/prediction-environments/{pe['id']}"))

    again = await ok(hub.admin.delete(f"{tokens}/{first['id']}"))
    assert again["revoked_at"] == revoked["revoked_at"]  # idempotent
    listed = await ok(hub.admin.get(tokens))
    assert [t["revoked_at"] is not None for t in listed["items"]] == [False, True]


async def test_tokens_are_revoked_only_through_their_own_pe(hub: Running) -> None:
    mine, theirs = await hub.pe("mine"), await hub.pe("theirs")
    token = await _issue(hub, mine["id"])
    status, _ = await answer(
        hub.admin.delete(f"{V1}/prediction-environments/{theirs['id']}/agent-tokens/{token['id']}")
    )
    assert status == 404
    status, _ = await answer(
        hub.admin.delete(f"{V1}/prediction-environments/{mine['id']}/agent-tokens/tok-nope")
    )
    assert status == 404
    agent = hub.session(token["token"])
    for request in (
        agent.get(f"{V1}/prediction-environments/{mine['id']}/agent-tokens"),
        agent.delete(f"{V1}/prediction-environments/{mine['id']}/agent-tokens/{token['id']}"),
    ):
        status, _ = await answer(request)
        assert status == 403  # an agent may not manage tokens, not even its own
    await ok(agent.get(f"{V1}/prediction-environments/{mine['id']}"))


async def test_an_open_watch_stream_of_a_revoked_token_ends(hub: Running) -> None:
    pe = await hub.pe()
    revoked, kept = await _issue(hub, pe["id"]), await _issue(hub, pe["id"])
    watch = f"{V1}/prediction-environments/{pe['id']}/watch"
    async with (
        hub.session(revoked["token"]).get(watch) as doomed,
        hub.session(kept["token"]).get(watch) as alive,
    ):
        assert (await next_message(doomed)).data == "connected"
        assert (await next_message(alive)).data == "connected"
        tokens = f"{V1}/prediction-environments/{pe['id']}/agent-tokens"
        await ok(hub.admin.delete(f"{tokens}/{revoked['id']}"))
        with pytest.raises(EOFError):
            await next_message(doomed, timeout=2.0)  # ended at once, not at the keep-alive
        dep = await hub.deployment(pe["id"], (await hub.package())["id"])
        change = await next_message(alive)
        assert change.event == "deployment" and change.json()["id"] == dep["id"]


async def _cli(hub: Running, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PILOTHOUSE_HUB_URL": hub.url, "PILOTHOUSE_TOKEN": ADMIN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_cli_issues_lists_and_revokes(hub: Running) -> None:
    pe = await hub.pe()
    code, token, err = await _cli(hub, "pe", "token", "issue", pe["id"])
    assert code == 0, err
    agent = hub.session(token.strip())
    await ok(agent.get(f"{V1}/prediction-environments/{pe['id']}"))
    code, out, err = await _cli(hub, "pe", "token", "list", pe["id"], "--json")
    assert code == 0, err
    (listed,) = orjson.loads(out)
    assert listed["revoked_at"] is None and token.strip() not in out
    code, out, err = await _cli(hub, "pe", "token", "revoke", pe["id"], listed["id"])
    assert code == 0, err
    assert listed["id"] in out
    status, _ = await answer(agent.get(f"{V1}/prediction-environments/{pe['id']}"))
    assert status == 401
    code, _, err = await _cli(hub, "pe", "token", "revoke", pe["id"], "tok-nope")
    assert code != 0 and "tok-nope" in err
