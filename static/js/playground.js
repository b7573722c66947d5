// The /playground page script: the play loop, canvas heatmaps, the network diagram, click-to-add, charts.
//
// The server owns everything else: the settings form (POST /playground/settings answers with the form, the
// summary and the run to start: {spec, token, meta}), every number the page prints (the grid answer's `text`),
// the diagnostics tabs (POST /playground/panel fragments) and the exports (POST /api/v1/export). The state at
// step t is a pure function of (spec, t): "play" asks POST /api/v1/activations-grid for t + chunk and draws it.
import { CLASSES, INK, NEGATIVE, NEUTRAL, PALETTE, POSITIVE, divergingTable } from "./colors.js";
import { download } from "./files.js";
import { bindKeys } from "./keys.js";
import { draw as plot } from "./plots.js";
import { isPresent } from "./present.js";
import { postBlob, postJSON } from "./request.js";
import { update as setURL } from "./url.js";

const ROOT = document.querySelector(".pg");
const $ = (sel, el = ROOT) => el.querySelector(sel);
const $$ = (sel, el = ROOT) => Array.from(el.querySelectorAll(sel));
const FORM = document.getElementById("pg-form");
const LIMITS = JSON.parse(document.getElementById("pg-limits").textContent);
const SEEK_CHUNK = 1000;   // steps per request when jumping far (each request stays in budget)
const LUT = divergingTable(256);
const PALE = divergingTable(256, true);
const view = { chunk: 10, showTest: false, discretize: false, layer: 1, sample: 0, tab: "gradients", row: 0,
               mode: "eval", hover: null };
let current = null;   // {spec, token, spec_id, meta} of the run on screen
let run = null;
let generation = 0;
let playing = false;
const perf = { updates: 0, first: 0, last: 0, drawMs: 0, waitMs: 0 };

// ---- the run: what the server said about this spec, step by step ---------------------------------------------
function newRun(t0 = 0) {
  generation += 1;
  run = { t: t0, loss: [], testLoss: [], delta: [], dW: [], last: null, data: null, divergedAt: null };
}

function grid(t, since, includeData) {
  const meta = current.meta;
  return postJSON("/api/v1/activations-grid", {
    spec_token: current.token, t, since, include_data: !!includeData, encoding: "packed", mode: view.mode,
    mask_row: view.row, resolution: meta.n_inputs === 1 ? 100 : (isPresent() ? 44 : 50), neuron_resolution: 20,
    hidden_layer: meta.sizes.length > 2 ? view.layer : 0, sample: view.sample,
  });
}

function merge(res) {
  run.t = res.t;
  run.last = res;
  if (res.data) run.data = res.data;
  const h = res.history;
  if (!h) return;
  h.loss.forEach((v, i) => { run.loss[h.since + i] = v; });
  (h.test_loss || []).forEach((v, i) => { run.testLoss[h.since + i] = v; });
  h.delta_norm.forEach((v, i) => { run.delta[h.since + i] = v; });
  h.grad_norm.forEach((v, i) => { run.dW[h.since + i] = v; });
  if (h.diverged_at !== null && run.divergedAt === null) run.divergedAt = h.diverged_at;
}

async function seek(target) {
  const gen = generation;
  try {
    if (!run.last) {
      const res = await grid(Math.min(target, SEEK_CHUNK), 0, true);
      if (gen !== generation) return;
      merge(res);
    }
    while (run.t !== target) {
      const next = target > run.t ? Math.min(target, run.t + SEEK_CHUNK) : target;
      const res = await grid(next, Math.min(next, run.t), false);
      if (gen !== generation) return;
      if (next < run.t) for (const k of ["loss", "testLoss", "delta", "dW"]) run[k].length = next + (k.endsWith("oss") ? 1 : 0);
      merge(res);
    }
    if ($("[data-testid=status]").classList.contains("bad")) status("");   // an error is over; news stays
    draw(true);
  } catch (e) {
    if (gen === generation) fail(e);
  }
}

async function play() {
  if (playing || !run.last) return;
  playing = true;
  playButton();
  const gen = generation;
  Object.assign(perf, { updates: 0, first: performance.now(), last: performance.now(), drawMs: 0, waitMs: 0 });
  let pending = grid(run.t + view.chunk, run.t, false);
  while (playing && gen === generation) {
    let res;
    const waited = performance.now();
    try { res = await pending; } catch (e) { if (gen === generation) fail(e); break; }
    if (!playing || gen !== generation) break;
    pending = grid(res.t + view.chunk, res.t, false);   // the server works while we draw
    const drawn = performance.now();
    perf.waitMs += drawn - waited;
    merge(res);
    draw(false);
    perf.drawMs += performance.now() - drawn;
    perf.updates += 1;
    perf.last = performance.now();
    if (res.diverged || run.divergedAt !== null) {
      status(`Diverged at step ${run.divergedAt ?? res.t}: ${res.divergence_rule}. Lower η or reset.`, true);
      break;
    }
  }
  if (gen === generation && playing) { playing = false; playButton(); draw(true); }
}

function pause() { playing = false; playButton(); if (run.last) draw(true); }
function stepOnce() { if (playing) pause(); return seek(run.t + 1); }
function reset() { const was = playing; playing = false; playButton(); newRun(); buildDiagram(); seek(0).then(() => was && play()); }

// A run from the server (page load, or the settings form's answer): a new spec starts at t = 0.
function adopt(t = 0) {
  const next = JSON.parse(document.getElementById("pg-run").textContent);
  if (current && next.token === current.token) return;
  const was = playing;
  playing = false;
  playButton();
  current = next;
  view.layer = Math.min(Math.max(1, view.layer), Math.max(1, current.meta.sizes.length - 2));
  view.sample = 0;
  fillLayers();
  newRun();
  buildDiagram();
  seek(t).then(() => was && play());
}

