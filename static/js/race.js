// The /race page script: it only draws and animates. The server runs the race, formats every number a person
// reads (standings, captions, tick labels of the colour bar) and sends it through htmx's SSE extension; this
// module turns the race's data block into charts and plays it back.
//
// Playback draws precomputed frames and never recomputes. Plotly draws each chart once (Plotly.react); what
// moves with the playhead is drawn over it without redrawing a trace, because a Plotly redraw of 8 x 1,000
// points costs more than a frame: an opaque curtain hides the loss curves after the playhead (shown or hidden,
// never faded), the paths grow on a canvas laid on the landscape's plot area (a canvas keeps what it has drawn,
// so a frame draws only its new segments), and the contestants' positions are dots moved by CSS. The optimizer
// state of every weight is already in the page: switching weights sends no request.
import { draw } from "./plots.js";
import { bindKeys } from "./keys.js";
import * as url from "./url.js";
import { isPresent } from "./present.js";
import { download } from "./files.js";
import { CLASSES, divergingTable } from "./colors.js";

const FPS = 30;                  // frames per second at 1x
const $ = (id) => document.getElementById(id);
const P = () => window.Plotly;

let race = null;
const cost = { curtain: 0, paths: 0, state: 0, standings: 0 };
const timeline = {};  // performance.now() of each stage of the last race (benchmarks/race.py prints them)
const mark = (name) => { timeline[name] = performance.now(); };  // ms spent per part of a redraw (benchmarks/race.py)                 // the current race's data (see app/views/race.py page_data)
const player = { i: 0, playing: false, raf: 0, last: 0, owed: 0, drawn: 0, redraws: 0, since: 0 };

// ---- decoding --------------------------------------------------------------------------------------------------
// a state table from app/views/race.py _b64: float32, weight by weight, byte-shuffled (byte b of value i at b*n + i)
function floats(b64) {
  const bin = atob(b64), n = bin.length >> 2;
  const bytes = new Uint8Array(bin.length);
  for (let b = 0; b < 4; b++) for (let i = 0; i < n; i++) bytes[4 * i + b] = bin.charCodeAt(b * n + i);
  return new Float32Array(bytes.buffer);
}

function prepare(data) {
  const K = data.labels.length;
  data.K = K;
  data.P = data.parameter_names.length;
  data.state = data.state.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, floats(v)])));
  let s = 0;
  data.stateRows = data.frames.map((t) => { while (s < data.state_steps.length && data.state_steps[s] <= t) s++; return s; });
  data.steps0 = Array.from({ length: data.steps + 1 }, (_, t) => t);
  return data;
}

// ---- the charts ----------------------------------------------------------------------------------------------------
const MARGIN = () => (isPresent() ? { l: 92, r: 20, t: 12, b: 58 } : { l: 62, r: 16, t: 10, b: 48 });

