"""The /race page in Chromium: a race of 4 or more contestants, one curve and one path per contestant, the divergence
marker, playback, URL state, exports, presentation mode; no console errors and no request leaves the machine."""

from __future__ import annotations

import re

RUN_TIMEOUT_MS = 90_000


def open_race(page, live_server, query=""):
    page.goto(f"{live_server}/race{query}")
    page.wait_for_selector("[data-testid=race-start]:not([disabled])")


def run_race(page):
    """Start, wait for the last event, jump to the last step."""
    page.click("[data-testid=race-start]")
    page.wait_for_selector("[data-testid=race-status][data-state=done]", timeout=RUN_TIMEOUT_MS)
    page.click("[data-testid=race-end]")
    steps = page.evaluate("BPV.race.race.steps")
    page.wait_for_function(
        f"document.querySelector('[data-testid=step-readout]').textContent.includes('{steps} / {steps}')"
    )
    return steps


def shoot(screenshot, page, name, **kwargs):
    """A screenshot from the top of the page (the sticky control bar stays where it belongs)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    return screenshot(page, name, **kwargs)


def traces(page, testid, meta):
    """[{name, n, finite}] of the chart's traces with that meta tag."""
    return page.evaluate(
        """([testid, meta]) => (document.querySelector(`[data-testid=${testid}]`).data || [])
             .filter((t) => t.meta === meta)
             .map((t) => ({ name: t.name, n: (t.y || t.z || []).length,
                            finite: (t.y || []).filter((v) => v !== null && Number.isFinite(v)).length }))""",
        [testid, meta],
    )


def set_contestant(page, index, optimizer=None, lr=None):
    card = page.locator("[data-testid=contestant]").nth(index)
    if optimizer is not None:
        card.locator("[data-testid=contestant-optimizer]").select_option(optimizer)
        card = page.locator("[data-testid=contestant]").nth(index)
    if lr is not None:
        field = card.locator("[data-testid=hyper-lr]")
        field.fill(str(lr))
        field.dispatch_event("change")


def choose_problem(page, name, title_part):
    page.select_option("[data-testid=problem-select]", name)
    page.wait_for_function(f"document.querySelector('[data-testid=problem-info]').textContent.includes({title_part!r})")


def test_default_race_draws_one_curve_and_one_path_per_contestant(
    page, live_server, console_errors, offline_guard, screenshot
):
    open_race(page, live_server, "?steps=300")
    assert page.locator("[data-testid=contestant]").count() == 4
    assert page.locator("[data-testid=contestant] .katex").count() >= 8  # update equations and schedules
    steps = run_race(page)
    assert steps == 300
    loss = traces(page, "loss-chart", "loss")
    assert len(loss) == 4
    assert all(t["n"] == 301 and t["finite"] == 301 for t in loss)
    names = page.locator("[data-testid=score-row] .who").all_inner_texts()
    assert (
        [t["name"] for t in loss]
        == names
        == ["SGD \u03b7=1", "Momentum \u03b7=1", "RMSprop \u03b7=0.01", "Adam \u03b7=0.01"]
    )
    assert len(traces(page, "lr-chart", "lr")) == 4
    paths = traces(page, "contour-chart", "path")
    assert len(paths) == 4 and all(t["finite"] >= 2 for t in paths)
    assert len(traces(page, "boundary-chart", "boundary")) == 4
    assert page.locator("[data-testid=boundary-chart]").is_visible()
    assert page.locator("[data-testid=divergence-marker]").count() == 0
    assert page.evaluate("document.querySelector('[data-testid=loss-chart]').layout.yaxis.type") == "log"
    # a hover anywhere on the loss chart shows the step, and each contestant's loss and learning rate there
    box = page.locator("[data-testid=loss-chart] .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "document.querySelector('[data-testid=loss-chart] .hoverlayer').textContent.includes('step')"
    )
    hover = page.evaluate("document.querySelector('[data-testid=loss-chart] .hoverlayer').textContent")
    hover = hover.replace("\u200b", "")  # Plotly's zero-width spaces around the subscript
    assert re.search(r"step \d+", hover) and hover.count("loss ") == 4 and hover.count("\u03b7t") == 4, hover
    assert all(name in hover for name in names)
    page.mouse.move(0, 0)
    shoot(screenshot, page, "race-default")
    assert console_errors == []
    assert offline_guard == []


