// The /race page script: it only draws and animates. The server runs the race, formats every number a person
// reads (standings, captions, tick labels of the colour bar) and sends it through htmx's SSE extension; this
// module turns the race's data block into charts and plays it back.
//
// Playback draws precomputed frames: going forward, Plotly.extendTraces appends the points between two frames
// (the head markers keep one point); going back (scrubbing), Plotly.react redraws the slice. Nothing is
// recomputed per frame, and the optimizer state of every weight is already in the page (no request to switch).
import { draw } from "./plots.js";
import { bindKeys } from "./keys.js";
import * as url from "./url.js";
import { isPresent } from "./present.js";
import { download } from "./files.js";

const FPS = 30;                  // frames per second at 1x
const $ = (id) => document.getElementById(id);
const P = () => window.Plotly;

let race = null;                 // the current race's data (see app/views/race.py page_data)
const player = { i: 0, playing: false, raf: 0, last: 0, owed: 0, drawn: 0, redraws: 0, since: 0 };

// ---- decoding --------------------------------------------------------------------------------------------------
function floats(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function prepare(data) {
  const K = data.labels.length;
  data.K = K;
  data.P = data.parameter_names.length;
  data.state = data.state.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, floats(v)])));
  // for each frame: how many path rows (steps <= the frame's step) are drawn
  const ps = data.landscape.path_steps;
  let r = 0;
  data.pathRows = data.frames.map((t) => { while (r < ps.length && ps[r] <= t) r++; return r; });
  let s = 0;
  data.stateRows = data.frames.map((t) => { while (s < data.state_steps.length && data.state_steps[s] <= t) s++; return s; });
  data.steps0 = Array.from({ length: data.steps + 1 }, (_, t) => t);
  return data;
}

// ---- the charts ----------------------------------------------------------------------------------------------------
const MARGIN = () => (isPresent() ? { l: 76, r: 20, t: 12, b: 58 } : { l: 62, r: 16, t: 10, b: 48 });

function lossTraces(upto) {
  const d = race, traces = [];
  for (let k = 0; k < d.K; k++) {
    traces.push({ x: d.steps0.slice(0, upto + 1), y: d.loss[k].slice(0, upto + 1), mode: "lines", name: d.labels[k],
      line: { color: d.colours[k], width: 3.5, dash: d.dashes[k] }, hovertemplate: `${d.labels[k]}<br>step %{x}: %{y:.4g}<extra></extra>` });
  }
  if (d.test_loss) {
    for (let k = 0; k < d.K; k++) {
      traces.push({ x: d.steps0.slice(0, upto + 1), y: d.test_loss[k].slice(0, upto + 1), mode: "lines",
        name: `${d.labels[k]} (test)`, line: { color: d.colours[k], width: 1.5, dash: d.dashes[k] },
        hovertemplate: `${d.labels[k]} test<br>step %{x}: %{y:.4g}<extra></extra>` });
    }
  }
  // a cross where the divergence rule flagged a run, once the playhead is there
  d.diverged_at.forEach((at, k) => {
    if (at === null || at > upto) return;
    const y = d.loss[k][at] ?? lastFinite(d.loss[k], at);
    traces.push({ x: [at], y: [y], mode: "markers", meta: "diverged", hoverinfo: "skip",
      marker: { symbol: "x-thin", size: 20, line: { width: 4, color: d.colours[k] } } });
  });
  return traces;
}

function lastFinite(a, upto) {
  for (let t = upto; t >= 0; t--) if (a[t] !== null) return a[t];
  return null;
}

function lossLayout() {
  const log = $("log-toggle")?.checked;
  return {
    margin: MARGIN(), showlegend: false, uirevision: "loss",
    xaxis: { title: { text: "step" }, range: [0, race.steps], automargin: false },
    yaxis: { title: { text: "loss" }, type: log ? "log" : "linear", dtick: log ? "D2" : undefined, automargin: false },
  };
}

function landscapeTraces(rows) {
  const d = race, L = d.landscape, traces = [{
    type: "contour", x: L.u, y: L.v, z: L.z, zmin: L.zmin, zmax: L.zmax, hoverinfo: "skip",
    colorscale: [[0, "#ffffff"], [1, "#5a5a5a"]], ncontours: 18, line: { width: 0.5, color: "#777" },
    contours: { coloring: "heatmap" },
    colorbar: { tickvals: L.tickvals, ticktext: L.ticktext, thickness: 14, len: 0.9, outlinewidth: 0,
                title: { text: "loss", side: "right" } },
  }];
  for (let k = 0; k < d.K; k++) {
    const p = L.paths[k].slice(0, rows);
    traces.push({ x: p.map((q) => q[0]), y: p.map((q) => q[1]), mode: "lines", hoverinfo: "skip",
      line: { color: d.colours[k], width: 3, dash: d.dashes[k] } });
  }
  for (let k = 0; k < d.K; k++) {
    const q = lastPoint(L.paths[k], rows);
    traces.push({ x: q ? [q[0]] : [], y: q ? [q[1]] : [], mode: "markers", name: d.labels[k],
      marker: { size: 15, color: d.colours[k], line: { color: "#fff", width: 2 } },
      hovertemplate: `${d.labels[k]}<extra></extra>` });
  }
  return traces;
}