function lossTraces() {
  const d = race, traces = [];
  for (let k = 0; k < d.K; k++) {
    // connectgaps: a mini-batch race has losses only at its frames (page_data's evaluate_every)
    traces.push({ x: d.steps0, y: d.loss[k], mode: "lines", name: d.labels[k], connectgaps: true,
      line: { color: d.colours[k], width: 3.5, dash: d.dashes[k] }, hovertemplate: `${d.labels[k]}<br>step %{x}: %{y:.4g}<extra></extra>` });
  }
  if (d.test_loss) {
    for (let k = 0; k < d.K; k++) {
      traces.push({ x: d.steps0, y: d.test_loss[k], mode: "lines", connectgaps: true,
        name: `${d.labels[k]} (test)`, line: { color: d.colours[k], width: 1.5, dash: d.dashes[k] },
        hovertemplate: `${d.labels[k]} test<br>step %{x}: %{y:.4g}<extra></extra>` });
    }
  }
  // a cross where the divergence rule flagged a run (hidden, like the curves, until the playhead is there)
  d.diverged_at.forEach((at, k) => {
    if (at === null) return;
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
    margin: MARGIN(), showlegend: false, uirevision: "loss", hovermode: "closest",
    xaxis: { title: { text: "step" }, range: [0, race.steps], automargin: false },
    yaxis: { title: { text: race.loss_axis || "loss" }, type: log ? "log" : "linear", dtick: log ? race.loss_dtick : undefined,
             tickformat: log && race.loss_dtick === "D2" ? ".1~g" : undefined, exponentformat: "power", automargin: false },
  };
}

// the marks of a 2-D function's contour (server-made text): the minima, saddles and the start
const MARK = { minimum: { symbol: "star", size: 20 }, saddle: { symbol: "x", size: 16 }, start: { symbol: "circle-open", size: 16 } };

function contourTrace() {
  const L = race.landscape;
  // a 2-D function's contours are given (log-spaced, from the server); a network's landscape lets Plotly pick 18
  const levels = L.contours ? { autocontour: false, contours: { coloring: "heatmap", ...L.contours } }
    : { ncontours: 18, contours: { coloring: "heatmap" } };
  const traces = [{
    type: "contour", x: L.u, y: L.v, z: L.z, zmin: L.zmin, zmax: L.zmax, hoverinfo: "skip",
    colorscale: [[0, "#ffffff"], [1, "#5a5a5a"]], line: { width: 0.5, color: "#777" }, ...levels,
    colorbar: { tickvals: L.tickvals, ticktext: L.ticktext, thickness: 14, len: 0.9, outlinewidth: 0,
                title: { text: L.colorbar_title || "loss", side: "right" } },
  }];
  for (const kind of ["minimum", "saddle", "start"]) {
    const marks = (L.marks || []).filter((m) => m.kind === kind);
    if (!marks.length) continue;
    traces.push({ type: "scatter", mode: "markers", meta: kind, x: marks.map((m) => m.x), y: marks.map((m) => m.y),
      text: marks.map((m) => m.text), hovertemplate: "%{text}<extra></extra>", cliponaxis: false,
      marker: { ...MARK[kind], color: "#111", line: { width: kind === "minimum" ? 1.5 : 2.5, color: kind === "minimum" ? "#fff" : "#111" } } });
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
    margin: { ...MARGIN(), r: 10 }, showlegend: false, hovermode: L.marks ? "closest" : false,
    xaxis: { title: { text: L.axes[0] }, range: [L.u[0], L.u[L.u.length - 1]], automargin: false, showgrid: false,
             zeroline: false, fixedrange: true },
    yaxis: { title: { text: L.axes[1] }, range: [L.v[0], L.v[L.v.length - 1]], automargin: false, showgrid: false,
             zeroline: false, fixedrange: true },
  };
}

// ---- overlays: what moves with the playhead, drawn without redrawing any Plotly trace ------------------------------
/** The plot area of a drawn Plotly chart in CSS pixels, and its data-to-pixel maps (the axes' own). */
function plotArea(gd) {
  const fl = gd && gd._fullLayout;
  if (!fl || !fl.xaxis || !fl.xaxis._length) return null;
  const xa = fl.xaxis, ya = fl.yaxis;
  return { left: xa._offset, top: ya._offset, width: xa._length, height: ya._length,
           x: (v) => xa._offset + xa.l2p(v), y: (v) => ya._offset + ya.l2p(ya.type === "log" ? Math.log10(v) : v) };
}

/** The loss chart's curtain (everything after step t is hidden: opaque, never faded) and its playhead line. */
function placeCurtain(t) {
  const a = plotArea($("loss-chart")), el = $("loss-curtain");
  if (!a || !el) return;
  const x = Math.min(a.left + a.width, Math.max(a.left, a.x(t)));
  Object.assign(el.style, { left: `${x}px`, top: `${a.top}px`, width: `${a.left + a.width - x + 1}px`, height: `${a.height}px` });
  el.hidden = false;
  placeLine($("loss-playhead"), a, x);
}

function placeLine(el, a, x) {
  if (!el || !a) return;
  Object.assign(el.style, { left: `${x}px`, top: `${a.top}px`, height: `${a.height}px` });
  el.hidden = false;
}

const paths = { drawn: 0, area: null };

/** Size the paths' canvas to the landscape's plot area (device pixels) and redraw the paths up to `rows`. */
function resetPaths(rows) {
  const canvas = $("paths-canvas"), a = plotArea($("landscape-chart"));
  if (!canvas || !a) return;
  const ratio = window.devicePixelRatio || 1;
  Object.assign(canvas.style, { left: `${a.left}px`, top: `${a.top}px`, width: `${a.width}px`, height: `${a.height}px` });
  canvas.width = Math.round(a.width * ratio);
  canvas.height = Math.round(a.height * ratio);
  canvas.getContext("2d").setTransform(ratio, 0, 0, ratio, -a.left * ratio, -a.top * ratio);  // the chart's pixels
  paths.area = a;
  paths.drawn = 0;
  growPaths(rows);
}

const DASH = { solid: [], dot: [2, 5], dash: [9, 5], dashdot: [9, 4, 2, 4], longdash: [14, 5], longdashdot: [14, 4, 2, 4] };

/** Draw the path segments from the rows drawn so far up to `rows` (a canvas keeps what it has drawn). */
function growPaths(rows) {
  const canvas = $("paths-canvas"), a = paths.area;
  if (!canvas || !a || rows <= paths.drawn) { placeHeads(rows); return; }
  const ctx = canvas.getContext("2d"), d = race;
  ctx.lineWidth = isPresent() ? 4 : 3;
  ctx.lineJoin = "round";
  for (let k = 0; k < d.K; k++) {
    const p = d.landscape.paths[k];
    ctx.strokeStyle = d.colours[k];
    ctx.setLineDash(DASH[d.dashes[k]] || []);
    ctx.beginPath();
    let open = false;
    for (let r = Math.max(0, paths.drawn - 1); r < rows; r++) {
      const q = p[r];
      if (q[0] === null || q[1] === null) { open = false; continue; }
      const x = a.x(q[0]), y = a.y(q[1]);
      if (open) ctx.lineTo(x, y); else { ctx.moveTo(x, y); open = true; }
    }
    ctx.stroke();
  }
  paths.drawn = rows;
  placeHeads(rows);
}

/** Each contestant's position at the playhead: a dot in its colour (HTML, moved, never redrawn). */
function placeHeads(rows) {
  const box = $("paths-heads"), a = paths.area, d = race;
  if (!box || !a) return;
  if (box.children.length !== d.K) {
    box.replaceChildren(...d.colours.map((c, k) => {
      const dot = document.createElement("span");
      dot.className = "head";
      dot.style.setProperty("--c", c);
      dot.title = d.labels[k];
      return dot;
    }));
  }
  const L = d.landscape;
  [...box.children].forEach((dot, k) => {
    const q = lastPoint(L.paths[k], rows);
    const inside = q && q[0] >= L.u[0] && q[0] <= L.u[L.u.length - 1] && q[1] >= L.v[0] && q[1] <= L.v[L.v.length - 1];
    dot.hidden = !inside;
    if (inside) { dot.style.left = `${a.x(q[0])}px`; dot.style.top = `${a.y(q[1])}px`; }
  });
}

/** The landscape arrives after the curves (the server computes it while the page draws them). */
function setLandscape(L) {
  race.landscape = L;
  if (L.boundary) L.boundary.bytes = Uint8Array.from(atob(L.boundary.z), (ch) => ch.charCodeAt(0));
  boundaryShown.s = -1;
  // for each frame: how many path rows (steps <= the frame's step) are drawn
  const ps = L.path_steps;
  let r = 0;
  race.pathRows = race.frames.map((t) => { while (r < ps.length && ps[r] <= t) r++; return r; });
  $("landscape-caption").textContent = isPresent() ? L.caption_short : L.caption;
  $("landscape-range").textContent = L.range_text;
  return drawLandscape();
}

// ---- decision boundaries: P(class 1) pictures, drawn into canvases only when the snapshot changes ------------------
const PROBABILITY = divergingTable(101, true);  // 0..100 % -> pale blue .. pale vermillion (points drawn on top)
const boundaryShown = { s: -1 };

function drawBoundary(t) {
  const B = race.landscape && race.landscape.boundary;
  const card = $("boundary-card");
  if (!card || !race.landscape) return;  // the boundaries come with the landscape
  if (!B) { card.hidden = true; return; }
  card.hidden = false;
  let s = 0;
  while (s + 1 < B.steps.length && B.steps[s + 1] <= t) s++;
  if (s === boundaryShown.s) return;
  boundaryShown.s = s;
  $("boundary-step").textContent = B.step_text[s];
  const R = B.resolution, picture = document.createElement("canvas");
  picture.width = R; picture.height = R;
  const pctx = picture.getContext("2d"), image = pctx.createImageData(R, R);
  for (const canvas of document.querySelectorAll("#boundary-card canvas")) {
    const k = Number(canvas.dataset.k), base = (k * B.steps.length + s) * R * R;
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < R; c++) {
        const v = B.bytes[base + r * R + c], o = ((R - 1 - r) * R + c) * 4;  // grid row 0 is the lowest y
        if (v === 255) { image.data[o] = image.data[o + 1] = image.data[o + 2] = 255; }
        else { image.data[o] = PROBABILITY[3 * v]; image.data[o + 1] = PROBABILITY[3 * v + 1]; image.data[o + 2] = PROBABILITY[3 * v + 2]; }
        image.data[o + 3] = 255;
      }
    }
    pctx.putImageData(image, 0, 0);
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(picture, 0, 0, W, H);
    const [x0, x1] = B.x, [y0, y1] = B.y;
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#fff";
    B.points.forEach(([x, y], i) => {
      ctx.beginPath();
      ctx.arc(((x - x0) / (x1 - x0)) * W, (1 - (y - y0) / (y1 - y0)) * H, 3, 0, 2 * Math.PI);
      ctx.fillStyle = CLASSES[B.labels[i]] || "#000";
      ctx.fill();
      ctx.stroke();
    });
  }
}