function status(text, bad) {
  const el = $("[data-testid=status]");
  el.textContent = text;
  el.classList.toggle("bad", !!bad);
}

function fail(e) { playing = false; playButton(); status((e.messages || [e.message]).join(" · "), true); }

function playButton() {
  const b = $("[data-pg=play]");
  b.textContent = playing ? "❚❚" : "▶";
  b.setAttribute("aria-label", playing ? "Pause" : "Play");
  b.classList.toggle("on", playing);
}

// ---- drawing ------------------------------------------------------------------------------------------------
let slowTimer = 0;
let diagVisible = false;
new IntersectionObserver((entries) => {
  diagVisible = entries.some((e) => e.isIntersecting);
  if (diagVisible && run && run.last && view.tab === "gradients") drawNorms();
}).observe($(".pg-diag"));
let urlTimer = 0;
function draw(full) {
  const res = run.last;
  if (!res) return;
  for (const [id, key] of [["step", "step"], ["epoch", "epoch"], ["train-loss", "loss"], ["test-loss", "test_loss"],
                           ["train-acc", "accuracy"], ["test-acc", "test_accuracy"]]) $(`[data-testid=${id}]`).textContent = res.text[key];
  if (current.meta.digits) drawDigit(res); else drawOutput(res);
  updateDiagram(res);
  const now = performance.now();
  drawHidden(res);
  drawLoss();
  if (view.tab === "gradients" && diagVisible && (full || now - slowTimer > 2000)) {   // log-scale Plotly charts: every 2 s
    slowTimer = now;
    drawNorms();
  }
  if (!urlTimer) urlTimer = setTimeout(() => { urlTimer = 0; setURL({ spec: current.token, t: run.t }); }, 400);
  if (full && !playing) refreshPanel();
}

function unpack(g) {   // a packed grid {lo, hi, shape, bits, b64} -> {values (NaN = null), shape}
  const bin = atob(g.b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const codes = g.bits === 8 ? bytes : new Uint16Array(bytes.buffer);
  const top = 2 ** g.bits - 1;
  const step = g.hi > g.lo ? (g.hi - g.lo) / (top - 1) : 0;
  const values = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) values[i] = codes[i] === top ? NaN : g.lo + codes[i] * step;
  return { values, shape: g.shape };
}

function rgb(hex) { return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)); }
const CLASS_RGB = CLASSES.map(rgb);
const WHITE = rgb(NEUTRAL);

// Colour of one grid value: the sign scale on [-1, 1], or class k faded towards white by its probability.
function painter(kind, lut = LUT) {
  if (kind.classes) {
    const k0 = 1 / kind.classes;
    return (v, o, data, cls) => {
      const c = CLASS_RGB[cls] || WHITE;
      const f = view.discretize ? 0.55 : Math.max(0, Math.min(1, (v - k0) / (1 - k0))) * 0.75;
      for (let i = 0; i < 3; i++) data[o + i] = WHITE[i] + (c[i] - WHITE[i]) * f;
    };
  }
  return (v, o, data) => {
    const i = Math.max(0, Math.min(255, Math.round((kind.map(v) + 1) * 127.5))) * 3;
    data[o] = lut[i]; data[o + 1] = lut[i + 1]; data[o + 2] = lut[i + 2];
  };
}

function paint(canvas, values, n, colour, classes) {   // an n x n grid, row 0 = bottom (y = -extent)
  if (canvas.width !== n) canvas.width = canvas.height = n;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(n, n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
    const v = values[r * n + c];
    const o = 4 * ((n - 1 - r) * n + c);
    img.data[o + 3] = 255;
    if (Number.isNaN(v)) { img.data[o] = img.data[o + 1] = img.data[o + 2] = 190; continue; }
    colour(v, o, img.data, classes ? Math.round(classes[r * n + c]) : 0);
  }
  ctx.putImageData(img, 0, 0);
}

function curve(canvas, values, map, w = 60) {   // 1-D inputs: a unit's value along x
  if (canvas.width !== w) { canvas.width = w; canvas.height = w; }
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, w);
  ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(0, w / 2); ctx.lineTo(w, w / 2); ctx.stroke();
  ctx.strokeStyle = INK; ctx.lineWidth = Math.max(2, w / 30); ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * w, y = w / 2 - Math.max(-1, Math.min(1, map(v))) * (w / 2 - 3);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

function mapper(act, values) {   // an activation's range onto [-1, 1] (sign = colour)
  if (act === "sigmoid" || act === "softmax") return (v) => 2 * v - 1;
  if (act === "tanh") return (v) => v;
  let M = 1e-9;
  for (const v of values) if (Number.isFinite(v)) M = Math.max(M, Math.abs(v));
  return (v) => v / M;
}

