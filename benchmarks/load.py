"""A class on one worker: can it knock the server over? A real uvicorn on 127.0.0.1, three phases, bounded.

    python benchmarks/load.py              # the table in the README (1 worker)
    python benchmarks/load.py --quick      # a few seconds a phase (CI smoke)
    python benchmarks/load.py --workers 2

Phases, one after the other (each bounded in requests and in seconds):
1. page loads: 300 clients open /step?spec=<spiral preset> at once, each then fetching the page's scripts,
   styles, fonts and plotly.js (what a browser asks for; a client's connection is reused for its assets);
2. stepping: 50 clients walk the spiral preset t -> t+1 as the step page does (GET /step?spec=&t=&phase= with
   HX-Request, the stage fragment), each from its own t;
3. the worst case: 20 clients hammer the most expensive request the cost model accepts (an 8-optimizer race on a
   2000-point spiral, steps found by a dry run of the model in this process).
All the while one client probes /healthz every 50 ms: its p99 must stay under 100 ms (the probe is answered on
the event loop, never queued behind computations). Prints per phase: requests, req/s, p50/p99 ms, errors (a
failed request or a status other than 200/503), 503s (a full worker's fast refusal), and the server's RSS before
and after. The load generator shares the machine's cores with the server; the figures are what one small box
does alone (and this machine may be shared: read them as a lower bound).
"""

import argparse
import asyncio
import copy
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.presets import PRESETS_BY_ID  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

HOST = "127.0.0.1"
SPIRAL = PRESETS_BY_ID["spiral-2-8-8-1"]["spec"]
TOKEN = experiment_from_dict(SPIRAL).to_token()
HEALTH_EVERY = 0.05
HEALTH_P99_MS = 100.0
EIGHT = [{"name": n, "lr": 0.01} for n in ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "sgd")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its worker processes, in MB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total / 1024


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_server(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def worst_request() -> dict:
    """The 8-optimizer race on a 2000-point spiral with the most steps the cost model accepts (a dry run)."""
    from app import cost
    from app.main import app

    spec = {**copy.deepcopy(SPIRAL), "data": {"dataset": "spiral", "n": 2000, "noise": 0.1, "seed": 0}}
    spec.pop("optimizer", None)
    spec["optimizers"] = EIGHT

    async def accepted(steps: int) -> bool:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://dry") as c:
            token = cost.dry_run.set(True)
            try:
                r = await c.post("/api/v1/race", json={**spec, "steps": steps})
                return r.status_code == 200
            except cost.Accepted:
                return True
            finally:
                cost.dry_run.reset(token)

    lo, hi = 1, 5000
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if asyncio.run(accepted(mid)) else (lo, mid)
    return {**spec, "steps": lo}


class Tally:
    """Latencies and outcomes of one phase."""

    def __init__(self):
        self.latencies, self.errors, self.busy, self.ok = [], 0, 0, 0

    def add(self, started: float, status: int | None):
        self.latencies.append(time.perf_counter() - started)
        if status == 200:
            self.ok += 1
        elif status == 503:
            self.busy += 1
        else:
            self.errors += 1


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


async def timed(tally: Tally, request) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        r = await request
    except httpx.HTTPError:
        tally.add(started, None)
        return None
    tally.add(started, r.status_code)
    return r


ASSET = re.compile(r'(?:src|href)="(/static/[^"]+|/vendor/[^"]+)"')


async def page_load(base: str, tally: Tally, deadline: float):
    """One browser opening /step: the page, then every script and stylesheet it names, one connection."""
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"accept-encoding": "gzip"}) as c:
        r = await timed(tally, c.get("/step", params={"spec": TOKEN}))
        if r is None or r.status_code != 200:
            return
        for asset in dict.fromkeys(ASSET.findall(r.text)):
            if time.monotonic() > deadline:
                return
            await timed(tally, c.get(asset))


async def stepper(base: str, tally: Tally, deadline: float, start_t: int, limit: int):
    """Walk t -> t+1 through the step page's stage fragment, as its arrow keys do."""
    headers = {"HX-Request": "true", "accept-encoding": "gzip"}
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as c:
        t = start_t
        for _ in range(limit):
            if time.monotonic() > deadline:
                return
            await timed(tally, c.get("/step", params={"spec": TOKEN, "t": t, "phase": "update"}))
            t += 1


