"""The ``kubernetes`` plugin: each deployment a Deployment, a Service and (optionally) an Ingress.

Why not the fleet kit's :class:`~pilothouse.plugins.fleet.FleetPlugin`: the kit
drives long-lived servers through their admin API (load beside, swap, crash
watch). In a cluster the pod *is* the unit: a pod's server starts with its one
deployment already loaded (its init container fetched the packages), a
replacement is a rolling update of the Deployment's pod template, restarts are
the kubelet's, and a readiness probe that makes a real prediction gates
traffic. So the plugin reuses the kit's parts that still apply —
:class:`~pilothouse.plugins.fleet.PackageSource` (local packages or the hub)
and the HTTP error mapping of :mod:`pilothouse.plugins.fleet.errors` — and
owns the rest:

- actions write the objects (:mod:`.manifests`) and wait for the rollout
  (:mod:`.rollout`) as the watches see it; a replacement that cannot complete
  is **undone** (the previous pod template restored) and reported with
  ``old_model_in_use`` and its cause — the old pods never stopped serving
  (``maxUnavailable: 0``);
- status comes from list-then-watch of Deployments, Pods and Events
  (:mod:`.watching`, :mod:`.observer`), pushed through ``ctx.report`` as soon as
  a finding changes (:mod:`.findings`), never polled;
- after an agent restart the objects are found again by their labels: nothing
  is restarted, nothing duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson

from pilothouse.agent.errors import (
    PermanentPluginError,
    PluginError,
    PluginNotReadyError,
    TemporaryPluginError,
)
from pilothouse.agent.plugin import (
    ActionResult,
    DeploymentReport,
    EnvironmentReport,
    Plugin,
    PluginContext,
)
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.fleet import PackageSource
from pilothouse.plugins.kubernetes import manifests, names, rollout
from pilothouse.plugins.kubernetes.api import Kube
from pilothouse.plugins.kubernetes.delivery import Delivery, Planned
from pilothouse.plugins.kubernetes.errors import ConflictError, NotFoundError
from pilothouse.plugins.kubernetes.findings import Finding
from pilothouse.plugins.kubernetes.observer import Observer, deployment_id
from pilothouse.plugins.kubernetes.package_token import PackageTokenSecret
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings

CONFLICT_RETRIES = 5
"""Times a write that lost a race (409) is re-read and tried again before giving up."""
RECONNECT_INITIAL_S = 0.1
"""First delay before a lost watch reconnects; doubles up to ``reconnect_max_s``."""
STOP_WAIT_S = 60.0
"""Longest a stop waits for the deployment's pods to be gone (beyond their grace period)."""
UNDO_WAIT_S = 120.0
"""Longest an undo waits for the previous pods to be all available again."""


