"""The /step page in Chromium: the notes' worked example phase by phase, by keyboard, with the numbers note 002
prints read from the page; going back; presentation mode at 1024x768; reload; editing a weight; the panel;
exports; and the redraw time on the spiral network (printed, not asserted).

Screenshots of every phase, normal and presentation mode, go to screenshots/step-*.png.
"""

from __future__ import annotations

import json
import re
import statistics

NOTES_PHASES = ["z1", "a1", "z2", "a2", "loss", "delta2", "delta1", "grad2", "grad1", "update"]
SETTLE_MS = 700  # Plotly's bar transition is 300 ms; the node ring pulse 600 ms


def num(page, testid: str) -> str:
    """The text of a number on the page, with the typographic minus turned into '-'."""
    return page.get_by_test_id(testid).inner_text().strip().replace("\u2212", "-")


def wait_rendered(page, t: int, phase: str, shown: int = 1) -> None:
    page.wait_for_selector(f'#step-root[data-rendered="{t}:{phase}:{shown}"][data-state=ready]', timeout=20_000)


def open_step(page, base: str, query: str = "", size=(1440, 900)) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{base}/step{query}")
    page.wait_for_selector("#step-root[data-state=ready]", timeout=30_000)
    page.wait_for_selector("#step-root[data-loss=ready]", timeout=30_000)


def main_html(page) -> str:
    """The stage's markup after animations settle, with Plotly's per-plot random ids (defs-1a2b3c, clip1a2b3cxy,
    modebar-1a2b3c: new on every full redraw, never visible) replaced by their order of appearance."""
    page.wait_for_timeout(SETTLE_MS)
    html = page.evaluate("document.querySelector('.stage').innerHTML")
    for n, uid in enumerate(dict.fromkeys(re.findall(r'id="defs-([0-9a-f]+)"', html))):
        html = html.replace(uid, f"plot{n}")
    return html


def stage_png(page) -> bytes:
    page.mouse.move(0, 0)
    # caret "hide" would leave style="" on the inputs; finite CSS animations (the ring pulse) are fast-forwarded.
    return page.locator(".stage").screenshot(caret="initial", animations="disabled")


def test_notes_worked_example_by_keyboard(live_server, page, console_errors, offline_guard, screenshot):
    open_step(page, live_server)
    wait_rendered(page, 0, "z1")
    seen = {}
    for i, phase in enumerate(NOTES_PHASES):
        if i:
            page.keyboard.press("ArrowRight" if i % 2 else " ")
            wait_rendered(page, 0, phase)
        assert page.get_by_test_id("phase").get_attribute("data-phase") == phase
        seen[phase] = page.get_by_test_id("phase").inner_text()
        page.wait_for_timeout(SETTLE_MS)
        screenshot(page, f"step-normal-{i:02d}-{phase}")
        if phase == "z1":
            assert [num(page, "num-z-1-1"), num(page, "num-z-1-2")] == ["0.100", "0.300"]
        if phase == "a1":
            assert [num(page, "num-a-1-1"), num(page, "num-a-1-2")] == ["0.525", "0.574"]
        if phase == "a2":
            # Note 002 prints a_o = 0.549 (truncated); the page shows the exact value and points the slip out.
            assert num(page, "num-a-2-1") == "0.550"
            assert "0.5498" in page.get_by_test_id("notes-check").inner_text()
        if phase == "loss":
            assert num(page, "num-loss") == "0.101"
            assert "0.1013" in page.get_by_test_id("notes-check").inner_text()
        if phase == "delta2":
            assert num(page, "num-delta-2-1") == "-0.111"
            checks = page.get_by_test_id("notes-check").inner_text()
            assert "0.247" in checks and "0.2475" in checks  # sigma'(0.2): printed vs exact
            math = page.get_by_test_id("math").inner_text().replace("\u2212", "-")
            assert "0.550" in math and "1.000" in math and "0.248" in math and "-0.111" in math
        if phase == "delta1":
            assert [num(page, "num-delta-1-1"), num(page, "num-delta-1-2")] == ["-0.011", "-0.016"]
            checks = page.get_by_test_id("notes-check").inner_text()
            assert "0.2494" in checks and "0.2445" in checks  # sigma'(0.1), sigma'(0.3): the README's slip
        if phase == "grad2":
            assert [num(page, "num-dW-2-1-1"), num(page, "num-dW-2-1-2")] == ["-0.058", "-0.064"]
            assert num(page, "num-db-2-1") == "-0.111"
        if phase == "grad1":
            assert [[num(page, f"num-dW-1-{j}-{k}") for k in (1, 2)] for j in (1, 2)] == [
                ["-0.006", "-0.009"],
                ["-0.008", "-0.013"],
            ]
        if phase == "update":
            assert num(page, "num-after-W-2-1-1") == "0.429"  # 0.4 - 0.5 x (-0.0585)
    assert "δ" in seen["delta2"] and "Loss" in seen["loss"]
    # The next step's forward pass follows the update.
    page.keyboard.press("ArrowRight")
    wait_rendered(page, 1, "z1")
    assert page.get_by_test_id("t").inner_text() == "1"
    page.keyboard.press("Home")
    wait_rendered(page, 0, "z1")
    assert console_errors == []
    assert offline_guard == []


