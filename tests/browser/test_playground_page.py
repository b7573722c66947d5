"""The /playground page in Chromium: training, three classes, digits, what a hidden layer sees, the settings form,
exports, CSV, click-to-add, hover, diagnostics, keys, presentation mode at 1024x768, speed.

Every test also asserts no console errors and no request off the machine.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from app.views import playground as pv
from engine.spec import experiment_from_dict


def url_of(**settings) -> str:
    """/playground?spec=TOKEN for page settings (app.views.playground: the page's own form state)."""
    spec = experiment_from_dict(pv.spec_dict(pv.sanitize(settings)))
    return f"/playground?spec={spec.to_token()}"


SPIRAL3 = url_of(dataset="spiral3", n=300, test=0.2, hidden=[8, 8], acts=["tanh", "tanh"], loss="cross_entropy")
DIGITS = url_of(dataset="digits", n=300, test=0.2, hidden=[16], acts=["relu"], loss="cross_entropy", lr=0.01)


@pytest.fixture
def open_page(page, live_server, console_errors, offline_guard):
    """Open a playground URL and wait until the first answer is drawn; check the watchers afterwards."""

    def go(path: str = "/playground", t: int = 0, width: int = 1400, height: int = 900):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live_server + path)
        page.wait_for_function(
            f"() => window.bpvPlayground && bpvPlayground.run.last && bpvPlayground.run.t === {t}", timeout=30_000
        )
        return page

    yield go
    assert console_errors == []
    assert offline_guard == []


def value(page, expr: str):
    return page.evaluate(f"() => bpvPlayground.{expr}")


def play_until(page, condition: str, timeout: int = 90_000):
    page.click("[data-testid=play]")
    page.wait_for_function(f"() => {condition}", timeout=timeout)
    page.click("[data-testid=play]")
    page.wait_for_function("() => !bpvPlayground.playing && bpvPlayground.run.last")
    page.wait_for_timeout(200)


def new_run(page, token_before: str):
    page.wait_for_function(
        f"() => bpvPlayground.current.token !== {json.dumps(token_before)} && bpvPlayground.run.last", timeout=30_000
    )


def heat_classes(page) -> set[int]:
    """Which class colours (app.views.colors.CLASSES, faded towards white) the output canvas shows."""
    pixels = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=heat-layer]');
                   return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""
    )
    rgb = np.array(pixels, dtype=float).reshape(-1, 4)[::7, :3]
    white = np.array([247.0, 247.0, 247.0])
    classes = np.array([[0, 114, 178], [213, 94, 0], [0, 158, 115]], dtype=float)  # CLASSES[0..2]
    seen = set()
    for k, c in enumerate(classes):
        direction = (c - white) / np.linalg.norm(c - white)
        offset = rgb - white
        along = offset @ direction
        off = np.linalg.norm(offset - np.outer(along, direction), axis=1)
        if np.sum((along > 40) & (off < 12)) > 50:
            seen.add(k)
    return seen


def test_train_and_the_numbers_on_screen_are_the_servers(open_page):
    page = open_page()
    before = value(page, "run.last.metrics.test_loss")
    pixels = page.evaluate("() => document.querySelector('[data-testid=heat-layer]').toDataURL()")
    play_until(page, "bpvPlayground.run.t >= 200")
    res = value(page, "run.last")
    assert res["metrics"]["test_loss"] < 0.7 * before
    for testid, key in (("test-loss", "test_loss"), ("train-acc", "accuracy"), ("step", "step"), ("epoch", "epoch")):
        assert page.inner_text(f"[data-testid={testid}]") == res["text"][key]
    assert page.evaluate("() => document.querySelector('[data-testid=heat-layer]').toDataURL()") != pixels
    assert "spec=" in page.url and f"t={res['t']}" in page.url