class KubernetesPlugin(Plugin):
    """Runs deployments as Kubernetes Deployments in one namespace."""

    name = "kubernetes"
    settings_model = KubernetesPluginSettings

    def __init__(self, settings: KubernetesPluginSettings | None = None) -> None:
        self._given = settings
        self._kube: Kube | None = None
        self._urls: dict[str, str] = {}
        self._grpc_targets: dict[str, str] = {}

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, ctx: PluginContext) -> None:
        """Connect, make sure the PE's Secret exists, list and watch, find earlier deployments."""
        await super().start(ctx)
        s = self.settings = self._given or ctx.typed_settings(KubernetesPluginSettings)
        self.pe = ctx.prediction_environment_id
        self._kube = kube = await Kube.connect(s)
        try:
            await self._ensure_admin_secret()
        except TemporaryPluginError as exc:
            await kube.close()
            raise PluginNotReadyError(f"Kubernetes API not ready: {exc}") from exc
        except PluginError:
            await kube.close()
            raise
        self.delivery = Delivery(s, PackageSource(s.packages, ctx.fetch_package), ctx.state_dir)
        self.package_token = PackageTokenSecret(kube, s, self.pe, ctx.package_tokens)
        self.observer = Observer(
            kube,
            self.pe,
            backoff=Backoff(RECONNECT_INITIAL_S, s.reconnect_max_s),
            timeout_s=s.watch_timeout_s,
            report=ctx.report,
            to_report=self._report,
            log_lines=s.log_tail_lines,
        )
        for watcher in self.observer.watchers:
            await ctx.start_task(f"watch {watcher.kind.resource}", watcher.run)
        await ctx.start_task("push kubernetes findings", self.observer.push_findings)
        try:
            async with asyncio.timeout(s.request_timeout_s):
                await self.observer.synced()
        except TimeoutError:
            errors = "; ".join(str(w.error) for w in self.observer.watchers if w.error)
            raise PluginNotReadyError(
                f"cannot list the PE's objects: {errors or 'no answer'}"
            ) from None
        await self._learn_urls()

    async def stop(self) -> None:
        """Close the client; the deployments keep running (a restarted agent adopts them)."""
        if self._kube is not None:
            await self._kube.close()

    @property
    def kube(self) -> Kube:
        """The API client (after start)."""
        assert self._kube is not None, "the plugin is not started"
        return self._kube

    # --- actions ----------------------------------------------------------------------------

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        """Create the objects (or find them there) and wait until every replica predicts."""
        async with self._acting(spec.id):
            return await self._launch(spec)

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        """Roll the pods to ``spec``'s packages; undo the rollout if it cannot complete."""
        async with self._acting(spec.id):
            current = await self._read(spec.id)
            if current is None:
                return await self._launch(spec)
            return await self._update(spec, current, launching=False)

    async def _launch(self, spec: DesiredDeployment) -> ActionResult:
        current = await self._read(spec.id)
        if current is not None:
            return await self._update(spec, current, launching=True)
        planned = await self._plan(spec)
        objects = manifests.build(spec, [p.delivered for p in planned], self.settings, self.pe)
        try:
            created = await self._create_deployment(spec, objects.deployment)
        except ConflictError:  # made meanwhile (another agent, a retried action)
            return await self._update(spec, await self._must_read(spec.id), launching=True)
        await self._create_configmaps(spec, planned, created)
        await self._apply_service(spec, manifests.owned_by(objects.service, created))
        if objects.ingress is not None:
            await self._apply(
                spec, "ingresses", "networking.k8s.io", manifests.owned_by(objects.ingress, created)
            )
        outcome = await self._wait(spec, objects.deployment)
        if not outcome.ok:
            raise PermanentPluginError(
                _failure(f"launch of {spec.model_package_id!r}", outcome), deployment_id=spec.id
            )
        return self._ready(spec, "launched")

    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        """Delete the Deployment (its Service, Ingress and ConfigMaps are owned: collected too)."""
        async with self._acting(deployment_id):
            name = names.object_name(deployment_id)
            for resource, group in (
                ("ingresses", "networking.k8s.io"),
                ("services", ""),
                ("deployments", "apps"),
            ):
                with contextlib.suppress(NotFoundError):
                    await self._delete(resource, group, name, deployment_id)
            await self._delete_configmaps(deployment_id, keep=set())
            self._urls.pop(deployment_id, None)
            self._grpc_targets.pop(deployment_id, None)
            await self._until(
                lambda: (
                    not self.observer.pods_of(deployment_id)
                    and self.observer.deployment(deployment_id) is None
                ),
                self.settings.termination_grace_s + STOP_WAIT_S,
            )
            return ActionResult(
                state=DeploymentState.STOPPED, status=Status.UNKNOWN, message="stopped"
            )

    # --- observation ------------------------------------------------------------------------

    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        """The deployment as the watches see it now (``stopped`` without a Deployment)."""
        finding = self.observer.assess(deployment_id)
        tail = await self.observer.log_tail(finding) if finding.status is Status.FAILING else ""
        return self._report(deployment_id, finding, tail)

    async def list_deployments(self) -> list[DeploymentReport]:
        """Every Deployment of the PE, found by its labels (for reconcile and adoption)."""
        return [
            self._report(i, self.observer.assess(i), "") for i in self.observer.deployment_ids()
        ]

    async def environment_status(self) -> EnvironmentReport:
        """Failing while a watch cannot follow the API server; passing otherwise."""
        lost = [f"{w.kind.resource}: {w.error}" for w in self.observer.watchers if w.error]
        if lost:
            return EnvironmentReport(Status.FAILING, "cannot watch " + "; ".join(lost))
        count = len(self.observer.deployments.objects)
        return EnvironmentReport(
            Status.PASSING,
            f"{count} deployments in namespace {self.settings.namespace!r}",
            {"namespace": self.settings.namespace},
        )

    # --- the update: roll, or undo ----------------------------------------------------------

    async def _update(
        self, spec: DesiredDeployment, current: dict[str, Any], *, launching: bool
    ) -> ActionResult:
        planned = await self._plan(spec)
        wanted = manifests.build(spec, [p.delivered for p in planned], self.settings, self.pe)
        if launching or spec.id not in self._urls:  # a half-made launch: complete it
            await self._apply_service(spec, manifests.owned_by(wanted.service, current))
            if wanted.ingress is not None:
                await self._apply(
                    spec,
                    "ingresses",
                    "networking.k8s.io",
                    manifests.owned_by(wanted.ingress, current),
                )
        if _template(current) == _template(wanted.deployment):
            await self._relabel(spec, wanted.deployment)
            outcome = await self._wait(spec, wanted.deployment)
            if not outcome.ok and launching:
                raise PermanentPluginError(_failure("launch", outcome), deployment_id=spec.id)
            return self._ready(spec, "already running" if launching else "model replaced")
        previous = _rollout_from(current) or _snapshot(current)
        await self._create_configmaps(spec, planned, current)
        await self._write(spec.id, lambda dep: _rolled(dep, wanted.deployment, previous))
        outcome = await self._wait(spec, wanted.deployment)
        if outcome.ok:
            await self._write(spec.id, _without_rollout_mark)
            await self._delete_configmaps(spec.id, keep=_configmaps(planned))
            return self._ready(spec, "model replaced")
        await self._undo(spec.id, previous)
        old = str(previous["annotations"].get(names.MODEL_PACKAGE_ID))
        message = (
            f"replacement with {spec.model_package_id!r} undone, {old!r} still serving: "
            f"{_failure('the rollout', outcome)}"
        )
        return ActionResult(
            state=DeploymentState.READY,
            status=Status.PASSING,
            message=message,
            model_package_id=old,
            prediction_url=self._urls.get(spec.id),
            grpc_target=self._grpc_targets.get(spec.id),
            old_model_in_use=True,
            data={
                "refused_model_package_id": spec.model_package_id,
                "reason": outcome.reason,
                "cause": outcome.cause,
                "log": outcome.log,
            },
        )

    async def _plan(self, spec: DesiredDeployment) -> list[Planned]:
        """How each package reaches the pods; those from the hub need the package token."""
        planned = await self.delivery.plan(spec.id, _package_ids(spec))
        if any(p.delivered.needs_token for p in planned):
            await self.package_token.ensure(spec.id)
        return planned

    async def _undo(self, deployment_id: str, previous: dict[str, Any]) -> None:
        restored = await self._write(deployment_id, lambda dep: _restored(dep, previous))
        template = _template_label(restored)
        outcome = await rollout.wait(self.observer, deployment_id, template, UNDO_WAIT_S)
        if not outcome.ok:
            raise PermanentPluginError(
                f"the failed rollout of {deployment_id} was undone, but the previous pods are not "
                f"all available again: {outcome.cause}",
                deployment_id=deployment_id,
            )

    async def _wait(self, spec: DesiredDeployment, deployment: dict[str, Any]) -> rollout.Outcome:
        deadline = float(deployment["spec"]["progressDeadlineSeconds"])
        return await rollout.wait(self.observer, spec.id, _template_label(deployment), deadline)

    # --- writing objects --------------------------------------------------------------------

    async def _create_deployment(
        self, spec: DesiredDeployment, body: dict[str, Any]
    ) -> dict[str, Any]:
        op = self.kube.op("create", "deployments", "apps")
        return await self.kube.call(
            op,
            self.kube.apps.create_namespaced_deployment,
            self.kube.namespace,
            body,
            deployment_id=spec.id,
        )

    async def _write(self, deployment_id: str, change: Any) -> dict[str, Any]:
        """Read the Deployment, ``change`` it, write it back; a lost race (409) reads again."""
        for attempt in range(CONFLICT_RETRIES):
            current = await self._must_read(deployment_id)
            body = change(current)
            op = self.kube.op("update", "deployments", "apps", body["metadata"]["name"])
            try:
                return await self.kube.call(
                    op,
                    self.kube.apps.replace_namespaced_deployment,
                    body["metadata"]["name"],
                    self.kube.namespace,
                    body,
                    deployment_id=deployment_id,
                )
            except ConflictError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _relabel(self, spec: DesiredDeployment, wanted: dict[str, Any]) -> None:
        """Same pods, new generation: only the Deployment's labels and annotations change."""
        meta = wanted["metadata"]

        def relabel(dep: dict[str, Any]) -> dict[str, Any]:
            old = dep["metadata"]
            annotations = {**(old.get("annotations") or {}), **meta["annotations"]}
            return {
                **dep,
                "metadata": {**old, "labels": meta["labels"], "annotations": annotations},
            }

        if _identity(await self._must_read(spec.id)) != meta["annotations"]:
            await self._write(spec.id, relabel)

    async def _create_configmaps(
        self, spec: DesiredDeployment, planned: list[Planned], owner: dict[str, Any]
    ) -> None:
        for p in planned:
            d = p.delivered
            if d.configmap is None or p.archive is None:
                continue
            body = manifests.package_configmap(
                d.configmap, p.archive, d.model_package_id, d.sha256, spec, self.settings, self.pe
            )
            op = self.kube.op("create", "configmaps", "", d.configmap)
            with contextlib.suppress(ConflictError):  # immutable and named by content: the same
                await self.kube.call(
                    op,
                    self.kube.core.create_namespaced_config_map,
                    self.kube.namespace,
                    manifests.owned_by(body, owner),
                    deployment_id=spec.id,
                )

    async def _delete_configmaps(self, deployment_id: str, keep: set[str]) -> None:
        op = self.kube.op("list", "configmaps", "")
        selector = ",".join(
            f"{k}={v}" for k, v in names.pod_selector(self.pe, deployment_id).items()
        )
        found = await self.kube.call(
            op,
            self.kube.core.list_namespaced_config_map,
            self.kube.namespace,
            label_selector=selector,
        )
        for item in found.get("items") or []:
            name = item["metadata"]["name"]
            if name not in keep:
                with contextlib.suppress(NotFoundError):
                    await self._delete("configmaps", "", name, deployment_id)

    async def _apply_service(self, spec: DesiredDeployment, body: dict[str, Any]) -> None:
        service = await self._apply(spec, "services", "", body)
        self._learn_service(spec.id, service)

    async def _apply(
        self, spec: DesiredDeployment, resource: str, group: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create ``body``, or replace the one already there (keeping what the server set)."""
        create, read, replace = _methods(self.kube, resource)
        name = body["metadata"]["name"]
        try:
            return await self.kube.call(
                self.kube.op("create", resource, group, name),
                create,
                self.kube.namespace,
                body,
                deployment_id=spec.id,
            )
        except ConflictError:
            pass
        for attempt in range(CONFLICT_RETRIES):
            current = await self.kube.call(
                self.kube.op("get", resource, group, name), read, name, self.kube.namespace
            )
            merged = {
                **body,
                "metadata": {
                    **body["metadata"],
                    "resourceVersion": current["metadata"]["resourceVersion"],
                },
                "spec": {**(current.get("spec") or {}), **body["spec"]},
            }
            try:
                return await self.kube.call(
                    self.kube.op("update", resource, group, name),
                    replace,
                    name,
                    self.kube.namespace,
                    merged,
                    deployment_id=spec.id,
                )
            except ConflictError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _delete(self, resource: str, group: str, name: str, deployment_id: str) -> None:
        delete = {
            "deployments": self.kube.apps.delete_namespaced_deployment,
            "services": self.kube.core.delete_namespaced_service,
            "ingresses": self.kube.networking.delete_namespaced_ingress,
            "configmaps": self.kube.core.delete_namespaced_config_map,
        }[resource]
        await self.kube.call(
            self.kube.op("delete", resource, group, name),
            delete,
            name,
            self.kube.namespace,
            propagation_policy="Background",
            deployment_id=deployment_id,
        )

    async def _read(self, deployment_id: str) -> dict[str, Any] | None:
        try:
            return await self._must_read(deployment_id)
        except NotFoundError:
            return None

    async def _must_read(self, deployment_id: str) -> dict[str, Any]:
        name = names.object_name(deployment_id)
        return await self.kube.call(
            self.kube.op("get", "deployments", "apps", name),
            self.kube.apps.read_namespaced_deployment,
            name,
            self.kube.namespace,
            deployment_id=deployment_id,
        )

    async def _ensure_admin_secret(self) -> None:
        name = manifests.admin_secret_name(self.pe)
        try:
            await self.kube.call(
                self.kube.op("get", "secrets", "", name),
                self.kube.core.read_namespaced_secret,
                name,
                self.kube.namespace,
            )
            return
        except NotFoundError:
            pass
        body = manifests.admin_secret(self.pe, secrets.token_urlsafe(24), self.settings)
        with contextlib.suppress(ConflictError):  # made meanwhile by another start: fine
            await self.kube.call(
                self.kube.op("create", "secrets", "", name),
                self.kube.core.create_namespaced_secret,
                self.kube.namespace,
                body,
            )

    async def _learn_urls(self) -> None:
        """The prediction URLs of the deployments found running (from their Services)."""
        op = self.kube.op("list", "services", "")
        found = await self.kube.call(
            op,
            self.kube.core.list_namespaced_service,
            self.kube.namespace,
            label_selector=names.selector(self.pe),
        )
        for service in found.get("items") or []:
            dep_id = deployment_id(service)
            if dep_id:
                self._learn_service(dep_id, service)

    # --- helpers ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _acting(self, deployment_id: str) -> AsyncIterator[None]:
        self.observer.busy.add(deployment_id)
        try:
            yield
        finally:
            self.observer.settled(deployment_id, self.observer.assess(deployment_id))

    async def _until(self, predicate: Any, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        while not predicate():
            remaining = until - loop.time()
            if remaining <= 0:
                raise TemporaryPluginError("the deployment's pods are still terminating")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.observer.changed()

    def _learn_service(self, deployment_id: str, service: dict[str, Any]) -> None:
        """Where clients reach the deployment, from its Service: HTTP, and gRPC if it has one."""
        self._urls[deployment_id] = self._url(deployment_id, service)
        ports = (service.get("spec") or {}).get("ports") or []
        grpc = next((p for p in ports if p.get("name") == manifests.GRPC_PORT_NAME), None)
        if grpc is None:
            self._grpc_targets.pop(deployment_id, None)
        else:
            self._grpc_targets[deployment_id] = self.settings.grpc_target_template.format(
                **self._placeholders(deployment_id, service, grpc["port"])
            )

    def _placeholders(
        self, deployment_id: str, service: dict[str, Any], port: int
    ) -> dict[str, Any]:
        return {
            "service": service["metadata"]["name"],
            "namespace": self.settings.namespace,
            "port": port,
            "cluster_ip": (service.get("spec") or {}).get("clusterIP", ""),
            "deployment_id": deployment_id,
        }

    def _url(self, deployment_id: str, service: dict[str, Any]) -> str:
        s = self.settings
        if s.ingress is not None:
            scheme = "https" if s.ingress.tls_secret else "http"
            return f"{scheme}://{s.ingress.host}/v1/deployments/{deployment_id}/predict"
        base = s.prediction_url_template.format(
            **self._placeholders(deployment_id, service, s.service_port)
        )
        return f"{base.rstrip('/')}/v1/deployments/{deployment_id}/predict"

    def _ready(self, spec: DesiredDeployment, verb: str) -> ActionResult:
        finding = self.observer.assess(spec.id)
        return ActionResult(
            state=DeploymentState.READY,
            status=finding.status,
            message=f"{verb} ({spec.model_package_id}); {finding.message}",
            model_package_id=spec.model_package_id,
            prediction_url=self._urls.get(spec.id),
            grpc_target=self._grpc_targets.get(spec.id),
            data={
                "namespace": self.settings.namespace,
                "deployment": names.object_name(spec.id),
                **finding.data,
            },
        )

    def _report(self, deployment_id: str, finding: Finding, log_tail: str) -> DeploymentReport:
        dep = self.observer.deployment(deployment_id)
        ids = _identity(dep) if dep is not None else {}
        challengers = tuple(c for c in ids.get(names.CHALLENGER_IDS, "").split(",") if c)
        data: dict[str, Any] = {**finding.data}
        if finding.reason:
            data["reason"] = finding.reason
        if finding.pod:
            data["pod"] = finding.pod
        if log_tail:
            data["log"] = log_tail
        message = finding.message + (f"; last log lines:\n{log_tail}" if log_tail else "")
        return DeploymentReport(
            deployment_id,
            finding.state,
            finding.status,
            message,
            model_package_id=ids.get(names.MODEL_PACKAGE_ID),
            challenger_ids=challengers,
            prediction_url=self._urls.get(deployment_id),
            grpc_target=self._grpc_targets.get(deployment_id),
            data=data,
        )


def _package_ids(spec: DesiredDeployment) -> list[str]:
    return [spec.model_package_id, *spec.challenger_ids]


def _configmaps(planned: list[Planned]) -> set[str]:
    return {p.delivered.configmap for p in planned if p.delivered.configmap}


def _template_label(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["labels"][names.TEMPLATE])


def _template(deployment: dict[str, Any]) -> str:
    return _template_label(deployment)


def _identity(deployment: dict[str, Any]) -> dict[str, str]:
    annotations = deployment["metadata"].get("annotations") or {}
    return {
        k: v
        for k, v in annotations.items()
        if k
        in (
            names.DEPLOYMENT_ID,
            names.MODEL_PACKAGE_ID,
            names.CHALLENGER_IDS,
            names.SPEC_GENERATION,
        )
    }


def _snapshot(deployment: dict[str, Any]) -> dict[str, Any]:
    """What an undo restores: the pod template, the replicas, the labels and identity."""
    return {
        "template": deployment["spec"]["template"],
        "replicas": deployment["spec"]["replicas"],
        "labels": deployment["metadata"].get("labels") or {},
        "annotations": _identity(deployment),
    }


def _rollout_from(deployment: dict[str, Any]) -> dict[str, Any] | None:
    """The snapshot of an earlier rollout that never finished (an agent restart in its middle)."""
    raw = (deployment["metadata"].get("annotations") or {}).get(names.ROLLOUT_FROM)
    if not raw:
        return None
    doc = orjson.loads(raw)
    return doc if isinstance(doc, dict) else None


def _rolled(
    current: dict[str, Any], wanted: dict[str, Any], previous: dict[str, Any]
) -> dict[str, Any]:
    meta = current["metadata"]
    annotations = {
        **(meta.get("annotations") or {}),
        **wanted["metadata"]["annotations"],
        names.ROLLOUT_FROM: orjson.dumps(previous).decode(),
    }
    return {
        **current,
        "metadata": {**meta, "labels": wanted["metadata"]["labels"], "annotations": annotations},
        "spec": {**current["spec"], **wanted["spec"], "selector": current["spec"]["selector"]},
    }


def _restored(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    meta = current["metadata"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != names.ROLLOUT_FROM
    } | previous["annotations"]
    spec = {**current["spec"], "template": previous["template"], "replicas": previous["replicas"]}
    return {
        **current,
        "metadata": {**meta, "labels": previous["labels"], "annotations": annotations},
        "spec": spec,
    }


def _without_rollout_mark(current: dict[str, Any]) -> dict[str, Any]:
    meta = current["metadata"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != names.ROLLOUT_FROM
    }
    return {**current, "metadata": {**meta, "annotations": annotations}}


def _failure(what: str, outcome: rollout.Outcome) -> str:
    tail = f"; last log lines:\n{outcome.log}" if outcome.log else ""
    return f"{what} failed ({outcome.reason}): {outcome.cause}{tail}"


def _methods(kube: Kube, resource: str) -> tuple[Any, Any, Any]:
    if resource == "services":
        c = kube.core
        return c.create_namespaced_service, c.read_namespaced_service, c.replace_namespaced_service
    n = kube.networking
    return n.create_namespaced_ingress, n.read_namespaced_ingress, n.replace_namespaced_ingress
