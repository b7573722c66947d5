"""The browser half of benchmarks/race.py: a real server (uvicorn, one BLAS thread) and Debian's Chromium.

Start to drawn: the page is opened on the race's link (so its form holds the same race), then Start is pressed and
the time runs until the new race block says it is drawn (data-ready, set after every chart is drawn). The API time
is POST /api/v1/race of the same spec and steps from the same machine. Playback: the page's own player at 1x for
a few seconds (redraws it made per second of wall time), the script time of one forward frame, and scrubs.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BACKPROP_VIZ_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/v1/datasets", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the server did not start")


def api_time(url: str, spec, steps: int, repeats: int) -> float:
    body = json.dumps({**spec.to_dict(), "steps": steps}).encode()
    best = float("inf")
    for _ in range(repeats):
        request = urllib.request.Request(url + "/api/v1/race", body, {"Content-Type": "application/json"})
        started = time.perf_counter()
        urllib.request.urlopen(request, timeout=120).read()
        best = min(best, time.perf_counter() - started)
    return best


WAIT_READY = "() => document.getElementById('race-block')?.dataset.ready === '1'"


def poll(page, expression: str, timeout: float = 120.0, every_ms: int = 5) -> None:
    """Wait for a JS predicate (page.wait_for_function evaluates strings with eval, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        page.wait_for_timeout(every_ms)


def run(spec, steps: int, repeats: int = 3) -> None:
    if not os.path.exists(CHROMIUM):
        print(f"browser part skipped: no Chromium at {CHROMIUM}")
        return
    from playwright.sync_api import sync_playwright

    proc, url = start_server()
    try:
        link = f"{url}/race?spec={spec.to_token()}&steps={steps}"
        api = api_time(url, spec, steps, repeats)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(link)
            poll(page, WAIT_READY)
            drawn, timeline = float("inf"), {}
            for _ in range(repeats):
                page.evaluate("document.getElementById('race-block').dataset.ready = ''")
                started = time.perf_counter()
                page.click("[data-testid=race-start]")
                poll(page, WAIT_READY)
                page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
                took = time.perf_counter() - started
                if took < drawn:
                    drawn, timeline = took, page.evaluate("window.bpvRace.timeline()")
            playback = page.evaluate(PLAYBACK)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    K = len(spec.optimizers)
    print(f"page, {K} contestants x {steps} steps, best of {repeats}")
    print(f"  POST /api/v1/race       {api * 1e3:8.1f} ms")
    print(f"  Start to fully drawn    {drawn * 1e3:8.1f} ms   ratio {drawn / api:.2f}x the API time (target <= 1.5x)")
    if "start" in timeline:
        t0 = timeline["start"]
        stages = " | ".join(f"{k} {v - t0:.0f}" for k, v in sorted(timeline.items(), key=lambda kv: kv[1]))
        print(f"  stages (ms after Start): {stages}")
    print(f"  playback at 1x          {playback['fps']:8.1f} redraws/s over {playback['seconds']:.1f} s (target 30)")
    print(
        f"  one forward frame       {playback['frame_ms']:8.2f} ms of script "
        f"(capacity {1000 / max(playback['frame_ms'], 1e-3):.0f} frames/s before painting)"
    )
    print(
        f"  scrub back to painted   {statistics.median(playback['scrub_ms']):8.1f} ms median, "
        f"{max(playback['scrub_ms']):.1f} ms worst of {len(playback['scrub_ms'])} (target < 50 ms)"
    )


PLAYBACK = """async () => {
  const R = window.bpvRace, n = R.frames();
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  R.setFrame(0); await frame();
  let t = performance.now();
  for (let i = 1; i < n; i++) R.setFrame(i);
  const frame_ms = (performance.now() - t) / (n - 1);
  const scrub_ms = [];
  for (const i of [0.8, 0.1, 0.6, 0.05, 0.9, 0.3, 0.7, 0.2]) {
    R.setFrame(n - 1); await frame();
    t = performance.now(); R.setFrame(Math.round(i * (n - 1))); await frame();
    scrub_ms.push(performance.now() - t);
  }
  R.setFrame(0); await frame();
  const r0 = R.redraws(); t = performance.now();
  R.play();
  await new Promise((r) => setTimeout(r, 4000));
  R.pause();
  const seconds = (performance.now() - t) / 1000;
  return { frame_ms, scrub_ms, fps: (R.redraws() - r0) / seconds, seconds };
}"""
