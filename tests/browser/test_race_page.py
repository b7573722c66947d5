"""The /race page in Chromium: a reloaded race link shows the same curves and playhead; switching the weight of
"inside the optimizer" sends no request; playback and scrubbing; the form starts a new race and pushes its URL;
presentation mode at 1024x768 keeps the standings on screen, nothing scrolls sideways and text is >= 16 px.
No console errors, and no request leaves the machine."""

from __future__ import annotations

import re
import time

import numpy as np

from engine import experiment
from engine.spec import experiment_from_dict

READY_MS = 90_000
MOONS = {
    "network": {"layers": [2, 6, 1], "activations": ["tanh", "sigmoid"], "loss": "bce", "init": "xavier"},
    "data": {"dataset": "moons", "n": 120, "noise": 0.1, "seed": 0, "test_fraction": 0.25},
    "optimizers": [
        {"name": "sgd", "lr": 0.3},
        {"name": "sgd", "lr": 0.3, "momentum": 0.9},
        {"name": "momentum", "lr": 3.0, "beta": 0.9},
        {"name": "adam", "lr": 0.02},
    ],
}
STEPS = 200


def race_url(live_server, **view) -> str:
    token = experiment_from_dict(MOONS).to_token()
    extra = "".join(f"&{k}={v}" for k, v in view.items())
    return f"{live_server}/race?spec={token}&steps={STEPS}{extra}"


def wait_until(page, expression: str, timeout_ms: int = 20_000):
    """Poll a JS expression (page.wait_for_function evaluates strings with eval, which the CSP forbids)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def wait_ready(page):
    page.wait_for_selector("#race-block[data-ready='1']", timeout=READY_MS)


def curves(page) -> list:
    """The loss chart's traces as drawn: [[x...], [y...]] per trace."""
    return page.evaluate("document.getElementById('loss-chart').data.map((t) => [Array.from(t.x), Array.from(t.y)])")


def test_a_reloaded_race_link_shows_the_same_curves_and_playhead(page, live_server, console_errors, offline_guard):
    page.goto(race_url(live_server))
    wait_ready(page)
    page.focus("body")
    page.keyboard.press("Home")
    for _ in range(7):
        page.keyboard.press("PageDown")  # a clicker's "next"
    step = page.evaluate("document.getElementById('race-block').dataset.step")
    assert int(step) > 0
    wait_until(page, f"new URL(location.href).searchParams.get('t') === '{step}'")
    before = curves(page)
    standings = page.inner_text("[data-testid=standings]")
    link = page.url
    page.goto("about:blank")
    page.goto(link)
    wait_ready(page)
    assert page.evaluate("document.getElementById('race-block').dataset.step") == step
    assert curves(page) == before
    assert page.inner_text("[data-testid=standings]") == standings
    assert page.inner_text("[data-testid=step-readout]") == f"step {step} of {STEPS}"
    # the curtain hides the curves after the playhead: its left edge is the step's pixel
    edge = page.evaluate(
        """(t) => { const gd = document.getElementById('loss-chart'), xa = gd._fullLayout.xaxis;
                    return [document.getElementById('loss-curtain').offsetLeft, xa._offset + xa.l2p(t)]; }""",
        int(step),
    )
    assert abs(edge[0] - edge[1]) <= 1
    assert console_errors == [] and offline_guard == []


