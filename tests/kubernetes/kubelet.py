"""A test kubelet and controllers: Deployments become real prediction servers on 127.0.0.1.

What a cluster's controllers do, done for the emulator (:mod:`tests.kubernetes.emulator`),
writing through its store so that every change is versioned and watched:

- the **Deployment controller**: pods of the current template (their digest is
  the pod-template-hash), rolled with ``maxSurge`` and ``maxUnavailable: 0`` — an
  old pod goes only when a new one is ready; ``status`` as the real one writes
  it (``observedGeneration``, ``updated``/``ready``/``available`` replicas,
  ``Progressing`` with ``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds``
  without progress);
- the **scheduler**: a pod whose ``nodeSelector`` the node does not match is
  ``Unschedulable``;
- the **kubelet**: volumes (``emptyDir``, ConfigMaps), Secret environment, the
  init container and the server as real processes (``python -m
  pilothouse.plugins.kubernetes.fetch``, ``python -m pilothouse.serving``, mount
  paths mapped to the pod's directory, the container port to a free local
  port, and its gRPC port, if any, to another; the proxy below is HTTP only),
  unknown images ``ErrImagePull``/``ImagePullBackOff``, restarts with
  ``CrashLoopBackOff``, the memory limit enforced on the process's RSS
  (``OOMKilled``, exit 137), the readiness probe (an HTTP GET on the pod), Warning
  Events, logs (current and previous) for ``pods/{name}/log``, and a graceful
  stop (out of the endpoints first, then SIGTERM, then SIGKILL);
- the **endpoints controller** and **kube-proxy**: each Service's ready pods in
  its Endpoints, and a proxy on the Service's ``clusterIP:port``. The proxy
  forwards each HTTP request to a ready pod (as an ingress controller or mesh
  does; kube-proxy's L4 keep-alive stickiness would make the test depend on the
  client's connection reuse), retrying on another pod only a request that never
  reached one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import math
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tests.kubernetes.emulator import Emulator

DEPLOYMENTS, PODS, SERVICES = "apps/v1/deployments", "v1/pods", "v1/services"
ENDPOINTS, EVENTS, CONFIGMAPS, SECRETS = "v1/endpoints", "v1/events", "v1/configmaps", "v1/secrets"
TICK_S = 0.1


@dataclass
class Container:
    """One container run of a pod: its process and what the kubelet knows of it."""

    name: str
    spec: dict[str, Any]
    restarts: int = 0
    process: asyncio.subprocess.Process | None = None
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "PodInitializing"}}
    )
    last: dict[str, Any] = field(default_factory=dict)
    ready: bool = False


@dataclass
class Pod:
    """A pod the kubelet runs."""

    name: str
    deployment: str
    template_hash: str
    spec: dict[str, Any]
    directory: Path
    port: int
    init: list[Container]
    main: list[Container]
    grpc_port: int = 0
    """Where its server's gRPC port (``--grpc-port``) is mapped on 127.0.0.1, if it has one."""
    scheduled: bool = True
    terminating: bool = False
    task: asyncio.Task[None] | None = None
    message: str = ""