// The output: a canvas under a Plotly chart of the axes and the data points (the chart is redrawn only when
// the points or the view change). Pointing at a hidden unit shows that unit's picture here instead.
let outKey = "";
const source = document.createElement("canvas");
function drawOutput(res) {
  const el = $("#pg-heatmap");
  el.hidden = false;
  $("#pg-digits").hidden = true;
  const meta = current.meta;
  const twoD = res.n_inputs === 2;
  const e = res.extent;
  const regression = meta.task === "regression";
  const ys = run.data ? run.data.train.y.concat(run.data.test.y) : [1];
  const M = regression ? Math.max(1e-6, ...ys.map(Math.abs)) : 1;
  const yRange = twoD ? [-e, e] : (regression ? [-1.3 * M, 1.3 * M] : [-0.1, 1.1]);
  const key = JSON.stringify([current.token, !!run.data, view.showTest, e, isPresent(), el.clientWidth, el.clientHeight]);
  if (key !== outKey) {
    outKey = key;
    plot(el, pointTraces(twoD, regression, M), {
      margin: isPresent() ? { l: 56, r: 10, t: 8, b: 44 } : { l: 40, r: 8, t: 8, b: 30 }, showlegend: false,
      dragmode: false, hovermode: "closest", plot_bgcolor: "rgba(0,0,0,0)",
      xaxis: { range: [-e, e], zeroline: false, showgrid: false, fixedrange: true, constrain: "domain" },
      yaxis: { range: yRange, zeroline: false, showgrid: false, fixedrange: true,
               ...(twoD ? { scaleanchor: "x", scaleratio: 1, constrain: "domain" } : {}) },
    }, "heatmap");
  }
  const canvas = overlay(el, "heat-layer");
  const box = plotArea(el);
  if (!box) return;
  const ctx = size(canvas, box);
  const W = canvas.width, H = canvas.height;
  const hover = view.hover && res.neurons[view.hover[0]] && res.neurons[view.hover[0]][view.hover[1]];
  const grid = unpack(hover || res.output);
  if (twoD) {
    const n = grid.shape[0];
    let colour;
    let classes = null;
    if (hover) colour = painter({ map: mapper(meta.activations[view.hover[0]], grid.values) });
    else if (res.output_class) { classes = unpack(res.output_class).values; colour = painter({ classes: meta.classes }); }
    else {
      const map = regression ? (v) => v / M : (v) => (view.discretize ? (v >= 0.5 ? 1 : -1) : 2 * v - 1);
      colour = painter({ map }, PALE);
    }
    paint(source, grid.values, n, colour, classes);
    const cw = W / (n - 1), ch = H / (n - 1);   // grid points at pixel centres: the image overhangs half a cell
    ctx.clearRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = !view.discretize;
    ctx.drawImage(source, -cw / 2, -ch / 2, W + cw, H + ch);
  } else {   // 1-D: the output (or the unit pointed at, on its own scale) as a curve over x
    const ratio = W / box.width;
    const map = hover ? mapper(meta.activations[view.hover[0]], grid.values) : (v) => (2 * (v - yRange[0])) / (yRange[1] - yRange[0]) - 1;
    const toY = (v) => H / 2 - (Math.max(-1.05, Math.min(1.05, map(v))) * H) / 2;
    ctx.clearRect(0, 0, W, H);
    ctx.strokeStyle = "#999"; ctx.lineWidth = ratio;
    ctx.beginPath(); ctx.moveTo(0, toY(hover ? 0 : (yRange[0] + yRange[1]) / 2)); ctx.lineTo(W, toY(hover ? 0 : (yRange[0] + yRange[1]) / 2)); ctx.stroke();
    ctx.strokeStyle = INK; ctx.lineWidth = 3 * ratio; ctx.lineJoin = "round"; ctx.beginPath();
    grid.values.forEach((v, i) => { const x = (i / (grid.values.length - 1)) * W; if (i) ctx.lineTo(x, toY(v)); else ctx.moveTo(x, toY(v)); });
    ctx.stroke();
  }
  canvas.dataset.t = String(res.t);
  canvas.dataset.hover = hover ? view.hover.join(",") : "";
}

function pointTraces(twoD, regression, M) {
  const traces = [];
  for (const [set, test] of [["train", false], ["test", true]]) {
    if (!run.data || (test && !view.showTest) || !run.data[set].x.length) continue;
    const { x, y } = run.data[set];
    const color = regression ? (twoD ? y.map((v) => (v >= 0 ? POSITIVE : NEGATIVE)) : (test ? POSITIVE : NEGATIVE))
      : y.map((k) => CLASSES[k]);
    traces.push({ type: "scatter", mode: "markers", name: set, hoverinfo: "x+y+name",
      x: x.map((p) => p[0]), y: twoD ? x.map((p) => p[1]) : y,
      marker: { color, size: isPresent() ? 9 : 7, symbol: test ? "diamond" : "circle",
                line: { color: test ? INK : "#fff", width: test ? 1.5 : 1 } } });
  }
  return traces.length ? traces : [{ type: "scatter", x: [], y: [] }];
}

function overlay(el, cls) {   // a canvas under a Plotly chart's SVG, created once
  let canvas = el.querySelector("canvas." + cls);
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.className = "plot-layer " + cls;
    canvas.dataset.testid = cls;
    el.prepend(canvas);
  }
  return canvas;
}

function plotArea(el) {
  const s = el._fullLayout && el._fullLayout._size;
  return s ? { left: s.l, top: s.t, width: s.w, height: s.h } : null;
}

function size(canvas, box) {
  const ratio = window.devicePixelRatio || 1;
  Object.assign(canvas.style, { left: box.left + "px", top: box.top + "px", width: box.width + "px", height: box.height + "px" });
  const W = Math.round(box.width * ratio), H = Math.round(box.height * ratio);
  if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
  return canvas.getContext("2d");
}