async def hammer(base: str, tally: Tally, deadline: float, body: dict, limit: int):
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"accept-encoding": "gzip"}) as c:
        for _ in range(limit):
            if time.monotonic() > deadline:
                return
            r = await timed(tally, c.post("/api/v1/race", json=body))
            if r is not None and r.status_code == 503:  # what a polite client does with Retry-After
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))


def probe_health(base: str, stop, out) -> None:
    """In its own process (the load generator's busy event loop must not delay the probe): GET /healthz every
    50 ms on a fresh connection, as a load balancer does; the latencies go to `out` at the end."""
    host, port = base.rsplit("/", 1)[1].split(":")
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    samples = []
    while not stop.is_set():
        started = time.perf_counter()
        try:  # a bare socket: the probe's own overhead stays out of the figure
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(request)
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
            ok = answer.startswith(b"HTTP/1.1 200")
            samples.append(time.perf_counter() - started if ok else float("inf"))
        except OSError:
            samples.append(float("inf"))
        time.sleep(HEALTH_EVERY)
    out.put(samples)


async def phase(base: str, name: str, make_clients, seconds: float) -> dict:
    tally = Tally()
    ctx = multiprocessing.get_context("fork")  # the child only runs probe_health: no loop, no threads of ours
    stop, out = ctx.Event(), ctx.Queue()
    prober = ctx.Process(target=probe_health, args=(base, stop, out))
    prober.start()
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*make_clients(tally, deadline))
    elapsed = time.perf_counter() - started
    stop.set()
    health = out.get(timeout=60)
    prober.join(timeout=10)
    n = len(tally.latencies)
    return {
        "phase": name,
        "requests": n,
        "rps": n / elapsed,
        "p50": pct(tally.latencies, 0.5),
        "p99": pct(tally.latencies, 0.99),
        "errors": tally.errors,
        "busy": tally.busy,
        "health_n": len(health),
        "health_p50": pct(health, 0.5),
        "health_p99": pct(health, 0.99),
        "health_max": 1000 * max(health) if health else float("nan"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="A class against one worker.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few seconds a phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound of each phase")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else args.seconds
    loads, steppers, hammers = (60, 10, 4) if args.quick else (300, 50, 20)
    body = worst_request()
    port = args.port or free_port()
    proc = start_server(port, args.workers)
    base = f"http://{HOST}:{port}"
    rows = []
    try:
        rss_before = rss_mb(proc.pid)

        def pages(tally, deadline):
            return [page_load(base, tally, deadline) for _ in range(loads)]

        def stepping(tally, deadline):
            return [stepper(base, tally, deadline, start_t=3 * i, limit=200) for i in range(steppers)]

        def worst(tally, deadline):
            return [hammer(base, tally, deadline, body, limit=50) for _ in range(hammers)]

        rows.append(asyncio.run(phase(base, f"{loads} clients open /step with its assets", pages, 2 * seconds)))
        rows.append(asyncio.run(phase(base, f"{steppers} clients step t -> t+1 (spiral)", stepping, seconds)))
        rows.append(
            asyncio.run(phase(base, f"{hammers} clients: 8-optimizer race x {body['steps']} steps", worst, seconds))
        )
        rss_after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"uvicorn, {args.workers} worker(s), 127.0.0.1; RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    print()
    print("| phase | requests | req/s | p50 ms | p99 ms | errors | 503s | /healthz p50 ms | /healthz p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['phase']} | {r['requests']} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['errors']} "
            f"| {r['busy']} | {r['health_p50']:.1f} | {r['health_p99']:.1f} |"
        )
    worst_health = max(r["health_p99"] for r in rows)
    verdict = "under" if worst_health < HEALTH_P99_MS else "OVER"
    print(f"\n/healthz p99 {worst_health:.1f} ms at worst: {verdict} {HEALTH_P99_MS:.0f} ms")
    return 0 if worst_health < HEALTH_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