function lastPoint(path, rows) {
  for (let r = rows - 1; r >= 0; r--) if (path[r][0] !== null && path[r][1] !== null) return path[r];
  return null;
}

function landscapeLayout() {
  const L = race.landscape;
  return {
    margin: { ...MARGIN(), r: 10 }, showlegend: false, uirevision: "landscape",
    xaxis: { title: { text: L.axes[0] }, range: [L.u[0], L.u[L.u.length - 1]], automargin: false, showgrid: false, zeroline: false },
    yaxis: { title: { text: L.axes[1] }, range: [L.v[0], L.v[L.v.length - 1]], automargin: false, showgrid: false, zeroline: false },
  };
}

function lrChart() {
  const d = race;
  const x = d.steps0.slice(0, d.steps);
  draw($("lr-chart"), d.learning_rate.map((y, k) => ({ x, y, mode: "lines", line: { color: d.colours[k], width: 3, dash: d.dashes[k] },
    hovertemplate: `${d.labels[k]}<br>step %{x}: η = %{y:.4g}<extra></extra>` })),
  { margin: MARGIN(), showlegend: false, xaxis: { title: { text: "step" }, automargin: false },
    yaxis: { title: { text: "η" }, type: "log", dtick: "D2", automargin: false } });
}

function stateChart() {
  const d = race, w = Number($("state-weight").value) || 0, q = $("state-quantity").value;
  const traces = [];
  for (let k = 0; k < d.K; k++) {
    const arr = d.state[k][q];
    if (!arr) continue;
    const y = new Array(d.state_steps.length);
    for (let r = 0; r < y.length; r++) { const v = arr[r * d.P + w]; y[r] = Number.isNaN(v) ? null : v; }
    traces.push({ x: d.state_steps, y, mode: "lines", line: { color: d.colours[k], width: 3, dash: d.dashes[k] },
      hovertemplate: `${d.labels[k]}<br>step %{x}: %{y:.4g}<extra></extra>` });
  }
  const t = d.frames[player.i];
  draw($("state-chart"), traces, {
    margin: MARGIN(), showlegend: false,
    xaxis: { title: { text: "step" }, range: [0, d.steps], automargin: false },
    yaxis: { title: { text: "value" }, automargin: false, exponentformat: "power" },
    shapes: [{ type: "line", x0: t, x1: t, yref: "paper", y0: 0, y1: 1, line: { color: "#111", width: 1.5, dash: "dot" } }],
  });
}

// ---- playback --------------------------------------------------------------------------------------------------------
/** Show frame i: extend the curves and paths when going forward, redraw the slice when going back. */
function setFrame(i, { full = false } = {}) {
  const d = race;
  i = Math.max(0, Math.min(d.frames.length - 1, i));
  const from = player.i, t0 = d.frames[from], t1 = d.frames[i];
  const crossesDivergence = d.diverged_at.some((at) => at !== null && at > t0 && at <= t1);
  if (full || i < from || crossesDivergence || !$("loss-chart").data) {
    draw($("loss-chart"), lossTraces(t1), lossLayout());
    draw($("landscape-chart"), landscapeTraces(d.pathRows[i]), landscapeLayout(), "heatmap");
  } else if (i > from) {
    const n = d.test_loss ? 2 * d.K : d.K;
    const xs = [], ys = [], idx = [];
    const steps = d.steps0.slice(t0 + 1, t1 + 1);
    for (let k = 0; k < d.K; k++) { xs.push(steps); ys.push(d.loss[k].slice(t0 + 1, t1 + 1)); idx.push(k); }
    if (d.test_loss) for (let k = 0; k < d.K; k++) { xs.push(steps); ys.push(d.test_loss[k].slice(t0 + 1, t1 + 1)); idx.push(d.K + k); }
    P().extendTraces($("loss-chart"), { x: xs, y: ys }, idx.slice(0, n));
    const r0 = d.pathRows[from], r1 = d.pathRows[i];
    if (r1 > r0) {
      const px = [], py = [], pidx = [], max = [];
      for (let k = 0; k < d.K; k++) {
        const rows = d.landscape.paths[k].slice(r0, r1);
        px.push(rows.map((q) => q[0])); py.push(rows.map((q) => q[1])); pidx.push(1 + k); max.push(1e9);
      }
      for (let k = 0; k < d.K; k++) {
        const q = lastPoint(d.landscape.paths[k], r1);
        px.push(q ? [q[0]] : []); py.push(q ? [q[1]] : []); pidx.push(1 + d.K + k); max.push(1);
      }
      P().extendTraces($("landscape-chart"), { x: px, y: py }, pidx, { x: max, y: max });
    }
  }
  player.i = i;
  player.redraws++;
  const shape = $("state-chart").layout?.shapes;
  if (shape) P().relayout($("state-chart"), { "shapes[0].x0": t1, "shapes[0].x1": t1 });
  showStandings(i);
  const block = $("race-block");
  block.dataset.frame = String(i);
  block.dataset.step = String(t1);
}