def test_long_race_streams_its_progress(page, live_server, console_errors, offline_guard):
    open_race(page, live_server)  # the default: 1000 steps on the spiral network
    page.evaluate("""() => {
        window.__seen = [];
        const bar = document.querySelector('[data-testid=race-progress]');
        const status = document.querySelector('[data-testid=race-status]');
        const watch = () => { window.__seen.push(bar.value);
                              if (status.dataset.state !== 'done') requestAnimationFrame(watch); };
        requestAnimationFrame(watch);
    }""")
    page.click("[data-testid=race-start]")
    page.wait_for_selector("[data-testid=race-status][data-state=done]", timeout=RUN_TIMEOUT_MS)
    seen = page.evaluate("window.__seen")
    between = sorted({v for v in seen if 0 < v < 1})
    assert len(between) >= 3, seen[:50]  # the bar moved while the race trained
    assert console_errors == []
    assert offline_guard == []


def test_y_equals_2x_paths_on_the_contour_and_a_divergence_marker(
    page, live_server, console_errors, offline_guard, screenshot
):
    open_race(page, live_server)
    choose_problem(page, "y2x", "y = 2x")
    set_contestant(page, 0, lr=1.0)  # SGD with lr 1.0 diverges on note 000's problem
    page.fill("[data-testid=steps-input]", "300")
    steps = run_race(page)
    paths = traces(page, "contour-chart", "path")
    assert len(paths) == 4
    assert all(t["finite"] >= 2 for t in paths)  # every contestant's path is drawn, the diverging one too
    assert paths[1]["finite"] == steps + 1  # a calm one: every step
    contour = page.evaluate("document.querySelector('[data-testid=contour-chart]').layout.images[0]")
    assert contour["source"].startswith("data:image/png") and contour["layer"] == "below"  # drawn once, under the paths
    axes = page.evaluate(
        "[document.querySelector('[data-testid=contour-chart]').layout.xaxis.title.text,"
        " document.querySelector('[data-testid=contour-chart]').layout.yaxis.title.text]"
    )
    assert axes == ["w", "b"]
    marker = page.locator("[data-testid=divergence-marker]")
    assert marker.count() == 1 and marker.is_visible()
    step = int(re.search(r"diverged at step (\d+)", marker.inner_text()).group(1))
    assert 0 < step < steps
    diverged = page.evaluate(
        "document.querySelector('[data-testid=loss-chart]').data.find((t) => t.meta === 'diverged')"
    )
    assert diverged["x"] == [step]
    notes = page.evaluate("document.querySelector('[data-testid=loss-chart]').layout.annotations.map((a) => a.text)")
    assert any(f"diverged at step {step}" in n for n in notes)
    # the others raced on to the end
    loss = traces(page, "loss-chart", "loss")
    assert [t["finite"] for t in loss[1:]] == [steps + 1] * 3 and loss[0]["finite"] <= step + 1
    shoot(screenshot, page, "race-y2x")
    assert console_errors == []
    assert offline_guard == []


def test_a_race_on_a_2d_function(page, live_server, console_errors, offline_guard, screenshot):
    open_race(page, live_server)
    choose_problem(page, "rosenbrock", "Rosenbrock")
    assert page.locator("[data-testid=contestant-batch]").count() == 0  # no data, no batches
    steps = run_race(page)
    paths = traces(page, "contour-chart", "path")
    assert len(paths) == 4 and all(t["n"] == steps + 1 for t in paths)
    assert page.locator("[data-testid=boundary-chart]").is_hidden()
    page.select_option("[data-testid=state-quantity]", "m_hat")
    assert [t["name"] for t in traces(page, "state-chart", "state")] == ["Adam \u03b7=0.05"]
    page.select_option("[data-testid=state-weight]", "1")
    label = page.evaluate("document.querySelector('[data-testid=state-chart]').layout.yaxis.title.text")
    assert label.endswith("of y")
    shoot(screenshot, page, "race-rosenbrock")
    assert console_errors == []
    assert offline_guard == []


