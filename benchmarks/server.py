"""What one request costs the server, apart from queueing; and a class opening /step at once.

    python benchmarks/server.py              # the tables in the README (about three minutes)
    python benchmarks/server.py --quick      # fewer repetitions, for a smoke run
    python benchmarks/server.py --load 20    # also 50 clients hammering /api/v1/step and /train for 20 s each

A real uvicorn (one worker, OPENBLAS_NUM_THREADS=1) on 127.0.0.1, on the first free port of 8140-8149, stopped at
the end. Three parts:

1. Cost: requests sent one at a time, so nothing queues. "server CPU" is the server process's CPU time (user +
   system, /proc/PID/stat, all its threads) divided by the number of requests: the work one request makes, which is
   what a class of N clients multiplies. "latency" is the median wall time from sending to the last byte, loopback
   included. Bytes are as sent (gzip where the client accepts it, as browsers do) and raw. Cases:
   * /step, spiral 2-8-8-1: the page's stage fragment (what htmx asks for on every key press: `HX-Request`,
     `HX-Target: stage`), at t=0 for a new experiment (nothing cached: data, theta_0, the step), at t=0 again, then
     t -> t+1 (the checkpoint cache holds t: one step), with the route's function called in this process between
     the requests (the handler alone, no HTTP or middleware); also /api/v1/step's full record, and with samples/parts;
   * /step, digits 64-128-64-10 (256 rows, relu/softmax, Adam): every phase of a step as the page asks for it, and
     the API's full record against samples=[0] with parts;
   * /api/v1/train, spiral, 500 steps, against `engine.experiment.train_runs` in this process (CPU time, best of
     several runs): the HTTP overhead as a ratio;
   * the race stream (/race/events, the page's server-sent events, and /api/v1/race/stream) against the engine's
     race of the same spec in this process.
2. Class load: 200 clients open /step at once, each with a cold cache: the HTML, then every asset it names, every
   ES module those import and every font the CSS names (a browser fetches only the fonts it uses: an upper bound),
   over up to 6 keep-alive connections per client, with `Accept-Encoding: gzip`. The clients are a small raw
   HTTP/1.1 client in this process (httpx would spend more CPU than the server); they share the machine's two cores
   with the server. Target: every client served within 10 s.
3. (--load SECONDS) The old table: 50 concurrent httpx clients on /api/v1/step (random t in 0..200) and
   /api/v1/train; these latencies are mostly queueing.
Only 127.0.0.1 is used; figures are printed, never asserted.
"""

import argparse
import asyncio
import copy
import gzip
import os
import pathlib
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the in-process engine figures, like the server

import httpx  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import experiment  # noqa: E402
from engine.presets import PRESETS_BY_ID  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

HOST = "127.0.0.1"
PORTS = range(8140, 8150)
SPIRAL = PRESETS_BY_ID["spiral-2-8-8-1"]["spec"]
DIGITS = {
    "network": {
        "layers": [64, 128, 64, 10],
        "activations": ["relu", "relu", "softmax"],
        "loss": "cross_entropy",
        "init": "he",
        "seed": 0,
    },
    "data": {"dataset": "digits", "n": 256},
    "optimizer": {"name": "adam", "lr": 0.01},
}
FRAGMENT = {"HX-Request": "true", "HX-Target": "stage"}
TICK = os.sysconf("SC_CLK_TCK")


# ---- the server ------------------------------------------------------------------------------------------------
def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", HOST, "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60", "--backlog", "2048"]
    cmd += os.environ.get("BENCH_UVICORN_ARGS", "").split()  # e.g. "--http h11 --loop asyncio" to compare
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
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


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) the server process has used so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


