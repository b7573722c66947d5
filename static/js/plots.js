// Plotly glue: one layout that reads on a projector, one config (no cloud button, no tools that mean nothing
// for the chart at hand), Plotly.react for every redraw, and charts that ride in htmx fragments as JSON.
import { PALETTE } from "./colors.js";
import { isPresent } from "./present.js";

export function deepMerge(a, b) {
  const out = Array.isArray(a) ? a.slice() : { ...a };
  for (const [k, v] of Object.entries(b || {})) {
    out[k] = v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object" ? deepMerge(a[k], v) : v;
  }
  return out;
}

/** A layout for the current mode (fonts of at least 16 px in presentation mode), merged with `extra`. */
export function layout(extra = {}) {
  const big = isPresent();
  return deepMerge({
    font: { family: getComputedStyle(document.body).fontFamily, size: big ? 18 : 13, color: "#111" },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    margin: { l: big ? 72 : 52, r: 16, t: big ? 36 : 28, b: big ? 56 : 42 },
    colorway: PALETTE,
    xaxis: { gridcolor: "#ddd", zerolinecolor: "#999", automargin: true },
    yaxis: { gridcolor: "#ddd", zerolinecolor: "#999", automargin: true },
    legend: { orientation: "h", y: -0.22 },
    hoverlabel: { font: { size: big ? 18 : 13 } },
  }, extra);
}

const ALWAYS_REMOVED = ["sendDataToCloud", "editInChartStudio", "lasso2d", "select2d", "toggleSpikelines",
  "hoverClosestCartesian", "hoverCompareCartesian"];
const REMOVED = {
  line: [],
  bar: ["zoom2d", "pan2d", "zoomIn2d", "zoomOut2d", "autoScale2d"],   // nothing to zoom into on a few bars
  heatmap: ["autoScale2d"],
};

/** The Plotly config for a kind of chart ("line", "bar", "heatmap"), with PNG and SVG downloads. */
export function config(kind = "line", filename = "chart") {
  return {
    responsive: true, displaylogo: false, showSendToCloud: false, showEditInChartStudio: false,
    modeBarButtonsToRemove: [...ALWAYS_REMOVED, ...(REMOVED[kind] || [])],
    toImageButtonOptions: { format: "png", scale: 2, filename },
    modeBarButtonsToAdd: [{
      name: "Download as SVG", icon: window.Plotly && window.Plotly.Icons.camera,
      click: (gd) => window.Plotly.downloadImage(gd, { format: "svg", filename: gd.dataset.filename || filename }),
    }],
  };
}

/** Draw or redraw a chart (Plotly.react: no new plot on each update). */
export function draw(el, data, extraLayout = {}, kind = "line") {
  if (!el || !window.Plotly) return Promise.resolve();
  return window.Plotly.react(el, data, layout(extraLayout), config(kind, el.dataset.filename || el.id || "chart"));
}

/** Draw every chart whose data rides in `root` as <script type="application/json" data-chart="TARGET_ID">
 *  {"data": [...], "layout": {...}, "kind": "line"}. */
export function drawFragments(root = document) {
  for (const script of root.querySelectorAll('script[type="application/json"][data-chart]')) {
    const el = document.getElementById(script.dataset.chart);
    if (!el) continue;
    const figure = JSON.parse(script.textContent);
    draw(el, figure.data, figure.layout, figure.kind);
  }
}

/** Redraw all charts at the new size when presentation mode changes. */
document.addEventListener("bpv:present", () => {
  for (const el of document.querySelectorAll(".js-plotly-plot")) {
    if (window.Plotly) window.Plotly.relayout(el, layout({ xaxis: el.layout.xaxis, yaxis: el.layout.yaxis, ...pick(el.layout) }));
  }
});

function pick(l) {
  const { title, shapes, annotations, showlegend, barmode } = l || {};
  return Object.fromEntries(Object.entries({ title, shapes, annotations, showlegend, barmode }).filter(([, v]) => v !== undefined));
}
