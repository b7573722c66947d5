// KaTeX rendering of the LaTeX the server wrote ($...$ inline, $$...$$ display), and formulas kept inside their
// box: CSS lets a display formula break at its relations and operators; one that still does not fit (a wide
// matrix) is scaled down to fit (never below 60%), instead of being cut off.
export function renderMath(el) {
  if (!el || !window.renderMathInElement) return;
  window.renderMathInElement(el, {
    delimiters: [{ left: "$$", right: "$$", display: true }, { left: "$", right: "$", display: false }],
    throwOnError: false,
  });
  fitMath(el);
}

/** Scale every display formula in `root` that is wider than its box down to the box (at least 60%). */
export function fitMath(root = document.body) {
  for (const d of root.querySelectorAll(".katex-display")) {
    if (d.style.fontSize) d.style.fontSize = "";
    const over = d.scrollWidth / Math.max(1, d.clientWidth);
    if (over > 1.01) d.style.fontSize = `${Math.max(0.6, 1 / over).toFixed(3)}em`;
  }
}

let pending = 0;
window.addEventListener("resize", () => {
  cancelAnimationFrame(pending);
  pending = requestAnimationFrame(() => fitMath(document.body));
});
