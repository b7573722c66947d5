"""/notes in Chromium: at 1024x768 in presentation mode every formula breaks or scales inside its box (none is
cut off, nothing scrolls sideways), KaTeX stays at least 20 px where it did not have to scale, no console errors."""

from __future__ import annotations

FIT = """() => {
  const out = []; let n = 0;
  for (const box of document.querySelectorAll('.formula .tex')) {
    n++;
    const right = box.getBoundingClientRect().right + 1;
    for (const piece of box.querySelectorAll('.katex-html > .base')) {
      if (piece.getBoundingClientRect().right > right) out.push('cut off: ' + box.textContent.slice(0, 40));
    }
    if (box.scrollWidth > box.clientWidth + 1) out.push('scrolls: ' + box.textContent.slice(0, 40));
    const d = box.querySelector('.katex-display');
    const fs = parseFloat(getComputedStyle(box.querySelector('.katex')).fontSize);
    if (!d.style.fontSize && fs < 19.9) out.push('small: ' + fs);
  }
  if (document.documentElement.scrollWidth > innerWidth) out.push('page scrolls sideways');
  return [n, out];
}"""


def test_every_formula_fits_on_a_projector(live_server, page, console_errors, offline_guard):
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{live_server}/notes?present=1")
    page.wait_for_selector(".formula .katex")
    count, problems = page.evaluate(FIT)
    assert count >= 40
    assert problems == []
    assert console_errors == []
    assert offline_guard == []