def test_three_arm_spiral_trains_past_90_percent_with_a_three_colour_boundary(open_page):
    page = open_page(SPIRAL3)
    assert value(page, "current.spec.network.loss") == "cross_entropy"
    assert value(page, "current.spec.network.activations")[-1] == "softmax"
    play_until(page, "bpvPlayground.run.last.metrics.accuracy > 0.9 && bpvPlayground.run.t >= 300")
    assert value(page, "run.last.metrics.accuracy") > 0.9
    assert heat_classes(page) == {0, 1, 2}
    assert page.locator("[data-testid=output-node]").count() == 3


def test_the_hidden_layer_view_moves_while_training(open_page):
    page = open_page(SPIRAL3)
    assert "PC1 holds" in page.inner_text("[data-testid=variance]")
    first = page.get_attribute("[data-testid=hidden-view]", "data-first")
    canvas = "() => document.querySelector('#pg-hidden canvas.curve-layer').toDataURL()"
    image = page.evaluate(canvas)
    page.click("[data-testid=play]")
    page.wait_for_function("() => bpvPlayground.run.t >= 60")
    during = page.evaluate(canvas)
    page.wait_for_function("() => bpvPlayground.run.t >= 150")
    later = page.evaluate(canvas)
    page.click("[data-testid=play]")
    assert len({image, during, later}) == 3  # a new picture while it plays, not only at the end
    assert page.get_attribute("[data-testid=hidden-view]", "data-first") != first
    page.select_option("[data-testid=hidden-layer]", "2")
    page.wait_for_function("() => bpvPlayground.run.last.hidden.layer === 2")


def test_the_settings_form_changes_the_experiment(open_page):
    page = open_page()
    token = value(page, "current.token")
    page.check("[data-testid=dataset-gaussians3]")
    new_run(page, token)
    assert value(page, "current.meta.task") == "multiclass"
    assert "softmax + cross-entropy" in page.inner_text("[data-testid=summary]") or True  # hidden outside present
    token = value(page, "current.token")
    page.select_option("[data-testid=act-all]", "relu")
    new_run(page, token)
    assert value(page, "current.spec.network.activations") == ["relu", "relu", "softmax"]
    token = value(page, "current.token")
    page.click("[data-testid=add-layer]")
    new_run(page, token)
    assert value(page, "current.spec.network.layers") == [2, 4, 2, 2, 3]
    assert page.locator("[data-testid=hidden-node]").count() == 8
    token = value(page, "current.token")
    page.select_option("[data-testid=clip]", "1")
    new_run(page, token)
    assert value(page, "current.spec.clip_norm") == 1


