"""Benchmark: the prediction server (`pilothouse serve`) against a bare aiohttp floor.

One server process serves the iris example and two models on 20 numeric features:
`linear`, a logistic regression (predict costs microseconds), and `rf`, a random forest
of 50 trees (predict costs milliseconds), so the server's overhead is seen both where
the model work is negligible and where it dominates. Monitoring is on. Each server
(and each floor) is pinned to core 0, the load generator to core 1; the client is a
raw-socket HTTP/1.1 loop (or a grpc.aio loop sending pre-encoded messages) in a
separate process, keep-alive, one request in flight per connection.

The floor is a bare aiohttp + orjson + NumPy handler doing *exactly* the model work the
server does for the same request: for the plain rows endpoint (labels and
probabilities) one `predict_proba` call and an argmax, as the server's sklearn
predictor does; for V2 infer asking for `predict`, one `predict` call. The overhead of
a request is its CPU time minus the in-process CPU time of that same model call
(measured here, pinned to the same core: CPU time, not wall time, so that the two sides
of the subtraction count the same thing on a busy machine), and is compared with the
floor's.

Scenarios, medians of `--rounds` rounds, server and floor alternating:
- plain rows endpoint, linear: 1 row at c1 and c16, 100 rows at c16 (issue #5);
- V2 infer, linear: 1 row over REST-JSON and gRPC; 100 rows over REST-JSON,
  REST-binary (binary tensor data extension both ways) and gRPC (raw contents); REST-JSON
  against the V2 JSON floor, REST-binary against the floor's binary handler (header
  parsed, the input viewed in place, one `predict`, raw BYTES out), gRPC against a bare
  grpc.aio floor in the same process (raw contents in, one `predict`, raw BYTES out), so
  grpcio's own per-call cost is seen. The floors' own ratios (`floor_ratio_*`) are the
  ceilings of the transport targets: what bare handlers on the same stacks reach;
- V2 infer, rf: 1 row over REST-JSON against its floor.
Also: cold start, idle RSS, ready after launch, 0 failures while `linear` is replaced
20 times at 200 requests/s.

Targets (issues #5, #15): rows single c16 >= 0.8x the floor, rows batch >= 0.9x;
REST-binary >= 1.3x REST-JSON req/s for 100-row batches; gRPC single-row >= 1.2x
REST-JSON single-row; single-row REST-JSON overhead <= 1.3x the floor's for both
models; 0 failed requests during replacement; ready <= 2 s; cold start <= 1.5 s;
idle RSS <= 150 MB. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
FEATURES = [f"x{i:02d}" for i in range(20)]
PILOTHOUSE = Path(sys.executable).parent / "pilothouse"


# -- packages ---------------------------------------------------------------------------------


def linear_package(path: Path, seed: int, kind: str = "linear") -> Path:
    """A classifier on 20 numeric features: logistic regression, or a 50-tree forest."""
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from pilothouse.modelpkg import Feature, Manifest, dump_manifest
    from pilothouse.modelpkg.profiling import baseline

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5000, len(FEATURES)))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0, "yes", "no")
    if kind == "rf":
        model: Any = RandomForestClassifier(n_estimators=50, random_state=seed).fit(x, y)
    else:
        model = LogisticRegression(max_iter=500).fit(x, y)
    features = [Feature(name=f) for f in FEATURES]
    path.mkdir(parents=True)
    joblib.dump(model, path / "model.joblib")
    manifest = Manifest.model_validate(
        {
            "name": kind,
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


def v2_json_body(n: int, seed: int = 1) -> bytes:
    """A V2 infer request: one FP64 tensor [n, 20], as JSON."""
    import numpy as np

    rows = np.random.default_rng(seed).normal(size=(n, 20))
    tensor = {"name": "x", "shape": [n, 20], "datatype": "FP64", "data": rows.ravel().tolist()}
    return orjson.dumps({"inputs": [tensor], "outputs": [{"name": "predict"}]})


def v2_binary_body(n: int, seed: int = 1) -> tuple[bytes, int]:
    """The same request with the binary tensor data extension both ways; (body, header length)."""
    import numpy as np

    raw = np.random.default_rng(seed).normal(size=(n, 20)).astype("<f8").tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [n, 20],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    )
    return header + raw, len(header)


def _pb() -> Any:
    """The generated ``inference_pb2`` module."""
    import importlib.util

    # Loaded by path: this script's own name shadows the `serving` package.
    spec = importlib.util.spec_from_file_location(
        "inference_pb2", ROOT / "serving" / "grpcapi" / "inference_pb2.py"
    )
    assert spec is not None and spec.loader is not None
    pb: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pb)
    return pb


def grpc_body(model: str, n: int, seed: int = 1) -> bytes:
    """The same request as a serialized ``ModelInferRequest`` (raw input contents)."""
    import numpy as np

    pb = _pb()
    raw = np.random.default_rng(seed).normal(size=(n, 20)).astype("<f8").tobytes()
    request = pb.ModelInferRequest(model_name=model, raw_input_contents=[raw])
    request.inputs.add(name="x", datatype="FP64", shape=[n, 20])
    request.outputs.add(name="predict")
    return bytes(request.SerializeToString())


def model_seconds(package: Path, n: int, method: str, repeats: int = 300) -> float:
    """Median in-process CPU time of the floor's (and server's) model call on ``n`` rows.

    CPU time (``time.process_time``), as the servers' cost per request is: wall time
    would count the time other processes hold the core, and on a loaded machine it
    exceeded the servers' whole CPU time per request (the forest: 4.5-9.6 ms of wall
    time against 3.2 ms of server CPU), making the overheads negative.
    """
    import joblib
    import numpy as np

    os.sched_setaffinity(0, {0})
    try:
        model = joblib.load(package / "model.joblib")
        x = np.random.default_rng(1).normal(size=(n, 20))
        call = getattr(model, method)
        times = []
        for _ in range(repeats):
            began = time.process_time()
            call(x)
            times.append(time.process_time() - began)
        return statistics.median(times)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


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
        preexec_fn=_on_core(0),
    )  # fmt: skip


def _on_core(core: int) -> Any:
    """Pin a child to one core (servers and floors on 0, load generators on 1)."""
    if (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {core})


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
                # "\r\n" first: Inference-Header-Content-Length must not match.
                length = int(head.lower().split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0])
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
    port: int,
    path: str,
    body: bytes,
    concurrency: int,
    duration: float,
    warmup: float,
    rate: float,
    header_length: int = 0,
) -> dict[str, Any]:
    kind = "application/octet-stream" if header_length else "application/json"
    extra = f"Inference-Header-Content-Length: {header_length}\r\n" if header_length else ""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n{extra}"
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
    return _summary(out, duration)


def _summary(out: dict[str, Any], duration: float) -> dict[str, Any]:
    lat = sorted(out.pop("latencies"))
    return {
        **out,
        "rps": len(lat) / duration,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else None,
    }


def client_main(args: argparse.Namespace) -> None:
    body = Path(args.body).read_bytes()
    if args.grpc:
        result = asyncio.run(
            _grpc_client(args.port, body, args.concurrency, args.duration, args.warmup)
        )
    else:
        result = asyncio.run(
            _client(
                args.port, args.path, body, args.concurrency, args.duration, args.warmup,
                args.rate, args.header_length,
            )
        )  # fmt: skip
    print(orjson.dumps(result).decode())


async def _grpc_client(
    port: int, body: bytes, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """gRPC ``ModelInfer`` calls with a pre-serialized request, answers left unparsed."""
    import grpc

    out: dict[str, Any] = {"sent": 0, "failed": 0, "latencies": []}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        start = time.perf_counter()
        deadline, warm_until = start + warmup + duration, start + warmup

        async def loop() -> None:
            while (began := time.perf_counter()) < deadline:
                try:
                    await infer(body, timeout=30)
                    ok = True
                except grpc.aio.AioRpcError:
                    ok = False
                if began >= warm_until:
                    out["sent"] += 1
                    if ok:
                        out["latencies"].append(time.perf_counter() - began)
                    else:
                        out["failed"] += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return _summary(out, duration)


def run_client(
    port: int,
    path: str,
    body_file: Path,
    concurrency: int,
    duration: float,
    *,
    rate: float = 0,
    warmup: float = 1.0,
    header_length: int = 0,
    grpc: bool = False,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "client", "--port", str(port), "--path", path,
         "--body", str(body_file), "--concurrency", str(concurrency), "--duration", str(duration),
         "--warmup", str(warmup), "--rate", str(rate), "--header-length", str(header_length),
         *(["--grpc"] if grpc else [])],
        stdout=subprocess.PIPE,
        preexec_fn=_on_core(1),
    )  # fmt: skip


def _brief(r: dict[str, Any]) -> str:
    if r["p50_ms"] is None:
        return f"no answer: {r}"
    return (
        f"{r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
        f"cpu {r['cpu_ms_per_request']:.3f} ms/req failed {r['failed']}"
    )


def load(
    pid: int,
    port: int,
    path: str,
    body_file: Path,
    concurrency: int,
    duration: float,
    **client: Any,
) -> dict[str, Any]:
    proc = run_client(port, path, body_file, concurrency, duration, **client)
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

    classes = model.classes_

    async def handle(request: web.Request) -> web.Response:
        # The server's sklearn predictor: one predict_proba call, labels by argmax.
        doc = orjson.loads(await request.read())
        x = np.array(list(map(getter, doc["rows"])), dtype=np.float64)
        proba = model.predict_proba(x)
        labels = classes[np.argmax(proba, axis=1)]
        body = orjson.dumps(
            {"predictions": labels.tolist(), "probabilities": proba},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        return web.Response(body=body, content_type="application/json")

    async def infer(request: web.Request) -> web.Response:
        # V2 JSON asking for `predict` only: the server makes one predict call.
        length = request.headers.get("Inference-Header-Content-Length")
        if length is not None:
            return await infer_binary(request, int(length))
        doc = orjson.loads(await request.read())
        tensor = doc["inputs"][0]
        x = np.array(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        labels = model.predict(x)
        output = {"name": "predict", "shape": [len(labels)], "datatype": "BYTES"}
        body = orjson.dumps(
            {"model_name": "floor", "outputs": [{**output, "data": labels.tolist()}]}
        )
        return web.Response(body=body, content_type="application/json")

    async def infer_binary(request: web.Request, length: int) -> web.Response:
        # The binary tensor data extension both ways: one FP64 input viewed in place,
        # one predict, the labels as length-prefixed BYTES after the JSON header.
        body = await request.read()
        tensor = orjson.loads(body[:length])["inputs"][0]
        x = np.frombuffer(body, dtype="<f8", offset=length).reshape(tensor["shape"])
        labels = model.predict(x)
        encoded = [str(label).encode() for label in labels]
        raw = b"".join(len(v).to_bytes(4, "little") + v for v in encoded)
        output = {"name": "predict", "shape": [len(labels)], "datatype": "BYTES"}
        header = orjson.dumps(
            {
                "model_name": "floor",
                "outputs": [{**output, "parameters": {"binary_data_size": len(raw)}}],
            }
        )
        return web.Response(
            body=header + raw,
            headers={"Inference-Header-Content-Length": str(len(header))},
            content_type="application/octet-stream",
        )

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/predict", handle)
    app.router.add_post("/v2/infer", infer)
    app.router.add_get("/ready", ready)
    if args.grpc_port:
        app.on_startup.append(lambda app: _grpc_floor(model, args.grpc_port, app))
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


async def _grpc_floor(model: Any, port: int, app: Any) -> None:
    """A bare grpc.aio ``ModelInfer`` on the floor's loop: raw FP64 in, one predict, raw out."""
    import grpc
    import numpy as np

    pb = _pb()

    async def infer(request: Any, context: Any) -> Any:
        tensor = request.inputs[0]
        x = np.frombuffer(request.raw_input_contents[0], dtype="<f8").reshape(tuple(tensor.shape))
        labels = model.predict(x)
        encoded = [str(label).encode() for label in labels]
        raw = b"".join(len(v).to_bytes(4, "little") + v for v in encoded)
        return pb.ModelInferResponse(
            model_name="floor",
            outputs=[
                pb.ModelInferResponse.InferOutputTensor(
                    name="predict", datatype="BYTES", shape=[len(labels)]
                )
            ],
            raw_output_contents=[raw],
        )

    handler = grpc.unary_unary_rpc_method_handler(
        infer,
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelInferResponse.SerializeToString,
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "inference.GRPCInferenceService", {"ModelInfer": handler}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()

    async def stop(app: Any) -> None:
        await server.stop(None)

    app.on_cleanup.append(stop)


# -- the benchmark ----------------------------------------------------------------------------


@contextlib.contextmanager
def floor_process(package: Path) -> Iterator[tuple[int, int, int]]:
    """A floor serving ``package``'s model, pinned like the server: (pid, port, gRPC port)."""
    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "floor", "--port", str(port), "--package", str(package),
         "--grpc-port", str(grpc_port)],
        preexec_fn=_on_core(0),
    )  # fmt: skip
    try:
        wait_for(port, "/ready", time.perf_counter())
        yield proc.pid, port, grpc_port
    finally:
        stop(proc)