# ---- part 1: one request at a time -------------------------------------------------------------------------------
class Cost:
    """Requests sent one at a time on one keep-alive connection; server CPU per request and latency."""

    def __init__(self, base: str, pid: int):
        self.pid = pid
        self.client = httpx.Client(base_url=base, timeout=120, headers={"accept-encoding": "gzip"})
        self.rows: list[tuple] = []

    def measure(self, name: str, requests: list[tuple], between=None) -> dict:
        """requests: (method, url, json body or None, headers); each sent once, in order. `between`, when given,
        runs in this process before each request (interleaved, so both see the same machine); its mean CPU time
        is the row's `between_ms`. The server's CPU is read before the first request and after the last (the kernel
        counts it in ticks of 1/CLK_TCK s: read around each request, the rounding would be a tick a request; read
        around the batch, a tick in all). The server is idle between requests, so `between` adds nothing to it."""
        latencies, wire, raw = [], [], []
        between_cpu = 0.0
        cpu0 = server_cpu(self.pid)
        for method, url, body, headers in requests:
            if between is not None:
                c0 = time.process_time()
                between()
                between_cpu += time.process_time() - c0
            t0 = time.perf_counter()
            with self.client.stream(method, url, json=body, headers=headers) as r:
                data = b"".join(r.iter_raw())
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise SystemExit(f"{name}: {method} {url[:80]} answered {r.status_code}: {data[:300]!r}")
            wire.append(len(data))
            raw.append(len(gzip.decompress(data)) if r.headers.get("content-encoding") == "gzip" else len(data))
        cpu = (server_cpu(self.pid) - cpu0) / len(requests)
        row = {
            "between_ms": 1e3 * between_cpu / len(requests),
            "name": name,
            "n": len(requests),
            "cpu_ms": 1e3 * cpu,
            "p50_ms": 1e3 * statistics.median(latencies),
            "wire_kb": statistics.mean(wire) / 1e3,
            "max_wire_kb": max(wire) / 1e3,
            "raw_kb": statistics.mean(raw) / 1e3,
        }
        self.rows.append(row)
        print(f"  {name}: {row['cpu_ms']:.1f} ms CPU, {row['wire_kb']:.1f} kB", file=sys.stderr)
        return row


def token(spec: dict) -> str:
    return experiment_from_dict(spec).to_token()


def with_seed(spec: dict, seed: int) -> dict:
    spec = copy.deepcopy(spec)
    spec["network"]["seed"] = seed
    return spec


def step_url(tok: str, t: int, phase: str = "z1", sample: int = 1) -> str:
    return "/step?" + urllib.parse.urlencode({"spec": tok, "t": t, "phase": phase, "sample": sample})


def phase_slugs(layers: int) -> list[str]:
    """z1, a1, ..., loss, deltaL..1, gradL..1, update: the phases of the /step page (engine.equations)."""
    return (
        [f"{k}{l}" for l in range(1, layers + 1) for k in ("z", "a")]
        + ["loss"]
        + [f"delta{l}" for l in range(layers, 0, -1)]
        + [f"grad{l}" for l in range(layers, 0, -1)]
        + ["update"]
    )


def in_process_step_handler(tok: str):
    """A callable that renders the next step's stage fragment of `tok` by calling the /step route's function
    directly (t = 0 first, then t + 1 on every call): the handler's own cost, without HTTP or middleware."""
    from starlette.requests import Request

    from app.routes.step_page import step_page

    headers = [(k.lower().encode(), v.encode()) for k, v in FRAGMENT.items()]
    state = {"t": 0}

    def call():
        request = Request({"type": "http", "method": "GET", "path": "/step", "headers": headers, "query_string": b""})
        step_page(request, spec=tok, t=state["t"], phase="z1", sample=1, unit=1, T=None, detail="", note="")
        state["t"] += 1

    call()  # t = 0: the new experiment's data, theta_0 and loss curve, not counted
    return call


