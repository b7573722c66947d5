"""The Dockerfile: its shape always (slim base, non-root, health check, serve on 0.0.0.0 with N workers, a build
context holding what the wheel needs), and a real build and run where a Docker engine answers."""

import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = [
    line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
]
# What `pip wheel .` reads: the packages and the data dirs pyproject maps into the wheel, the readme, the licence.
WHEEL_INPUTS = ["pyproject.toml", "README.md", "LICENSE", "app", "engine", "templates", "static"]


def instructions(name: str) -> list[str]:
    """The arguments of every NAME instruction (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.M)]


def test_dockerfile_shape():
    bases = instructions("FROM")
    assert bases and all(re.match(r"python:3\.1[1-9]-slim\b", base) for base in bases), bases
    users = instructions("USER")
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    (health,) = instructions("HEALTHCHECK")
    assert "/healthz" in health
    (cmd,) = instructions("CMD")
    assert "exec backprop-viz serve --host 0.0.0.0" in cmd and "--workers" in cmd
    assert "OPENBLAS_NUM_THREADS=1" in DOCKERFILE  # one BLAS thread per worker process


def test_build_context_holds_what_the_wheel_needs():
    copied = " ".join(instructions("COPY"))
    for path in WHEEL_INPUTS:
        assert path in copied, f"the Dockerfile does not COPY {path}"
        for pattern in DOCKERIGNORE:
            assert not Path(path).match(pattern.rstrip("/")), f".dockerignore {pattern!r} excludes {path}"
    assert ".venv" in DOCKERIGNORE and ".git" in DOCKERIGNORE


def docker_engine_missing() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client"
    try:
        done = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer"
    if done.returncode != 0 or not done.stdout.strip():
        return f"no Docker engine answers: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_builds_and_serves():
    reason = docker_engine_missing()
    if reason:
        pytest.skip(f"cannot build the image here: {reason}")
    tag = f"backprop-viz-test:{uuid.uuid4().hex[:8]}"
    name = f"backprop-viz-test-{uuid.uuid4().hex[:8]}"
    build = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    port = free_port()
    try:
        run = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", "-e", "WORKERS=1", tag]
        started = subprocess.run(run, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        user = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True, timeout=60)
        assert user.stdout.strip() not in ("", "0")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(120):
            try:
                with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        with opener.open(f"http://127.0.0.1:{port}/docs", timeout=30) as resp:
            assert resp.status == 200 and b"swagger-ui-bundle.js" in resp.read()
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