function drawLandscape() {
  if (!race.landscape) return Promise.resolve();
  return draw($("landscape-chart"), contourTrace(), landscapeLayout(), "heatmap").then(() => resetPaths(race.pathRows[player.i]));
}

function drawLoss() {
  return draw($("loss-chart"), lossTraces(), lossLayout()).then(() => placeCurtain(race.frames[player.i]));
}

function lrChart() {
  const d = race;
  const x = d.steps0.slice(0, d.steps);
  return draw($("lr-chart"), d.learning_rate.map((y, k) => ({ x, y, mode: "lines", line: { color: d.colours[k], width: 3, dash: d.dashes[k] },
    hovertemplate: `${d.labels[k]}<br>step %{x}: η = %{y:.4g}<extra></extra>` })),
  { margin: MARGIN(), showlegend: false, xaxis: { title: { text: "step" }, automargin: false },
    yaxis: { title: { text: "η" }, type: "log", dtick: "D2", tickformat: ".1~g", automargin: false } });
}

function stateChart() {
  const d = race, w = Number($("state-weight").value) || 0, q = $("state-quantity").value;
  const traces = [];
  for (let k = 0; k < d.K; k++) {
    const arr = d.state[k][q];
    if (!arr) continue;
    const y = new Array(d.state_steps.length);
    for (let r = 0; r < y.length; r++) { const v = arr[w * y.length + r]; y[r] = Number.isNaN(v) ? null : v; }
    traces.push({ x: d.state_steps, y, mode: "lines", line: { color: d.colours[k], width: 3, dash: d.dashes[k] },
      hovertemplate: `${d.labels[k]}<br>step %{x}: %{y:.4g}<extra></extra>` });
  }
  const t = d.frames[player.i];
  return draw($("state-chart"), traces, {
    margin: MARGIN(), showlegend: false,
    xaxis: { title: { text: "step" }, range: [0, d.steps], automargin: false },
    yaxis: { title: { text: "value" }, automargin: false, exponentformat: "power" },
  }).then(() => { const a = plotArea($("state-chart")); if (a) placeLine($("state-playhead"), a, a.x(t)); });
}

