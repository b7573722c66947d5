"""/docs (Swagger UI) and /redoc (ReDoc) render in Chromium from vendored files, with no request leaving 127.0.0.1,
and keep working under the Content-Security-Policy each needs (what issue 15's policy must allow for them)."""

import ipaddress
import json
import urllib.request
from urllib.parse import urlsplit

import pytest

# The strictest policies these pages work under (checked below). /docs needs nothing inline: Swagger UI starts from
# static/js/swagger-init.js. ReDoc styles itself with <style> elements it writes (styled-components) and runs its
# search in a Worker made from a blob: URL; FastAPI's ReDoc page also has one inline <style>.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
REDOC_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def is_loopback(url: str) -> bool:
    """True for requests that stay on this machine (blob:/data: URLs make no request at all)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    host = parts.hostname or ""
    return host == "localhost" or (host.replace(".", "").isdigit() and ipaddress.ip_address(host).is_loopback)


def api_operations(base_url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base_url}/openapi.json", timeout=30) as resp:
        paths = json.load(resp)["paths"]
    return sum(len(methods) for methods in paths.values())


def open_docs(page, base_url: str) -> None:
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)


def test_docs_renders_offline_and_tries_a_request(page, live_server, console_errors, offline_guard):
    open_docs(page, live_server)
    assert page.locator(".opblock").count() == api_operations(live_server)
    assert "backprop-viz" in page.locator(".info .title").inner_text()
    # Try GET /api/v1/datasets from the page: Swagger UI calls this server and shows its answer.
    block = page.locator(".opblock-get", has=page.locator("[data-path='/api/v1/datasets']"))
    block.locator(".opblock-summary-control").click()
    block.locator(".try-out__btn").click()
    block.locator(".execute").click()
    status = block.locator(".live-responses-table tr.response td.response-col_status").first
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip().startswith("200")
    assert '"xor"' in block.locator(".live-responses-table .microlight").first.inner_text()
    assert offline_guard == []
    assert console_errors == []


def test_redoc_renders_offline(page, live_server, console_errors, offline_guard):
    page.goto(f"{live_server}/redoc")
    heading = page.get_by_role("heading", name="One forward and backward pass at theta_0")
    heading.wait_for(timeout=30_000)
    assert page.locator("h1").first.inner_text().startswith("backprop-viz")
    page.wait_for_timeout(500)  # the search worker starts after the first render
    assert offline_guard == []
    assert console_errors == []


@pytest.mark.parametrize(
    "path, policy, ready",
    [("/docs", DOCS_POLICY, ".opblock"), ("/redoc", REDOC_POLICY, "h2")],
    ids=["docs", "redoc"],
)
def test_docs_pages_work_under_their_content_security_policy(page, live_server, console_errors, path, policy, ready):
    def with_policy(route):
        if not is_loopback(route.request.url):
            route.abort("internetdisconnected")
            return
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": policy})

    page.route("**/*", with_policy)
    page.goto(f"{live_server}{path}")
    page.wait_for_selector(ready, timeout=30_000)
    page.wait_for_timeout(500)
    assert page.locator(ready).count() > 5
    assert console_errors == []  # a CSP violation is reported as a console error