// Digits: the chosen image and the 10 output probabilities (numbers formatted by the server).
function drawDigit(res) {
  $("#pg-heatmap").hidden = true;
  $("#pg-digits").hidden = false;
  const s = res.sample;
  const canvas = $("[data-testid=digit-image]");
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(8, 8);
  s.image.forEach((v, i) => { const g = Math.round(255 * (1 - v)); img.data.set([g, g, g, 255], 4 * i); });
  ctx.putImageData(img, 0, 0);
  $("[data-testid=digit-caption]").textContent =
    `${s.set} image ${s.index + 1} of ${s.count}: label ${s.label}, predicted ${s.predicted ?? "—"}`;
  const bars = $("#pg-probs");
  if (bars.children.length !== s.probs.length) {
    bars.replaceChildren(...s.probs.map((_, k) => {
      const col = document.createElement("div");
      col.className = "prob";
      col.innerHTML = '<span class="p"></span><span class="bar"></span><span class="k"></span>';
      col.querySelector(".k").textContent = String(k);
      col.querySelector(".bar").style.background = CLASSES[k];
      return col;
    }));
  }
  s.probs.forEach((p, k) => {
    const col = bars.children[k];
    col.querySelector(".bar").style.height = `${Math.max(0, Math.min(1, p)) * 100}%`;
    col.querySelector(".p").textContent = p >= 0.05 ? s.probs_text[k] : "";
    col.classList.toggle("label", k === s.label);
  });
}

// Animated charts: Plotly draws the axes (again only when their round bounds change), the curves and points go
// on a canvas under it every update (a Plotly redraw costs more than a whole update on a loaded machine).
function roomy(v) {   // a round bound at or above v: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k
  const mag = 10 ** Math.floor(Math.log10(Math.max(v, 1e-12)));
  return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((f) => f * mag).find((b) => b >= v * (1 - 1e-12));
}

function coarse(v) {   // 10, 20, 50, 100, ...: the step axis changes rarely while playing
  const mag = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((f) => f * mag).find((b) => b >= v);
}

function steady(prev, lo, hi) {   // keep the previous range while the data fits it and fills half of it
  if (prev && lo >= prev[0] && hi <= prev[1] && hi - lo > 0.35 * (prev[1] - prev[0])) return prev;
  const step = roomy(Math.max(hi - lo, 1e-9) / 5);   // a step of slack each side: few redraws of the axes
  return [Math.floor(lo / step - 1) * step, Math.ceil(hi / step + 1) * step];
}

function axes(el, key, layout) {   // the Plotly frame of a canvas chart; its canvas context mapped to data
  if (el.dataset.key !== key) {
    el.dataset.key = key;
    plot(el, [{ type: "scatter", x: [], y: [] }], { ...layout, plot_bgcolor: "rgba(0,0,0,0)" });
  }
  const box = plotArea(el);
  if (!box) return null;
  const canvas = overlay(el, "curve-layer");
  const ctx = size(canvas, box);
  const W = canvas.width, H = canvas.height, [x0, x1] = layout.xaxis.range, [y0, y1] = layout.yaxis.range;
  ctx.clearRect(0, 0, W, H);
  return { ctx, ratio: W / box.width, X: (v) => ((v - x0) / (x1 - x0)) * W, Y: (v) => H - ((v - y0) / (y1 - y0)) * H };
}

function polyline(c, xs, ys, color, width) {
  c.ctx.strokeStyle = color;
  c.ctx.lineWidth = width * c.ratio;
  c.ctx.lineJoin = "round";
  c.ctx.beginPath();
  let pen = false;
  xs.forEach((x, i) => {
    const y = ys[i];
    if (x === null || y === null || y === undefined || !Number.isFinite(y)) { pen = false; return; }
    if (pen) c.ctx.lineTo(c.X(x), c.Y(y)); else { c.ctx.moveTo(c.X(x), c.Y(y)); pen = true; }
  });
  c.ctx.stroke();
}

// What a hidden layer sees: the training points and the input grid lines in its activation space.
let hiddenRange = null;
function drawHidden(res) {
  const h = res.hidden;
  const el = $("#pg-hidden");
  $("[data-testid=variance]").textContent = h ? (h.variance_text || `layer ${h.layer}: its ${h.width} unit(s) directly`) : "No hidden layer: add one to see what it does to the data.";
  if (!h) return;
  let lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
  for (const p of h.points.concat(...h.lines)) for (const d of [0, 1]) { lo[d] = Math.min(lo[d], p[d]); hi[d] = Math.max(hi[d], p[d]); }
  if (!Number.isFinite(lo[0])) return;
  const key = `${current.token}|${h.layer}`;
  if (!hiddenRange || hiddenRange.key !== key) hiddenRange = { key };
  hiddenRange.x = steady(hiddenRange.x, lo[0], hi[0]);
  hiddenRange.y = steady(hiddenRange.y, lo[1], hi[1]);
  const c = axes(el, JSON.stringify([key, hiddenRange.x, hiddenRange.y, isPresent(), el.clientWidth]), {
    margin: { t: 10, r: 10 }, showlegend: false, hovermode: false,
    xaxis: { title: { text: h.axes[0] }, range: hiddenRange.x, zeroline: false, fixedrange: true },
    yaxis: { title: { text: h.axes[1] }, range: hiddenRange.y, zeroline: false, fixedrange: true } });
  if (!c) return;
  for (const line of h.lines) polyline(c, line.map((p) => p[0]), line.map((p) => p[1]), "#8a8a8a", 1);
  const classes = current.meta.task !== "regression";
  const r = (isPresent() ? 4 : 3) * c.ratio;
  h.points.forEach((p, i) => {
    c.ctx.fillStyle = classes ? CLASSES[h.labels[i]] : (h.labels[i] >= 0 ? POSITIVE : NEGATIVE);
    c.ctx.beginPath(); c.ctx.arc(c.X(p[0]), c.Y(p[1]), r, 0, 2 * Math.PI); c.ctx.fill();
  });
  el.dataset.t = String(res.t);
  el.dataset.first = h.points.length ? h.points[0].join(",") : "";
}

function decimate(n, max) {
  const stride = Math.max(1, Math.ceil(n / max));
  const idx = [];
  for (let i = 0; i < n; i += stride) idx.push(i);
  if (n && idx[idx.length - 1] !== n - 1) idx.push(n - 1);
  return idx;
}

