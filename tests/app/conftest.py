"""Fixtures for the JSON API tests.

* ``client``: an ``httpx.AsyncClient`` on the ASGI app (no network), for tests marked ``anyio``.
  App exceptions are not re-raised: a crash shows up as the 500 a real client would get.
* ``start_server``: ``start_server()`` starts a real uvicorn process on 127.0.0.1 (a free port, one BLAS
  thread) and returns its base URL; ``start_server.stop(url)`` ends it; all are stopped after the session.
* ``strict_json``: ``json.loads`` that refuses NaN/Infinity tokens (what a strict JSON parser does).
* ``preset``: a fresh copy of one of the engine's preset specs by id.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from engine.presets import PRESETS_BY_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 90.0  # importing the app takes seconds; more on a busy 2-core box


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def client(anyio_backend):
    from app.main import app

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield c


def _refuse_constant(token: str):
    raise ValueError(f"non-standard JSON constant {token!r} in a response")


def parse_strict(text: str | bytes):
    return json.loads(text, parse_constant=_refuse_constant)


@pytest.fixture(scope="session")
def strict_json():
    return parse_strict


@pytest.fixture
def preset():
    def get(preset_id: str) -> dict:
        return copy.deepcopy(PRESETS_BY_ID[preset_id]["spec"])

    return get


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer /healthz within {SERVER_START_TIMEOUT_S}s:\n{log_path.read_text()}")


class ServerPool:
    """start() -> "http://127.0.0.1:PORT": a fresh uvicorn process serving app.main:app; stop(url) ends it."""

    def __init__(self, logdir: Path):
        self.logdir, self.procs = logdir, {}

    def __call__(self, *extra_args: str) -> str:
        return self.start_many(1, *extra_args)[0]

    def start_many(self, n: int, *extra_args: str) -> list[str]:
        """n servers started side by side (their imports overlap), each answering /healthz."""
        started = [self._spawn(*extra_args) for _ in range(n)]
        for base_url, log_path in started:
            _wait_healthy(self.procs[base_url][0], base_url, log_path)
        return [base_url for base_url, _ in started]

    def _spawn(self, *extra_args: str) -> tuple[str, Path]:
        port = free_port()
        while f"http://127.0.0.1:{port}" in self.procs:
            port = free_port()
        log_path = self.logdir / f"uvicorn-{port}.log"
        log = open(log_path, "wb")  # noqa: SIM115 -- kept open for the server process's lifetime
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        proc = subprocess.Popen(
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
                *extra_args,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        self.procs[base_url] = (proc, log)
        return base_url, log_path

    def log(self, base_url: str) -> str:
        return (self.logdir / f"uvicorn-{base_url.rsplit(':', 1)[1]}.log").read_text(errors="replace")

    def stop(self, base_url: str) -> None:
        proc, log = self.procs.pop(base_url)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    def stop_all(self) -> None:
        for url in list(self.procs):
            self.stop(url)


@pytest.fixture(scope="session")
def start_server():
    """Real uvicorn processes on loopback, all stopped at the end of the session."""
    with tempfile.TemporaryDirectory(prefix="backprop-viz-uvicorn-") as logdir:
        pool = ServerPool(Path(logdir))
        try:
            yield pool
        finally:
            pool.stop_all()