def part_cost(base: str, pid: int, quick: bool) -> tuple[list[dict], list[str]]:
    n = 5 if quick else 30
    c = Cost(base, pid)
    notes = []
    spiral_tok = token(SPIRAL)
    get = lambda url, headers=FRAGMENT: ("GET", url, None, headers)  # noqa: E731
    # warm-up: imports, templates, the first experiment
    c.client.get(step_url(spiral_tok, 0), headers=FRAGMENT)
    c.client.post("/api/v1/step", json={"spec": SPIRAL, "t": 0})

    print("cost, one request at a time:", file=sys.stderr)
    c.measure(
        "/step fragment, spiral, t=0, new experiment",
        [get(step_url(token(with_seed(SPIRAL, 100 + i)), 0)) for i in range(n)],
    )
    c.measure("/step fragment, spiral, t=0 again", [get(step_url(spiral_tok, 0)) for _ in range(n)])
    fresh = token(with_seed(SPIRAL, 7))
    c.client.get(step_url(fresh, 0), headers=FRAGMENT)
    # interleaved: the same handler called in this process on another new experiment (no HTTP, no middleware)
    handler_step = in_process_step_handler(token(with_seed(SPIRAL, 8)))
    frag = c.measure(
        "/step fragment, spiral, t -> t+1", [get(step_url(fresh, t)) for t in range(1, n + 1)], between=handler_step
    )
    notes.append(
        f"/step fragment t -> t+1: {frag['cpu_ms']:.1f} ms of server CPU, of which the handler alone (called in "
        f"this process, interleaved) {frag['between_ms']:.1f} ms"
    )
    c.measure("/step full page, spiral, t -> t+1", [get(step_url(fresh, t), {}) for t in range(n + 1, 2 * n + 1)])
    api = lambda body: ("POST", "/api/v1/step", body, {})  # noqa: E731
    c.measure("/api/v1/step full record, spiral, t -> t+1", [api({"spec": SPIRAL, "t": t}) for t in range(1, n + 1)])
    sel = {"samples": [0], "parts": ["forward", "backward", "gradients"]}
    c.measure(
        "/api/v1/step samples=[0], parts=forward+backward+gradients, spiral, t -> t+1",
        [api({"spec": SPIRAL, "t": t, **sel}) for t in range(n + 1, 2 * n + 1)],
    )

    digits_tok = token(DIGITS)
    slugs = phase_slugs(3)
    c.client.get(step_url(digits_tok, 0), headers=FRAGMENT)
    rows = c.measure(
        f"/step fragment, digits, every phase of steps 1..{max(1, n // 10)} ({len(slugs)} phases a step)",
        [get(step_url(digits_tok, t, phase)) for t in range(1, max(1, n // 10) + 1) for phase in slugs],
    )
    notes.append(f"digits /step fragment: largest phase {rows['max_wire_kb']:.1f} kB as sent")
    c.measure(
        "/step fragment, digits, phase z1, t -> t+1",
        [get(step_url(digits_tok, t)) for t in range(20, 20 + n)],
    )
    c.measure("/api/v1/step full record, digits, t -> t+1", [api({"spec": DIGITS, "t": t}) for t in range(1, 6)])
    c.measure(
        "/api/v1/step samples=[0], parts=forward+backward, digits, t -> t+1",
        [api({"spec": DIGITS, "t": t, "samples": [0], "parts": ["forward", "backward"]}) for t in range(6, 6 + n)],
    )

    # /train over HTTP against the engine in this process
    prepared = experiment_from_dict(SPIRAL)
    experiment.prepare(prepared)
    experiment.train_runs(prepared, 500)
    train = c.measure(
        "/api/v1/train, spiral, 500 steps",
        [("POST", "/api/v1/train", {**SPIRAL, "steps": 500}, {})] * (5 if quick else 20),
        between=lambda: experiment.train_runs(prepared, 500),
    )
    notes.append(
        f"/train over HTTP {train['cpu_ms']:.1f} ms of server CPU vs the engine in-process "
        f"{train['between_ms']:.1f} ms (means, interleaved): {train['cpu_ms'] / train['between_ms']:.2f}x"
    )

    # the race stream against the engine's race of the same spec
    try:
        from app.views import race as rv

        race_dict = rv.race_spec(rv.DEFAULT_PROBLEM, rv.DEFAULT_RACE)
        steps = rv.PROBLEMS[rv.DEFAULT_PROBLEM]["steps"]
    except (ImportError, AttributeError, KeyError):  # the page's module changed: a race of our own
        race_dict = {**{k: v for k, v in SPIRAL.items() if k != "optimizer"}}
        race_dict["optimizers"] = [{"name": "sgd", "lr": 1.0}, {"name": "momentum", "lr": 1.0}, {"name": "adam"}]
        steps = 500
    race = experiment_from_dict(race_dict)
    experiment.prepare(race)
    experiment.train_runs(race, steps)
    k = len(race.optimizers)
    runs = 2 if quick else 6
    for name, request in (
        ("/race/events (the page's SSE)", ("GET", f"/race/events?spec={race.to_token()}&steps={steps}", None, {})),
        ("/api/v1/race/stream (NDJSON)", ("POST", "/api/v1/race/stream", {**race.to_dict(), "steps": steps}, {})),
    ):
        try:
            row = c.measure(
                f"{name}, {k} contestants, {steps} steps",
                [request] * runs,
                between=lambda: experiment.train_runs(race, steps),
            )
        except SystemExit as exc:
            notes.append(f"{name}: not measured ({exc})")
            continue
        notes.append(
            f"{name}: {row['cpu_ms']:.0f} ms of server CPU vs the engine's race in-process {row['between_ms']:.0f} ms "
            f"(means, interleaved): {row['cpu_ms'] / row['between_ms']:.2f}x"
        )
    c.client.close()
    return c.rows, notes


# ---- part 2: a class opens /step -----------------------------------------------------------------------------------
class Conn:
    """A minimal HTTP/1.1 keep-alive connection: GET, read the whole answer (Content-Length or chunked)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: gzip\r\nUser-Agent: class\r\n\r\n"
        self.writer.write(head.encode())
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked = None, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        size = 0
        if chunked:
            while (n := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
                size += len(await self.reader.readexactly(n + 2)) - 2
            await self.reader.readuntil(b"\r\n")
        elif length:
            size = len(await self.reader.readexactly(length))
        return status, size

    def close(self):
        if self.writer is not None:
            self.writer.close()


def browser_assets(base: str, page: str) -> list[str] | None:
    """Every request headless Chromium makes to us to show `page`, after the page itself (Debian's /usr/bin/chromium
    via Playwright), or None where there is no such browser."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not pathlib.Path("/usr/bin/chromium").exists():
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    urls: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        tab = browser.new_page(viewport={"width": 1920, "height": 1080})
        tab.on("request", lambda r: urls.append(r.url))
        tab.goto(base + page, wait_until="networkidle")
        tab.wait_for_timeout(2000)  # ES modules, fonts once KaTeX has rendered, requests the page script makes
        browser.close()
    return [url[len(base) :] for url in urls[1:] if url.startswith(base)]  # [0] is the page itself


def asset_list(base: str, page: str) -> list[str]:
    """Everything a browser with a cold cache fetches for `page`: the static URLs in the HTML, the ES modules they
    import (recursively, by relative path), and the fonts the CSS names."""
    found, queue = [], []
    with httpx.Client(base_url=base) as c:
        html = c.get(page).text
        for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            if url not in found:
                found.append(url)
                queue.append(url)
        while queue:
            url = queue.pop()
            path = url.split("?")[0]
            if not path.endswith((".js", ".css")):
                continue
            text = c.get(url).text
            refs = re.findall(r'(?:import|from)\s*["\'](\.{1,2}/[^"\']+)["\']', text) if path.endswith(".js") else []
            refs += re.findall(r"url\(([^)]+\.woff2)\)", text) if path.endswith(".css") else []
            for ref in refs:
                full = urllib.parse.urljoin(path, ref.strip("'\""))
                if full not in found:
                    found.append(full)
                    queue.append(full)
    return found


async def one_student(port: int, page: str, assets: list[str], connections: int) -> tuple:
    """One student's cold load: seconds, requests, bytes, failed asset requests, the page's status."""
    t0 = time.perf_counter()
    first = Conn(HOST, port)
    page_status, size = await first.get(page)
    errors = 0
    total, count = size, 1
    conns = [first] + [Conn(HOST, port) for _ in range(connections - 1)]
    queue = list(assets)

    async def worker(conn):
        nonlocal total, count, errors
        while queue:
            url = queue.pop()
            try:
                status, size = await conn.get(url)
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                continue
            total += size
            count += 1
            errors += status != 200

    await asyncio.gather(*(worker(c) for c in conns))
    for conn in conns:
        conn.close()
    return time.perf_counter() - t0, count, total, errors, page_status


def part_class(base: str, port: int, pid: int, clients: int) -> dict:
    page = step_url(token(SPIRAL), 0).replace("&phase=z1&sample=1", "")
    assets = browser_assets(base, page)
    source = "what headless Chromium fetched"
    if assets is None:
        assets, source = asset_list(base, page), "every asset named (no browser here: an upper bound)"

    async def run():
        return await asyncio.gather(*(one_student(port, page, assets, 6) for _ in range(clients)))

    cpu0, t0 = server_cpu(pid), time.perf_counter()
    results = asyncio.run(run())
    wall, cpu = time.perf_counter() - t0, server_cpu(pid) - cpu0
    times = sorted(r[0] for r in results)
    return {
        "clients": clients,
        "requests": sum(r[1] for r in results),
        "per_client": 1 + len(assets),
        "mb": sum(r[2] for r in results) / 1e6,
        "errors": sum(r[3] for r in results),
        "page_status": {status: sum(r[4] == status for r in results) for status in {r[4] for r in results}},
        "wall": wall,
        "cpu": cpu,
        "p50": times[len(times) // 2],
        "max": times[-1],
        "source": source,
        "assets": assets,
    }


# ---- part 3: the old load table ------------------------------------------------------------------------------------
async def hammer(base, path, make_body, clients, duration, seed) -> dict:
    latencies, errors, sent = [], 0, 0
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def loop():
            nonlocal sent, errors
            while time.perf_counter() < deadline:
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post(path, json=make_body(rng))
                    await r.aread()
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0] * 99
    return {"path": path, "n": sent, "errors": errors, "rps": len(latencies) / elapsed, "p50": q[49], "p99": q[98]}


# ---- main ----------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and 50 clients: a smoke run")
    parser.add_argument("--clients", type=int, default=200, help="students opening /step at once (default 200)")
    parser.add_argument("--load", type=float, default=0, help="seconds of the 50-client load table per endpoint")
    parser.add_argument("--no-cost", action="store_true", help="skip part 1 (the one-at-a-time costs)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 500:
        parser.error("--clients must be 1..500")
    clients = min(args.clients, 50) if args.quick else args.clients

    port = free_port()
    proc = start_server(port)
    base = f"http://{HOST}:{port}"
    try:
        rows, notes = ([], []) if args.no_cost else part_cost(base, proc.pid, args.quick)
        print(f"class load: {clients} clients opening /step...", file=sys.stderr)
        klass = part_class(base, port, proc.pid, clients)
        load = []
        if args.load:
            bodies = (
                ("/api/v1/step", lambda rng: {"spec": SPIRAL, "t": rng.randint(0, 200)}),
                ("/api/v1/train", lambda rng: {**SPIRAL, "steps": 500}),
            )
            for path, make in bodies:
                load.append(asyncio.run(hammer(base, path, make, 50, args.load, 0)))
    finally:
        stop_server(proc)

    print(
        f"\nuvicorn, 1 worker, {HOST}:{port}, OPENBLAS_NUM_THREADS=1, {os.cpu_count()} CPUs shared with the clients\n"
    )
    print("| request (sent one at a time) | n | server CPU ms | latency p50 ms | kB sent | kB raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [r["name"], r["n"], f"{r['cpu_ms']:.1f}", f"{r['p50_ms']:.1f}", f"{r['wire_kb']:.1f}"]
        print("| " + " | ".join(map(str, cells + [f"{r['raw_kb']:.1f}"])) + " |")
    print()
    for note in notes:
        print(f"- {note}")
    print(
        f"\nclass load: {klass['clients']} clients open /step at once, cold caches, {klass['per_client']} requests "
        f"each ({klass['requests']} in all, {klass['mb']:.1f} MB sent, {klass['errors']} failed asset requests; "
        f"the page answered " + ", ".join(f"{n}x {s}" for s, n in sorted(klass["page_status"].items())) + "): all in "
        f"{klass['wall']:.2f} s (p50 client {klass['p50']:.2f} s, slowest {klass['max']:.2f} s), "
        f"{klass['cpu']:.2f} s of server CPU ({1e3 * klass['cpu'] / klass['clients']:.1f} ms per student); "
        f"assets: {klass['source']}: " + ", ".join(a.split("?")[0].removeprefix("/static/") for a in klass["assets"])
    )
    if load:
        print("\n| 50 clients, load | requests | errors | req/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in load:
            cells = [
                r["path"],
                r["n"],
                r["errors"],
                f"{r['rps']:.1f}",
                f"{1e3 * r['p50']:.0f}",
                f"{1e3 * r['p99']:.0f}",
            ]
            print("| " + " | ".join(map(str, cells)) + " |")
    if klass["errors"] or set(klass["page_status"]) != {200} or any(r["errors"] for r in load):
        sys.exit(1)


if __name__ == "__main__":
    main()
