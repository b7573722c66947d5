"""The /playground's training frame rate: updates per second of "play" on the default network and on 8x8 hidden units.

    python benchmarks/playground.py              # server side, then Chromium if /usr/bin/chromium exists
    python benchmarks/playground.py --quick      # fewer updates, no browser: a smoke run for CI
    python benchmarks/playground.py --no-browser

One update = POST /api/v1/activations-grid for t + 10 steps from t (the page's default "steps per update"), with the
output grid (50x50), every hidden unit's grid (20x20), the hidden-layer view (layer 1) and the history of the chunk,
resumed from the worker's checkpoint cache as the page does. Printed, not asserted:

1. server: the handler alone (parse, 10 training steps, the grids, the JSON), best of several interleaved blocks;
   updates/s if the page drew in no time;
2. HTTP: the same requests, one after the other, to a real uvicorn on 127.0.0.1 (one worker);
3. browser: the page itself in headless Chromium playing for a few seconds (its own counter, bpvPlayground.stats()):
   the frame rate a user sees, with its draw time and its wait for the server per update.

The issue's target is 30 updates/s on the default network. One BLAS thread; the machine may be shared (see the
figures' spread): read ratios measured in the same run, not the absolute numbers.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS; an explicit setting wins

import argparse
import json
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.routes.playground_page import GridRequest, activations_grid  # noqa: E402
from app.views import playground as pv  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

CHUNK = 10
CASES = {
    "default 2-4-2-1 circles": {},
    "8x8 hidden (2-8x8-1) circles": {"hidden": [8] * 8, "acts": ["tanh"] * 8},
}
TARGET = 30.0


def token_of(settings: dict) -> str:
    return experiment_from_dict(pv.spec_dict(pv.sanitize(settings))).to_token()


def body(token: str, t: int) -> dict:
    return {
        "spec_token": token,
        "t": t + CHUNK,
        "since": t,
        "encoding": "packed",
        "resolution": 50,
        "neuron_resolution": 20,
        "hidden_layer": 1,
    }


def server_rate(settings: dict, updates: int, blocks: int) -> float:
    """Best updates/s of the handler over `blocks` blocks of `updates` consecutive updates, each block a run no
    cache has seen (another seed of the same experiment), resumed from the cache update after update as in play."""
    best = 0.0
    for block in range(blocks):
        token = token_of({**settings, "seed": 1000 + block})
        t, started = 0, time.perf_counter()
        for _ in range(updates):
            activations_grid(GridRequest(**body(token, t)))
            t += CHUNK
        best = max(best, updates / (time.perf_counter() - started))
    return best


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_rate(base: str, token: str, updates: int) -> float:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    t, started = 0, time.perf_counter()
    for _ in range(updates):
        req = urllib.request.Request(
            base + "/api/v1/activations-grid",
            data=json.dumps(body(token, t)).encode(),
            headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"},
        )
        opener.open(req).read()
        t += CHUNK
    return updates / (time.perf_counter() - started)


def browser_stats(base: str, token: str, seconds: float) -> dict | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not pathlib.Path("/usr/bin/chromium").exists():
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/playground?spec={token}")
        page.wait_for_function("() => window.bpvPlayground && bpvPlayground.run.last", timeout=60_000)
        page.click("[data-testid=play]")
        page.wait_for_timeout(int(seconds * 1000))
        page.click("[data-testid=play]")
        stats = page.evaluate("() => bpvPlayground.stats()")
        browser.close()
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few updates, no browser")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args(argv)
    updates, blocks = (10, 1) if args.quick else (args.updates, args.blocks)
    tokens = {name: token_of(settings) for name, settings in CASES.items()}

    print(f"playground: updates/s of play ({CHUNK} steps per update; target {TARGET:g} on the default network)")
    rates = {name: server_rate(settings, updates, blocks) for name, settings in CASES.items()}
    for name, rate in rates.items():
        print(f"  server handler  {name:32s} {rate:7.1f} updates/s  ({rate / TARGET:.2f}x the target)")

    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.build_opener(urllib.request.ProxyHandler({})).open(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        for name, tok in tokens.items():
            rate = http_rate(base, tok, updates)
            print(f"  HTTP, 1 worker  {name:32s} {rate:7.1f} updates/s  ({rate / rates[name]:.2f}x the handler alone)")
        if not (args.quick or args.no_browser):
            for name, tok in tokens.items():
                stats = browser_stats(base, tok, 5.0)
                if stats is None:
                    print("  browser: skipped (no playwright or no /usr/bin/chromium)")
                    break
                print(
                    f"  Chromium page   {name:32s} {stats['perSecond']:7.1f} updates/s  "
                    f"(draw {stats['drawMs']:.0f} ms + server wait {stats['waitMs']:.0f} ms per update)"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