class Kubelet:
    """Controllers and a kubelet for one namespace of an :class:`Emulator`."""

    def __init__(
        self,
        emulator: Emulator,
        namespace: str,
        work_dir: Path,
        *,
        images: set[str],
        node_labels: dict[str, str] | None = None,
        crash_backoff_s: float = 0.5,
    ) -> None:
        self.api = emulator
        self.ns = namespace
        self.work_dir = work_dir
        self.images = images
        self.node_labels = node_labels or {"kubernetes.io/os": "linux"}
        self.crash_backoff_s = crash_backoff_s
        self.pods: dict[str, Pod] = {}
        self._progress: dict[str, tuple[tuple[Any, ...], float]] = {}
        self._proxies: dict[str, Proxy] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._kick = asyncio.Event()
        self._events = itertools.count(1)
        emulator.logs = self.logs

    async def __aenter__(self) -> Kubelet:
        self._tasks.append(asyncio.create_task(self._control(), name="test controllers"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self._kill(p) for p in list(self.pods.values())))
        for proxy in self._proxies.values():
            await proxy.close()

    # --- the control loop -------------------------------------------------------------------

    async def _control(self) -> None:
        seen = -1
        while True:
            if self.api.revision != seen or self._kick.is_set():
                seen = self.api.revision
                self._kick.clear()
                await self._reconcile()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    async with self.api.written:
                        last = seen
                        await self.api.written.wait_for(lambda last=last: self.api.revision != last)

    async def _reconcile(self) -> None:
        deployments = {d["metadata"]["name"]: d for d in self.api.all(DEPLOYMENTS, self.ns)}
        for pod in list(self.pods.values()):
            if pod.deployment not in deployments and not pod.terminating:
                await self._terminate(pod)  # the garbage collector: its owner is gone
        for name, dep in deployments.items():
            await self._deployment(name, dep)
        await self._collect_owned(deployments)
        await self._endpoints()

    async def _deployment(self, name: str, dep: dict[str, Any]) -> None:
        spec = dep["spec"]
        want = int(spec.get("replicas", 1))
        digest = _hash(spec["template"])
        surge = _surge(spec, want)
        live = [p for p in self.pods.values() if p.deployment == name and not p.terminating]
        new = [p for p in live if p.template_hash == digest]
        old = [p for p in live if p.template_hash != digest]
        while len(new) < want and len(new) + len(old) < want + surge:
            new.append(await self._create_pod(name, dep, digest))
        ready_new = sum(self._ready(p) for p in new)
        for pod in sorted(old, key=self._ready):  # not-ready old pods first: they serve nothing
            ready_old = sum(self._ready(p) for p in old)
            if self._ready(pod) and ready_old + ready_new <= want:
                break
            old.remove(pod)
            await self._terminate(pod)
        for pod in new[want:]:
            await self._terminate(pod)
        await self._deployment_status(name, dep, new[:want], old)

    async def _deployment_status(
        self, name: str, dep: dict[str, Any], new: list[Pod], old: list[Pod]
    ) -> None:
        want = int(dep["spec"].get("replicas", 1))
        ready = sum(self._ready(p) for p in new + old)
        updated = len(new)
        complete = updated >= want and not old and ready >= want
        progress_key = (dep["metadata"]["generation"], updated, sum(self._ready(p) for p in new))
        now = time.monotonic()
        last_key, since = self._progress.get(name, (None, now))
        if progress_key != last_key:
            since = now
        self._progress[name] = (progress_key, since)
        deadline = float(dep["spec"].get("progressDeadlineSeconds", 600))
        if complete:
            progressing = ("True", "NewReplicaSetAvailable")
        elif now - since > deadline:
            progressing = ("False", "ProgressDeadlineExceeded")
        else:
            progressing = ("True", "ReplicaSetUpdated")
        status = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": len(new + old),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, want - ready),
            "conditions": [
                {"type": "Available", "status": "True" if ready >= want else "False"},
                {"type": "Progressing", "status": progressing[0], "reason": progressing[1]},
            ],
        }
        if dep.get("status") != status:
            current = self.api.get(DEPLOYMENTS, self.ns, name)
            if (
                current is not None
                and current["metadata"]["generation"] == dep["metadata"]["generation"]
            ):
                await self.api.store(
                    DEPLOYMENTS,
                    {**current, "status": status},
                    expect=current["metadata"]["resourceVersion"],
                )

    async def _collect_owned(self, deployments: dict[str, dict[str, Any]]) -> None:
        """The garbage collector: objects whose owner Deployment is gone are deleted."""
        uids = {d["metadata"]["uid"] for d in deployments.values()}
        for resource in (SERVICES, CONFIGMAPS, "networking.k8s.io/v1/ingresses"):
            for obj in self.api.all(resource, self.ns):
                owners = obj["metadata"].get("ownerReferences") or []
                if owners and not any(o["uid"] in uids for o in owners):
                    await self.api.remove(resource, self.ns, obj["metadata"]["name"])

    async def _endpoints(self) -> None:
        services = {s["metadata"]["name"]: s for s in self.api.all(SERVICES, self.ns)}
        for name, proxy in list(self._proxies.items()):
            if name not in services:
                await proxy.close()
                del self._proxies[name]
                await self.api.remove(ENDPOINTS, self.ns, name)
        for name, svc in services.items():
            selector = svc["spec"].get("selector") or {}
            ready = sorted(
                p.port
                for p in self.pods.values()
                if not p.terminating and self._ready(p) and _selected(self._labels(p), selector)
            )
            subsets = [
                {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "http", "port": port}]}
                for port in ready
            ]
            current = self.api.get(ENDPOINTS, self.ns, name)
            if current is None or current.get("subsets") != subsets:
                await self.api.store(
                    ENDPOINTS,
                    {
                        "apiVersion": "v1",
                        "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": self.ns},
                        "subsets": subsets,
                    },
                )
            if name not in self._proxies:
                port = svc["spec"]["ports"][0]["port"]
                self._proxies[name] = await Proxy.start(svc["spec"]["clusterIP"], port)
            self._proxies[name].backends = ready

    # --- pods -------------------------------------------------------------------------------

    async def _create_pod(self, deployment: str, dep: dict[str, Any], digest: str) -> Pod:
        template = dep["spec"]["template"]
        name = f"{deployment}-{digest[:10]}-{secrets.token_hex(3)}"
        spec = template["spec"]
        pod = Pod(
            name,
            deployment,
            digest,
            spec,
            self.work_dir / "pods" / name,
            _free_port(),
            [Container(c["name"], c) for c in spec.get("initContainers") or []],
            [Container(c["name"], c) for c in spec["containers"]],
            grpc_port=_free_port(),
        )
        pod.scheduled = _selected(self.node_labels, spec.get("nodeSelector") or {})
        self.pods[name] = pod
        meta = {
            "name": name,
            "namespace": self.ns,
            "labels": {**template["metadata"].get("labels", {}), "pod-template-hash": digest[:10]},
            "annotations": dict(template["metadata"].get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment,
                    "uid": dep["metadata"]["uid"],
                    "controller": True,
                }
            ],
        }
        await self.api.store(
            PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        )
        if pod.scheduled:
            pod.task = asyncio.create_task(self._run_pod(pod), name=f"pod {name}")
        else:
            await self._event(
                pod,
                "Warning",
                "FailedScheduling",
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
            )
        await self._pod_status(pod)
        return pod

    async def _run_pod(self, pod: Pod) -> None:
        try:
            await asyncio.to_thread(pod.directory.mkdir, parents=True, exist_ok=True)
            for container in pod.init:
                while not await self._run_once(pod, container, init=True):
                    await self._back_off(pod, container)
            while True:  # the server: restarted whenever it ends (restartPolicy Always)
                container = pod.main[0]
                await self._run_once(pod, container, init=False)
                await self._back_off(pod, container)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of the fixture must show, not hang a test
            pod.message = f"kubelet failed: {exc!r}"
            raise

    async def _run_once(self, pod: Pod, c: Container, *, init: bool) -> bool:
        """Run one container to its end (init) or until it exits (server); whether it succeeded."""
        image = c.spec["image"]
        if image not in self.images:
            c.state = {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": f'failed to pull image "{image}": not found',
                }
            }
            await self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}"')
            await self._pod_status(pod)
            c.state = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}"',
                }
            }
            return False
        while True:  # a missing ConfigMap: the volume waits for it (FailedMount), no crash
            try:
                argv, env = self._command(pod, c)
                break
            except FileNotFoundError as exc:
                c.state = {"waiting": {"reason": "ContainerCreating", "message": str(exc)}}
                await asyncio.sleep(TICK_S)
            except LookupError as exc:
                c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                await self._pod_status(pod)
                await asyncio.sleep(TICK_S * 5)
        log = pod.directory / f"{c.name}.log"
        if log.exists():
            log.replace(pod.directory / f"{c.name}.previous.log")
        with log.open("wb") as out:
            c.process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        c.state = {"running": {"startedAt": _now()}}
        await self._pod_status(pod)
        probe = None if init else asyncio.create_task(self._probe(pod, c))
        limit = _bytes((c.spec.get("resources") or {}).get("limits", {}).get("memory"))
        oom = await self._wait_exit(c.process, limit)
        if probe is not None:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
        code = c.process.returncode
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        c.ready = False
        c.state = {
            "terminated": {"exitCode": 137 if oom else code, "reason": reason, "finishedAt": _now()}
        }
        await self._pod_status(pod)
        return code == 0 and init

    async def _back_off(self, pod: Pod, c: Container) -> None:
        if pod.terminating:
            await asyncio.Event().wait()  # a terminating pod is not restarted
        c.restarts += 1
        if "terminated" in c.state:
            c.last = c.state
        delay = min(5.0, self.crash_backoff_s * 2 ** min(c.restarts - 1, 6))
        if "terminated" in c.last:
            c.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:g}s restarting failed container={c.name} "
                    f"pod={pod.name}",
                }
            }
            await self._event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod {pod.name}",
            )
        await self._pod_status(pod)
        await asyncio.sleep(delay)

    async def _wait_exit(self, process: asyncio.subprocess.Process, limit: int | None) -> bool:
        """Wait for the process to end; SIGKILL it at the memory limit (then True: OOM-killed)."""
        while process.returncode is None:
            if limit is not None and _rss(process.pid) > limit:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
                return True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await process.wait()
        return False

    async def _probe(self, pod: Pod, c: Container) -> None:
        probe = c.spec.get("readinessProbe") or {}
        get = probe.get("httpGet") or {}
        url = f"http://127.0.0.1:{pod.port}{get.get('path', '/')}"
        period = float(probe.get("periodSeconds", 10))
        threshold = int(probe.get("failureThreshold", 3))
        failures = 0
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(
                        url,
                        timeout=aiohttp.ClientTimeout(total=float(probe.get("timeoutSeconds", 1))),
                    ) as resp:
                        ok, detail = resp.status < 400, f"statuscode: {resp.status}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    ok, detail = False, f"{type(exc).__name__}"
                failures = 0 if ok else failures + 1
                ready = ok or (c.ready and failures < threshold)
                if (not ok and c.ready is False and failures == 1) or (
                    not ok and failures == threshold
                ):
                    await self._event(
                        pod,
                        "Warning",
                        "Unhealthy",
                        f"Readiness probe failed: HTTP probe failed with {detail}",
                    )
                if ready != c.ready:
                    c.ready = ready
                    await self._pod_status(pod)
                    self._kick.set()
                await asyncio.sleep(period if c.ready else min(period, 0.2))

    def _command(self, pod: Pod, c: Container) -> tuple[list[str], dict[str, str]]:
        mounts = self._mounts(pod, c)
        args = [
            _mapped(a, mounts)
            for a in [*(c.spec.get("command") or []), *(c.spec.get("args") or [])]
        ]
        if args[:2] == ["pilothouse", "serve"]:
            args = [sys.executable, "-m", "pilothouse.serving", *args[2:]]
            args = _replace_flag(
                _replace_flag(args, "--port", str(pod.port)), "--host", "127.0.0.1"
            )
            if "--grpc-port" in args:  # the container's port, mapped like the HTTP one
                args = _replace_flag(args, "--grpc-port", str(pod.grpc_port))
        elif args and args[0] == "python":
            args[0] = sys.executable
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
        for item in c.spec.get("env") or []:
            env[item["name"]] = _mapped(self._env_value(item), mounts)
        return args, env

    def _env_value(self, item: dict[str, Any]) -> str:
        if "value" in item:
            return str(item["value"])
        ref = item["valueFrom"]["secretKeyRef"]
        secret = self.api.get(SECRETS, self.ns, ref["name"])
        if secret is None or ref["key"] not in (secret.get("data") or {}):
            raise LookupError(f'secret "{ref["name"]}" (key {ref["key"]!r}) not found')
        return base64.b64decode(secret["data"][ref["key"]]).decode()

    def _mounts(self, pod: Pod, c: Container) -> list[tuple[str, str]]:
        volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
        mounts = []
        for m in c.spec.get("volumeMounts") or []:
            host = pod.directory / "volumes" / m["name"]
            host.mkdir(parents=True, exist_ok=True)
            source = volumes[m["name"]].get("configMap")
            if source is not None:
                cm = self.api.get(CONFIGMAPS, self.ns, source["name"])
                if cm is None:
                    raise FileNotFoundError(
                        f'MountVolume.SetUp failed: configmap "{source["name"]}" not found'
                    )
                for key, value in (cm.get("binaryData") or {}).items():
                    (host / key).write_bytes(base64.b64decode(value))
                for key, value in (cm.get("data") or {}).items():
                    (host / key).write_text(value)
            mounts.append((m["mountPath"].rstrip("/"), str(host)))
        return sorted(mounts, key=lambda m: -len(m[0]))

    async def _terminate(self, pod: Pod) -> None:
        """Out of the endpoints first, then SIGTERM, the grace period, SIGKILL; then gone."""
        pod.terminating = True
        for c in pod.main:
            c.ready = False
        current = self.api.get(PODS, self.ns, pod.name)
        if current is not None:
            current["metadata"]["deletionTimestamp"] = _now()
            await self.api.store(PODS, current)
        await self._endpoints()
        asyncio.create_task(self._finish(pod), name=f"terminate {pod.name}")  # noqa: RUF006

    async def _finish(self, pod: Pod) -> None:
        grace = float(pod.spec.get("terminationGracePeriodSeconds", 30))
        await asyncio.sleep(0.3)  # the proxies have stopped choosing it (what preStop sleeps do)
        await self._kill(pod, grace)
        self.pods.pop(pod.name, None)
        await self.api.remove(PODS, self.ns, pod.name)
        self._kick.set()

    async def _kill(self, pod: Pod, grace: float = 0.0) -> None:
        if pod.task is not None:
            pod.task.cancel()
            await asyncio.gather(pod.task, return_exceptions=True)
        for c in [*pod.init, *pod.main]:
            p = c.process
            if p is None or p.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(max(grace, 0.1)):
                    await p.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                await p.wait()

    # --- what the kubelet writes ------------------------------------------------------------

    def _ready(self, pod: Pod) -> bool:
        return not pod.terminating and all(c.ready for c in pod.main)

    def _labels(self, pod: Pod) -> dict[str, str]:
        obj = self.api.get(PODS, self.ns, pod.name)
        return (obj or {}).get("metadata", {}).get("labels", {})

    async def _pod_status(self, pod: Pod) -> None:
        current = self.api.get(PODS, self.ns, pod.name)
        if current is None:
            return
        ready = self._ready(pod)
        initialized = all(
            "terminated" in c.state and c.state["terminated"]["exitCode"] == 0 for c in pod.init
        )
        conditions = [
            {
                "type": "PodScheduled",
                "status": "True" if pod.scheduled else "False",
                **(
                    {}
                    if pod.scheduled
                    else {
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node "
                        "affinity/selector.",
                    }
                ),
            },
            {"type": "Initialized", "status": str(initialized)},
            {"type": "ContainersReady", "status": str(ready)},
            {"type": "Ready", "status": str(ready)},
        ]
        status = {
            "phase": "Running" if initialized and pod.scheduled else "Pending",
            "conditions": conditions,
            "podIP": "127.0.0.1",
            "hostIP": "127.0.0.1",
            "initContainerStatuses": [_container_status(c) for c in pod.init],
            "containerStatuses": [_container_status(c) for c in pod.main],
        }
        if current.get("status") != status:
            await self.api.store(PODS, {**current, "status": status})

    async def _event(self, pod: Pod, kind: str, reason: str, message: str) -> None:
        name = f"{pod.name}.{next(self._events)}"
        await self.api.store(
            EVENTS,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "type": kind,
                "reason": reason,
                "message": message,
                "lastTimestamp": _now(),
                "count": 1,
                "metadata": {"name": name, "namespace": self.ns},
                "involvedObject": {"kind": "Pod", "name": pod.name, "namespace": self.ns},
            },
        )

    def logs(
        self, namespace: str, pod: str, container: str, previous: bool, tail: int | None
    ) -> str | None:
        """``pods/{name}/log``: the container's current (or previous) run's output."""
        running = self.pods.get(pod)
        if running is None or namespace != self.ns:
            return None
        path = running.directory / (f"{container}.previous.log" if previous else f"{container}.log")
        if previous and not path.exists():  # its first run ended: that run is the previous one
            path = running.directory / f"{container}.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        return "\n".join(lines[-tail:] if tail else lines) + "\n"


