"""The action journal: an action is on disk before the plugin hears of it, and survives."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from pilothouse.agent.actions.journal import ActionJournal, InFlight, JournalEntry
from pilothouse.agent.errors import JournalError
from pilothouse.foundation.domain.desired import DeploymentSettings, DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action

pytestmark = pytest.mark.anyio

SPEC = DesiredDeployment(id="d1", model_package_id="m1", generation=3, relaunch_token=2)
NEXT = SPEC.model_copy(update={"generation": 4, "settings": DeploymentSettings(replicas=2)})


def rows(path: Path) -> dict[str, tuple[str | None, str | None]]:
    with sqlite3.connect(path) as db:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT * FROM deployments")}


async def reopened(path: Path) -> dict[str, JournalEntry]:
    journal = ActionJournal(path)
    try:
        return await journal.open()
    finally:
        await journal.close()


async def test_an_action_is_on_disk_when_begin_returns(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    assert await journal.open() == {}
    await journal.begin("d1", Action.LAUNCH, SPEC)
    applied, in_flight = (await asyncio.to_thread(rows, path))["d1"]
    assert applied is None and in_flight is not None and '"launch"' in in_flight
    await journal.close()
    assert await reopened(path) == {"d1": JournalEntry(None, InFlight(Action.LAUNCH, SPEC))}


async def test_an_outcome_replaces_the_action_and_keeps_the_spec_reached(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    await journal.open()
    await journal.begin("d1", Action.LAUNCH, SPEC)
    journal.settle("d1", SPEC)
    await journal.begin("d1", Action.RELAUNCH, NEXT)  # the next action keeps what was reached
    await journal.close()
    left = await reopened(path)
    assert left == {"d1": JournalEntry(SPEC, InFlight(Action.RELAUNCH, NEXT))}
    assert left["d1"].applied is not None and left["d1"].applied.relaunch_token == 2


async def test_a_stopped_deployment_leaves_no_row(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    await journal.open()
    await journal.begin("d1", Action.STOP, SPEC)
    journal.settle("d1", None)
    await journal.close()
    assert await reopened(path) == {}


def wal_frames(path: Path) -> int:
    with sqlite3.connect(path) as db:
        _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)


async def test_writes_arriving_together_share_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    await journal.open()
    specs = [SPEC.model_copy(update={"id": f"d{i}"}) for i in range(500)]
    await asyncio.gather(*(journal.begin(s.id, Action.LAUNCH, s) for s in specs))
    # 500 commits would write at least 500 WAL frames; one batch writes its pages once.
    frames = await asyncio.to_thread(wal_frames, path)
    await journal.close()
    assert 0 < frames < 100, frames
    assert len(await reopened(path)) == 500


async def test_a_cancelled_waiter_does_not_cancel_the_others(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    await journal.open()
    first = asyncio.create_task(journal.begin("d1", Action.LAUNCH, SPEC))
    second = asyncio.create_task(
        journal.begin("d2", Action.LAUNCH, SPEC.model_copy(update={"id": "d2"}))
    )
    await asyncio.sleep(0)
    first.cancel()
    done = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError) and done[1] is None
    await journal.close()
    assert set(await reopened(path)) == {"d1", "d2"}  # both were committed


async def test_a_row_this_version_cannot_read_is_trusted_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    await reopened(path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO deployments VALUES ('d1', '{\"id\": 7}', NULL)")
    assert await reopened(path) == {"d1": JournalEntry(None, None, unreadable=True)}


async def test_an_unusable_state_dir_is_a_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    journal = ActionJournal(blocker / "actions.db")
    with pytest.raises(JournalError, match="cannot open the action journal"):
        await journal.open()
    await journal.close()
