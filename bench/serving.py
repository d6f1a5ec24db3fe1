"""Benchmark: the prediction server (`pilothouse serve`) against a bare aiohttp floor.

One server process serves two deployments: the iris example (examples/models/iris-1.0.0)
and `linear`, a logistic regression on 20 numeric features (predict costs microseconds).
Request figures are for `linear` on the plain rows endpoint (`{"rows": [...]}`, answered
with predictions and probabilities), monitoring on. The floor, in the same run, is a bare
aiohttp process that parses the same JSON with orjson into NumPy and calls the same
model's predict and predict_proba. The client is a raw-socket HTTP/1.1 loop in a
separate process (keep-alive connections, one request in flight per connection), so on
this 2-core machine the client and the server each have a core.

Also measured: cold start (spawn until /v2/health/ready), idle RSS, deployment ready
after launch (spawn with --deployment until /v2/models/iris/ready), and requests sent and
failed at 200 requests/s while the `linear` model is replaced 20 times.

Targets (issue #5): linear >= 80 % of the floor's requests/s (single row, c16); 100-row
batches >= 0.9x the floor; 0 failed requests during replacement; ready <= 2 s after
launch; cold start <= 1.5 s; idle RSS <= 150 MB. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
FEATURES = [f"x{i:02d}" for i in range(20)]
PILOTHOUSE = Path(sys.executable).parent / "pilothouse"


# -- packages ---------------------------------------------------------------------------------


def linear_package(path: Path, seed: int) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from pilothouse.modelpkg import Feature, Manifest, dump_manifest
    from pilothouse.modelpkg.profiling import baseline

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5000, len(FEATURES)))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0, "yes", "no")
    model = LogisticRegression(max_iter=500).fit(x, y)
    features = [Feature(name=f) for f in FEATURES]
    path.mkdir(parents=True)
    joblib.dump(model, path / "model.joblib")
    manifest = Manifest.model_validate(
        {
            "name": "linear",
            "version": f"1.{seed}",
            "format": "sklearn",
            "artifact": "model.joblib",
            "target": {"type": "classification", "name": "label", "classes": ["no", "yes"]},
            "features": features,
            "baseline": baseline(features, x, model.predict(x), classifier=True),
            "samples": [dict(zip(FEATURES, map(float, row), strict=True)) for row in x[:5]],
        }
    )
    (path / "model.yaml").write_bytes(dump_manifest(manifest))
    return path


def rows_body(n: int, seed: int = 1) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = [dict(zip(FEATURES, map(float, r), strict=True)) for r in rng.normal(size=(n, 20))]
    return orjson.dumps({"rows": rows})


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return 0
    finally:
        conn.close()


def admin_put(port: int, deployment: str, body: dict[str, Any]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "PUT",
            f"/admin/deployments/{deployment}",
            body=orjson.dumps(body),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def wait_for(port: int, path: str, began: float, limit: float = 30.0) -> float:
    while time.perf_counter() - began < limit:
        if get(port, path, timeout=0.5) == 200:
            return time.perf_counter() - began
        time.sleep(0.005)
    raise RuntimeError(f"{path} not ready after {limit}s")


def spawn_server(port: int, state: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PILOTHOUSE), "serve", "--port", str(port), "--admin-token", TOKEN,
         "--state-dir", str(state), "--no-restore", "--log-level", "WARNING", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the client (a separate process) ----------------------------------------------------------


async def _connection(
    port: int, request: bytes, deadline: float, warm_until: float, out: dict[str, Any], pace: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter()
    try:
        while (now := time.perf_counter()) < deadline:
            if pace:
                next_at += pace
                if next_at > now:
                    await asyncio.sleep(next_at - now)
            began = time.perf_counter()
            ok = False
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                ok = head.startswith(b"HTTP/1.1 200")
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                out["failed"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if began >= warm_until:
                out["sent"] += 1
                if ok:
                    out["latencies"].append(time.perf_counter() - began)
                else:
                    out["failed"] += 1
    finally:
        writer.close()


async def _client(
    port: int, path: str, body: bytes, concurrency: int, duration: float, warmup: float, rate: float
) -> dict[str, Any]:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict[str, Any] = {"sent": 0, "failed": 0, "latencies": []}
    start = time.perf_counter()
    pace = concurrency / rate if rate else 0.0
    await asyncio.gather(
        *(
            _connection(port, request, start + warmup + duration, start + warmup, out, pace)
            for _ in range(concurrency)
        )
    )
    lat = sorted(out.pop("latencies"))
    return {
        **out,
        "rps": len(lat) / duration,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else None,
    }


def client_main(args: argparse.Namespace) -> None:
    body = Path(args.body).read_bytes()
    result = asyncio.run(
        _client(args.port, args.path, body, args.concurrency, args.duration, args.warmup, args.rate)
    )
    print(orjson.dumps(result).decode())


def run_client(
    port: int,
    path: str,
    body_file: Path,
    concurrency: int,
    duration: float,
    *,
    rate: float = 0,
    warmup: float = 1.0,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "client", "--port", str(port), "--path", path,
         "--body", str(body_file), "--concurrency", str(concurrency), "--duration", str(duration),
         "--warmup", str(warmup), "--rate", str(rate)],
        stdout=subprocess.PIPE,
    )  # fmt: skip


def _brief(r: dict[str, Any]) -> str:
    return (
        f"{r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
        f"cpu {r['cpu_ms_per_request']:.3f} ms/req failed {r['failed']}"
    )


def load(
    pid: int, port: int, path: str, body_file: Path, concurrency: int, duration: float
) -> dict[str, Any]:
    proc = run_client(port, path, body_file, concurrency, duration)
    time.sleep(1.0)  # the client's warm-up
    cpu0 = cpu_seconds(pid)
    out, _ = proc.communicate(timeout=duration + 60)
    cpu1 = cpu_seconds(pid)
    result: dict[str, Any] = orjson.loads(out)
    result["cpu_ms_per_request"] = (cpu1 - cpu0) * 1000 / max(1, result["sent"])
    return result


# -- the floor --------------------------------------------------------------------------------


def floor_main(args: argparse.Namespace) -> None:
    from operator import itemgetter

    import joblib
    import numpy as np
    from aiohttp import web

    model = joblib.load(Path(args.package) / "model.joblib")
    getter = itemgetter(*FEATURES)

    async def handle(request: web.Request) -> web.Response:
        doc = orjson.loads(await request.read())
        x = np.array(list(map(getter, doc["rows"])), dtype=np.float64)
        labels = model.predict(x)
        proba = model.predict_proba(x)
        body = orjson.dumps(
            {"predictions": labels.tolist(), "probabilities": proba},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        return web.Response(body=body, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/predict", handle)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


# -- the benchmark ----------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    results: dict[str, Any] = {}
    try:
        linear1 = linear_package(work / "linear-1", seed=1)
        linear2 = linear_package(work / "linear-2", seed=2)
        iris = ROOT / "examples" / "models" / "iris-1.0.0"
        single, batch = work / "single.json", work / "batch.json"
        single.write_bytes(rows_body(1))
        batch.write_bytes(rows_body(100))

        cold, rss = [], []
        for i in range(3):
            port = free_port()
            began = time.perf_counter()
            proc = spawn_server(port, work / f"cold-{i}")
            cold.append(wait_for(port, "/v2/health/ready", began))
            time.sleep(1.0)
            rss.append(rss_mb(proc.pid))
            stop(proc)
        results["cold_start_s"] = round(statistics.median(cold), 3)
        results["idle_rss_mb"] = round(statistics.median(rss), 1)
        print(f"cold start {cold} s, idle RSS {rss} MB", flush=True)

        ready = []
        for i in range(2):
            port = free_port()
            began = time.perf_counter()
            proc = spawn_server(port, work / f"ready-{i}", "--deployment", f"iris={iris}")
            ready.append(wait_for(port, "/v2/models/iris/ready", began))
            if i == 0:
                stop(proc)
        results["ready_after_launch_s"] = round(statistics.median(ready), 3)
        print(f"ready after launch {ready} s", flush=True)

        pid = proc.pid
        try:
            status, doc = admin_put(
                port, "linear", {"model_package_id": "linear-1", "package_dir": str(linear1)}
            )
            assert status == 201, doc
            champion = doc["champion"]
            print(
                f"linear: {champion['predict_cost_us']} us, "
                f"inline up to {champion['inline_rows_max']} rows",
                flush=True,
            )
            results["rss_with_models_mb"] = round(rss_mb(pid), 1)
            path = "/v1/deployments/linear/predict"
            scenarios = {
                "single_c1": (single, 1),
                "single_c16": (single, 16),
                "batch100_c16": (batch, 16),
            }
            ours: dict[str, dict[str, Any]] = {}
            theirs: dict[str, dict[str, Any]] = {}
            floor_port = free_port()
            floor = subprocess.Popen(
                [sys.executable, __file__, "floor", "--port", str(floor_port),
                 "--package", str(linear1)]
            )  # fmt: skip
            try:
                wait_for(floor_port, "/ready", time.perf_counter())
                # Alternate server and floor, best of `rounds` each: this machine is noisy.
                for name, (body, conc) in scenarios.items():
                    for _ in range(args.rounds):
                        mine = load(pid, port, path, body, conc, args.duration)
                        base = load(floor.pid, floor_port, "/predict", body, conc, args.duration)
                        print(f"{name}: server {_brief(mine)} | floor {_brief(base)}", flush=True)
                        if mine["rps"] > ours.get(name, {"rps": -1})["rps"]:
                            ours[name] = mine
                        if base["rps"] > theirs.get(name, {"rps": -1})["rps"]:
                            theirs[name] = base
            finally:
                stop(floor)

            replace = run_client(port, path, single, 4, args.replace_s, rate=200, warmup=0.0)
            time.sleep(0.8)
            swaps = []
            for i in range(20):
                target = linear2 if i % 2 == 0 else linear1
                began = time.perf_counter()
                status, doc = admin_put(
                    port, "linear", {"model_package_id": f"linear-{i}", "package_dir": str(target)}
                )
                assert status == 200, doc
                swaps.append(time.perf_counter() - began)
                time.sleep(max(0.0, (args.replace_s - 2.0) / 20 - swaps[-1]))
            out, _ = replace.communicate(timeout=args.replace_s + 60)
            replaced = orjson.loads(out)
            print(
                f"replacements: {replaced}, swap {statistics.median(swaps) * 1000:.0f} ms median",
                flush=True,
            )
        finally:
            stop(proc)

    finally:
        shutil.rmtree(work, ignore_errors=True)

    results.update(
        {
            "rps_single_c1": round(ours["single_c1"]["rps"], 1),
            "rps_single_c16": round(ours["single_c16"]["rps"], 1),
            "rps_batch100_c16": round(ours["batch100_c16"]["rps"], 1),
            "floor_rps_single_c1": round(theirs["single_c1"]["rps"], 1),
            "floor_rps_single_c16": round(theirs["single_c16"]["rps"], 1),
            "floor_rps_batch100_c16": round(theirs["batch100_c16"]["rps"], 1),
            "ratio_to_floor_single_c16": round(
                ours["single_c16"]["rps"] / theirs["single_c16"]["rps"], 3
            ),
            "ratio_to_floor_batch100_c16": round(
                ours["batch100_c16"]["rps"] / theirs["batch100_c16"]["rps"], 3
            ),
            "p50_ms_single_c16": round(ours["single_c16"]["p50_ms"], 3),
            "p99_ms_single_c16": round(ours["single_c16"]["p99_ms"], 3),
            "floor_p99_ms_single_c16": round(theirs["single_c16"]["p99_ms"], 3),
            "p99_ms_batch100_c16": round(ours["batch100_c16"]["p99_ms"], 3),
            "cpu_ms_per_request_single": round(ours["single_c16"]["cpu_ms_per_request"], 4),
            "floor_cpu_ms_per_request_single": round(theirs["single_c16"]["cpu_ms_per_request"], 4),
            "cpu_ms_per_request_batch100": round(ours["batch100_c16"]["cpu_ms_per_request"], 4),
            "replace_total_requests": replaced["sent"] + replaced["failed"],
            "replace_failed_requests": replaced["failed"],
            "replace_swap_ms_median": round(statistics.median(swaps) * 1000, 1),
            "failed_requests_load": sum(r["failed"] for r in ours.values()),
        }
    )
    results["targets_met"] = {
        "ratio_to_floor_single_c16>=0.8": results["ratio_to_floor_single_c16"] >= 0.8,
        "ratio_to_floor_batch100_c16>=0.9": results["ratio_to_floor_batch100_c16"] >= 0.9,
        "replace_failed_requests==0": results["replace_failed_requests"] == 0,
        "ready_after_launch_s<=2": results["ready_after_launch_s"] <= 2.0,
        "cold_start_s<=1.5": results["cold_start_s"] <= 1.5,
        "idle_rss_mb<=150": results["idle_rss_mb"] <= 150,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    client = sub.add_parser("client")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--path", required=True)
    client.add_argument("--body", required=True)
    client.add_argument("--concurrency", type=int, default=1)
    client.add_argument("--duration", type=float, default=5)
    client.add_argument("--warmup", type=float, default=1)
    client.add_argument("--rate", type=float, default=0)
    floor = sub.add_parser("floor")
    floor.add_argument("--port", type=int, required=True)
    floor.add_argument("--package", required=True)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per scenario and side")
    parser.add_argument(
        "--replace-s", type=float, default=12.0, help="length of the replacement run"
    )
    args = parser.parse_args()
    if args.mode == "client":
        client_main(args)
    elif args.mode == "floor":
        floor_main(args)
    else:
        print(orjson.dumps(bench(args)).decode())


if __name__ == "__main__":
    main()