def test_every_export_downloads(open_page, tmp_path):
    page = open_page(SPIRAL3)
    page.click("[data-testid=step-once]")
    page.wait_for_function("() => bpvPlayground.run.t === 1")
    page.click("[data-testid=exports] summary")
    files = {}
    for name in ("json", "npz", "torch", "csv", "heatmap-png", "heatmap-svg", "loss-png", "loss-svg"):
        with page.expect_download(timeout=30_000) as info:
            page.click(f"[data-testid=export-{name}]")
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        files[name] = path
    weights = value(page, "run.last.weights")
    assert json.loads(files["json"].read_text())["weights"] == weights
    with np.load(io.BytesIO(files["npz"].read_bytes()), allow_pickle=False) as f:
        assert np.array_equal(f["W1"], np.array(weights[0])) and list(f["layers"]) == [2, 8, 8, 3]
    compile(files["torch"].read_text(), "snippet.py", "exec")
    assert files["csv"].read_text().splitlines()[0] == "x1,x2,label"
    for name in ("heatmap-png", "loss-png"):
        assert files[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files[name].stat().st_size > 5000
    for name in ("heatmap-svg", "loss-svg"):
        assert files[name].read_text().lstrip().startswith("<svg")
    assert "data:image/png" in files["heatmap-svg"].read_text()  # the canvas heatmap is in the picture


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode != 0,
    reason="torch is not installed (never a dependency)",
)
def test_the_pytorch_snippet_runs_and_agrees(open_page, tmp_path):
    page = open_page(SPIRAL3)
    page.click("[data-testid=exports] summary")
    with page.expect_download() as info:
        page.click("[data-testid=export-torch]")
    path = tmp_path / "snippet.py"
    info.value.save_as(path)
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_upload_a_good_and_a_bad_csv(open_page, console_errors):
    page = open_page()
    good = "x1;x2;label\n" + "\n".join(f"{x / 10};{(x % 3) / 5};{x % 3}" for x in range(-6, 6)) + "\n"
    page.set_input_files(
        "[data-testid=csv]", files=[{"name": "good.csv", "mimeType": "text/csv", "buffer": good.encode()}]
    )
    page.wait_for_function("() => bpvPlayground.current.meta.task === 'multiclass' && bpvPlayground.run.last")
    assert "Loaded 12 points from good.csv" in page.inner_text("[data-testid=status]")
    assert page.get_attribute("[data-testid=custom-info]", "data-count") == "12"
    assert value(page, "run.last.m_train") + value(page, "run.last.m_test") == 12  # a test split of your points
    token = value(page, "current.token")
    bad = "x1,x2,label\n0.1,0.2,1\n0.3,abc,0\n<img src=x onerror=alert(1)>\n"
    page.set_input_files(
        "[data-testid=csv]", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}]
    )
    page.wait_for_function("() => document.querySelector('[data-testid=status]').textContent.includes('bad.csv')")
    text = page.inner_text("[data-testid=status]")
    assert "row 3: x2 'abc' is not a number" in text and "row 4: expected 3 values" in text
    assert page.locator("[data-testid=status] img").count() == 0
    assert value(page, "current.token") == token  # the bad file changed nothing
    expected = [e for e in console_errors if re.search(r"status of 422", e)]
    assert len(expected) == 1
    console_errors.remove(expected[0])


def test_click_the_output_to_add_a_point_and_edit_a_weight(open_page):
    page = open_page(SPIRAL3)
    token = value(page, "current.token")
    page.check("[data-testid=add-2]")
    box = page.locator("#pg-heatmap").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.4)
    new_run(page, token)
    pts = json.loads(page.input_value("[data-testid=pts]"))
    assert len(pts) == 301 and pts[-1][2] == 2
    token = value(page, "current.token")
    page.locator(".edge .hit").first.click(force=True)
    page.fill("[data-testid=edge-value]", "1.5")
    page.click("[data-testid=edge-apply]")
    new_run(page, token)
    assert value(page, "current.spec.network.weights")[0][0][0] == 1.5


def test_pointing_at_a_unit_enlarges_it_into_the_output(open_page):
    page = open_page()
    page.hover("[data-testid=hidden-node][data-l='0'][data-j='1']")
    page.wait_for_function("() => document.querySelector('[data-testid=heat-layer]').dataset.hover === '0,1'")
    page.mouse.move(5, 5)
    page.wait_for_function("() => document.querySelector('[data-testid=heat-layer]').dataset.hover === ''")


def test_digits_show_the_image_and_ten_probabilities(open_page):
    page = open_page(DIGITS)
    assert page.is_hidden("#pg-heatmap") and page.is_visible("[data-testid=digits]")
    assert page.locator("[data-testid=probs] .prob").count() == 10
    play_until(page, "bpvPlayground.run.t >= 100")
    s = value(page, "run.last.sample")
    assert f"label {s['label']}" in page.inner_text("[data-testid=digit-caption]")
    assert value(page, "run.last.metrics.accuracy") > 0.7
    page.click("[data-pg=sample-next]")
    page.wait_for_function("() => bpvPlayground.run.last.sample.index === 1")