def test_going_back_shows_the_same_screen(live_server, page, console_errors, offline_guard):
    open_step(page, live_server)
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    wait_rendered(page, 0, "delta1")
    before, before_png = main_html(page), stage_png(page)
    page.keyboard.press("ArrowRight")
    wait_rendered(page, 0, "grad2")
    page.keyboard.press("ArrowLeft")
    wait_rendered(page, 0, "delta1")
    assert main_html(page) == before
    assert stage_png(page) == before_png
    # Across a step boundary: update of step 0 -> forward of step 1 -> back.
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_rendered(page, 0, "update")
    before = main_html(page)
    page.keyboard.press("ArrowRight")
    wait_rendered(page, 1, "z1")
    assert main_html(page) != before
    page.keyboard.press("ArrowLeft")
    wait_rendered(page, 0, "update")
    assert main_html(page) == before
    assert console_errors == []
    assert offline_guard == []


def test_presentation_mode_at_1024x768(live_server, page, console_errors, offline_guard, screenshot):
    open_step(page, live_server, "?present=1", size=(1024, 768))
    assert page.evaluate("document.documentElement.classList.contains('present')")
    for i, phase in enumerate(NOTES_PHASES):
        if i:
            page.keyboard.press("ArrowRight")
            wait_rendered(page, 0, phase)
        page.wait_for_timeout(SETTLE_MS)
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], f"horizontal scroll in phase {phase}: {width}"
        font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert font >= 24, font
        screenshot(page, f"step-present-{i:02d}-{phase}", full_page=False)
    # Controls fade until needed; P leaves presentation mode and the URL follows.
    opacity = page.evaluate("getComputedStyle(document.querySelector('.step-toolbar')).opacity")
    assert float(opacity) < 0.5
    page.keyboard.press("p")
    assert not page.evaluate("document.documentElement.classList.contains('present')")
    assert "present=1" not in page.url
    page.keyboard.press("p")
    assert "present=1" in page.url
    assert console_errors == []
    assert offline_guard == []


def test_predict_first_hides_then_reveals(live_server, page, console_errors, offline_guard, screenshot):
    open_step(page, live_server, "?present=1&predict=1", size=(1024, 768))
    page.keyboard.press("ArrowRight")  # reveals z1
    wait_rendered(page, 0, "z1", 1)
    page.keyboard.press("ArrowRight")  # a1, hidden
    wait_rendered(page, 0, "a1", 0)
    assert num(page, "num-a-1-1") == "?"
    assert page.get_by_test_id("predict-banner").is_visible()
    page.wait_for_timeout(SETTLE_MS)
    screenshot(page, "step-present-predict-hidden", full_page=False)
    page.keyboard.press("ArrowRight")  # reveal
    wait_rendered(page, 0, "a1", 1)
    assert num(page, "num-a-1-1") == "0.525"
    assert console_errors == []
    assert offline_guard == []


