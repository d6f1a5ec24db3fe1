"""The action journal: an action is on disk before the plugin hears of it, and survives."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from pilothouse.agent.actions import journal as journal_module
from pilothouse.agent.actions.journal import ActionJournal, InFlight, JournalEntry
from pilothouse.agent.errors import JournalError
from pilothouse.foundation.domain.desired import DeploymentSettings, DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action
from tests.helpers import eventually

pytestmark = pytest.mark.anyio

SPEC = DesiredDeployment(id="d1", model_package_id="m1", generation=3, relaunch_token=2)
NEXT = SPEC.model_copy(update={"generation": 4, "settings": DeploymentSettings(replicas=2)})


def logged(path: Path) -> list[list[Any]]:
    """Every row in the file, read by another connection: ``[id, outcome, applied, in_flight]``."""
    with sqlite3.connect(path) as db:
        bodies = db.execute("SELECT body FROM batches ORDER BY seq").fetchall()
    return [row for (body,) in bodies for row in orjson.loads(body)]


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
    [[dep_id, outcome, applied, in_flight]] = await asyncio.to_thread(logged, path)
    assert (dep_id, outcome, applied) == ("d1", 0, None) and '"launch"' in in_flight
    await journal.close()
    assert await reopened(path) == {"d1": JournalEntry(None, InFlight(Action.LAUNCH, SPEC))}


async def test_a_spec_is_logged_without_its_defaults_and_read_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    await journal.open()
    plain = DesiredDeployment(id="d2", model_package_id="m1")
    await journal.begin("d1", Action.LAUNCH, NEXT)
    await journal.begin("d2", Action.LAUNCH, plain)
    journal.settle("d2", plain)
    await journal.close()
    rows = await asyncio.to_thread(logged, path)
    assert orjson.loads(rows[-1][2]) == {"id": "d2", "model_package_id": "m1"}  # 42 bytes
    left = await reopened(path)
    assert left["d2"].applied == plain
    assert left["d1"].in_flight == InFlight(Action.LAUNCH, NEXT)  # non-defaults kept
    assert left["d1"].in_flight.spec.settings.replicas == 2


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
        db.execute("""INSERT INTO batches (body) VALUES ('[["d1", 1, "{\\"id\\": 7}", null]]')""")
    assert await reopened(path) == {"d1": JournalEntry(None, None, unreadable=True)}


async def test_an_unusable_state_dir_is_a_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    journal = ActionJournal(blocker / "actions.db")
    with pytest.raises(JournalError, match="cannot open the action journal"):
        await journal.open()
    await journal.close()


async def relaunch_all(journal: ActionJournal, specs: list[DesiredDeployment]) -> None:
    """One relaunch of each deployment, begun together and settled at once."""
    await asyncio.gather(*(journal.begin(s.id, Action.RELAUNCH, s) for s in specs))
    for spec in specs:
        journal.settle(spec.id, spec)


async def test_the_log_is_compacted_to_one_row_per_deployment(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    journal = ActionJournal(path)
    await journal.open()
    specs = [SPEC.model_copy(update={"id": f"d{i}"}) for i in range(500)]
    # Without a pause, a log far longer than the compaction threshold is compacted anyway.
    rounds = journal_module._OVERDUE * journal_module._COMPACT_MIN_ROWS // len(specs) + 4
    for generation in range(1, rounds + 1):
        reached = [s.model_copy(update={"generation": generation}) for s in specs]
        await relaunch_all(journal, reached)
    await journal.begin("d0", Action.STOP, reached[0])  # left in flight
    assert len(await asyncio.to_thread(logged, path)) < (rounds - 1) * len(specs)
    # In the first pause after it grew past the threshold, it is compacted to one row each.
    await eventually(lambda: len(logged(path)) == len(specs), timeout=10)
    await journal.close()
    left = await reopened(path)
    assert left["d0"] == JournalEntry(reached[0], InFlight(Action.STOP, reached[0]))
    assert all(left[s.id] == JournalEntry(s, None) for s in reached[1:])


async def test_a_journal_of_the_earlier_layout_is_read_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    flight = orjson.dumps({"action": "relaunch", "spec": NEXT.model_dump(mode="json")}).decode()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE deployments (id TEXT PRIMARY KEY, applied TEXT, in_flight TEXT)")
        db.execute("INSERT INTO deployments VALUES ('d1', ?, ?)", (SPEC.model_dump_json(), flight))
    assert await reopened(path) == {"d1": JournalEntry(SPEC, InFlight(Action.RELAUNCH, NEXT))}
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"batches"}
    assert await reopened(path) == {"d1": JournalEntry(SPEC, InFlight(Action.RELAUNCH, NEXT))}


# Run by a child process that SIGKILLs itself: nothing is closed or flushed.
_KILLED_CHILD = """
import asyncio, os, signal, sys
from pathlib import Path
from pilothouse.agent.actions.journal import ActionJournal
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action

async def main() -> None:
    journal = ActionJournal(Path(sys.argv[1]))
    await journal.open()
    spec = DesiredDeployment(id="d1", model_package_id="m1", generation=3)
    await journal.begin("d1", Action.LAUNCH, spec)
    journal.settle("d1", spec)  # not awaited: on disk once a later begin is
    nxt = spec.model_copy(update={"generation": 4, "relaunch_token": 1})
    await journal.begin("d1", Action.RELAUNCH, nxt)
    await journal.begin("d2", Action.LAUNCH, spec.model_copy(update={"id": "d2"}))
    journal.settle("d2", None)  # it failed; never awaited: may or may not be on disk
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_actions_begun_survive_a_sigkill_between_begin_and_outcome(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", _KILLED_CHILD, str(path))
    assert await child.wait() == -signal.SIGKILL
    left = await reopened(path)
    spec = DesiredDeployment(id="d1", model_package_id="m1", generation=3)
    nxt = spec.model_copy(update={"generation": 4, "relaunch_token": 1})
    # The relaunch in flight, and the launch settled before it (written no later than it).
    assert left["d1"] == JournalEntry(spec, InFlight(Action.RELAUNCH, nxt))
    # d2's failed launch was settled but not awaited: still in flight, or gone; nothing else.
    assert left.get("d2") in (
        None,
        JournalEntry(None, InFlight(Action.LAUNCH, spec.model_copy(update={"id": "d2"}))),
    )