function showStandings(i) {
  const rows = race.standings[i];
  for (const tr of document.querySelectorAll("#standings-body tr")) {
    const r = rows[Number(tr.dataset.k)];
    if (!r) continue;
    for (const cell of tr.querySelectorAll("[data-f]")) cell.textContent = r[cell.dataset.f] ?? "";
    tr.classList.toggle("diverged", !!r.status);
  }
  $("step-readout").textContent = race.step_text[i];
  $("scrub").value = String(i);
}

function tick(now) {
  if (!player.playing) return;
  const speed = Number($("speed").value) || 1;
  player.owed += ((now - player.last) / 1000) * FPS * speed;
  player.last = now;
  const advance = Math.floor(player.owed);
  if (advance >= 1) {
    player.owed -= advance;
    const next = Math.min(player.i + advance, race.frames.length - 1);
    setFrame(next);
    if (next >= race.frames.length - 1) { pause(); return; }
  }
  player.raf = requestAnimationFrame(tick);
}

function play() {
  if (!race) return;
  if (player.i >= race.frames.length - 1) setFrame(0);
  player.playing = true;
  player.last = performance.now();
  player.owed = 0;
  player.since = player.last;
  player.redraws = 0;
  $("play").innerHTML = "&#10074;&#10074;";
  $("play").setAttribute("aria-label", "Pause");
  player.raf = requestAnimationFrame(tick);
}

function pause() {
  player.playing = false;
  cancelAnimationFrame(player.raf);
  $("play").innerHTML = "&#9654;";
  $("play").setAttribute("aria-label", "Play");
  saveView();
}

function toggle() { if (player.playing) pause(); else play(); }

function go(i) { if (!race) return false; if (player.playing) pause(); setFrame(i); saveView(); return true; }

function saveView() {
  if (!race) return;
  url.update({ t: race.frames[player.i], w: $("state-weight").value === "0" ? null : $("state-weight").value,
               q: $("state-quantity").value === "update" ? null : $("state-quantity").value,
               log: $("log-toggle").checked ? null : "0" });
}

// ---- a race arrives ----------------------------------------------------------------------------------------------
function start(data) {
  if (player.playing) pause();
  race = prepare(data);
  const L = race.landscape;
  $("landscape-caption").textContent = isPresent() ? L.caption_short : L.caption;
  $("landscape-range").textContent = L.range_text;
  const scrub = $("scrub");
  scrub.max = String(race.frames.length - 1);
  scrub.disabled = false;
  $("play").disabled = false;
  for (const id of ["export-png", "export-svg"]) $(id).disabled = false;
  const w = url.getInt("w", 0), q = url.get("q");
  if (w > 0 && w < race.P) $("state-weight").value = String(w);
  if (q && [...$("state-quantity").options].some((o) => o.value === q)) $("state-quantity").value = q;
  if (url.get("log") === "0") $("log-toggle").checked = false;
  const t = url.getInt("t", null);
  let i = race.frames.length - 1;
  if (t !== null) {
    i = race.frames.findIndex((s) => s >= t);
    if (i < 0) i = race.frames.length - 1;
  }
  player.i = i;
  setFrame(i, { full: true });
  lrChart();
  stateChart();
  $("race-block").dataset.ready = "1";
  document.dispatchEvent(new CustomEvent("bpv:race-drawn"));
}

function readData() {
  const el = $("race-json");
  if (!el) return;
  const data = JSON.parse(el.textContent);
  el.remove();  // a few MB of text the page no longer needs
  start(data);
}

document.body.addEventListener("htmx:sseMessage", (event) => {
  if (event.detail && event.detail.type === "race") readData();
});

// a new race block (the form's Start): the old race stops; its stream opens by itself (hx-ext="sse")
document.body.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr && xhr.status === 422) {  // the form names the field that is wrong
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    event.detail.target = $("form-error");
    return;
  }
  if (event.detail.target && event.detail.target.id === "race-block") {
    if (player.playing) pause();
    race = null;
    $("form-error").replaceChildren();
  }
});

