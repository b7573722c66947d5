"""The /step page in Chromium: every phase of the notes' worked example by keyboard in presentation mode at
1024x768 (title, diagram and equations on screen together, no sideways scroll, text >= 16 px, KaTeX >= 20 px,
nothing faded), the numbers note 002 prints read from the page; back, Home, predict-first and the timeline;
a weight's chain rule and its edit; exports. The server renders every phase; these tests look at what only a
browser shows (fit, keys, swaps, console errors, requests that would leave 127.0.0.1).
"""

from __future__ import annotations

NOTES_PHASES = ["z1", "a1", "z2", "a2", "loss", "delta2", "delta1", "grad2", "grad1", "update"]

# What a class must see on a projector, measured in the page: a list of problems (empty when it is fine).
PROJECTION_CHECK = """() => {
  const vw = innerWidth, vh = innerHeight, out = [];
  const toolbar = document.querySelector('.step-toolbar').getBoundingClientRect().top;
  for (const sel of ['[data-testid=phase]', '#net', '[data-testid=math] .eq-group']) {
    for (const el of document.querySelectorAll(sel)) {
      const r = el.getBoundingClientRect();
      if (r.top < 0 || r.bottom > toolbar + 1 || r.right > vw + 0.5) out.push(`${sel} not on screen: ${r.top}..${r.bottom}, ${r.right}`);
      if (el.scrollWidth > el.clientWidth + 1) out.push(`${sel} cut off sideways`);
    }
  }
  if (document.documentElement.scrollWidth > vw) out.push('the page scrolls sideways');
  if (window.scrollY !== 0) out.push('scrolled');
  for (const el of document.querySelectorAll('#stage *, .step-toolbar *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || r.top >= vh) continue;
    const style = getComputedStyle(el);
    if (parseFloat(style.opacity) < 0.5) out.push(`faded: ${el.tagName} ${style.opacity}`);
    if (el.closest('svg') || el.closest('.katex')) continue;
    const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (hasText && parseFloat(style.fontSize) < 15.9) out.push(`small text ${style.fontSize}: ${el.textContent.trim().slice(0, 30)}`);
  }
  for (const el of document.querySelectorAll('#stage .katex')) {
    if (el.getBoundingClientRect().top < vh && parseFloat(getComputedStyle(el).fontSize) < 19.9) out.push('small KaTeX');
  }
  const svg = document.querySelector('#net');
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  for (const t of svg.querySelectorAll('text')) {
    const px = parseFloat(getComputedStyle(t).fontSize) * scale;
    if (px < 15.9) out.push(`small diagram text ${px.toFixed(1)}: ${t.textContent}`);
  }
  return out;
}"""


def num(page, testid: str) -> str:
    return page.get_by_test_id(testid).inner_text().strip().replace("\u2212", "-")


def at_phase(page, phase: str) -> None:
    page.wait_for_selector(f'[data-testid=phase][data-phase="{phase}"]', timeout=20_000)
    page.wait_for_selector("[data-testid=math] .katex", timeout=20_000)  # typeset after the swap


def text_of(page, testid: str) -> str:
    return page.get_by_test_id(testid).inner_text().replace("\u2212", "-")