function drawLoss() {   // while playing on a canvas; paused, Plotly draws the curves (hover, PNG/SVG export)
  const el = $("#pg-loss");
  const n = run.loss.length;
  const series = [["train", run.loss, INK]];
  if (run.last.m_test) series.push(["test", run.testLoss, POSITIVE]);
  let top = 1e-9;
  for (const [, s] of series) for (const v of s) if (v !== null && v !== undefined && Number.isFinite(v)) top = Math.max(top, v);
  const layout = { margin: { t: 8, r: 12 }, showlegend: false, hovermode: playing ? false : "x unified",
    xaxis: { title: { text: "step" }, range: [0, coarse(Math.max(100, n - 1))] }, yaxis: { title: { text: "loss" }, range: [0, roomy(top * 1.05)] } };
  const idx = decimate(n, 600);
  if (!playing) {
    el.dataset.key = "";
    overlay(el, "curve-layer").getContext("2d").clearRect(0, 0, 1e5, 1e5);
    plot(el, series.map(([name, s, color]) => ({ x: idx, y: idx.map((i) => s[i] ?? null), name, mode: n > 1 ? "lines" : "markers",
      line: { color, width: 2.5 }, marker: { color, size: 8 } })), layout);
    return;
  }
  const c = axes(el, JSON.stringify([layout.xaxis.range, layout.yaxis.range, isPresent(), el.clientWidth]), layout);
  if (c) for (const [, s, color] of series) polyline(c, idx, idx.map((i) => s[i]), color, 2.5);
}

function drawNorms() {   // ||delta^l|| and ||dW^l|| per layer, every step (the server computed them)
  const L = current.meta.sizes.length - 1;
  for (const [id, series, title] of [["#pg-delta", run.delta, "‖δˡ‖"], ["#pg-dw", run.dW, "‖∂L/∂Wˡ‖"]]) {
    const idx = decimate(series.length, 600);
    plot($(id), Array.from({ length: L }, (_, l) => ({ x: idx, y: idx.map((i) => (series[i] && series[i][l] > 0 ? series[i][l] : null)),
      name: l === L - 1 ? `l = ${l + 1} (output)` : `l = ${l + 1}`, mode: "lines", line: { color: PALETTE[l % PALETTE.length], width: 2 } })),
    { margin: { t: 10 }, hovermode: playing ? false : "x unified", yaxis: { type: "log", exponentformat: "power", title: { text: title } },
      xaxis: { title: { text: "step" }, rangemode: "tozero" }, legend: { orientation: "h", y: 1.02, yanchor: "bottom" } });
  }
}

// ---- the network diagram: a canvas per unit over one SVG of edges -----------------------------------------
let geom = null;
function buildDiagram() {
  const host = $("[data-testid=diagram]");
  host.replaceChildren();
  const meta = current.meta;
  const sizes = meta.digits ? [1, ...meta.sizes.slice(1)] : meta.sizes;
  const cols = sizes.length;
  const width = Math.max(240, host.clientWidth || 400);
  const pad = isPresent() ? 64 : 52;
  const rows = Math.max(...sizes);
  const node = Math.max(20, Math.min(isPresent() ? 54 : 48, Math.floor((width - pad) / (cols * 1.7)), Math.floor(440 / (rows * 1.2))));
  const gap = Math.round(node * 0.22);
  const xs = sizes.map((_, c) => pad + (cols === 1 ? 0 : (c * (width - pad - node - 4)) / (cols - 1)));
  const ys = sizes.map((n) => Array.from({ length: n }, (_, j) => 4 + ((rows - n) / 2 + j) * (node + gap)));
  const height = rows * (node + gap) + 8;
  host.style.height = height + "px";
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "edges");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  geom = { sizes, edges: [], nodes: [] };
  for (let l = 0; l < cols - 1; l++) {
    geom.edges.push(Array.from({ length: sizes[l + 1] }, (_, j) => Array.from({ length: sizes[l] }, (_, k) => {
      const x0 = xs[l] + node, y0 = ys[l][k] + node / 2, x1 = xs[l + 1], y1 = ys[l + 1][j] + node / 2, mid = (x0 + x1) / 2;
      const g = document.createElementNS(NS, "g");
      g.setAttribute("class", "edge");
      Object.assign(g.dataset, { l, j, k });
      const d = `M${x0},${y0} C${mid},${y0} ${mid},${y1} ${x1},${y1}`;
      const vis = document.createElementNS(NS, "path");
      vis.setAttribute("d", d); vis.setAttribute("class", "vis");
      const hit = document.createElementNS(NS, "path");
      hit.setAttribute("d", d); hit.setAttribute("class", "hit");
      const title = document.createElementNS(NS, "title");
      title.textContent = meta.digits && l === 0 ? "64 pixel weights" : `W${l + 1}[${j},${k}]: click to edit`;
      g.append(vis, hit, title);
      svg.append(g);
      return { g, vis, title };
    })));
  }
  host.append(svg);
  geom.nodes = sizes.map((n, c) => Array.from({ length: n }, (_, j) => {
    const div = document.createElement("div");
    div.className = "node" + (c === 0 ? " input" : c === cols - 1 ? " output" : "");
    Object.assign(div.style, { left: xs[c] + "px", top: ys[c][j] + "px", width: node + "px", height: node + "px" });
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 20;
    div.append(canvas);
    if (c === 0) {
      const label = document.createElement("span");
      label.className = "feat-label";
      label.textContent = meta.inputs[j];
      div.append(label);
      div.dataset.testid = "feature-node";
    } else {
      div.dataset.testid = c === cols - 1 ? "output-node" : "hidden-node";
      Object.assign(div.dataset, { l: c - 1, j });
    }
    host.append(div);
    return { div, canvas };
  }));
  drawInputs();
}