// ---- controls --------------------------------------------------------------------------------------------------------
document.addEventListener("click", (event) => {
  const el = event.target.closest("button, [data-remove]");
  if (!el) return;
  if (el.id === "play") toggle();
  else if (el.id === "export-png") exportView("png");
  else if (el.id === "export-svg") exportView("svg");
  else if (el.hasAttribute("data-remove")) {
    const cards = document.querySelectorAll("#contestants .contestant");
    if (cards.length > 2) el.closest(".contestant").remove();
  }
});

document.addEventListener("input", (event) => {
  if (event.target.id === "scrub" && race) go(Number(event.target.value));
});

document.addEventListener("change", (event) => {
  if (!race) return;
  const id = event.target.id;
  if (id === "state-weight" || id === "state-quantity") { stateChart(); saveView(); }
  else if (id === "log-toggle") { P().relayout($("loss-chart"), { "yaxis.type": event.target.checked ? "log" : "linear" }); saveView(); }
});

const step = (n) => (event) => go(player.i + (event.shiftKey ? 10 * n : n));
bindKeys({
  " ": () => { if (!race) return false; toggle(); return true; },
  ArrowRight: step(1), ArrowLeft: step(-1), PageDown: step(1), PageUp: step(-1),
  Home: () => go(0), End: () => go(race ? race.frames.length - 1 : 0),
  l: () => { if (!race) return false; $("log-toggle").click(); return true; },
});

// ---- export: the whole race view as one PNG or SVG ---------------------------------------------------------------------
async function exportView(format) {
  const charts = ["loss-chart", "landscape-chart", "state-chart", "lr-chart"].map($).filter((el) => el && el.data);
  const W = 900, H = 420, pad = 16, header = 40, tableRow = 26;
  const rows = [...document.querySelectorAll("#standings-body tr")].map((tr) =>
    [...tr.querySelectorAll("td, th")].map((c) => c.textContent.trim().replace(/\s+/g, " ")).join("   "));
  const images = await Promise.all(charts.map((el) => P().toImage(el, { format, width: W, height: H })));
  const cols = 2, gridRows = Math.ceil(images.length / cols);
  const width = cols * W + (cols + 1) * pad;
  const tableTop = header + gridRows * (H + pad) + pad;
  const height = tableTop + (rows.length + 1) * tableRow + pad;
  const title = `Optimizer race, ${race.step_text[player.i]}`;
  const name = `race-${race.spec_id.slice(0, 12)}-t${race.frames[player.i]}`;
  if (format === "svg") {
    const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const parts = [`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">`,
      `<rect width="100%" height="100%" fill="#fff"/>`,
      `<text x="${pad}" y="28" font-family="sans-serif" font-size="22" font-weight="700">${esc(title)}</text>`];
    images.forEach((src, n) => {
      const x = pad + (n % cols) * (W + pad), y = header + Math.floor(n / cols) * (H + pad);
      parts.push(`<image x="${x}" y="${y}" width="${W}" height="${H}" href="${esc(src)}"/>`);
    });
    rows.forEach((r, n) => parts.push(`<text x="${pad}" y="${tableTop + (n + 1) * tableRow}" font-family="sans-serif" font-size="18">${esc(r)}</text>`));
    parts.push("</svg>");
    download(`${name}.svg`, parts.join(""), "image/svg+xml");
    return;
  }
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = "#111"; ctx.font = "700 22px sans-serif"; ctx.fillText(title, pad, 28);
  await Promise.all(images.map((src, n) => new Promise((resolve) => {
    const img = new Image();
    img.onload = () => { ctx.drawImage(img, pad + (n % cols) * (W + pad), header + Math.floor(n / cols) * (H + pad), W, H); resolve(); };
    img.onerror = resolve;
    img.src = src;
  })));
  ctx.font = "18px sans-serif";
  rows.forEach((r, n) => ctx.fillText(r, pad, tableTop + (n + 1) * tableRow));
  canvas.toBlob((blob) => download(`${name}.png`, blob, "image/png"), "image/png");
}

// redraw at the new size when presentation mode changes (fonts and margins follow the mode)
document.addEventListener("bpv:present", () => {
  if (!race) return;
  $("landscape-caption").textContent = isPresent() ? race.landscape.caption_short : race.landscape.caption;
  setFrame(player.i, { full: true }); lrChart(); stateChart();
});

// test and benchmark hook: the frame count, and a way to time redraws without the clock of requestAnimationFrame
window.bpvRace = {
  frames: () => (race ? race.frames.length : 0),
  setFrame: (i) => setFrame(i),
  frame: () => player.i,
  play, pause,
  redraws: () => player.redraws,
};
readData();  // a data block already in the page (none today: the stream brings it)
