"""Fixtures for browser tests: pytest-playwright driving Debian's Chromium.

Playwright's own browser download does not work on these machines, so the
system binary is launched instead (see shared RECIPES.md, "Browser tests").

* No Chromium: every test under tests/browser is skipped with a reason, unless
  BACKPROP_VIZ_REQUIRE_BROWSER=1 (CI sets it), in which case they fail.
  BACKPROP_VIZ_CHROMIUM overrides the binary's path (default /usr/bin/chromium).
* ``live_server``: the real app under uvicorn on 127.0.0.1:<free port>, once
  per session. BACKPROP_VIZ_LIVE_APP overrides the import string
  (default ``app.main:app``).
* ``console_errors`` / ``offline_guard``: lists a test asserts are empty.
  ``offline_guard`` also aborts every non-loopback request, so a page that
  still points at a CDN fails visibly instead of hanging on a closed network.
* ``screenshot(page, name)``: saves screenshots/NAME.png at the repo root.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BROWSER_TESTS_DIR = Path(__file__).resolve().parent
SCREENSHOT_DIR = REPO_ROOT / "screenshots"

CHROMIUM = os.environ.get("BACKPROP_VIZ_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("BACKPROP_VIZ_REQUIRE_BROWSER", "") == "1"
LIVE_APP = os.environ.get("BACKPROP_VIZ_LIVE_APP", "app.main:app")

# Keep Chromium quiet on a closed network (and runnable as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SERVER_START_TIMEOUT_S = 30.0
LOOPBACK_NAMES = {"localhost"}
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}


def _chromium_missing_reason() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"Chromium not found at {CHROMIUM} (install Debian's `chromium` package, "
        "or set BACKPROP_VIZ_CHROMIUM to a Chromium binary)"
    )


# --------------------------------------------------------------------------
# Skip (or, in CI, fail) browser tests when there is no Chromium.
# --------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A conftest hook sees every collected item of the session, not just the
    # ones in its directory: touch only the tests under tests/browser.
    reason = _chromium_missing_reason()
    if reason is None:
        return
    mine = [it for it in items if BROWSER_TESTS_DIR in Path(str(it.path)).resolve().parents]
    if not mine:
        return
    if REQUIRE_BROWSER:
        marker = pytest.mark.usefixtures("_browser_required_but_missing")
    else:
        marker = pytest.mark.skip(reason=reason)
    for item in mine:
        item.add_marker(marker)


@pytest.fixture(scope="session")
def _browser_required_but_missing() -> None:
    pytest.fail(f"BACKPROP_VIZ_REQUIRE_BROWSER=1 but {_chromium_missing_reason()}", pytrace=False)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    reason = _chromium_missing_reason()
    if reason is not None:  # reached only if the collection hook was bypassed
        if REQUIRE_BROWSER:
            pytest.fail(f"BACKPROP_VIZ_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    headless = browser_type_launch_args.get("headless", True)
    args = (["--headless"] if headless else []) + CHROMIUM_ARGS
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": args}


# --------------------------------------------------------------------------
# The app, served for real.
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthz_ok(url: str) -> bool:
    # No proxy: an http_proxy in the environment must not see loopback traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no server log>"


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Start ``uvicorn app.main:app`` on 127.0.0.1:<free port>; yield its base URL."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", LIVE_APP, "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A file, not a pipe: nobody reads a pipe while tests run, and a full one blocks the server.
    log_fd, log_name = tempfile.mkstemp(prefix="backprop-viz-live-server-", suffix=".log")
    log_path = Path(log_name)
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=log_fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    os.close(log_fd)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"live server exited with code {proc.returncode} before answering "
                    f"{base_url}/healthz\n$ {' '.join(cmd)}\n{_tail(log_path)}",
                    pytrace=False,
                )
            if _healthz_ok(f"{base_url}/healthz"):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"live server did not answer 200 on {base_url}/healthz within "
                    f"{SERVER_START_TIMEOUT_S:.0f} s\n$ {' '.join(cmd)}\n{_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.1)
        yield base_url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Page watchers.
# --------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """True for URLs that never leave the machine.

    Non-network schemes (data:, blob:, about:, chrome-error: ...) have no host
    and make no request on the wire, so they count as local.
    """
    parts = urlsplit(url)
    if parts.scheme not in NETWORK_SCHEMES:
        return True
    host = (parts.hostname or "").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def console_errors(page) -> Iterator[list[str]]:
    """Console messages of type "error" and uncaught page errors, as strings."""
    errors: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc.get("url") else ""
            errors.append(f"console.error: {msg.text}{where}")

    def on_pageerror(exc) -> None:
        errors.append(f"pageerror: {exc}")

    page.on("console", on_console)
    page.on("pageerror", on_pageerror)
    yield errors
    page.remove_listener("console", on_console)
    page.remove_listener("pageerror", on_pageerror)


@pytest.fixture
def offline_guard(page) -> Iterator[list[str]]:
    """Record, and abort, every request (incl. WebSockets) that is not to loopback.

    Routes are set on the page's context, so popups opened by the page are
    covered too. Yields the list of offending URLs; assert it is empty.
    """
    external: list[str] = []
    context = page.context

    def on_request(request) -> None:
        if not is_loopback_url(request.url):
            external.append(request.url)

    def on_websocket(ws) -> None:
        if not is_loopback_url(ws.url):
            external.append(ws.url)

    def route_handler(route) -> None:
        if is_loopback_url(route.request.url):
            route.fallback()
        else:
            route.abort("internetdisconnected")

    context.on("request", on_request)
    page.on("websocket", on_websocket)
    context.route("**/*", route_handler)
    yield external
    page.remove_listener("websocket", on_websocket)
    context.remove_listener("request", on_request)


# --------------------------------------------------------------------------
# Screenshots.
# --------------------------------------------------------------------------


def save_screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot as screenshots/NAME.png at the repo root (gitignored)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.removesuffix(".png")).strip("._") or "screenshot"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{stem}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, name)`` -> Path of screenshots/NAME.png."""
    return save_screenshot