def test_contestants_can_be_added_and_removed_between_2_and_8(page, live_server, console_errors):
    open_race(page, live_server)
    add = page.locator("[data-testid=add-contestant]")
    while add.is_enabled():
        add.click()
    cards = page.locator("[data-testid=contestant]")
    assert cards.count() == 8
    chosen = cards.locator("[data-testid=contestant-optimizer]").evaluate_all("(s) => s.map((x) => x.value)")
    assert {"nesterov", "adamw", "adagrad"} <= set(chosen)
    for i in range(8):  # every card shows its update rule and schedule
        assert cards.nth(i).locator("[data-testid=contestant-equations] .katex").count() >= 2
    set_contestant(page, 7, optimizer="adam")
    page.locator("[data-testid=contestant]").nth(7).locator("[data-testid=contestant-schedule]").select_option("cosine")
    eqs = page.locator("[data-testid=contestant]").nth(7).locator("[data-testid=contestant-equations]").inner_text()
    assert "cos" in eqs
    while page.locator("[data-testid=remove-contestant]").first.is_enabled():
        page.locator("[data-testid=remove-contestant]").first.click()
    assert cards.count() == 2
    assert add.is_enabled()
    assert console_errors == []


def test_playback_scrub_log_toggle_and_url_state(page, live_server, console_errors, offline_guard):
    open_race(page, live_server)
    choose_problem(page, "xor", "XOR")
    set_contestant(page, 1, optimizer="nesterov", lr=0.4)
    page.fill("[data-testid=steps-input]", "120")
    run_race(page)
    page.locator("[data-testid=race-scrub]").fill("40")
    assert all(t["n"] == 41 for t in traces(page, "loss-chart", "loss"))
    assert "step 40 / 120" in page.inner_text("[data-testid=step-readout]")
    page.click("[data-testid=race-play]")
    page.wait_for_function("BPV.race.race && document.querySelector('[data-testid=race-scrub]').value > 40")
    page.click("[data-testid=race-play]")
    page.uncheck("[data-testid=log-toggle]")
    assert page.evaluate("document.querySelector('[data-testid=loss-chart]').layout.yaxis.type") == "linear"
    url = page.url
    assert "problem=xor" in url and "steps=120" in url and "c=" in url and "spec=" in url and "log=0" in url
    page.goto(url)  # the link reproduces the race's setup
    page.wait_for_selector("[data-testid=race-start]:not([disabled])")
    assert page.input_value("[data-testid=problem-select]") == "xor"
    assert page.input_value("[data-testid=steps-input]") == "120"
    second = page.locator("[data-testid=contestant]").nth(1)
    assert second.locator("[data-testid=contestant-optimizer]").input_value() == "nesterov"
    assert second.locator("[data-testid=hyper-lr]").input_value() == "0.4"
    assert not page.is_checked("[data-testid=log-toggle]")
    assert console_errors == []
    assert offline_guard == []


def test_exports(page, live_server, console_errors, offline_guard, tmp_path):
    open_race(page, live_server, "?problem=saddle&steps=80")
    run_race(page)
    with page.expect_download() as info:
        page.click("[data-testid=export-csv]")
    path = tmp_path / "race.csv"
    info.value.save_as(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 81
    assert lines[0].startswith('"step","SGD')
    assert lines[1].split(",")[0] == "0"
    with page.expect_download() as info:
        page.click("[data-testid=export-svg]")
    assert info.value.suggested_filename.endswith(".svg")
    assert console_errors == []
    assert offline_guard == []


def test_presentation_mode_fits_a_1024_by_768_projector(page, live_server, console_errors, offline_guard, screenshot):
    page.set_viewport_size({"width": 1024, "height": 768})
    open_race(page, live_server, "?steps=300")
    page.keyboard.press("p")
    assert page.evaluate("document.documentElement.classList.contains('present')")
    run_race(page)
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], width
    font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('[data-testid=scoreboard]')).fontSize)")
    assert font >= 18
    assert page.evaluate("document.querySelector('[data-testid=loss-chart]').layout.font.size") >= 20
    shoot(screenshot, page, "race-present", full_page=False)
    page.locator("[data-testid=contour-chart]").scroll_into_view_if_needed()
    screenshot(page, "race-present-landscape", full_page=False)
    assert console_errors == []
    assert offline_guard == []
