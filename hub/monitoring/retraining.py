"""Retraining triggers: a signed webhook or a command, at most once per cooldown.

A deployment's ``settings.retraining`` policy asks for a new model when its
drift turns ``failing`` (``on_drift_failing``), when the accuracy of its
predictions with actuals of the last ``monitoring.minute_windows_hours`` falls
below ``accuracy_below`` (judged when actuals are posted), or every ``every_s``
seconds (the *retraining scheduler*, on the lease holder). Each trigger is
first claimed in the store — a claim within ``cooldown_s`` (``every_s`` too, for
the schedule) of the last one is refused — so however many replicas and
reasons fire, one trigger goes out per cooldown.

The claimed trigger is handed to the *retraining trigger* task, so the request
that caused it (an agent's upload) never waits for a receiver: it POSTs the
JSON payload to ``webhook_url`` with the headers of notification webhooks,
signed with ``monitoring.retraining_secret`` (``X-Pilothouse-Signature``,
:mod:`pilothouse.hub.notifications.signing`), or runs ``command`` with the
payload on its standard input, killed after ``monitoring.retraining_timeout_s``.
Either way a ``deployment.retraining_triggered`` event (source ``hub``) records
the reason and the outcome. A trigger claimed but not yet sent when the hub
stops is not sent again (the cooldown holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.clock import Clock, us
from pilothouse.hub.notifications import sending
from pilothouse.hub.settings import MonitoringSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, DeploymentRecord, PageQuery

log = logging.getLogger("pilothouse.hub.retraining")

TRIGGERED = "deployment.retraining_triggered"
KIND = "retraining"
_OUTPUT_CHARS = 500
_PAGE = 200


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed trigger, waiting to be sent."""

    record: DeploymentRecord
    reason: str
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How sending a trigger went."""

    delivered: bool
    target: str
    error: str = ""
    http_status: int | None = None
    exit_code: int | None = None


class Retraining:
    """Claims, sends and records retraining triggers."""

    def __init__(
        self,
        store: Store,
        http: aiohttp.ClientSession,
        wall: Clock,
        settings: MonitoringSettings,
        hub_url: str,
        user_agent: str,
    ) -> None:
        self._store = store
        self._http = http
        self._clock = wall
        self._settings = settings
        self._hub_url = hub_url
        self._user_agent = user_agent
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()

    async def trigger(self, record: DeploymentRecord, reason: str, summary: dict[str, Any]) -> bool:
        """Claim a trigger for ``record`` (False within its cooldown) and queue it to be sent."""
        policy = record.desired.settings.retraining
        return await self._claim(record, reason, summary, policy.cooldown_s)

    async def _claim(
        self, record: DeploymentRecord, reason: str, summary: dict[str, Any], cooldown_s: float
    ) -> bool:
        policy = record.desired.settings.retraining
        if not policy.webhook_url and not policy.command:
            return False
        now = self._clock.now_us()
        if not await self._store.claim_retraining(record.desired.id, now, us(cooldown_s)):
            return False
        self._jobs.put_nowait(Job(record, reason, summary))
        return True

    async def run(self) -> None:
        """Send queued triggers one by one, forever (run it guarded)."""
        while True:
            job = await self._jobs.get()
            outcome = await self.send(job)
            await self._store.add_events([self._event(job, outcome)])

    async def schedule(self) -> None:
        """Trigger every scheduled policy whose time has come, forever (run it guarded)."""
        wake = asyncio.Event()
        while True:
            await self.due()
            until = self._clock.now_us() + us(self._settings.schedule_interval_s)
            while self._clock.now_us() < until:
                wake.clear()  # a manual clock sets it on every advance
                await self._clock.wait(wake, until)

    async def due(self) -> int:
        """Claim the trigger of every deployment whose schedule is due; return how many."""
        claimed, after = 0, None
        while True:
            records = await self._store.list_deployments(None, PageQuery(_PAGE, after))
            for record in records:
                policy = record.desired.settings.retraining
                if policy.every_s is not None:
                    cooldown = max(policy.every_s, policy.cooldown_s)
                    claimed += await self._claim(record, "schedule", {}, cooldown)
            if len(records) < _PAGE:
                return claimed
            last = records[-1]
            after = Cursor(clock.to_us(last.created_at), last.desired.id)

    async def send(self, job: Job) -> Outcome:
        """Call the webhook or run the command of ``job`` once."""
        policy = job.record.desired.settings.retraining
        body = orjson.dumps(self._payload(job))
        if policy.webhook_url:
            return await self._post(policy.webhook_url, body)
        assert policy.command is not None
        return await self._run(list(policy.command), body, job)

    async def _post(self, url: str, body: bytes) -> Outcome:
        secret = self._settings.retraining_secret
        headers = sending.headers(
            new_id(), KIND, secret.get_secret_value() if secret else None, body, self._user_agent
        )
        done = await sending.attempt(
            self._http, url, body, headers, self._settings.retraining_timeout_s, "the webhook"
        )
        return Outcome(done.delivered, "webhook", done.error, http_status=done.http_status)

    async def _run(self, command: list[str], body: bytes, job: Job) -> Outcome:
        env = _environment(job)
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=os.environ | env,
            )
        except OSError as exc:
            return Outcome(False, "command", f"cannot run {command[0]!r}: {exc}")
        timeout = self._settings.retraining_timeout_s
        try:
            async with asyncio.timeout(timeout):
                _, err = await proc.communicate(body)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return Outcome(
                False, "command", f"killed after {timeout:g}s", exit_code=proc.returncode
            )
        tail = err.decode(errors="replace")[-_OUTPUT_CHARS:].strip()
        code = proc.returncode
        error = "" if code == 0 else f"exited with {code}" + (f": {tail}" if tail else "")
        return Outcome(code == 0, "command", error, exit_code=code)

    def _payload(self, job: Job) -> dict[str, Any]:
        desired = job.record.desired
        return {
            "type": TRIGGERED,
            "at": clock.from_us(self._clock.now_us()).isoformat(),
            "reason": job.reason,
            "deployment": {
                "id": desired.id,
                "name": desired.name,
                "prediction_environment_id": job.record.prediction_environment_id,
            },
            "model_package_id": desired.model_package_id,
            "summary": job.summary,
            "link": f"{self._hub_url}/api/v1/deployments/{desired.id}/monitoring",
        }

    def _event(self, job: Job, outcome: Outcome) -> EventIn:
        desired = job.record.desired
        how = "delivered" if outcome.delivered else f"failed ({outcome.error})"
        data: dict[str, Any] = {
            "reason": job.reason,
            "target": outcome.target,
            "delivered": outcome.delivered,
            "error": outcome.error,
            "http_status": outcome.http_status,
            "exit_code": outcome.exit_code,
            "model_package_id": desired.model_package_id,
            "summary": job.summary,
        }
        return EventIn(
            id=new_id(),
            time=clock.now(),
            prediction_environment_id=job.record.prediction_environment_id,
            deployment_id=desired.id,
            source=Source.HUB,
            type=TRIGGERED,
            status=Status.INFORMATIONAL,
            message=f"{desired.name or desired.id}: retraining triggered ({job.reason}), "
            f"{outcome.target} {how}",
            data=data,
        )


def _environment(job: Job) -> Mapping[str, str]:
    desired = job.record.desired
    return {
        "PILOTHOUSE_DEPLOYMENT_ID": desired.id,
        "PILOTHOUSE_MODEL_PACKAGE_ID": desired.model_package_id,
        "PILOTHOUSE_RETRAINING_REASON": job.reason,
    }
