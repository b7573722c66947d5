// KaTeX rendering of the LaTeX the server wrote ($...$ inline, $$...$$ display), and formulas kept inside their
// box: CSS lets a display formula break at its relations and operators; one that still does not fit (a wide
// matrix) is scaled down to fit (never below 60%), instead of being cut off.
export function renderMath(el) {
  if (!el || !window.renderMathInElement) return;
  memoize();
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

// Typesetting is the costly part of a swap: each formula's HTML is kept (bounded), so a formula typeset once
// (or ahead of time by warmMath, from a prefetched fragment) is only inserted again.
const typeset = new Map();
const MAX_TYPESET = 3000;
let memoized = false;

function memoize() {
  if (memoized || !window.katex) return;
  memoized = true;
  const render = window.katex.render;
  window.katex.render = (tex, el, options = {}) => {
    const key = (options.displayMode ? "D" : "I") + tex;
    const html = typeset.get(key);
    if (html !== undefined) { el.innerHTML = html; return; }
    render(tex, el, options);
    remember(key, el.innerHTML);
  };
}

function remember(key, html) {
  if (typeset.size >= MAX_TYPESET) typeset.delete(typeset.keys().next().value);
  typeset.set(key, html);
}

/** Typeset the $$...$$ formulas of an HTML fragment ahead of time (e.g. a prefetched next page state). */
export function warmMath(html) {
  if (!window.katex) return;
  memoize();
  const decode = document.createElement("textarea");
  for (const m of html.matchAll(/\$\$([\s\S]*?)\$\$/g)) {
    decode.innerHTML = m[1];
    const tex = decode.value;
    if (typeset.has("D" + tex)) continue;
    remember("D" + tex, window.katex.renderToString(tex, { displayMode: true, throwOnError: false }));
  }
}