def test_reload_keeps_the_state(live_server, page, console_errors, offline_guard):
    open_step(page, live_server)
    page.get_by_test_id("preset").select_option("xor-2-4-1")
    wait_rendered(page, 0, "z1")
    page.wait_for_selector("#step-root[data-loss=ready]")
    page.get_by_test_id("timeline").fill("2")
    page.get_by_test_id("timeline").blur()  # a focused slider takes the arrow keys (a drag blurs it)
    wait_rendered(page, 2, "z1")
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    wait_rendered(page, 2, "delta1")
    page.get_by_test_id("sample").fill("3")
    page.get_by_test_id("sample").press("Enter")
    page.wait_for_function("new URL(location.href).searchParams.get('sample') === '3'")
    wait_rendered(page, 2, "delta1")
    url, math, values = page.url, page.get_by_test_id("math").inner_html(), page.get_by_test_id("values").inner_html()
    assert "t=2" in url and "phase=delta1" in url and "sample=3" in url
    page.reload()
    page.wait_for_selector("#step-root[data-state=ready]")
    wait_rendered(page, 2, "delta1")
    assert page.url == url
    assert page.get_by_test_id("sample").input_value() == "3"
    assert page.get_by_test_id("preset").input_value() == "xor-2-4-1"
    assert page.get_by_test_id("math").inner_html() == math
    assert page.get_by_test_id("values").inner_html() == values
    assert console_errors == []
    assert offline_guard == []


def test_edit_a_weight_recomputes_the_phase(live_server, page, console_errors, offline_guard, screenshot):
    open_step(page, live_server)
    wait_rendered(page, 0, "z1")
    old_token = page.evaluate("new URL(location.href).searchParams.get('spec')")
    # Hover shows a node's exact values (only what this phase has computed).
    page.get_by_test_id("node-1-1").hover()
    tip = page.get_by_test_id("tooltip")
    tip.wait_for(state="visible")
    assert "0.100000" in tip.inner_text() and "δ" not in tip.inner_text()
    # w^1_11 = 0.1, input 1 -> hidden unit 1: a horizontal line, so its box has no height and Playwright calls it
    # invisible; its 14 px stroke is what a pointer hits, at the box's centre.
    page.get_by_test_id("edge-1-1-1").click(force=True)
    page.get_by_test_id("edit-dialog").wait_for(state="visible")
    assert "new experiment at t = 0" in page.get_by_test_id("edit-dialog").inner_text()
    page.get_by_test_id("edit-value").fill("0.5")
    page.get_by_test_id("edit-apply").click()
    page.wait_for_function(f"new URL(location.href).searchParams.get('spec') !== '{old_token}'")
    wait_rendered(page, 0, "z1")
    assert num(page, "num-z-1-1") == "0.300"  # 0.5 x 0.5 + 0.0625 x 0.8
    assert num(page, "num-z-1-2") == "0.300"  # unit 2 unchanged
    note = page.get_by_test_id("custom-note")
    assert note.is_visible() and "0.100 → 0.500" in note.inner_text().replace("\u2212", "-")
    page.keyboard.press("ArrowRight")
    wait_rendered(page, 0, "a1")
    assert num(page, "num-a-1-1") == "0.574"  # sigma(0.3)
    page.wait_for_timeout(SETTLE_MS)
    screenshot(page, "step-normal-edited-weight")
    assert console_errors == []
    assert offline_guard == []


