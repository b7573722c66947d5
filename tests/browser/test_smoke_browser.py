"""Smoke tests: Chromium launches and the page watchers work. No server needed."""

from __future__ import annotations

from urllib.parse import quote


def data_url(html: str) -> str:
    return "data:text/html," + quote(html)


def test_chromium_renders_a_page(page, console_errors, offline_guard):
    page.goto(data_url("<!doctype html><title>smoke</title><h1>Backprop smoke</h1>"))
    assert page.locator("h1").inner_text() == "Backprop smoke"
    assert console_errors == []
    assert offline_guard == []


def test_console_errors_catches_errors(page, console_errors):
    page.goto(data_url("<!doctype html><h1>x</h1><script>console.error('boom'); throw new Error('kaput');</script>"))
    for _ in range(50):  # events arrive asynchronously; waiting pumps them
        if len(console_errors) >= 2:
            break
        page.wait_for_timeout(20)
    assert any("boom" in e for e in console_errors), console_errors
    assert any("kaput" in e for e in console_errors), console_errors


def test_offline_guard_blocks_external_requests(page, offline_guard):
    # .invalid never resolves; the route aborts the request before any lookup anyway.
    page.goto(data_url('<!doctype html><img src="http://cdn.example.invalid/x.png"><h1>y</h1>'))
    page.wait_for_load_state("load")
    assert offline_guard == ["http://cdn.example.invalid/x.png"]