function drawInputs() {   // x1, x2, x1^2, ... over the plane: what each input unit feeds the network
  const meta = current.meta;
  if (meta.digits) return;
  const e = run.last ? run.last.extent : 1.1, n = meta.n_inputs === 1 ? 60 : 20;
  const fns = { x1: (x) => x, x2: (x, y) => y, "x1^2": (x) => x * x, "x2^2": (x, y) => y * y, x1x2: (x, y) => x * y,
                sin_x1: (x) => Math.sin(x), sin_x2: (x, y) => Math.sin(y) };
  meta.features.forEach((f, j) => {
    const cell = geom.nodes[0][j];
    const values = meta.n_inputs === 1 ? Array.from({ length: n }, (_, i) => fns[f](-e + (2 * e * i) / (n - 1), 0))
      : Float32Array.from({ length: n * n }, (_, i) => fns[f](-e + (2 * e * (i % n)) / (n - 1), -e + (2 * e * Math.floor(i / n)) / (n - 1)));
    const map = mapper("linear", values);
    if (meta.n_inputs === 1) curve(cell.canvas, values, map); else paint(cell.canvas, values, n, painter({ map }));
  });
  geom.extent = e;
}

function updateDiagram(res) {
  const meta = current.meta;
  if (!geom) buildDiagram();
  if (geom.extent !== res.extent) drawInputs();
  const masks = view.mode === "train" && res.dropout ? res.dropout.masks : null;
  let maxW = 1e-9;
  res.weights.forEach((W) => W.forEach((r) => r.forEach((w) => { if (Number.isFinite(w)) maxW = Math.max(maxW, Math.abs(w)); })));
  const scale = Math.max(1, maxW);
  geom.edges.forEach((layer, l) => layer.forEach((row, j) => row.forEach((e, k) => {
    const w = meta.digits && l === 0 ? null : res.weights[l][j][k];
    const ok = w !== null && Number.isFinite(w);
    const width = ok ? (0.6 + 7 * Math.min(1, Math.abs(w) / scale)).toFixed(1) : "1";
    const colour = ok ? (w >= 0 ? POSITIVE : NEGATIVE) : "#9a9a9a";
    if (e.width !== width) { e.width = width; e.vis.setAttribute("stroke-width", width); }   // touch the SVG only on change
    if (e.colour !== colour) { e.colour = colour; e.vis.setAttribute("stroke", colour); }
    const off = !!(masks && ((l > 0 && masks[l - 1] && masks[l - 1][k] === 0) || (l < masks.length && masks[l][j] === 0)));
    if (e.off !== off) { e.off = off; e.g.classList.toggle("off", off); }
  })));
  if (meta.digits) {   // no input plane: each unit's colour is its activation on the chosen image
    const s = res.sample;
    paintImage(geom.nodes[0][0].canvas, s.image);
    s.hidden.forEach((a, l) => a.forEach((v, j) => fill(geom.nodes[l + 1][j].canvas, mapper(meta.activations[l], a)(v))));
    s.probs.forEach((p, j) => {
      const c = CLASS_RGB[j], f = Math.max(0, Math.min(1, p));
      const ctx = geom.nodes[geom.nodes.length - 1][j].canvas.getContext("2d");
      ctx.fillStyle = `rgb(${c.map((x, i) => Math.round(WHITE[i] + (x - WHITE[i]) * f)).join(",")})`;
      ctx.fillRect(0, 0, 20, 20);
    });
    return;
  }
  res.neurons.forEach((layer, l) => layer.forEach((g, j) => {
    const cell = geom.nodes[l + 1][j];
    const u = unpack(g);
    const map = mapper(meta.activations[l], u.values);
    if (res.n_inputs === 1) curve(cell.canvas, u.values, map); else paint(cell.canvas, u.values, u.shape[0], painter({ map }));
    cell.div.classList.toggle("dropped", !!(masks && masks[l] && masks[l][j] === 0));
  }));
  const outs = geom.nodes[geom.nodes.length - 1];
  const out = unpack(res.output);
  if (res.output_class) {   // unit k shows where class k wins, faded by its probability
    const classes = unpack(res.output_class).values;
    const colour = painter({ classes: meta.classes });
    outs.forEach((cell, k) => paint(cell.canvas, out.values, out.shape[0], (v, o, data, cls) => {
      if (cls === k) colour(v, o, data, cls); else data.set(WHITE, o);
    }, classes));
  } else if (res.n_inputs === 1) curve(outs[0].canvas, out.values, mapper(meta.task === "regression" ? "linear" : "sigmoid", out.values));
  else paint(outs[0].canvas, out.values, out.shape[0], painter({ map: mapper(meta.task === "regression" ? "linear" : "sigmoid", out.values) }));
}

function fill(canvas, v) {
  const i = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5))) * 3;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = `rgb(${LUT[i]},${LUT[i + 1]},${LUT[i + 2]})`;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function paintImage(canvas, pixels) {
  canvas.width = canvas.height = 8;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(8, 8);
  pixels.forEach((v, i) => { const g = Math.round(255 * (1 - v)); img.data.set([g, g, g, 255], 4 * i); });
  ctx.putImageData(img, 0, 0);
}

function fillLayers() {   // the hidden layers one can look into: 1..L-1
  const sel = $("[data-view=layer]");
  const n = current.meta.sizes.length - 2;
  sel.replaceChildren(...Array.from({ length: n }, (_, l) => new Option(`layer ${l + 1} (${current.meta.sizes[l + 1]} units)`, String(l + 1))));
  sel.value = String(view.layer);
  sel.disabled = n === 0;
}

