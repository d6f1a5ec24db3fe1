"""The request path: decode, predict (inline or in a thread), monitor, encode.

Each request takes the deployment's current record once, so a replacement
that lands meanwhile does not affect it: it finishes on the model it started
on, which is kept open until its last request is done (``in_flight``).
Where the prediction runs is the model's own measured decision (see
:mod:`pilothouse.serving.served`). Monitoring costs an append per request
(:class:`~pilothouse.serving.monitoring.FeatureMonitor`).

Challengers see the champion's traffic *after* the answer is on its way: the
request's validated table is put on a bounded queue that one task (the
``challenger worker``) replays on each challenger in a thread, comparing the
answers and timing the challenger. A full queue drops the replay (counted),
never the request; ``mirror_percent`` of the deployment says which share of
requests is replayed at all.

Every answer carries a request id (the V2 request's own ``id`` when it has
one), and the deployment keeps which predictions it got, so actuals posted
later can be joined to them (:mod:`pilothouse.serving.statistics`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from pilothouse.foundation.domain.monitoring import MAX_ASSOCIATED_ROWS
from pilothouse.modelpkg import ModelPredictError, Prediction, Schema, Table
from pilothouse.serving import decoding
from pilothouse.serving.deployments import Deployment, DeploymentRegistry, release
from pilothouse.serving.errors import BadRequestError, ModelFailedError
from pilothouse.serving.served import ServedModel
from pilothouse.serving.settings import ServerSettings

log = logging.getLogger(__name__)

_Replay = tuple[ServedModel, Table, npt.NDArray[Any]]
_ids = itertools.count(1)
_ID_PREFIX = uuid.uuid4().hex[:12]


REPLAY_BATCH = 256
"""Most queued requests replayed on a challenger in one predict call."""
REPLAY_LINGER_S = 0.05
"""How long the challenger worker lets requests gather before a replay."""


def _concatenated(tables: list[Table]) -> Table:
    """One table of every row of ``tables`` (the same schema), in order."""
    if len(tables) == 1:
        return tables[0]
    strings = [t.strings for t in tables if t.strings is not None]
    return Table(
        matrix=np.concatenate([t.matrix for t in tables]),
        numeric=np.concatenate([t.numeric for t in tables]),
        strings=np.concatenate(strings) if strings else None,
    )


def next_id() -> str:
    """An id for a response whose request gave none: unique, and cheaper than a uuid4 each."""
    return f"{_ID_PREFIX}-{next(_ids)}"


_T = TypeVar("_T")


class PredictionService:
    """Serves predictions for every deployment of the registry."""

    def __init__(
        self, registry: DeploymentRegistry, settings: ServerSettings, executor: ThreadPoolExecutor
    ) -> None:
        self._registry = registry
        self._executor = executor
        self._max_rows = settings.max_rows
        self._monitoring = settings.monitoring
        self._replays: asyncio.Queue[_Replay] = asyncio.Queue(settings.challenger_queue)

    async def predict(
        self, deployment_id: str, body: bytes, content_type: str
    ) -> tuple[bytes, str]:
        """``POST /v1/deployments/{id}/predict``: JSON rows or CSV in, predictions out.

        Answers the body and the request id it carries.
        """
        deployment = self._registry.get(deployment_id)
        model = deployment.champion
        schema = model.model.schema
        began = time.perf_counter()
        # CSV when it says so; anything else is read as JSON (curl -d sends a form type).
        decode = decoding.decode_csv if content_type == "text/csv" else decoding.decode_rows
        table = self._decode(deployment, model, began, decode, body, schema, self._max_rows)
        request_id = next_id()
        prediction = await self._predict(
            deployment, model, table, model.model.supports_proba, began, request_id
        )
        answer = decoding.encode_rows(
            prediction,
            deployment_id=deployment.id,
            package_id=model.package_id,
            classes=model.model.classes,
            request_id=request_id,
        )
        self._answered(deployment, model, table.rows, began)
        return answer, request_id

    async def infer(
        self, deployment_id: str, version: str | None, body: bytes, header_length: str | None
    ) -> tuple[bytes, int | None, str]:
        """``POST /v2/models/{name}[/versions/{version}]/infer``: JSON or binary tensors.

        Answers the body, the JSON header's length when binary outputs follow it,
        and the request id (the request's own ``id``, else one made here).
        """

        def decode(schema: Schema, max_rows: int, proba: bool) -> decoding.InferRequest:
            return decoding.decode_infer(
                body, schema, max_rows, proba_supported=proba, header_length=header_length
            )

        def encode(
            deployment: Deployment,
            model: ServedModel,
            request: decoding.InferRequest,
            prediction: Prediction,
        ) -> tuple[bytes, int | None, str]:
            assert request.id is not None  # infer_with gives every request an id
            answer, length = decoding.encode_infer(
                deployment.id, model.package_id, request.id, prediction, request
            )
            return answer, length, request.id

        return await self.infer_with(deployment_id, version, decode, encode)

    async def infer_with(
        self,
        deployment_id: str,
        version: str | None,
        decode: Callable[[Schema, int, bool], decoding.InferRequest],
        encode: Callable[[Deployment, ServedModel, decoding.InferRequest, Prediction], _T],
    ) -> _T:
        """One V2 inference, whatever the transport.

        ``decode(schema, max_rows, proba_ok)`` builds the request and
        ``encode(deployment, model, request, prediction)`` the answer. Lookup,
        validation errors, prediction (inline or in a thread), monitoring,
        challengers and statistics are the same for REST and gRPC.
        """
        deployment = self._registry.get(deployment_id)
        model = deployment.version(version) if version else deployment.champion
        began = time.perf_counter()
        request = self._decode(
            deployment,
            model,
            began,
            decode,
            model.model.schema,
            self._max_rows,
            model.model.supports_proba,
        )
        if request.id is None:
            # Built directly: dataclasses.replace() introspects the fields on every call.
            request = decoding.InferRequest(
                request.table, next_id(), request.outputs, request.binary
            )
        assert request.id is not None
        proba = decoding.PREDICT_PROBA in request.outputs
        prediction = await self._predict(deployment, model, request.table, proba, began, request.id)
        answer = encode(deployment, model, request, prediction)
        self._answered(deployment, model, request.table.rows, began)
        return answer

    def statistics(
        self, deployment_id: str, server: str | None, after: int | None
    ) -> dict[str, Any]:
        """``GET /admin/deployments/{id}/statistics``: cumulative counters for the agent."""
        deployment = self._registry.get(deployment_id)
        return deployment.statistics.reading(
            deployment.id,
            deployment.generation,
            deployment.champion,
            deployment.challengers,
            server=server,
            associations_after=after,
        )

    def stats(self, deployment_id: str) -> dict[str, Any]:
        """``GET /v1/deployments/{id}/stats``."""
        deployment = self._registry.get(deployment_id)
        champion = deployment.champion
        classifier = champion.model.manifest.is_classifier
        monitor = champion.monitor.snapshot()
        return {
            "deployment_id": deployment.id,
            "model_package_id": champion.package_id,
            **deployment.stats.snapshot(),
            "monitor_since": monitor["since"],
            "features": monitor["features"],
            "predictions": monitor["predictions"],
            "challengers": [
                {
                    "model_package_id": c.package_id,
                    **c.shadow.snapshot(classifier=classifier),
                    "predictions": c.monitor.snapshot()["predictions"],
                }
                for c in deployment.challengers
            ],
        }

    async def replay_challengers(self) -> None:
        """The ``challenger worker``: replays champion traffic on challengers, forever.

        It lets requests gather for :data:`REPLAY_LINGER_S`, takes everything queued
        (up to :data:`REPLAY_BATCH` requests) and runs
        each challenger once on their rows together: one predict call instead of
        one per request, which is what keeps a mirrored challenger cheap beside
        single-row traffic. The call's duration is each replayed request's
        challenger latency. A batch that fails is replayed request by request, so
        errors are counted for the requests that cause them.
        """
        while True:
            batch = [await self._replays.get()]
            if self._replays.qsize() < REPLAY_BATCH:
                # Shadow traffic has no one waiting for it: let a few requests gather, so a
                # challenger costs one call per batch rather than one per request.
                await asyncio.sleep(REPLAY_LINGER_S)
            while len(batch) < REPLAY_BATCH and not self._replays.empty():
                batch.append(self._replays.get_nowait())
            by_challenger: dict[int, list[_Replay]] = {}
            for item in batch:
                by_challenger.setdefault(id(item[0]), []).append(item)
            for items in by_challenger.values():
                await self._replay(items)

    async def _replay(self, items: list[_Replay]) -> None:
        challenger = items[0][0]
        table = _concatenated([t for _, t, _ in items])
        champion_values = (
            items[0][2] if len(items) == 1 else np.concatenate([v for _, _, v in items])
        )
        challenger.in_flight += 1
        began = time.perf_counter()
        try:
            prediction = await self._run(challenger, table, proba=False)
        except ModelPredictError as exc:
            if len(items) > 1:
                for item in items:
                    await self._replay([item])
                return
            challenger.shadow.errors += 1
            challenger.shadow.timed(time.perf_counter() - began)
            log.debug("challenger %s failed: %s", challenger.package_id, exc)
        else:
            challenger.shadow.timed(time.perf_counter() - began, len(items))
            challenger.monitor.observe(table, prediction.values)
            challenger.shadow.compare(
                prediction.values,
                champion_values,
                classifier=challenger.model.manifest.is_classifier,
            )
        finally:
            release(challenger)

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _decode(
        deployment: Deployment,
        model: ServedModel,
        began: float,
        decode: Callable[..., _T],
        *args: Any,
    ) -> _T:
        try:
            return decode(*args)
        except BadRequestError:
            seconds = time.perf_counter() - began
            deployment.stats.record_error(seconds, client=True)
            model.requests.record_error(seconds, client=True)
            raise

    @staticmethod
    def _answered(deployment: Deployment, model: ServedModel, rows: int, began: float) -> None:
        seconds = time.perf_counter() - began
        deployment.stats.record(rows, seconds)
        model.requests.record(rows, seconds)

    async def _predict(
        self,
        deployment: Deployment,
        model: ServedModel,
        table: Table,
        proba: bool,
        began: float,
        request_id: str,
    ) -> Prediction:
        model.in_flight += 1
        try:
            prediction = await self._run(model, table, proba=proba)
        except ModelPredictError as exc:
            self._failed(deployment, model, began)
            log.warning(
                "model %s failed: %s", model.package_id, exc, extra={"deployment_id": deployment.id}
            )
            raise ModelFailedError(str(exc), model_package_id=model.package_id) from None
        except BaseException:
            self._failed(deployment, model, began)
            raise
        finally:
            release(model)
        if not self._monitoring:
            return prediction
        model.monitor.observe(table, prediction.values)
        statistics = deployment.statistics
        statistics.associations.add(
            model.instance, request_id, prediction.values[:MAX_ASSOCIATED_ROWS]
        )
        if model is deployment.champion and deployment.challengers and statistics.mirror.take():
            for challenger in deployment.challengers:
                self._enqueue(challenger, table, prediction.values)
        return prediction

    @staticmethod
    def _failed(deployment: Deployment, model: ServedModel, began: float) -> None:
        seconds = time.perf_counter() - began
        deployment.stats.record_error(seconds, client=False)
        model.requests.record_error(seconds, client=False)

    async def _run(self, model: ServedModel, table: Table, *, proba: bool) -> Prediction:
        if model.runs_inline(table.rows):
            return model.model.predict(table.matrix, proba=proba)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, partial(model.model.predict, table.matrix, proba=proba)
        )

    def _enqueue(self, challenger: ServedModel, table: Table, values: npt.NDArray[Any]) -> None:
        try:
            self._replays.put_nowait((challenger, table, values))
        except asyncio.QueueFull:
            challenger.shadow.dropped += 1
