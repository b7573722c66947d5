"""Latency of the JSON API under load: a real uvicorn on loopback, 50 concurrent clients.

    python benchmarks/server.py                 # the table in the README (1 worker, 20 s per endpoint)
    python benchmarks/server.py --workers 2     # uvicorn --workers 2
    python benchmarks/server.py --quick         # a few seconds per endpoint, for CI smoke

Two phases, one after the other, each `--duration` seconds (and at most `--max-requests` requests):
* POST /api/v1/step  - the spiral 2-8-8-1 preset, t drawn uniformly from 0..200 (seeded): a random step
  recomputed from the nearest cached checkpoint, as the step-through page does;
* POST /api/v1/train - the spiral 2-8-8-1 preset, 500 steps.
Clients are httpx async connections (keep-alive, gzip accepted, like a browser) in this process; they share the
machine's cores with the server, so the figures are what one small box does alone. Latency is per request, from
sending to the last byte; an error is any non-200 answer or a failed/timed-out request. Only 127.0.0.1 is used.
"""

import argparse
import asyncio
import copy
import os
import pathlib
import random
import socket
import statistics
import subprocess
import sys
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.presets import PRESETS_BY_ID  # noqa: E402

HOST = "127.0.0.1"
SPIRAL = PRESETS_BY_ID["spiral-2-8-8-1"]["spec"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            # uvicorn closes a keep-alive connection 5 s after a response by default; with 50 clients on the same
            # 2 cores the client can take longer than that to read one response and send the next, and the POST
            # then meets a closed socket (httpx ReadError, never reaching the app). 60 s keeps that out of the figures.
            "--timeout-keep-alive",
            "60",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("uvicorn did not answer /healthz within 90 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def step_body(rng: random.Random) -> dict:
    return {"spec": SPIRAL, "t": rng.randint(0, 200)}


def train_body(rng: random.Random) -> dict:
    return {**copy.deepcopy(SPIRAL), "steps": 500}


async def hammer(
    base: str,
    path: str,
    make_body,
    clients: int,
    duration: float,
    max_requests: int,
    timeout: float,
    seed: int,
    gzip: bool,
) -> dict:
    """`clients` concurrent loops posting to `path` until `duration` is spent or `max_requests` were sent."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    messages: dict[str, str] = {}
    sent = 0
    rng = random.Random(seed)
    headers = {} if gzip else {"accept-encoding": "identity"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits, headers=headers) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def loop():
            nonlocal sent
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                body = make_body(rng)
                t0 = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    await r.aread()
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    messages.setdefault(type(exc).__name__, f"{exc!r} after {time.perf_counter() - t0:.2f} s")

        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    for name, message in messages.items():
        print(f"{path}: first {name}: {message}", file=sys.stderr)
    return {"path": path, "ok": len(latencies), "errors": errors, "elapsed": elapsed, "latencies": latencies}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def row(name: str, result: dict) -> str:
    lat = result["latencies"]
    n_err = sum(result["errors"].values())
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(result["errors"].items()))
    return (
        f"| {name} | {result['ok'] + n_err} | {n_err}{f' ({detail})' if detail else ''} | "
        f"{result['ok'] / result['elapsed']:.1f} | {1000 * percentile(lat, 50):.0f} | "
        f"{1000 * percentile(lat, 99):.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per endpoint (default 20)")
    parser.add_argument("--max-requests", type=int, default=5000, help="cap per endpoint (default 5000)")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds")
    parser.add_argument("--no-gzip", action="store_true", help="ask for identity encoding instead of gzip")
    parser.add_argument("--quick", action="store_true", help="3 s per endpoint, for a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    if not 1 <= args.clients <= 500 or not 1 <= args.workers <= 16:
        parser.error("--clients must be 1..500 and --workers 1..16")

    port = free_port()
    proc = start_server(port, args.workers)
    base = f"http://{HOST}:{port}"
    try:
        with httpx.Client(base_url=base, timeout=args.timeout) as c:  # warm-up: imports, caches, one of each
            for path, make in (("/api/v1/step", step_body), ("/api/v1/train", train_body)):
                r = c.post(path, json=make(random.Random(args.seed)))
                r.raise_for_status()
        results = []
        for name, path, make in (
            ("POST /api/v1/step (spiral 2-8-8-1, random t in 0..200)", "/api/v1/step", step_body),
            ("POST /api/v1/train (spiral 2-8-8-1, 500 steps)", "/api/v1/train", train_body),
        ):
            results.append(
                (
                    name,
                    asyncio.run(
                        hammer(
                            base,
                            path,
                            make,
                            args.clients,
                            args.duration,
                            args.max_requests,
                            args.timeout,
                            args.seed,
                            not args.no_gzip,
                        )
                    ),
                )
            )
    finally:
        stop_server(proc)

    print(
        f"\nuvicorn --workers {args.workers} on {HOST}, {args.clients} concurrent clients, "
        f"{args.duration:g} s per endpoint, {os.cpu_count()} CPUs, gzip {'off' if args.no_gzip else 'on'}\n"
    )
    print("| endpoint | requests | errors | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, result in results:
        print(row(name, result))
    if any(result["errors"] for _, result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