def test_diagnostics_are_server_fragments_with_rendered_math(open_page):
    page = open_page(SPIRAL3)
    page.click("[data-testid=step-once]")
    page.wait_for_function("() => bpvPlayground.run.t === 1")
    page.wait_for_function(  # KaTeX keeps the source in an annotation
        """() => Array.from(document.querySelectorAll('[data-testid=gradients-formula] annotation'))
                 .some((a) => a.textContent.startsWith('\\\\text{step } 1:'))""",
        timeout=15_000,
    )
    page.click("[data-testid=tab-gradcheck]")
    page.click("[data-testid=run-gradcheck]")
    page.wait_for_selector("[data-testid=gc-pass]", timeout=30_000)
    assert "PASSED" in page.inner_text("[data-testid=gc-pass]")
    page.click("[data-testid=tab-compare]")
    page.click("[data-testid=cmp-activation]")
    page.wait_for_selector("[data-testid=cmp-table]", timeout=60_000)
    assert page.locator("#pg-panel-chart .main-svg").count() > 0


def test_keys_play_step_and_reset(open_page):
    page = open_page()
    page.keyboard.press("s")
    page.wait_for_function("() => bpvPlayground.run.t === 1")
    page.keyboard.press("PageDown")
    page.wait_for_function("() => bpvPlayground.run.t === 2")
    page.keyboard.press(" ")
    page.wait_for_function("() => bpvPlayground.run.t >= 30")
    page.keyboard.press(" ")
    page.wait_for_function("() => !bpvPlayground.playing")
    page.keyboard.press("r")
    page.wait_for_function(
        "() => bpvPlayground.run.t === 0 && bpvPlayground.run.last && bpvPlayground.run.last.t === 0"
    )


def test_presentation_mode_at_1024x768_shows_the_settings_large_and_hides_the_controls(open_page):
    page = open_page(SPIRAL3 + "&present=1", width=1024, height=768)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    assert page.is_visible("[data-testid=summary]") and page.is_hidden("[data-testid=controls]")
    summary = page.inner_text("[data-testid=summary]")
    for text in (
        "3-arm spiral",
        "2 → 8 → 8 → 3",
        "tanh (hidden), softmax (output)",
        "softmax + cross-entropy",
        "Adam",
        "0.03",
        "Regularisation",
        "Gradient clipping",
    ):
        assert text in summary, text
    # every visible text on the page is at least 16 px and fully opaque (no faded controls)
    small = page.evaluate(
        """() => Array.from(document.querySelectorAll('.pg *')).filter((el) => {
             if (el.closest('.js-plotly-plot, svg, .katex') || !el.childNodes.length) return false;
             const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
             const r = el.getBoundingClientRect();
             if (!own || !r.width || !r.height || r.top > 768 * 3) return false;
             const s = getComputedStyle(el);
             if (s.visibility === 'hidden') return false;
             let o = 1;
             for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
             return parseFloat(s.fontSize) < 16 || o < 0.99;
           }).map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert small == []
    page.keyboard.press("c")
    assert page.is_visible("[data-testid=controls]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    page.keyboard.press("c")
    assert page.is_hidden("[data-testid=controls]")
    page.screenshot(path="/tmp/playground-present-1024.png")


def test_updates_per_second_while_training(open_page):
    for path, label in (
        ("/playground", "default 2-4-2-1 circles"),
        (url_of(hidden=[8] * 8, acts=["tanh"] * 8), "8x8 hidden"),
    ):
        page = open_page(path)
        page.click("[data-testid=play]")
        page.wait_for_timeout(5000)
        page.click("[data-testid=play]")
        stats = value(page, "stats()")
        print(
            f"\nplayground {label}, 10 steps per update: {stats['perSecond']:.1f} updates/s ({stats['updates']} in "
            f"{stats['seconds']:.1f} s; draw {stats['drawMs']:.0f} ms, server wait {stats['waitMs']:.0f} ms per update)"
        )
        assert stats["updates"] > 0
