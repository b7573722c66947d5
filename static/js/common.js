// LEGACY: the helpers of the pages written before the shared ES modules (colors, keys, plots, present, request,
// url). Pages move to those modules; this file goes when the last page has moved.
(function () {
  "use strict";
  const root = document.documentElement;

  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442"];

  function isPresent() { return root.classList.contains("present"); }

  function setPresent(on) {
    root.classList.toggle("present", on);
    const url = new URL(window.location.href);
    if (on) url.searchParams.set("present", "1"); else url.searchParams.delete("present");
    history.replaceState(history.state, "", url);
    document.dispatchEvent(new CustomEvent("bpv:present", { detail: { on } }));
    window.dispatchEvent(new Event("resize"));  // Plotly charts re-measure their containers
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
  }

  function typingInField(event) {
    const t = event.target;
    return t && (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName));
  }

  // Keys, buttons and ?present=1 are handled by the shared modules (keys.js, present.js) loaded by app.js.

  // Plotly layout defaults that read well on a projector; sizes follow the current mode.
  function plotLayout(extra) {
    const big = isPresent();
    const base = {
      font: { family: getComputedStyle(document.body).fontFamily, size: big ? 20 : 13, color: "#111" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
      margin: { l: big ? 70 : 50, r: 15, t: big ? 40 : 30, b: big ? 60 : 40 },
      colorway: PALETTE,
      xaxis: { gridcolor: "#ddd", zerolinecolor: "#999" },
      yaxis: { gridcolor: "#ddd", zerolinecolor: "#999" },
      legend: { orientation: "h", y: -0.2 },
    };
    return deepMerge(base, extra || {});
  }

  const plotConfig = {
    responsive: true, displaylogo: false,
    toImageButtonOptions: { format: "png", scale: 2 },
    modeBarButtonsToAdd: [{
      name: "Download as SVG", icon: window.Plotly && window.Plotly.Icons.camera,
      click: (gd) => window.Plotly.downloadImage(gd, { format: "svg", filename: gd.id || "chart" }),
    }],
  };

  function deepMerge(a, b) {
    const out = Array.isArray(a) ? a.slice() : { ...a };
    for (const [k, v] of Object.entries(b)) {
      out[k] = v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object" ? deepMerge(a[k], v) : v;
    }
    return out;
  }

  // Formats a number the way the notes print them: fixed decimals, a real minus sign, null as a dash.
  function fmt(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "\u2014";
    if (!Number.isFinite(x)) return x > 0 ? "\u221e" : "\u2212\u221e";
    const abs = Math.abs(x);
    const s = abs !== 0 && (abs < 10 ** -digits || abs >= 1e6) ? abs.toExponential(2) : abs.toFixed(digits);
    return (x < 0 && Number(s) !== 0 ? "\u2212" : "") + s;
  }

  function download(filename, text, type = "text/plain") {
    const blob = new Blob([text], { type });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  function renderMath(el) {
    if (window.renderMathInElement) {
      window.renderMathInElement(el, {
        delimiters: [{ left: "$$", right: "$$", display: true }, { left: "$", right: "$", display: false }],
        throwOnError: false,
      });
    }
  }

  window.BPV = { PALETTE, isPresent, setPresent, plotLayout, plotConfig, fmt, download, renderMath, deepMerge };
})();