// ---- playback --------------------------------------------------------------------------------------------------------
/** Show frame i: move the loss chart's curtain and the playheads, grow the paths, update the standings. */
function setFrame(i, { full = false } = {}) {
  const d = race;
  i = Math.max(0, Math.min(d.frames.length - 1, i));
  const from = player.i, t1 = d.frames[i];
  player.i = i;
  if (full || !$("loss-chart").data) {
    drawLoss();
    drawLandscape();
  } else if (d.landscape) {
    let c = performance.now();
    placeCurtain(t1);
    cost.curtain += performance.now() - c; c = performance.now();
    if (d.pathRows[i] < d.pathRows[from]) resetPaths(d.pathRows[i]); else growPaths(d.pathRows[i]);
    cost.paths += performance.now() - c;
  }
  let c = performance.now();
  const a = plotArea($("state-chart"));
  if (a) placeLine($("state-playhead"), a, a.x(t1));
  cost.state += performance.now() - c; c = performance.now();
  showStandings(i);
  drawBoundary(t1);
  cost.standings += performance.now() - c;
  player.redraws++;
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
  race.drawn = Promise.all([drawLoss(), lrChart(), stateChart()]).then(() => { setFrame(player.i); mark("curves_drawn"); });
}

function readBlock(id) {
  const el = $(id);
  if (!el) return null;
  const data = JSON.parse(el.textContent);
  el.remove();  // a few MB of text the page no longer needs
  return data;
}