Run = Callable[[], dict[str, Any]]


def compare(
    args: argparse.Namespace, scenarios: dict[str, tuple[Run, Run]]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each scenario's server run and floor run, alternating, ``rounds`` times; medians."""
    runs: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for _ in range(args.rounds):
        for name, (mine_run, base_run) in scenarios.items():
            mine, base = mine_run(), base_run()
            print(f"{name}: server {_brief(mine)} | floor {_brief(base)}", flush=True)
            runs.setdefault(name, ([], []))[0].append(mine)
            runs[name][1].append(base)
    return (
        {name: _median(mine) for name, (mine, _) in runs.items()},
        {name: _median(base) for name, (_, base) in runs.items()},
    )


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
    return {
        **{k: statistics.median(r[k] for r in runs) for k in keys},
        "failed": sum(r["failed"] for r in runs),
        "rounds_rps": [round(r["rps"], 1) for r in runs],
    }


def v2_scenarios(
    args: argparse.Namespace,
    work: Path,
    pid: int,
    port: int,
    grpc_port: int,
    floor_pid: int,
    floor_port: int,
    floor_grpc_port: int,
) -> dict[str, Any]:
    """V2 infer on `linear` over REST-JSON, REST-binary and gRPC.

    REST runs alternate with the JSON floor; gRPC runs with the gRPC floor (a bare
    grpc.aio handler, same model work), which shows what grpcio itself costs per call.
    """
    bodies = {}
    for n, label in ((1, "single"), (100, "batch100")):
        (work / f"v2-{label}.json").write_bytes(v2_json_body(n))
        binary, header_length = v2_binary_body(n)
        (work / f"v2-{label}.bin").write_bytes(binary)
        (work / f"v2-{label}.grpc").write_bytes(grpc_body("linear", n))
        bodies[label] = header_length
    path, d = "/v2/models/linear/infer", args.duration

    def json_run(label: str, target: tuple[int, int, str]) -> Run:
        return lambda: load(target[0], target[1], target[2], work / f"v2-{label}.json", 16, d)

    server, floor = (pid, port, path), (floor_pid, floor_port, "/v2/infer")
    scenarios: dict[str, tuple[Run, Run]] = {
        "v2_json_single_c16": (json_run("single", server), json_run("single", floor)),
        "v2_grpc_single_c16": (
            lambda: load(pid, grpc_port, "", work / "v2-single.grpc", 16, d, grpc=True),
            lambda: load(floor_pid, floor_grpc_port, "", work / "v2-single.grpc", 16, d, grpc=True),
        ),
        "v2_json_batch100_c16": (json_run("batch100", server), json_run("batch100", floor)),
        "v2_binary_batch100_c16": (
            lambda: load(
                pid, port, path, work / "v2-batch100.bin", 16, d, header_length=bodies["batch100"]
            ),
            lambda: load(
                floor_pid,
                floor_port,
                "/v2/infer",
                work / "v2-batch100.bin",
                16,
                d,
                header_length=bodies["batch100"],
            ),
        ),
        "v2_grpc_batch100_c16": (
            lambda: load(pid, grpc_port, "", work / "v2-batch100.grpc", 16, d, grpc=True),
            lambda: load(
                floor_pid, floor_grpc_port, "", work / "v2-batch100.grpc", 16, d, grpc=True
            ),
        ),
    }
    ours, theirs = compare(args, scenarios)
    return {"ours": ours, "theirs": theirs}


def v2_rf_scenarios(
    args: argparse.Namespace, work: Path, pid: int, port: int, floor_pid: int, floor_port: int
) -> dict[str, Any]:
    """V2 REST-JSON single rows on `rf` against its floor."""
    body = work / "v2-single.json"
    ours, theirs = compare(
        args,
        {
            "rf_v2_json_single_c16": (
                lambda: load(pid, port, "/v2/models/rf/infer", body, 16, args.duration),
                lambda: load(floor_pid, floor_port, "/v2/infer", body, 16, args.duration),
            )
        },
    )
    return {"ours": ours, "theirs": theirs}


def v2_results(
    v2: dict[str, Any], v2_rf: dict[str, Any], model_s: dict[str, float]
) -> dict[str, Any]:
    """The issue #15 figures."""
    ours, theirs = v2["ours"], v2["theirs"]

    def overhead(mine: dict[str, Any], base: dict[str, Any], model: str) -> float:
        own = mine["cpu_ms_per_request"] - model_s[model] * 1000
        floor = base["cpu_ms_per_request"] - model_s[model] * 1000
        return round(own / floor, 3)

    json_single, json_batch = ours["v2_json_single_c16"], ours["v2_json_batch100_c16"]
    rf_mine, rf_base = (
        v2_rf["ours"]["rf_v2_json_single_c16"],
        v2_rf["theirs"]["rf_v2_json_single_c16"],
    )
    return {
        "rps_single_c16_json": round(json_single["rps"], 1),
        "rps_single_c16_grpc": round(ours["v2_grpc_single_c16"]["rps"], 1),
        "rps_batch100_c16_json": round(json_batch["rps"], 1),
        "rps_batch100_c16_binary": round(ours["v2_binary_batch100_c16"]["rps"], 1),
        "rps_batch100_c16_grpc": round(ours["v2_grpc_batch100_c16"]["rps"], 1),
        "floor_rps_v2_single_c16": round(theirs["v2_json_single_c16"]["rps"], 1),
        "floor_rps_v2_batch100_c16": round(theirs["v2_json_batch100_c16"]["rps"], 1),
        "ratio_binary_to_json_batch100": round(
            ours["v2_binary_batch100_c16"]["rps"] / json_batch["rps"], 3
        ),
        "ratio_grpc_to_json_batch100": round(
            ours["v2_grpc_batch100_c16"]["rps"] / json_batch["rps"], 3
        ),
        "ratio_grpc_to_json_single": round(
            ours["v2_grpc_single_c16"]["rps"] / json_single["rps"], 3
        ),
        "ratio_json_to_floor_v2_single_c16": round(
            json_single["rps"] / theirs["v2_json_single_c16"]["rps"], 3
        ),
        "p99_ms_v2_single_c16": round(json_single["p99_ms"], 3),
        "floor_p99_ms_v2_single_c16": round(theirs["v2_json_single_c16"]["p99_ms"], 3),
        "model_ms_single_linear": round(model_s["linear"] * 1000, 4),
        "model_ms_single_rf": round(model_s["rf"] * 1000, 4),
        "cpu_ms_per_request_single_linear": round(json_single["cpu_ms_per_request"], 4),
        "floor_cpu_ms_per_request_single_linear": round(
            theirs["v2_json_single_c16"]["cpu_ms_per_request"], 4
        ),
        "cpu_ms_per_request_single_rf": round(rf_mine["cpu_ms_per_request"], 4),
        "floor_cpu_ms_per_request_single_rf": round(rf_base["cpu_ms_per_request"], 4),
        "rps_single_c16_rf": round(rf_mine["rps"], 1),
        "floor_rps_single_c16_rf": round(rf_base["rps"], 1),
        "overhead_ratio_to_floor_single_linear": overhead(
            json_single, theirs["v2_json_single_c16"], "linear"
        ),
        "overhead_ratio_to_floor_single_rf": overhead(rf_mine, rf_base, "rf"),
        # gRPC against the bare grpc.aio floor: what is ours, beside what grpcio costs.
        "floor_rps_single_c16_grpc": round(theirs["v2_grpc_single_c16"]["rps"], 1),
        "cpu_ms_per_request_single_grpc": round(
            ours["v2_grpc_single_c16"]["cpu_ms_per_request"], 4
        ),
        "floor_cpu_ms_per_request_single_grpc": round(
            theirs["v2_grpc_single_c16"]["cpu_ms_per_request"], 4
        ),
        # Ceilings: what bare handlers doing the same model work reach, side against side.
        # A target above its ceiling cannot be met by any server on that stack.
        "floor_rps_batch100_c16_binary": round(theirs["v2_binary_batch100_c16"]["rps"], 1),
        "floor_ratio_binary_to_json_batch100": round(
            theirs["v2_binary_batch100_c16"]["rps"] / theirs["v2_json_batch100_c16"]["rps"], 3
        ),
        "floor_ratio_grpc_to_json_single": round(
            theirs["v2_grpc_single_c16"]["rps"] / theirs["v2_json_single_c16"]["rps"], 3
        ),
        "ratio_grpc_floor_to_json_single": round(
            theirs["v2_grpc_single_c16"]["rps"] / json_single["rps"], 3
        ),
        "overhead_ratio_to_grpc_floor_single_linear": overhead(
            ours["v2_grpc_single_c16"], theirs["v2_grpc_single_c16"], "linear"
        ),
        "rounds_rps": {k: v["rounds_rps"] for k, v in {**ours, **v2_rf["ours"]}.items()},
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    results: dict[str, Any] = {}
    try:
        linear1 = linear_package(work / "linear-1", seed=1)
        linear2 = linear_package(work / "linear-2", seed=2)
        rf = linear_package(work / "rf-1", seed=1, kind="rf")
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
            grpc_port = free_port()
            proc = spawn_server(
                port, work / f"ready-{i}", "--deployment", f"iris={iris}",
                "--grpc-port", str(grpc_port),
            )  # fmt: skip
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
            status, doc = admin_put(
                port, "rf", {"model_package_id": "rf-1", "package_dir": str(rf)}
            )
            assert status == 201, doc
            print(f"rf: {doc['champion']['predict_cost_us']} us", flush=True)
            path = "/v1/deployments/linear/predict"
            rows_scenarios = {
                "single_c1": (single, 1),
                "single_c16": (single, 16),
                "batch100_c16": (batch, 16),
            }
            with floor_process(linear1) as (floor_pid, floor_port, floor_grpc_port):
                ours, theirs = compare(
                    args,
                    {
                        name: (
                            lambda body=body, conc=conc: load(
                                pid, port, path, body, conc, args.duration
                            ),
                            lambda body=body, conc=conc: load(
                                floor_pid, floor_port, "/predict", body, conc, args.duration
                            ),
                        )
                        for name, (body, conc) in rows_scenarios.items()
                    },
                )
                v2 = v2_scenarios(
                    args, work, pid, port, grpc_port, floor_pid, floor_port, floor_grpc_port
                )
            with floor_process(rf) as (floor_pid, floor_port, _):
                v2_rf = v2_rf_scenarios(args, work, pid, port, floor_pid, floor_port)
            model_s = {
                "linear": model_seconds(linear1, 1, "predict"),
                "rf": model_seconds(rf, 1, "predict"),
            }
            print(
                "in-process predict, 1 row: "
                + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in model_s.items()),
                flush=True,
            )

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
            "failed_requests_load": sum(r["failed"] for r in ours.values())
            + sum(r["failed"] for r in v2["ours"].values())
            + sum(r["failed"] for r in v2_rf["ours"].values()),
        }
    )
    results.update(v2_results(v2, v2_rf, model_s))
    results["targets_met"] = {
        "ratio_to_floor_single_c16>=0.8": results["ratio_to_floor_single_c16"] >= 0.8,
        "ratio_to_floor_batch100_c16>=0.9": results["ratio_to_floor_batch100_c16"] >= 0.9,
        "replace_failed_requests==0": results["replace_failed_requests"] == 0,
        "ready_after_launch_s<=2": results["ready_after_launch_s"] <= 2.0,
        "cold_start_s<=1.5": results["cold_start_s"] <= 1.5,
        "idle_rss_mb<=150": results["idle_rss_mb"] <= 150,
        "ratio_binary_to_json_batch100>=1.3": results["ratio_binary_to_json_batch100"] >= 1.3,
        "ratio_grpc_to_json_single>=1.2": results["ratio_grpc_to_json_single"] >= 1.2,
        "overhead_ratio_to_floor_single_rf<=1.3": results["overhead_ratio_to_floor_single_rf"]
        <= 1.3,
        "overhead_ratio_to_floor_single_linear<=1.3": results[
            "overhead_ratio_to_floor_single_linear"
        ]
        <= 1.3,
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
    client.add_argument("--header-length", type=int, default=0)
    client.add_argument("--grpc", action="store_true")
    floor = sub.add_parser("floor")
    floor.add_argument("--port", type=int, required=True)
    floor.add_argument("--package", required=True)
    floor.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario and side")
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
