// The /step page. The server renders every phase (title, equations, table, diagram, checks, chart data) as
// the #stage block; htmx swaps it and app.js typesets KaTeX and draws the charts. This script only maps keys to
// the stage's links, opens a parameter's chain rule, prefetches (and typesets) the next phase, shows 422 messages.
import { bindKeys } from "./keys.js";
import { warmMath } from "./math.js";

const stage = document.getElementById("stage");
const root = document.getElementById("step-root");
// htmx would copy the page into sessionStorage before every swap (most of a key press's time); a stage is a pure
// function of its URL, so back/forward ask the server (the browser's cache usually answers) instead.
if (window.htmx) window.htmx.config.historyCacheSize = 0;

function follow(selector) {
  const link = stage && stage.querySelector(selector);
  if (!link) return false;
  link.click();
  return true;
}

bindKeys({
  ArrowRight: () => follow('[data-nav="next"]'),
  " ": () => follow('[data-nav="next"]'),
  PageDown: () => follow('[data-nav="next"]'),
  ArrowLeft: () => follow('[data-nav="prev"]'),
  PageUp: () => follow('[data-nav="prev"]'),
  Home: () => follow('[data-nav="home"]'),
  r: () => follow('[data-nav="predict"]'),
  "]": () => stepBy(1),
  "[": () => stepBy(-1),
});

// Next/previous step at the same phase: the timeline form with t moved by one.
function stepBy(d) {
  const slider = stage.querySelector('input[name="t"]');
  if (!slider) return false;
  const t = Number(slider.value) + d;
  if (t < Number(slider.min) || t > Number(slider.max)) return false;
  slider.value = String(t);
  slider.dispatchEvent(new Event("change", { bubbles: true }));
  return true;
}

// A weight (edge), a unit (its bias) or a row of the update table: its chain rule, as a link would.
function openDetail(el) {
  const base = stage.querySelector("[data-detail-base]")?.dataset.detailBase;
  if (!base || !window.htmx) return;
  const url = `${base}&detail=${encodeURIComponent(el.dataset.detail)}`;
  window.htmx.ajax("GET", url, { target: "#stage", swap: "innerHTML", headers: { "HX-Target": "stage" } })
    .then(() => history.pushState(history.state, "", url));
}
stage?.addEventListener("click", (event) => {
  const el = event.target.closest("[data-detail]");
  if (el && !event.target.closest("a, button, input")) openDetail(el);
});
stage?.addEventListener("keydown", (event) => {
  const el = event.target.closest?.("[data-detail]");
  if (el && event.key === "Enter") { event.preventDefault(); openDetail(el); }
});

// Prefetch the next phase into the browser's cache (the server marks stages cacheable: a pure function of the URL).
const fetched = new Set();
function prefetchNext() {
  const next = stage?.querySelector('[data-nav="next"]');
  if (!next || fetched.has(next.href)) return;
  fetched.add(next.href);
  fetch(next.href, { headers: { "HX-Request": "true", "HX-Target": "stage" } })
    .then((response) => response.text())
    .then((html) => (window.requestIdleCallback || setTimeout)(() => warmMath(html)))  // typeset it ahead too
    .catch(() => fetched.delete(next.href));
}

document.body.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target === stage) prefetchNext();
});
// Form errors arrive as 422 with the message as HTML: show them where the form says.
document.body.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 422) { event.detail.shouldSwap = true; event.detail.isError = false; }
});
// Presentation mode changes what fits: ask for the same stage again (the URL already says present=1 or not).
document.addEventListener("bpv:present", () => {
  if (window.htmx) window.htmx.ajax("GET", window.location.href, { target: "#stage", swap: "innerHTML", headers: { "HX-Target": "stage" } });
});

// Settings panel and the example picker.
root?.addEventListener("click", (event) => {
  if (event.target.closest('[data-step-action="toggle-panel"]')) {
    root.dataset.panel = root.dataset.panel === "open" ? "closed" : "open";
  }
});
document.addEventListener("change", (event) => {
  if (event.target.id === "preset-select" && event.target.value) event.target.form.submit();
});

prefetchNext();