def test_every_phase_by_keyboard_on_a_projector(live_server, page, console_errors, offline_guard):
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{live_server}/step?present=1")
    at_phase(page, "z1")
    keys = ["ArrowRight", " ", "PageDown"]
    for i, phase in enumerate(NOTES_PHASES):
        if i:
            page.keyboard.press(keys[i % 3])
            at_phase(page, phase)
        assert page.evaluate(PROJECTION_CHECK) == [], phase
        math = text_of(page, "math")
        if phase == "a1":
            assert [num(page, "num-a-1-1"), num(page, "num-a-1-2")] == ["0.525", "0.574"]
            assert "0.525" in math and "0.574" in math
        if phase == "delta2":
            assert num(page, "num-delta-2-1") == "-0.111"
        if phase == "delta1":
            assert [num(page, "num-delta-1-1"), num(page, "num-delta-1-2")] == ["-0.0111", "-0.0163"]
            assert "[-0.011, -0.016]" in text_of(page, "notes-check")  # note 002's delta_h, which agrees
        if phase == "grad2":
            assert "[-0.058, -0.064]" in text_of(page, "notes-check")
            assert "-0.0585" in math and "-0.0640" in math
        if phase == "update":
            assert num(page, "num-after-w2.1.1") == "0.429"
    assert page.get_by_test_id("diagram").get_attribute("data-testid") == "diagram"
    assert "present=1" in page.url and "phase=update" in page.url  # the URL is the state
    page.keyboard.press("ArrowRight")  # past the update: the next step starts
    at_phase(page, "z1")
    assert "t=1" in page.url
    assert console_errors == []
    assert offline_guard == []


def test_back_home_predict_and_timeline(live_server, page, console_errors, offline_guard):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server}/step?phase=a2")
    at_phase(page, "a2")
    page.keyboard.press("ArrowLeft")
    at_phase(page, "z2")
    page.keyboard.press("PageUp")
    at_phase(page, "a1")
    page.go_back()  # history: every phase is a URL
    at_phase(page, "z2")
    page.keyboard.press("Home")
    at_phase(page, "z1")
    # predict first: numbers hidden, the first key reveals, the second moves on
    page.keyboard.press("r")
    page.wait_for_selector('[data-testid=predict][aria-checked="true"]')
    assert num(page, "num-z-1-1") == "?"
    page.keyboard.press("ArrowRight")  # reveals this phase
    page.wait_for_selector("[data-testid=num-z-1-1]:has-text('0.1')")
    page.keyboard.press("ArrowRight")  # the next phase, hidden
    at_phase(page, "a1")
    assert num(page, "num-a-1-1") == "?"
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("[data-testid=num-a-1-1]:has-text('0.525')")
    page.keyboard.press("r")  # predict first off again
    page.wait_for_selector('[data-testid=predict][aria-checked="false"]')
    # the next step, same phase
    page.keyboard.press("]")
    page.wait_for_selector("[data-testid=step-label]:has-text('Step t = 1')")
    assert page.get_by_test_id("phase").get_attribute("data-phase") == "a1"
    assert num(page, "num-a-1-1") != "0.525"  # theta_1 moved
    # keys work again after a control was used and Escape was pressed
    page.get_by_test_id("sample").focus()
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("[data-testid=phase][data-phase=z2]")
    assert console_errors == []
    assert offline_guard == []


def test_a_weights_chain_rule_and_edit(live_server, page, console_errors, offline_guard):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server}/step?phase=grad1")
    at_phase(page, "grad1")
    page.get_by_test_id("edge-1-2-1").click()
    page.wait_for_selector("[data-testid=detail] .katex")
    assert "detail=w1.2.1" in page.url
    detail = text_of(page, "detail")
    assert "w12,1" in detail.replace(" ", "").replace("\n", "") or "w121" in detail.replace("\n", "")
    # Enter on a unit: its bias
    page.get_by_test_id("node-2-1").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.search.includes('detail=b2.1')")
    page.wait_for_selector("[data-testid=detail] .katex")
    page.get_by_test_id("edit-value").fill("0.5")
    page.get_by_test_id("edit-apply").click()
    page.wait_for_selector("[data-testid=custom-note]")
    assert "b2.1" in text_of(page, "custom-note") and "0.5" in text_of(page, "custom-note")
    at_phase(page, "grad1")
    assert console_errors == []
    assert offline_guard == []


def test_exports_download(live_server, page, console_errors):
    page.goto(f"{live_server}/step?t=2")
    at_phase(page, "z1")
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    path = info.value.path()
    with open(path) as f:
        head = f.readline()
    assert head.strip() == "tensor,layer,sample,row,col,value"
    assert info.value.suggested_filename == "step-t2.csv"
    assert console_errors == []