// ---- changing the experiment from the page: your points, an edited weight, a CSV file ---------------------
function setField(name, value) {   // a hidden field of the settings form; the form posts itself on change
  const input = FORM.querySelector(`[name=${name}]`);
  input.value = value;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}

function currentPoints() {
  const own = FORM.querySelector("[name=pts]").value;
  if (own) return JSON.parse(own);
  const all = [];
  for (const set of ["train", "test"]) run.data[set].x.forEach((x, i) => all.push([x[0], x[1], run.data[set].y[i]]));
  return all;
}

function onHeatmapClick(ev) {
  const mode = $("[name=pg-add]:checked")?.value || "off";
  const el = $("#pg-heatmap");
  const box = plotArea(el);
  if (mode === "off" || !current.meta.can_add_points || !box || !run.data) return;
  const r = el.getBoundingClientRect();
  const u = (ev.clientX - r.left - box.left) / box.width, v = (ev.clientY - r.top - box.top) / box.height;
  if (u < 0 || u > 1 || v < 0 || v > 1) return;
  const e = run.last.extent;
  const pts = currentPoints();
  if (pts.length >= current.meta.max_points) { status(`At most ${current.meta.max_points} points.`, true); return; }
  const label = mode === "value" ? Number($("[data-testid=add-y]").value) : Number(mode);
  pts.push([Math.round((-e + 2 * e * u) * 1000) / 1000, Math.round((e - 2 * e * v) * 1000) / 1000, label]);
  setField("pts", JSON.stringify(pts));
}

async function uploadCSV(input) {
  const file = input.files[0];
  input.value = "";
  if (!file) return;
  if (file.size > LIMITS.csv_max_bytes) { status(`${file.name}: ${file.size} bytes; at most ${LIMITS.csv_max_bytes}.`, true); return; }
  try {
    const task = current.meta.task === "regression" ? "regression" : "classification";
    const res = await postJSON("/api/v1/csv-points", { text: await file.text(), task });
    status(`Loaded ${res.n} points from ${file.name}.`);
    setField("pts", JSON.stringify(res.points));
  } catch (e) {
    status(`${file.name} was not loaded: ${(e.messages || [e.message]).join(" · ")}`, true);
  }
}

let editing = null;
function openEditor(ev, l, j, k) {
  if (!run.last || current.meta.digits) return;
  if (playing) pause();
  editing = { l, j, k };
  const box = $("[data-testid=edge-editor]");
  box.querySelector(".edge-name").textContent = `W${l + 1}[${j},${k}] at step ${run.last.t}`;
  const input = box.querySelector("input");
  input.value = String(run.last.weights[l][j][k]);
  box.hidden = false;
  const host = ROOT.getBoundingClientRect();
  box.style.left = Math.max(8, Math.min(ev.clientX - host.left + 8, ROOT.clientWidth - box.offsetWidth - 8)) + "px";
  box.style.top = ev.clientY - host.top + 8 + "px";
  input.focus();
  input.select();
}

function applyEdit() {
  const input = $("[data-testid=edge-value]");
  const value = Number(input.value);
  if (!editing || !Number.isFinite(value) || Math.abs(value) > 100) { input.setCustomValidity("a number between -100 and 100"); input.reportValidity(); return; }
  const W = run.last.weights.map((m) => m.map((r) => r.slice()));
  W[editing.l][editing.j][editing.k] = value;
  $("[data-testid=edge-editor]").hidden = true;
  editing = null;
  setField("w", JSON.stringify({ W, b: run.last.biases }));
}

// ---- exports ------------------------------------------------------------------------------------------------
async function exportFile(format) {
  if (playing) pause();
  try {
    const { blob, filename } = await postBlob("/api/v1/export", { spec_token: current.token, t: run.t, format });
    download(filename, blob);
  } catch (e) { fail(e); }
}

async function exportImage(id, format) {
  if (playing) pause();
  const el = document.getElementById(id);
  const canvas = el.querySelector("canvas.heat-layer");
  const box = plotArea(el);
  const images = canvas && box && id === "pg-heatmap" && !current.meta.digits ? [{   // the canvas heatmap, into the picture
    source: canvas.toDataURL("image/png"), xref: "paper", yref: "paper", x: 0, y: 1, sizex: 1, sizey: 1,
    sizing: "stretch", layer: "below" }] : [];
  await window.Plotly.relayout(el, { images });
  await window.Plotly.downloadImage(el, { format, filename: el.dataset.filename || id, scale: format === "png" ? 2 : 1 });
  await window.Plotly.relayout(el, { images: [] });
}

// ---- diagnostics: the server renders each tab at the current step -------------------------------------------
let panelTimer = 0;
function refreshPanel(force) {
  if (!run || !run.last || (!force && ["gradcheck", "compare"].includes(view.tab))) return;
  clearTimeout(panelTimer);
  panelTimer = setTimeout(() => panel(), 250);
}

function panel(extra = {}) {
  const opt = (name) => $(`[data-opt=${name}]`)?.value;
  return window.htmx.ajax("POST", "/playground/panel", { target: "#pg-panel", swap: "innerHTML",
    values: { token: current.token, t: run.t, tab: view.tab, eps: opt("eps"), row: view.row, mode: view.mode,
              init: opt("init"), act: opt("act"), c: opt("c"), ...extra } });
}

