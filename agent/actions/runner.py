"""The action runner: the only code that calls a plugin's actions.

One attempt runs under the concurrency limit (so a thousand deployments
launching together use at most ``max_concurrent`` plugin calls) and under a
timeout. A ``TemporaryPluginError`` (a timeout included) is retried after a
backoff, up to ``max_attempts``; a ``PermanentPluginError`` ends the action.
Anything else a plugin raises is a bug in the plugin: it is translated here,
once, into a ``PermanentPluginError`` that names the plugin's exception, so
nothing above this layer ever sees a foreign exception. Cancellation is never
swallowed: a cancelled action propagates ``CancelledError`` to its worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pilothouse.agent.errors import (
    ActionTimeoutError,
    PermanentPluginError,
    PluginError,
    TemporaryPluginError,
)
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.plugin import ActionResult, Plugin
from pilothouse.agent.settings import ActionSettings
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action

log = logging.getLogger("pilothouse.actions")


@dataclass(frozen=True, slots=True)
class Retry:
    """A failed attempt that will be tried again."""

    action: Action
    deployment_id: str
    attempt: int
    error: TemporaryPluginError
    delay_s: float


class ActionRunner:
    """Runs plugin actions with a time budget, retries and a concurrency bound."""

    def __init__(self, plugin: Plugin, settings: ActionSettings, metrics: AgentMetrics) -> None:
        self._plugin = plugin
        self._settings = settings
        self._metrics = metrics
        self._limit = asyncio.Semaphore(settings.max_concurrent)
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self.in_flight = 0

    async def run(
        self,
        action: Action,
        spec: DesiredDeployment,
        on_retry: Callable[[Retry], None],
    ) -> ActionResult:
        """Run ``action`` for ``spec`` to a result, or raise the ``PluginError`` that ended it.

        For ``stop`` only ``spec.id`` matters: pass the last known spec.
        """
        began = time.perf_counter()
        result_label = "failed"
        self.in_flight += 1
        try:
            result = await self._attempts(action, spec, on_retry)
            result_label = "rolled_back" if result.old_model_in_use else "succeeded"
            return result
        except asyncio.CancelledError:
            result_label = "cancelled"
            raise
        finally:
            self.in_flight -= 1
            self._metrics.action_finished(action.value, result_label, time.perf_counter() - began)

    async def _attempts(
        self, action: Action, spec: DesiredDeployment, on_retry: Callable[[Retry], None]
    ) -> ActionResult:
        attempt = 1
        while True:
            try:
                return await self._attempt(action, spec)
            except TemporaryPluginError as exc:
                if attempt >= self._settings.max_attempts:
                    raise
                delay = exc.delay if exc.delay is not None else self._backoff.delay(attempt - 1)
                on_retry(Retry(action, spec.id, attempt, exc, delay))
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(self, action: Action, spec: DesiredDeployment) -> ActionResult:
        async with self._limit:
            budget = asyncio.timeout(self._settings.timeout_s)
            try:
                async with budget:
                    return await self._call(action, spec)
            except TimeoutError as exc:
                if budget.expired():
                    raise ActionTimeoutError(
                        f"{action.value} did not finish within {self._settings.timeout_s:g}s",
                        deployment_id=spec.id,
                    ) from None
                raise TemporaryPluginError(
                    f"plugin timed out during {action.value}: {exc or 'TimeoutError'}",
                    deployment_id=spec.id,
                ) from exc
            except PluginError:
                raise
            except Exception as exc:
                log.error("plugin raised during %s", action.value, exc_info=exc)
                raise PermanentPluginError(
                    f"plugin {self._plugin.name!r} crashed during {action.value}: "
                    f"{type(exc).__name__}: {exc}",
                    deployment_id=spec.id,
                ) from exc

    def _call(self, action: Action, spec: DesiredDeployment) -> Awaitable[ActionResult]:
        match action:
            case Action.LAUNCH:
                return self._plugin.launch(spec)
            case Action.REPLACE_MODEL:
                return self._plugin.replace_model(spec)
            case Action.STOP:
                return self._plugin.stop_deployment(spec.id)
            case Action.RELAUNCH:
                return self._plugin.relaunch(spec)
