"""Benchmark of the kubernetes plugin against the emulator and test kubelet (real servers).

Prints figures, then one JSON line. Measured:
- action → Deployment created at the API (p50/p99 over LAUNCHES launches);
- pod ready → the action reports ready (p99): from the moment the controller writes the
  Deployment's status with every replica available to ``launch`` returning, driven by the watch;
- replacement under two steady clients: failed and total requests;
- a failed rollout (a crash-looping model) undone and reported: seconds;
- 100 deployments (replicas 0: the API objects and watches, not 100 server processes) in one
  PE: total seconds and the agent process's RSS;
- watch reconnection after an API server restart: seconds until every watch resumed.
Targets (issue 12): action → API p99 ≤ 50 ms, ready → event p99 ≤ 1 s, 0 failed requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from tests.kubernetes.conftest import Cluster
from tests.kubernetes.emulator import ApiServer, Emulator
from tests.kubernetes.kubelet import Kubelet
from tests.kubernetes.support import packages, spec, started
from tests.kubernetes.test_rollouts import crashing
from tests.process.support import traffic

LAUNCHES = 8
SCALE = 100


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="k8s-bench-"))
    api = ApiServer(Emulator())
    await api.start()
    kubeconfig = tmp / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()))
    created: dict[str, float] = {}
    available: dict[str, float] = {}
    store = api.emulator.store

    async def timed_store(res: str, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        out = await store(res, obj, **kw)
        name = obj["metadata"]["name"]
        st = obj.get("status") or {}
        if res.endswith("deployments"):
            created.setdefault(name, time.perf_counter())
            if st.get("availableReplicas", 0) >= obj["spec"].get("replicas", 1) > 0:
                available.setdefault(name, time.perf_counter())
        return out

    api.emulator.store = timed_store  # type: ignore[method-assign]
    pkgs = {**packages(tmp), "crash": crashing(tmp / "crash")}
    async with Kubelet(api.emulator, "bench", tmp / "node", images={"pilothouse:bench"}):
        cluster = Cluster(kubeconfig, "bench", "pilothouse:bench", api)
        settings = {"packages": {k: str(v) for k, v in pkgs.items()}}
        async with started(cluster, tmp / "state", **settings) as s:
            to_api, ready_to_event = [], []
            for i in range(LAUNCHES):
                began = time.perf_counter()
                await s.plugin.launch(spec(f"d{i}", "rules"))
                done = time.perf_counter()
                name = f"ph-d{i}"
                to_api.append((created[name] - began) * 1000)
                ready_to_event.append((done - available[name]) * 1000)
            url = (await s.plugin.deployment_status("d0")).prediction_url
            assert url
            async with traffic(url, clients=2) as seen:
                await asyncio.sleep(0.5)
                await s.plugin.replace_model(spec("d0", "rules-2", 2))
                await asyncio.sleep(0.5)
            failed = sum(1 for status, _ in seen if status != 200)
            began = time.perf_counter()
            undone = await s.plugin.replace_model(spec("d1", "crash", 2))
            rollback_s = time.perf_counter() - began
            assert undone.old_model_in_use
            for i in range(LAUNCHES):
                await s.plugin.stop_deployment(f"d{i}")
            began = time.perf_counter()
            await asyncio.gather(
                *(s.plugin.launch(spec(f"s{i}", "rules", replicas=0)) for i in range(SCALE))
            )
            scale_s = time.perf_counter() - began
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            before = [w.reconnects for w in s.plugin.observer.watchers]
            began = time.perf_counter()
            await api.restart(0.2)
            while any(  # noqa: ASYNC110 - polls the watchers' counters
                w.reconnects == b or w.error
                for w, b in zip(s.plugin.observer.watchers, before, strict=True)
            ):
                await asyncio.sleep(0.01)
            reconnect_s = time.perf_counter() - began
    await api.stop()
    return {
        "action_to_api_p50_ms": round(statistics.median(to_api), 2),
        "action_to_api_p99_ms": round(pct(to_api, 0.99), 2),
        "ready_to_event_p99_ms": round(pct(ready_to_event, 0.99), 2),
        "replace_failed_requests": failed,
        "replace_total_requests": len(seen),
        "rollback_s": round(rollback_s, 2),
        "scale_deployments": SCALE,
        "scale_total_s": round(scale_s, 2),
        "agent_max_rss_mb": round(rss_mb, 1),
        "watch_reconnect_s": round(reconnect_s, 2),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    figures = asyncio.run(main())
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    print(json.dumps(figures))
