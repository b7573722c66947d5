// Loaded by every page: presentation mode and the shared keys, KaTeX and fragment charts after every swap.
import { bindKeys } from "./keys.js";
import { drawFragments } from "./plots.js";
import { isPresent, setPresent, showHelp, toggleFullscreen } from "./present.js";
import { renderMath } from "./math.js";

bindKeys({
  p: () => setPresent(!isPresent()),
  f: () => toggleFullscreen(),
  "?": () => showHelp(),
});

function render(root) {
  renderMath(root);
  // the swapped text is painted first; Plotly (tens to hundreds of ms) draws after that frame
  requestAnimationFrame(() => setTimeout(() => drawFragments(root), 0));
}

document.body.addEventListener("htmx:afterSwap", (event) => render(event.detail.target));
document.body.addEventListener("htmx:oobAfterSwap", (event) => render(event.detail.target));
// back/forward: htmx restored a page state (from its cache or the server) without an afterSwap
document.body.addEventListener("htmx:historyRestore", () => render(document.getElementById("main")));
render(document.getElementById("main"));