document.body.addEventListener("htmx:sseOpen", () => mark("stream_open"));
document.body.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.elt && event.detail.elt.id === "race-setup") {
    for (const k of Object.keys(timeline)) delete timeline[k];
    mark("start");
  }
});
document.body.addEventListener("htmx:sseMessage", (event) => {
  const type = event.detail && event.detail.type;
  if (type === "race") {
    mark("curves_received");
    const data = readBlock("race-json");
    if (data) start(data);
  } else if (type === "landscape" && race) {
    mark("landscape_received");
    const L = readBlock("landscape-json");
    if (!L) return;
    const current = race;
    Promise.all([race.drawn, setLandscape(L)]).then(() => {
      if (race !== current) return;
      setFrame(player.i);
      mark("drawn");
      $("race-block").dataset.ready = "1";  // every chart drawn: what tests and benchmarks wait for
      document.dispatchEvent(new CustomEvent("bpv:race-drawn"));
    });
  }
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
    mark("block_received");
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
  else if (id === "log-toggle") { drawLoss(); saveView(); }
});

const step = (n) => (event) => go(player.i + (event.shiftKey ? 10 * n : n));
bindKeys({
  " ": () => { if (!race) return false; toggle(); return true; },
  ArrowRight: step(1), ArrowLeft: step(-1), PageDown: step(1), PageUp: step(-1),
  Home: () => go(0), End: () => go(race ? race.frames.length - 1 : 0),
  l: () => { if (!race) return false; $("log-toggle").click(); return true; },
});

// ---- export: the whole race view as one PNG or SVG ---------------------------------------------------------------------
/** The overlays of a chart in its own pixels: the curtain (a rect to hide), the paths' canvas, the heads. */
function overlaysOf(el) {
  const out = { rects: [], canvas: null, dots: [] };
  const host = el.parentElement;
  for (const o of host.querySelectorAll(".curtain:not([hidden])")) {
    out.rects.push([o.offsetLeft, o.offsetTop, o.offsetWidth, o.offsetHeight]);
  }
  const canvas = host.querySelector("canvas");
  if (canvas && canvas.width) out.canvas = { src: canvas.toDataURL("image/png"), x: canvas.offsetLeft, y: canvas.offsetTop, w: canvas.offsetWidth, h: canvas.offsetHeight };
  for (const dot of host.querySelectorAll(".head:not([hidden])")) {
    out.dots.push({ x: dot.offsetLeft, y: dot.offsetTop, c: getComputedStyle(dot).backgroundColor });
  }
  return out;
}