def test_changing_the_state_weight_makes_no_request(page, live_server, console_errors):
    page.goto(race_url(live_server))
    wait_ready(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    first = page.evaluate("document.getElementById('state-chart').data.map((t) => Array.from(t.y))")
    page.select_option("[data-testid=state-weight]", "7")
    wait_until(page, "new URL(location.href).searchParams.get('w') === '7'")
    second = page.evaluate("document.getElementById('state-chart').data.map((t) => Array.from(t.y))")
    # the numbers drawn are the engine's: weight 7's update at two of the recorded steps, for every contestant
    xs = page.evaluate("Array.from(document.getElementById('state-chart').data[0].x)")
    spec = experiment_from_dict(MOONS)
    for r in (0, len(xs) - 1):
        for k in range(len(MOONS["optimizers"])):
            update = experiment.step_record(spec, xs[r] - 1, k).update.flat()[7]  # update t: theta_t - theta_{t-1}
            assert second[k][r] == float(np.float32(update)), (k, xs[r])
    page.select_option("[data-testid=state-quantity]", "velocity")
    third = page.evaluate("document.getElementById('state-chart').data.length")
    assert first != second and third == 3  # SGD with momentum, the notes' momentum... and plain SGD's buffer
    assert [u for u in requests if "/static/" not in u] == [] and console_errors == []  # no /race/, no /api/


def test_playback_moves_forward_and_scrubbing_goes_back(page, live_server, console_errors):
    page.goto(race_url(live_server, t=0))
    wait_ready(page)
    assert page.evaluate("document.getElementById('race-block').dataset.step") == "0"
    page.click("[data-testid=race-play]")
    wait_until(page, "Number(document.getElementById('race-block').dataset.step) >= 50", 20_000)
    page.click("[data-testid=race-play]")  # pause
    page.fill("[data-testid=race-scrub]", "3")
    wait_until(page, "document.getElementById('race-block').dataset.frame === '3'")
    heads = page.evaluate("[...document.querySelectorAll('#paths-heads .head')].filter((d) => !d.hidden).length")
    assert heads == 4
    # the decision boundaries follow the playhead: one picture per contestant, drawn (not blank)
    assert page.inner_text("[data-testid=boundary-step]") == "at step 0"
    colours = page.evaluate(
        """[...document.querySelectorAll('#boundary-card canvas')].map((c) =>
             new Set(Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)).size)"""
    )
    assert len(colours) == 4 and min(colours) > 10
    assert console_errors == []


def test_the_form_starts_a_new_race_and_pushes_its_url(page, live_server, console_errors):
    page.goto(race_url(live_server))
    wait_ready(page)
    page.locator("[data-testid=remove-contestant]").first.click()
    page.fill("[data-testid=steps-input]", "60")
    page.click("[data-testid=race-start]")
    wait_until(page, "new URL(location.href).searchParams.get('steps') === '60'", READY_MS)
    wait_ready(page)
    assert page.locator("#standings-body tr").count() == 3
    assert page.inner_text("[data-testid=step-readout]") == "step 60 of 60"
    page.fill("[data-testid=steps-input]", "99999")  # over the server's limit (the field has no max)
    page.click("[data-testid=race-start]")
    page.wait_for_selector("[data-testid=form-error] .error-box")
    assert "steps" in page.inner_text("[data-testid=form-error]")
    assert [e for e in console_errors if "status of 422" not in e] == []  # the browser logs the refused request


def test_presentation_mode_at_1024x768(page, live_server, console_errors):
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(race_url(live_server, present=1))
    wait_ready(page)
    page.wait_for_timeout(300)
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], width
    # the standings are on screen, also after scrolling down to the landscape
    for y in (0, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(100)
        box = page.locator("[data-testid=standings]").bounding_box()
        assert box is not None and box["y"] >= -1 and box["y"] + box["height"] <= 768 + 1, box
    page.evaluate("window.scrollTo(0, 0)")
    small = page.evaluate(
        """() => [...document.querySelectorAll('.race-block *')].filter((el) => {
             if (!el.childNodes.length || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.replace(/[\\s\\u200b]/g, "")))
               return false;
             const r = el.getBoundingClientRect(), style = getComputedStyle(el);
             return r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && parseFloat(style.fontSize) < 16;
           }).map((el) => el.tagName + ' ' + el.textContent.trim().slice(0, 30) + ' ' + getComputedStyle(el).fontSize)"""
    )
    assert small == []
    ticks = page.evaluate(
        "[...document.querySelectorAll('#loss-chart .xtick text')].map((t) => parseFloat(getComputedStyle(t).fontSize))"
    )
    assert ticks and min(ticks) >= 16
    assert re.search(r"\d", page.inner_text("#standings-body"))
    assert console_errors == []


def test_one_png_and_one_svg_of_the_whole_race_view(page, live_server, console_errors, tmp_path):
    page.goto(race_url(live_server, t=100))
    wait_ready(page)
    for testid, suffix, magic in (("export-png", ".png", b"\x89PNG"), ("export-svg", ".svg", b"<svg")):
        with page.expect_download() as info:
            page.click(f"[data-testid={testid}]")
        download = info.value
        assert download.suggested_filename.endswith(f"-t100{suffix}")
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        data = path.read_bytes()
        assert data.startswith(magic) and len(data) > 20_000
        if suffix == ".svg":
            text = data.decode()
            assert text.count("<image") >= 5  # four charts and the paths' layer
            assert "step 100 of 200" in text and "Adam" in text  # the standings at the playhead
    assert console_errors == []


def test_a_function_race_draws_its_contour_and_one_path_per_contestant(
    page, live_server, console_errors, offline_guard
):
    """The old page's /race?problem=rosenbrock link: the contour of f with the minimum marked, each contestant's
    path on the canvas in its own colour (app/views/colors.py PALETTE[k]), f curves, and the playhead in the URL."""
    from app.views import colors

    page.goto(f"{live_server}/race?problem=rosenbrock&t=500")
    wait_ready(page)
    assert page.evaluate("document.getElementById('race-block').dataset.step") == "500"
    kinds = page.evaluate("document.getElementById('landscape-chart').data.map((t) => t.meta || t.type)")
    assert kinds[0] == "contour" and "minimum" in kinds and "start" in kinds
    assert page.evaluate("document.getElementById('loss-chart').data.length") == 4
    # one path per contestant: pixels of exactly each contestant's colour on the paths' canvas
    counts = page.evaluate(
        """(colours) => { const c = document.getElementById('paths-canvas');
             const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             const rgb = colours.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
             const n = rgb.map(() => 0);
             for (let i = 0; i < px.length; i += 4) {
               if (px[i + 3] < 250) continue;
               rgb.forEach(([r, g, b], k) => { if (px[i] === r && px[i + 1] === g && px[i + 2] === b) n[k]++; });
             }
             return n; }""",
        list(colors.PALETTE[:4]),
    )
    assert min(counts) > 20, counts
    heads = page.evaluate("[...document.querySelectorAll('#paths-heads .head')].filter((d) => !d.hidden).length")
    assert heads == 4
    # scrubbing back redraws fewer path segments (the canvas is reset) and the standings follow
    page.fill("[data-testid=race-scrub]", "0")
    wait_until(page, "document.getElementById('race-block').dataset.step === '0'")
    assert page.inner_text("#standings-body").count("12.5\t(−1.5, 2.5)") == 4  # f(theta_0) at theta_0
    assert console_errors == [] and offline_guard == []


def test_the_problem_picker_offers_the_functions_and_starts_one(page, live_server, console_errors):
    page.goto(race_url(live_server))
    wait_ready(page)
    groups = page.evaluate(
        "[...document.querySelectorAll('[data-testid=problem-select] optgroup')].map((g) => g.label)"
    )
    assert groups == ["Networks", "2-D test functions"]
    page.select_option("[data-testid=problem-select]", "saddle")
    page.wait_for_selector("[data-testid=function-start]")
    assert page.locator("#contestants .contestant").count() == 4  # the saddle's own race (its learning rates)
    page.click("[data-testid=race-start]")
    wait_until(page, "new URL(location.href).searchParams.get('problem') === 'saddle'", READY_MS)
    wait_ready(page)
    assert page.inner_text("[data-testid=step-readout]") == "step 300 of 300"
    assert "saddle" in page.inner_text("[data-testid=landscape-caption]")
    assert page.locator("[data-testid=function-equations]").count() == 1
    assert console_errors == []
