"""Issue 15: security headers on every response, HEAD on GET routes, request ids, no server banner, access logs
that show spec ids rather than whole tokens, structured JSON logs, graceful shutdown."""

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.middleware import CSP, SanitizeAccessLog, loggable_path, spec_id_of_token
from app.settings import get_settings
from engine.presets import PRESETS_BY_ID
from engine.spec import experiment_from_dict

API = "/api/v1"
REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = experiment_from_dict(PRESETS_BY_ID["spiral-2-8-8-1"]["spec"]).to_token()
SPEC_ID = experiment_from_dict(PRESETS_BY_ID["spiral-2-8-8-1"]["spec"]).id
PAGES = ["/", "/notes", "/step", "/race", "/playground"]
SMALL_TRAIN = {
    "network": {"layers": [2, 3, 1]},
    "data": {"dataset": "xor"},
    "optimizer": {"name": "sgd", "lr": 0.5},
    "steps": 2,
}
EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


def assert_secure(r: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers.get(name))
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"].startswith("'self'") and "unsafe-inline" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["default-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", r.headers["x-request-id"])
    assert "server" not in r.headers or "uvicorn" not in r.headers["server"].lower()


pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", [*PAGES, "/openapi.json", "/docs", "/redoc", "/healthz", "/readyz", "/favicon.ico"])
async def test_security_headers_on_pages_and_probes(client, path):
    r = await client.get(path)
    assert r.status_code < 400, (path, r.status_code)
    assert_secure(r)


async def test_security_headers_on_api_answers_errors_and_static_files(client):
    answers = [
        await client.post(f"{API}/train", json=SMALL_TRAIN),
        await client.post(f"{API}/train", json={**SMALL_TRAIN, "steps": -1}),  # 422
        await client.get("/no/such/page"),  # 404
        await client.post(f"{API}/step", content=b"x" * 2_000_000, headers={"content-type": "application/json"}),
        await client.get("/static/css/app.css"),
    ]
    assert [r.status_code for r in answers][:4] == [200, 422, 404, 413]
    for r in answers:
        assert_secure(r)


async def test_the_pages_policy_is_the_one_the_brief_sets(client):
    r = await client.get("/")
    assert r.headers["content-security-policy"] == CSP
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ):
        assert directive in CSP


async def test_docs_pages_get_exactly_their_inline_scripts_by_hash(client):
    for path in ("/docs", "/redoc"):
        r = await client.get(path, headers={"accept-encoding": "gzip"})
        csp = r.headers["content-security-policy"]
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
        assert "worker-src 'self' blob:" in csp  # ReDoc's search worker
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", r.text, re.S)
        assert len(re.findall(r"'sha256-", csp)) == len(inline)


@pytest.mark.parametrize("path", PAGES)
async def test_pages_carry_no_inline_code_the_policy_would_block(client, path):
    """No inline <script> code (JSON data blocks are fine), no on*= handlers, no javascript: URLs."""
    html = (await client.get(path)).text
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S | re.I):
        if "src=" in attrs:
            assert not body.strip(), (path, attrs)
        else:
            assert re.search(r'type="application/(ld\+)?json"', attrs), (path, attrs, body[:120])
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html, re.I), path
    assert "javascript:" not in html.lower() and "hx-on" not in html


@pytest.mark.parametrize("path", ["/", "/notes", "/openapi.json", "/healthz", "/favicon.ico", "/static/css/app.css"])
async def test_head_answers_like_get_without_a_body(client, path):
    get = await client.get(path, headers={"accept-encoding": "identity"})
    head = await client.head(path, headers={"accept-encoding": "identity"})
    assert head.status_code == get.status_code == 200, (path, head.status_code)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if "content-length" in get.headers:
        assert head.headers["content-length"] == get.headers["content-length"]
    assert_secure(head)


async def test_head_on_a_post_route_is_405_not_computed(client):
    r = await client.head(f"{API}/train")
    assert r.status_code == 405


async def test_request_ids_are_echoed_when_plain_and_made_up_otherwise(client):
    r = await client.get("/healthz", headers={"x-request-id": "lecture-7.q3"})
    assert r.headers["x-request-id"] == "lecture-7.q3"
    r = await client.get("/healthz", headers={"x-request-id": "<script>alert(1)</script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_readyz_reports_the_slots_and_the_cache_size(client, strict_json):
    body = strict_json((await client.get("/readyz")).text)
    assert body["ready"] is True and body["max_concurrent"] == get_settings().max_concurrent
    cache = body["checkpoint_cache"]
    assert cache["bytes"] <= cache["max_bytes"] == get_settings().checkpoint_cache_bytes


async def test_a_long_query_string_is_414(client, strict_json):
    r = await client.get("/step", params={"spec": "A" * (get_settings().max_query_chars + 1)})
    assert r.status_code == 414
    assert strict_json(r.text)["detail"][0]["msg"].startswith("query: longer than")


# ---- logs -------------------------------------------------------------------------------------------------------
def test_log_paths_show_spec_ids_not_tokens():
    path, spec_id = loggable_path("/step", f"spec={TOKEN}&t=3&phase=loss")
    assert spec_id == SPEC_ID == spec_id_of_token(TOKEN)
    assert TOKEN not in path and SPEC_ID in path and "t=3" in path and "phase=loss" in path
    assert spec_id_of_token("not-a-token") == "invalid"
    path, _ = loggable_path("/race", "c=" + "x" * 500)
    assert "x" * 65 not in path and "500 chars" in path


def test_uvicorns_access_log_is_sanitized():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/step?spec={TOKEN}&t=2", "1.1", 200),
        None,
    )
    assert SanitizeAccessLog().filter(record)
    line = record.getMessage()
    assert TOKEN not in line and SPEC_ID in line and line.endswith("200")


async def test_json_logs_carry_id_route_status_duration_work_and_spec_id(client, caplog, monkeypatch):
    monkeypatch.setattr(get_settings(), "json_logs", True)
    caplog.set_level(logging.INFO, logger="backprop_viz.access")
    r = await client.post(f"{API}/step", json={"spec_token": TOKEN, "t": 1}, headers={"x-request-id": "abc-1"})
    assert r.status_code == 200
    await client.get("/step", params={"spec": TOKEN, "t": 1})
    entries = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "backprop_viz.access"]
    api_entry = next(e for e in entries if e["request_id"] == "abc-1")
    assert api_entry["route"] == "/api/v1/step" and api_entry["status"] == 200 and api_entry["method"] == "POST"
    assert api_entry["duration_ms"] > 0 and api_entry["work_units"] > 0
    page_entry = next(e for e in entries if e["path"].startswith("/step?"))
    assert page_entry["spec_id"] == SPEC_ID
    assert all(TOKEN not in rec.getMessage() for rec in caplog.records)


# ---- the real server: no banner, tokens out of the log, graceful shutdown ---------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_server_has_no_banner_and_logs_no_tokens():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.2)
        assert "server" not in r.headers
        page = httpx.get(f"{url}/step", params={"spec": TOKEN}, timeout=30)
        assert page.status_code == 200 and "server" not in page.headers
        assert httpx.head(f"{url}/", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)  # graceful shutdown, bounded by shutdown_timeout
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    log = out.decode(errors="replace")
    assert "GET /step?" in log, log[-2000:]  # the access log line is there ...
    assert TOKEN not in log and SPEC_ID in log  # ... with the spec id, not the token
    assert proc.returncode is not None