async function exportView(format) {
  const charts = ["loss-chart", "landscape-chart", "state-chart", "lr-chart"].map($).filter((el) => el && el.data);
  const W = 900, H = 420, pad = 16, header = 40, tableRow = 26, cols = 2;
  const rows = [...document.querySelectorAll("#standings-body tr")].map((tr) =>
    [...tr.querySelectorAll("td, th")].map((c) => c.textContent.trim().replace(/\s+/g, " ")).join("   "));
  const images = await Promise.all(charts.map((el) => P().toImage(el, { format, width: el._fullLayout.width, height: el._fullLayout.height })));
  const width = cols * W + (cols + 1) * pad;
  const tableTop = header + 2 * (H + pad) + pad;
  const height = tableTop + (rows.length + 1) * tableRow + pad;
  const title = `Optimizer race, ${race.step_text[player.i]}`;
  const name = `race-${race.spec_id.slice(0, 12)}-t${race.frames[player.i]}`;
  const place = (n, el) => ({ x: pad + (n % cols) * (W + pad), y: header + Math.floor(n / cols) * (H + pad),
                              sx: W / el._fullLayout.width, sy: H / el._fullLayout.height });
  if (format === "svg") {
    const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
    const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`,
      `<rect width="100%" height="100%" fill="#fff"/>`,
      `<text x="${pad}" y="28" font-family="sans-serif" font-size="22" font-weight="700">${esc(title)}</text>`];
    charts.forEach((el, n) => {
      const p = place(n, el), o = overlaysOf(el);
      parts.push(`<image x="${p.x}" y="${p.y}" width="${W}" height="${H}" href="${esc(images[n])}"/>`);
      parts.push(`<g transform="translate(${p.x} ${p.y}) scale(${p.sx} ${p.sy})">`);
      for (const [x, y, w, h] of o.rects) parts.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="#fff"/>`);
      if (o.canvas) parts.push(`<image x="${o.canvas.x}" y="${o.canvas.y}" width="${o.canvas.w}" height="${o.canvas.h}" href="${esc(o.canvas.src)}"/>`);
      for (const d of o.dots) parts.push(`<circle cx="${d.x}" cy="${d.y}" r="8" fill="${esc(d.c)}" stroke="#fff" stroke-width="2"/>`);
      parts.push("</g>");
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
  const load = (src) => new Promise((resolve) => { const img = new Image(); img.onload = () => resolve(img); img.onerror = () => resolve(null); img.src = src; });
  for (const [n, el] of charts.entries()) {
    const p = place(n, el), o = overlaysOf(el), img = await load(images[n]);
    if (img) ctx.drawImage(img, p.x, p.y, W, H);
    ctx.save();
    ctx.translate(p.x, p.y); ctx.scale(p.sx, p.sy);
    ctx.fillStyle = "#fff";
    for (const [x, y, w, h] of o.rects) ctx.fillRect(x, y, w, h);
    if (o.canvas) { const layer = await load(o.canvas.src); if (layer) ctx.drawImage(layer, o.canvas.x, o.canvas.y, o.canvas.w, o.canvas.h); }
    for (const d of o.dots) {
      ctx.beginPath(); ctx.arc(d.x, d.y, 8, 0, 2 * Math.PI); ctx.fillStyle = d.c; ctx.fill();
      ctx.lineWidth = 2; ctx.strokeStyle = "#fff"; ctx.stroke();
    }
    ctx.restore();
  }
  ctx.fillStyle = "#111"; ctx.font = "18px sans-serif";
  rows.forEach((r, n) => ctx.fillText(r, pad, tableTop + (n + 1) * tableRow));
  canvas.toBlob((blob) => download(`${name}.png`, blob, "image/png"), "image/png");
}

// redraw at the new size when presentation mode changes (fonts and margins follow the mode)
document.addEventListener("bpv:present", () => {
  if (!race) return;
  if (race.landscape) $("landscape-caption").textContent = isPresent() ? race.landscape.caption_short : race.landscape.caption;
  setFrame(player.i, { full: true }); lrChart(); stateChart();
});

// test and benchmark hook: the frame count, and a way to time redraws without the clock of requestAnimationFrame
window.bpvRace = {
  frames: () => (race ? race.frames.length : 0),
  setFrame: (i) => setFrame(i),
  frame: () => player.i,
  play, pause,
  redraws: () => player.redraws,
  cost: () => ({ ...cost }),
  timeline: () => ({ ...timeline }),
};