def test_settings_panel_builds_a_new_network(live_server, page, console_errors, offline_guard):
    open_step(page, live_server)
    page.locator("#spec-form [name=layers]").fill("2, 3, 3, 1")
    page.locator("#spec-form [name=layers]").dispatch_event("change")
    page.wait_for_function("document.querySelectorAll('#spec-form [name=act]').length === 3")  # the HTMX fragment
    page.locator("#spec-form [name=keep_weights]").uncheck()
    page.locator("#spec-form [name=optimizer]").select_option("momentum")
    page.wait_for_selector("#spec-form [data-hyper=beta]")  # the HTMX fragment
    page.get_by_test_id("apply").click()
    page.wait_for_function("document.getElementById('phase-dots').children.length === 14")
    wait_rendered(page, 0, "z1")
    assert page.get_by_test_id("node-2-3").count() == 1
    assert page.get_by_test_id("preset").input_value() == ""
    for _ in range(13):
        page.keyboard.press("ArrowRight")
    wait_rendered(page, 0, "update")
    assert "momentum" in page.get_by_test_id("phase").inner_text()
    # A bad value names the field and changes nothing.
    page.locator("#spec-form [name=layers]").fill("2, x")
    page.get_by_test_id("apply").click()
    assert "network.layers" in page.get_by_test_id("panel-error").inner_text()
    assert console_errors == []
    assert offline_guard == []


def test_exports(live_server, page, console_errors, offline_guard):
    open_step(page, live_server)
    with page.expect_download() as info:
        page.get_by_test_id("export-json").click()
    data = json.loads(open(info.value.path()).read())
    assert data["record"]["t"] == 0
    assert round(data["record"]["layers"][1]["delta"][0][0], 3) == -0.111
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    lines = open(info.value.path()).read().splitlines()
    assert lines[0] == "tensor,layer,sample,row,col,value"
    assert any(line.startswith("dW,2,,1,1,-0.0584") for line in lines)
    # Charts export through Plotly's modebar (PNG, and SVG via BPV.plotConfig).
    page.get_by_test_id("chart-bars").hover()
    assert page.locator("#chart-bars .modebar-btn[data-title='Download as SVG']").count() == 1
    assert console_errors == []
    assert offline_guard == []


def test_spiral_redraw_time(live_server, page, console_errors, offline_guard, screenshot):
    """Redraw of one phase on the 2-8-8-1 spiral network, measured in the page (performance.now around the
    render: DOM, KaTeX, SVG, Plotly.react's drawing) and to the next animation frame. Printed, not asserted."""
    open_step(page, live_server, "?preset=spiral-2-8-8-1")
    wait_rendered(page, 0, "z1")
    phases = page.evaluate("Array.from(document.querySelectorAll('#phase-dots .dot')).map(b => b.title)")
    assert len(phases) == 14
    redraw, main, charts, frame = [], [], [], []
    for rounds in range(2):
        for i, phase in enumerate(phases):
            if rounds == 0 and i == 0:
                continue
            page.keyboard.press("ArrowRight")
            wait_rendered(page, rounds, phase)
            page.wait_for_timeout(350)
            m = page.evaluate(
                "[window.__lastRedrawMs, window.__lastMainMs, window.__lastChartsMs, window.__lastFrameMs]"
            )
            for series, value in zip((redraw, main, charts, frame), m):
                series.append(value)
            if rounds == 0:
                screenshot(page, f"step-spiral-{i:02d}-{phase}")
    # A fixed amount of JavaScript work, timed the same way: how fast this machine is right now (a shared
    # 2-core box under load runs it several times slower than an idle laptop).
    calib = page.evaluate("""() => { const t0 = performance.now(); let s = 0;
        for (let i = 1; i < 5e6; i++) s += Math.sqrt(i); return [performance.now() - t0, s]; }""")[0]
    med = statistics.median
    print(
        f"\nspiral 2-8-8-1, one phase redraw (ms, n = {len(redraw)}): median {med(redraw):.1f}, max {max(redraw):.1f}"
        f" = main content (DOM, KaTeX, SVG) median {med(main):.1f} + charts (Plotly.react) median {med(charts):.1f};"
        f" key to charts drawn, incl. one paint, median {med(frame):.1f}; calibration loop {calib:.1f} ms"
    )
    assert console_errors == []
    assert offline_guard == []
