"""Key press -> next phase rendered on /step (the notes' worked example), in headless Chromium.

Starts the app under uvicorn on 127.0.0.1 (one BLAS thread), opens /step?present=1 at 1024x768 and presses
ArrowRight through every phase of several steps. Measured in the page: from the keydown to the first animation
frame after htmx swapped in the next phase and KaTeX typeset it (charts are drawn after that frame, below the
fold). Also printed: the same press as Playwright sees it (includes its polling). Two runs in the same process:

* as shipped: step.js prefetches the next phase into the browser's HTTP cache (the stage is cacheable);
* cache off (CDP Network.setCacheDisabled): every press waits for the server.

Prints the median, p90 and max of each and their ratio. Nothing is asserted (speed is measured, not asserted).

    .venv/bin/python benchmarks/step_keys.py [--presses 40] [--port 8111]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BACKPROP_VIZ_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHASES = ["z1", "a1", "z2", "a2", "loss", "delta2", "delta1", "grad2", "grad1", "update"]


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


# In the page: the time of each key press, and of the first frame after the swap that brought the next phase
# (app.js typesets KaTeX in its htmx:afterSwap handler, registered before this one).
PROBE = """() => {
  window.__keys = []; window.__frames = [];
  document.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
  document.body.addEventListener('htmx:afterSwap',
    () => requestAnimationFrame(() => window.__frames.push(performance.now())));
}"""


def run(page, base: str, presses: int) -> tuple[list[float], list[float]]:
    """(in-page ms from keydown to the first frame with the next phase, ms as Playwright sees it) per press."""
    page.goto(f"{base}/step?present=1")
    page.wait_for_selector("[data-testid=math] .katex")
    page.evaluate(PROBE)
    page.wait_for_timeout(500)
    seen = []
    for i in range(presses):
        nxt = PHASES[(i + 1) % len(PHASES)]
        page.wait_for_timeout(250)  # a teacher's pace is seconds; this leaves the prefetch a moment
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f'[data-testid=phase][data-phase="{nxt}"]', timeout=20_000)
        seen.append((time.perf_counter() - t0) * 1000)
    page.wait_for_timeout(300)
    keys, frames = page.evaluate("() => [window.__keys, window.__frames]")
    return [f - k for k, f in zip(keys, frames)], seen


def summary(name: str, ms: list[float]) -> float:
    ms = sorted(ms)
    med = statistics.median(ms)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(f"{name:<28} median {med:6.1f} ms   p90 {p90:6.1f} ms   max {ms[-1]:6.1f} ms   ({len(ms)} presses)")
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presses", type=int, default=40)
    ap.add_argument("--port", type=int, default=8111)
    args = ap.parse_args()
    proc = start_server(args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            run(page, base, len(PHASES))  # warm the server's caches (step records, the loss curve)
            shipped, shipped_seen = run(page, base, args.presses)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            cold, cold_seen = run(page, base, args.presses)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    load = os.getloadavg()[0]
    print(
        f"key press -> next phase painted (title + KaTeX), /step?present=1, notes' example, 1024x768; load {load:.1f}"
    )
    a = summary("as shipped (prefetched)", shipped)
    b = summary("browser cache off", cold)
    print(f"prefetch speed-up (median): {b / a:.2f}x")
    summary("  as Playwright sees it", shipped_seen)
    summary("  cache off, Playwright", cold_seen)


if __name__ == "__main__":
    main()