class Proxy:
    """A Service's virtual IP: each request forwarded to a ready pod, round-robin."""

    def __init__(self) -> None:
        self.backends: list[int] = []
        self._next = itertools.count()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.requests = 0

    @classmethod
    async def start(cls, host: str, port: int) -> Proxy:
        """Listen on ``host:port``."""
        proxy = cls()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy._forward)
        proxy._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await proxy._runner.setup()
        await web.TCPSite(proxy._runner, host, port).start()
        proxy._http = aiohttp.ClientSession()
        return proxy

    async def close(self) -> None:
        """Stop listening."""
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        self.requests += 1
        for _ in range(3):
            if not self.backends:
                break
            port = self.backends[next(self._next) % len(self.backends)]
            url = f"http://127.0.0.1:{port}{request.rel_url}"
            try:
                async with self._http.request(
                    request.method, url, data=body, headers={"Content-Type": request.content_type}
                ) as resp:
                    payload = await resp.read()
                    return web.Response(
                        body=payload, status=resp.status, content_type=resp.content_type
                    )
            except (aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError):
                continue  # never reached a pod (or it went away first): another one
        return web.Response(status=503, text="no endpoints available for service\n")


def _container_status(c: Container) -> dict[str, Any]:
    status = {
        "name": c.name,
        "image": c.spec["image"],
        "ready": c.ready,
        "restartCount": c.restarts,
        "state": c.state,
        "started": "running" in c.state,
    }
    if c.last:
        status["lastState"] = c.last
    return status


def _hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _surge(spec: dict[str, Any], want: int) -> int:
    value = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return max(1, math.ceil(want * int(value[:-1]) / 100))
    return max(1, int(value))


def _selected(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _mapped(value: str, mounts: list[tuple[str, str]]) -> str:
    """A path inside the container (alone, after ``=`` or ``file://``) as the pod's directory."""
    for container_path, host_path in mounts:  # longest first: one mount maps a value
        for lead in ("", "file://"):
            for head, sep, tail in [("", "", value), value.partition("=")]:
                if tail.startswith(lead + container_path) and (sep or not head):
                    rest = tail[len(lead + container_path) :]
                    if not rest or rest.startswith("/"):
                        return f"{head}{sep}{lead}{host_path}{rest}"
    return value


def _replace_flag(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


def _bytes(quantity: str | None) -> int | None:
    if not quantity:
        return None
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