function showTab(tab) {
  view.tab = tab;
  $$("[role=tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
  $$("[data-for]").forEach((el) => { el.hidden = el.dataset.for !== tab; });
  if (["gradcheck", "compare"].includes(tab)) $("#pg-panel").replaceChildren(Object.assign(document.createElement("p"),
    { className: "muted", textContent: tab === "gradcheck" ? "Press the button to check backprop's gradient at this step." : "Choose a comparison." }));
  else refreshPanel(true);
  if (tab === "gradients" && run.last) drawNorms();
}

// ---- wiring -------------------------------------------------------------------------------------------------
function toggleControls() {
  const shown = ROOT.dataset.controls ? ROOT.dataset.controls === "shown" : !isPresent();
  ROOT.dataset.controls = shown ? "hidden" : "shown";
  $("[data-pg=controls]").setAttribute("aria-expanded", String(!shown));
}

function wire() {
  ROOT.addEventListener("click", (ev) => {
    const edge = ev.target.closest(".edge");
    if (edge) { openEditor(ev, +edge.dataset.l, +edge.dataset.j, +edge.dataset.k); return; }
    const tab = ev.target.closest("[role=tab]");
    if (tab) { showTab(tab.dataset.tab); return; }
    const exp = ev.target.closest("[data-export]");
    if (exp) { exportFile(exp.dataset.export); return; }
    const img = ev.target.closest("[data-image]");
    if (img) { exportImage(...img.dataset.image.split(" ")); return; }
    const cmp = ev.target.closest("[data-compare]");
    if (cmp) { panel({ tab: "compare", kind: cmp.dataset.compare }); return; }
    const action = ev.target.closest("[data-pg]")?.dataset.pg;
    const actions = {
      play: () => (playing ? pause() : play()), step: stepOnce, reset, controls: toggleControls,
      gradcheck: () => { if (playing) pause(); panel(); }, "edge-apply": applyEdit,
      "edge-cancel": () => { $("[data-testid=edge-editor]").hidden = true; editing = null; },
      "row-prev": () => { view.row = Math.max(0, view.row - 1); refreshView(); },
      "row-next": () => { view.row += 1; refreshView(); },
      "sample-prev": () => { view.sample = Math.max(0, view.sample - 1); refreshView(); },
      "sample-next": () => { view.sample += 1; refreshView(); },
    };
    if (actions[action]) actions[action]();
  });
  ROOT.addEventListener("change", (ev) => {
    const el = ev.target;
    const key = el.dataset.view || (el.dataset.opt === "mode" ? "mode" : null);
    if (!key) return;
    view[key] = el.type === "checkbox" ? el.checked : (["chunk", "layer"].includes(key) ? Number(el.value) : el.value);
    if (["layer", "mode"].includes(key)) refreshView();
    else if (key === "showTest") { outKey = ""; draw(true); } else if (key === "discretize") draw(true);
  });
  FORM.addEventListener("change", (ev) => {   // a CSV file: read it here, never post the form for it
    if (ev.target.dataset.testid !== "csv") return;
    ev.stopPropagation();
    uploadCSV(ev.target);
  }, true);
  $("#pg-heatmap").addEventListener("click", onHeatmapClick);
  $("[data-testid=diagram]").addEventListener("pointerover", (ev) => {
    const node = ev.target.closest("[data-testid=hidden-node]");
    const hover = node ? [+node.dataset.l, +node.dataset.j] : null;
    if (JSON.stringify(hover) !== JSON.stringify(view.hover)) { view.hover = hover; if (run.last && !current.meta.digits) drawOutput(run.last); }
  });
  $("[data-testid=diagram]").addEventListener("pointerleave", () => { view.hover = null; if (run.last && !current.meta.digits) drawOutput(run.last); });
  $("[data-testid=edge-value]").addEventListener("keydown", (ev) => { ev.target.setCustomValidity(""); if (ev.key === "Enter") applyEdit(); });
  document.body.addEventListener("htmx:afterSwap", (ev) => { if (ev.detail.target === FORM) adopt(0); });
  document.body.addEventListener("htmx:responseError", (ev) => {   // settings the server refused: say why
    if (ev.detail.target !== FORM) return;
    let body = {};
    try { body = JSON.parse(ev.detail.xhr.responseText); } catch (e) { /* not JSON */ }
    status((body.detail || []).map((d) => d.msg).join(" · ") || `The server answered ${ev.detail.xhr.status}.`, true);
  });
  document.body.addEventListener("htmx:beforeSwap", (ev) => {   // a panel's 422 carries its message as HTML
    if (ev.detail.target.id === "pg-panel" && ev.detail.xhr.status === 422) { ev.detail.shouldSwap = true; ev.detail.isError = false; }
  });
  const step = () => { stepOnce(); };
  bindKeys({ " ": () => (playing ? pause() : play()), s: step, PageDown: step, ArrowRight: step, r: reset, c: toggleControls });
  let timer = 0;
  const relayout = () => { clearTimeout(timer); timer = setTimeout(() => { outKey = ""; buildDiagram(); draw(true); }, 150); };
  window.addEventListener("resize", relayout);
  document.addEventListener("bpv:present", relayout);
}

function refreshView() {   // a view setting that the server draws (layer, dropout sample and mode, digit)
  const gen = generation;
  grid(run.t, run.t, false).then((res) => { if (gen === generation) { merge(res); draw(true); } }).catch(fail);
}

wire();
newRun();
adopt(Number(ROOT.dataset.t) || 0);

// For tests and the curious: how many redraws "play" managed, and the run itself.
window.bpvPlayground = {
  get run() { return run; },
  get current() { return current; },
  get playing() { return playing; },
  stats() {
    const seconds = (perf.last - perf.first) / 1000;
    const n = Math.max(1, perf.updates);
    return { updates: perf.updates, seconds, perSecond: seconds > 0 ? perf.updates / seconds : 0,
             drawMs: perf.drawMs / n, waitMs: perf.waitMs / n };
  },
};
