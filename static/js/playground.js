// The /playground page: TensorFlow Playground on the backprop-viz engine, plus the diagnostics of notes 002/003.
//
// The state at step t is a pure function of (spec, t), so the page holds no model: "play" asks the server for
// POST /api/v1/activations-grid at t + chunk (the server resumes from a cached checkpoint) and redraws with
// Plotly.react. The page's settings are one declarative table (FIELDS) that round-trips to the URL, seed and step
// included, so a link reproduces a run. Sections: state, spec, server, run loop, drawing (output, curves, network
// diagram), custom data, diagnostics (gradients, gradient check, dropout, L1/L2), wiring.
(function () {
  "use strict";
  const BPV = window.BPV;
  const CAT = JSON.parse(document.getElementById("pg-catalog").textContent);
  const ROOT = document.querySelector(".pg");
  const $ = (sel, el = ROOT) => el.querySelector(sel);
  const $$ = (sel, el = ROOT) => Array.from(el.querySelectorAll(sel));
  const fmt = BPV.fmt;
  const MAX_LAYERS = CAT.limits.max_hidden_layers;
  const MAX_NEURONS = CAT.limits.max_neurons;
  const THRESHOLD = CAT.limits.gradcheck_threshold;
  const SEEK_CHUNK = 1000;                  // steps per request when jumping to a far step (keeps each in budget)
  const COLORS = { neg: "#0072B2", pos: "#E69F00", edgePos: "#D55E00", edgeNeg: "#0072B2", grey: "#9a9a9a" };
  const LAYER_COLORS = [...BPV.PALETTE.slice(0, 7), "#8c564b", "#7f7f7f"];
  const DATASET_LABELS = { circles: "Circles", xor_cloud: "XOR", gaussians: "Gaussians", spiral: "Spiral",
                           moons: "Moons", plane: "Plane", sine: "Sine" };
  const FEATURE_LABELS = { x1: "x₁", x2: "x₂", "x1^2": "x₁²", "x2^2": "x₂²", x1x2: "x₁x₂", sin_x1: "sin x₁",
                           sin_x2: "sin x₂" };
  const FEATURE_FN = { x1: (x, y) => x, x2: (x, y) => y, "x1^2": (x) => x * x, "x2^2": (x, y) => y * y,
                       x1x2: (x, y) => x * y, sin_x1: (x) => Math.sin(x), sin_x2: (x, y) => Math.sin(y) };
  const OPTIONS = {
    lr: [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
    batch: [1, 2, 5, 10, 20, 50, 0],
    l2: [0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1],
    l1: [0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1],
    dropout: [0, 0.1, 0.2, 0.3, 0.5],
    chunk: [1, 2, 5, 10, 20, 50],
  };
  const SCHEDULE_PARAMS = {   // what each schedule's parameters are called on the page
    step: [["gamma", "γ", 0.01, 1, 0.05], ["step_size", "every k", 1, 100000, 1]],
    exponential: [["decay", "λ", 0, 1, 0.001]],
    cosine: [["lr_min", "η_min", 0, 10, 0.001], ["T", "T", 1, 100000, 1]],
  };

  // ---- state: one table of fields, each with its default and how it goes into the URL ----------------------
  const num = { parse: Number, show: String };
  const int = { parse: (s) => parseInt(s, 10), show: String };
  const str = { parse: String, show: String };
  const bool = { parse: (s) => s === "1" || s === "true", show: (v) => (v ? "1" : "0") };
  const list = { parse: (s) => (s === "" ? [] : s.split(",")), show: (v) => v.join(",") };
  const ints = { parse: (s) => (s === "" ? [] : s.split(",").map((x) => parseInt(x, 10))), show: (v) => v.join(",") };
  const points = {   // custom data: "x1,x2,label;..." with 3 decimals
    parse: (s) => s.split(";").filter(Boolean).map((p) => p.split(",").map(Number)),
    show: (v) => v.map((p) => p.map((x) => +x.toFixed(3)).join(",")).join(";"),
  };
  const weights = {  // edited initial weights: layers "|", rows ";", values ","; biases after "~"
    parse: (s) => {
      const [w, b] = s.split("~");
      return { W: w.split("|").map((m) => m.split(";").map((r) => r.split(",").map(Number))),
               b: b.split("|").map((r) => r.split(",").map(Number)) };
    },
    show: (v) => v.W.map((m) => m.map((r) => r.map(short).join(",")).join(";")).join("|") + "~" +
      v.b.map((r) => r.map(short).join(",")).join("|"),
  };
  function short(x) { return String(+Number(x).toPrecision(6)); }

  const sched = Object.fromEntries(CAT.schedules.map((s) => [s.name, s.defaults]));
  const FIELDS = {
    dataset: [str, "circles"], n: [int, 200], noise: [num, 0.1], test: [num, 0.3], dseed: [int, 0],
    features: [list, ["x1", "x2"]], hidden: [ints, [4, 2]], acts: [list, ["tanh", "tanh", "sigmoid"]],
    loss: [str, "bce"], init: [str, "xavier"], wseed: [int, 0], opt: [str, "adam"], lr: [num, 0.03],
    sched: [str, "constant"], gamma: [num, sched.step.gamma], step_size: [int, sched.step.step_size],
    decay: [num, sched.exponential.decay], lr_min: [num, sched.cosine.lr_min], T: [int, sched.cosine.T],
    batch: [int, 10], l2: [num, 0], l1: [num, 0], dropout: [num, 0], seed: [int, 0],
    t: [int, 0], chunk: [int, 10], showTest: [bool, false], discretize: [bool, false],
    mode: [str, "eval"], row: [int, 0], tab: [str, "gradients"], epsExp: [num, -7],
    pts: [points, null], w: [weights, null],
  };
  // Fields that define the experiment (changing one starts a new run); the rest only change the view.
  const VIEW_FIELDS = new Set(["t", "chunk", "showTest", "discretize", "mode", "row", "tab", "epsExp"]);

  function defaults() {
    const s = {};
    for (const [k, [, d]] of Object.entries(FIELDS)) s[k] = Array.isArray(d) ? d.slice() : d;
    return s;
  }

  function fromURL() {
    const s = defaults();
    const q = new URLSearchParams(window.location.search);
    for (const [k, [codec]] of Object.entries(FIELDS)) {
      if (!q.has(k)) continue;
      try {
        const v = codec.parse(q.get(k));
        if (typeof v === "number" && !Number.isFinite(v)) continue;
        s[k] = v;
      } catch (e) { /* a malformed field keeps its default */ }
    }
    return sanitize(s);
  }

  function toURL(s) {
    const q = new URLSearchParams();
    if (BPV.isPresent()) q.set("present", "1");
    for (const [k, [codec, d]] of Object.entries(FIELDS)) {
      const v = s[k];
      if (v === null || v === undefined) continue;
      if (JSON.stringify(v) === JSON.stringify(d)) continue;
      if (["gamma", "step_size", "decay", "lr_min", "T"].includes(k) &&
          !(SCHEDULE_PARAMS[s.sched] || []).some(([name]) => name === k)) continue;
      q.set(k, codec.show(v));
    }
    return "?" + q.toString();
  }

  function dsInfo(name) { return CAT.datasets.find((d) => d.name === name) || CAT.datasets[0]; }
  function isRegression(s = state) { return dsInfo(s.dataset).task === "regression"; }
  function inputDims(s = state) { return dsInfo(s.dataset).n_inputs; }
  function featuresFor(s = state) { return CAT.features.filter((f) => inputDims(s) === 2 || !f.includes("2")); }

  // Keep a state from the URL or a click inside what the engine accepts (the server checks again).
  function sanitize(s) {
    if (!CAT.datasets.some((d) => d.name === s.dataset)) s.dataset = "circles";
    s.features = s.features.filter((f, i) => featuresFor(s).includes(f) && s.features.indexOf(f) === i);
    if (!s.features.length) s.features = ["x1"];
    s.hidden = s.hidden.filter((n) => Number.isInteger(n)).slice(0, MAX_LAYERS)
      .map((n) => Math.min(MAX_NEURONS, Math.max(1, n)));
    const names = CAT.activations.map((a) => a.name);
    const acts = s.acts.filter((a) => names.includes(a));
    const hiddenAct = acts[0] || "tanh";
    s.acts = s.hidden.map((_, i) => acts[i] || hiddenAct).concat([acts.length > s.hidden.length ?
      acts[acts.length - 1] : (isRegression(s) ? "linear" : "sigmoid")]);
    if (!CAT.losses.some((l) => l.name === s.loss)) s.loss = "bce";
    if (isRegression(s) && s.loss === "bce") {   // targets are not probabilities: squared error, linear output
      s.loss = "mse";
      s.acts[s.acts.length - 1] = "linear";
    }
    if (s.loss === "bce") s.acts[s.acts.length - 1] = "sigmoid";
    if (!CAT.initializers.includes(s.init)) s.init = "xavier";
    if (!CAT.optimizers.some((o) => o.name === s.opt)) s.opt = "adam";
    if (!CAT.schedules.some((o) => o.name === s.sched)) s.sched = "constant";
    s.n = Math.min(1000, Math.max(20, s.n | 0));
    s.noise = Math.min(0.5, Math.max(0, s.noise));
    s.test = Math.min(0.8, Math.max(0, s.test));
    s.chunk = Math.min(200, Math.max(1, s.chunk | 0));
    s.t = Math.max(0, s.t | 0);
    if (s.pts && (inputDims(s) !== 2 || !s.pts.length || s.pts.some((p) => p.length !== 3 || p.some((x) => !Number.isFinite(x))))) s.pts = null;
    if (s.w && !weightsFit(s.w, s)) s.w = null;
    if (!["eval", "train"].includes(s.mode)) s.mode = "eval";
    s.epsExp = Math.min(-2, Math.max(-10, s.epsExp));
    return s;
  }

  function layerSizes(s = state) { return [s.features.length, ...s.hidden, 1]; }

  function weightsFit(w, s) {
    const sizes = layerSizes(s);
    return Array.isArray(w.W) && w.W.length === sizes.length - 1 && w.W.every((m, l) =>
      m.length === sizes[l + 1] && m.every((r) => r.length === sizes[l] && r.every(Number.isFinite))) &&
      Array.isArray(w.b) && w.b.every((r, l) => r.length === sizes[l + 1]);
  }

  // ---- the spec the API reads ------------------------------------------------------------------------------
  function specOf(s = state, overrides = {}) {
    const network = { layers: layerSizes(s), activations: s.acts, loss: s.loss, init: s.init, seed: s.wseed };
    if (s.w) { network.weights = s.w.W; network.biases = s.w.b; }
    const data = s.pts
      ? { X: s.pts.map((p) => [p[0], p[1]]), Y: s.pts.map((p) => [p[2]]), features: s.features }
      : { dataset: s.dataset, n: s.n, noise: s.noise, seed: s.dseed, test_fraction: s.test, features: s.features };
    const optimizer = { name: s.opt, lr: s.lr, batch_size: s.batch > 0 ? s.batch : null };
    if (s.sched !== "constant") {
      optimizer.schedule = { name: s.sched };
      for (const [k] of SCHEDULE_PARAMS[s.sched]) optimizer.schedule[k] = s[k];
    }
    const spec = { network, data, optimizer, seed: s.seed };
    if (s.l2) spec.l2 = s.l2;
    if (s.l1) spec.l1 = s.l1;
    if (s.dropout && s.hidden.length) spec.dropout = s.dropout;
    return { ...spec, ...overrides };
  }

  // ---- talking to the server ---------------------------------------------------------------------------------
  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify(body) });
    const payload = await r.json().catch(() => ({}));
    if (!r.ok) {
      const messages = (payload.detail || []).map((d) => d.msg || String(d));
      const err = new Error(messages[0] || `HTTP ${r.status}`);
      err.messages = messages;
      err.status = r.status;
      throw err;
    }
    return payload;
  }

  function gridRequest(t, since, includeData) {
    const res = BPV.isPresent() ? 44 : 50;
    return post("/api/v1/activations-grid", {
      spec: specOf(), t, since, include_data: !!includeData, encoding: "packed", mode: state.mode,
      mask_row: state.row, resolution: inputDims() === 1 ? 100 : res, neuron_resolution: 20 });
  }

  // A packed grid ({lo, hi, shape, bits, b64}) or nested lists -> {values: Float32Array (NaN = null), shape}.
  function unpack(g) {
    if (Array.isArray(g)) {
      const flat = g.flat(Infinity).map((v) => (v === null ? NaN : v));
      return { values: Float32Array.from(flat), shape: Array.isArray(g[0]) ? [g.length, g[0].length] : [g.length] };
    }
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

  // ---- the run: what the server said about this spec, step by step ------------------------------------------
  let state = fromURL();
  let run = null;
  let generation = 0;
  let playing = false;
  const perf = { updates: 0, first: 0, last: 0, drawMs: 0, waitMs: 0 };

  function specKey(s = state) { return JSON.stringify(specOf(s)); }

  function newRun() {
    generation += 1;
    run = { key: specKey(), t: 0, loss: [], testLoss: [], acc: [], testAcc: [], delta: [], dW: [], last: null,
            data: null, divergedAt: null, gen: generation };
    gcResult = null;
    renderGradcheck();
  }

  function merge(res) {
    run.t = res.t;
    run.last = res;
    if (res.data) run.data = res.data;
    const h = res.history;
    if (h) {
      h.loss.forEach((v, i) => { run.loss[h.since + i] = v; });
      (h.test_loss || []).forEach((v, i) => { run.testLoss[h.since + i] = v; });
      (h.accuracy || []).forEach((v, i) => { run.acc[h.since + i] = v; });
      (h.test_accuracy || []).forEach((v, i) => { run.testAcc[h.since + i] = v; });
      h.delta_norm.forEach((v, i) => { run.delta[h.since + i] = v; });
      h.grad_norm.forEach((v, i) => { run.dW[h.since + i] = v; });
      if (h.diverged_at !== null && h.diverged_at !== undefined && run.divergedAt === null) run.divergedAt = h.diverged_at;
    }
  }

  // Go to step `target` of the current run, from wherever it stands (in budget-sized chunks when far).
  async function seek(target) {
    const gen = generation;
    try {
      if (!run.last) {
        const first = Math.min(target, SEEK_CHUNK);
        const res = await gridRequest(first, 0, true);
        if (gen !== generation) return;
        merge(res);
      }
      while (run.t !== target) {
        const next = target > run.t ? Math.min(target, run.t + SEEK_CHUNK) : target;
        const res = await gridRequest(next, Math.min(next, run.t), false);
        if (gen !== generation) return;
        if (next < run.t) { truncate(next); }
        merge(res);
      }
      status("");
      draw();
    } catch (e) {
      if (gen === generation) fail(e);
    }
  }

  function truncate(t) {
    for (const key of ["loss", "testLoss", "acc", "testAcc"]) run[key].length = t + 1;
    for (const key of ["delta", "dW"]) run[key].length = t;
  }

  async function play() {
    if (playing || !run.last) return;
    playing = true;
    playButton();
    const gen = generation;
    Object.assign(perf, { updates: 0, first: performance.now(), last: performance.now(), drawMs: 0, waitMs: 0 });
    let pending = gridRequest(run.t + state.chunk, run.t, false);
    while (playing && gen === generation) {
      let res;
      const waited = performance.now();
      try { res = await pending; } catch (e) { if (gen === generation) fail(e); break; }
      if (!playing || gen !== generation) break;
      perf.waitMs += performance.now() - waited;
      pending = gridRequest(res.t + state.chunk, res.t, false);   // the server works while we draw
      merge(res);
      draw();
      perf.updates += 1;
      perf.last = performance.now();
      if (res.diverged || run.divergedAt !== null) { status(`Diverged at step ${run.divergedAt ?? res.t}: the loss is no longer finite. Lower η or reset.`, true); break; }
      // No frame wait: the next answer is already on its way, and the browser paints while we await it.
    }
    if (gen === generation && playing) { playing = false; playButton(); draw(); }
  }

  function pause() { playing = false; playButton(); state.t = run.t; saveURL(true); if (run.last) draw(); }

  async function stepOnce() {
    if (playing) pause();
    await seek(run.t + 1);
  }

  // A setting changed: a spec change starts a new run at t = 0 (same initial weights); a view change redraws.
  function changed(fields) {
    state = sanitize(state);
    syncControls();
    const experiment = fields.some((f) => !VIEW_FIELDS.has(f));
    if (experiment && specKey() !== run.key) {
      const wasPlaying = playing;
      playing = false;
      newRun();
      buildDiagram();
      seek(0).then(() => { if (wasPlaying) play(); });
    } else if (fields.includes("mode") || fields.includes("row")) {
      refresh();
    } else {
      draw();
    }
    saveURL(true);
  }

  function refresh() {   // ask for the current step again (mode or sample changed)
    const gen = generation;
    gridRequest(run.t, run.t, false).then((res) => { if (gen === generation) { merge(res); draw(); } }).catch(fail);
  }

  function reset() {
    const wasPlaying = playing;
    playing = false;
    newRun();
    buildDiagram();
    seek(0).then(() => { if (wasPlaying) play(); });
    saveURL(true);
  }

  let urlTimer = 0;
  function saveURL(now) {
    if (run) state.t = run.t;
    const write = () => { urlTimer = 0; history.replaceState(null, "", toURL(state)); };
    if (now) { clearTimeout(urlTimer); write(); } else if (!urlTimer) urlTimer = setTimeout(write, 400);
  }

  function status(text, bad) {
    const el = $("[data-testid=status]");
    el.textContent = text;
    el.classList.toggle("bad", !!bad);
  }

  function fail(e) {
    playing = false;
    playButton();
    status((e.messages && e.messages.length ? e.messages.join(" · ") : e.message) || "request failed", true);
  }

  // ---- drawing ----------------------------------------------------------------------------------------------
  let diagTimer = 0;
  let diagVisible = false;
  new IntersectionObserver((entries) => {
    diagVisible = entries.some((e) => e.isIntersecting);
    if (diagVisible && run && run.last) drawDiagnostics();
  }).observe(document.querySelector(".pg-diag"));

  function draw() {
    if (!run.last) return;
    const started = performance.now();
    const res = run.last;
    $("[data-testid=step]").textContent = String(res.t);
    const perEpoch = Math.ceil(res.m_train / (res.batch_size || res.m_train));
    $("[data-testid=epoch]").textContent = String(Math.floor(res.t / perEpoch));
    const m = res.metrics;
    $("[data-testid=train-loss]").textContent = fmt(m.loss, 4);
    $("[data-testid=test-loss]").textContent = res.m_test ? fmt(m.test_loss, 4) : "no test data";
    $("[data-testid=train-acc]").textContent = m.accuracy === null ? "—" : (100 * m.accuracy).toFixed(1) + "%";
    $("[data-testid=test-acc]").textContent = m.test_accuracy === null ? "—" : (100 * m.test_accuracy).toFixed(1) + "%";
    drawOutput(res);
    drawLoss();
    updateDiagram(res);
    saveURL(false);
    const now = performance.now();
    if (!playing || (diagVisible && now - diagTimer > 400)) { diagTimer = now; drawDiagnostics(); }
    perf.drawMs += performance.now() - started;
  }

  // Colours: blue (negative / class 0) - white - orange (positive / class 1); a 256-entry table for the canvases.
  function diverging(blue, white, orange) {   // 256 RGB entries: blue at 0, white at 127.5, orange at 255
    const out = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const u = i / 127.5 - 1;
      const [a, b, f] = u < 0 ? [white, blue, -u] : [white, orange, u];
      for (let c = 0; c < 3; c++) out[3 * i + c] = a[c] + (b[c] - a[c]) * f;
    }
    return out;
  }
  const LUT = diverging([0, 114, 178], [247, 247, 247], [230, 159, 0]);

  function outputRange(res) {   // the value that maps to full colour
    if (!isRegression()) return [0, 1];
    const ys = run.data ? run.data.train.y.concat(run.data.test.y) : [1];
    const M = Math.max(1e-6, ...ys.map(Math.abs));
    return [-M, M];
  }

  // The output: the network's value over the plane painted on a canvas (cheap, every update) under a Plotly
  // chart of the axes and the data points (redrawn only when the points or the view change).
  const HEAT_LUT = diverging([136, 186, 222], [248, 248, 248], [244, 210, 128]);   // paler, under the points
  let outputKey = "";
  const heatSource = document.createElement("canvas");

  function outputLayer() {   // the canvas under the plot, created once inside the plot's container
    const el = document.getElementById("pg-heatmap");
    let canvas = el.querySelector("canvas.heat-layer");
    if (!canvas) {
      canvas = overlay(el, "heat-layer");
      canvas.dataset.testid = "heat-layer";
      el.addEventListener("click", onHeatmapClick, true);   // capture: Plotly's drag layer sees it after us
    }
    return canvas;
  }

  function plotArea(el = document.getElementById("pg-heatmap")) {   // the plot area, in px relative to el
    const drag = el.querySelector(".nsewdrag");
    if (drag) {
      const a = drag.getBoundingClientRect(), b = el.getBoundingClientRect();
      return { left: a.left - b.left, top: a.top - b.top, width: a.width, height: a.height };
    }
    const size = el._fullLayout && el._fullLayout._size;   // a static plot has no drag layer
    return size ? { left: size.l, top: size.t, width: size.w, height: size.h } : null;
  }


  function drawOutput(res) {
    const el = document.getElementById("pg-heatmap");
    const canvas = outputLayer();
    const [lo, hi] = outputRange(res);
    const twoD = res.n_inputs === 2;
    const e = res.extent;
    const yRange = twoD ? [-e, e] : [lo * 1.3, hi * 1.3];
    const drop = res.dropout && state.mode === "train" && twoD ? res.dropout : null;
    const key = JSON.stringify([run.key, !!run.data, state.showTest, e, yRange, drop && drop.x, BPV.isPresent(),
                                el.clientWidth, el.clientHeight]);
    if (key !== outputKey) {
      outputKey = key;
      window.Plotly.react(el, outputTraces(res, lo, hi, drop), BPV.plotLayout({
        margin: BPV.isPresent() ? { l: 52, r: 10, t: 8, b: 40 } : { l: 36, r: 8, t: 8, b: 28 },
        showlegend: false, dragmode: false, hovermode: "closest",
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        xaxis: { range: [-e, e], zeroline: false, showgrid: false, fixedrange: true, ticks: "outside", constrain: "domain" },
        yaxis: { range: yRange, zeroline: false, showgrid: false, fixedrange: true, ticks: "outside",
                 ...(twoD ? { scaleanchor: "x", scaleratio: 1, constrain: "domain" } : {}) },
      }), { ...BPV.plotConfig, displayModeBar: false });
    }
    const box = plotArea();
    if (!box) return;
    const ctx = sizeOverlay(canvas, box);
    const W = canvas.width, H = canvas.height, ratio = W / box.width;
    const out = unpack(res.output);
    if (twoD) {
      const n = out.shape[0];
      heatSource.width = heatSource.height = n;
      const sctx = heatSource.getContext("2d");
      const img = sctx.createImageData(n, n);
      const regression = isRegression();
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) {
          let v = out.values[r * n + c];
          const o = 4 * ((n - 1 - r) * n + c);
          if (Number.isNaN(v)) { img.data[o] = img.data[o + 1] = img.data[o + 2] = 190; img.data[o + 3] = 255; continue; }
          if (state.discretize && !regression) v = v >= 0.5 ? hi : lo;
          const i = Math.max(0, Math.min(255, Math.round(((v - lo) / (hi - lo)) * 255))) * 3;
          img.data[o] = HEAT_LUT[i]; img.data[o + 1] = HEAT_LUT[i + 1]; img.data[o + 2] = HEAT_LUT[i + 2]; img.data[o + 3] = 255;
        }
      }
      sctx.putImageData(img, 0, 0);
      // Grid points sit at the pixel centres: pixel i covers x_i +- half a cell, so the image overhangs by half a cell.
      const cw = W / (n - 1), ch = H / (n - 1);
      ctx.clearRect(0, 0, W, H);
      ctx.imageSmoothingEnabled = !state.discretize;
      ctx.drawImage(heatSource, -cw / 2, -ch / 2, W + cw, H + ch);
    } else {
      ctx.fillStyle = "#fafafa";
      ctx.fillRect(0, 0, W, H);
      const toY = (v) => H - ((v - yRange[0]) / (yRange[1] - yRange[0])) * H;
      ctx.strokeStyle = "#bbb"; ctx.lineWidth = ratio;
      ctx.beginPath(); ctx.moveTo(0, toY(0)); ctx.lineTo(W, toY(0)); ctx.stroke();
      ctx.strokeStyle = "#111"; ctx.lineWidth = 3 * ratio; ctx.lineJoin = "round";
      ctx.beginPath();
      let pen = false;
      out.values.forEach((v, i) => {
        const x = (i / (out.values.length - 1)) * W;
        if (Number.isNaN(v)) { pen = false; return; }
        if (pen) ctx.lineTo(x, toY(v)); else { ctx.moveTo(x, toY(v)); pen = true; }
      });
      ctx.stroke();
    }
    canvas.dataset.t = String(res.t);
  }

  function outputTraces(res, lo, hi, drop) {
    const data = run.data;
    const traces = [];
    const twoD = res.n_inputs === 2;
    const pointsOf = (set, test) => {
      if (!data || (test && !state.showTest)) return null;
      const xs = data[set].x, ys = data[set].y;
      if (!xs.length) return null;
      const marker = isRegression() && twoD
        ? { color: ys, colorscale: [[0, COLORS.neg], [0.5, "#f7f7f7"], [1, COLORS.pos]], cmin: lo, cmax: hi }
        : { color: twoD ? ys.map((y) => (y > 0.5 ? COLORS.pos : COLORS.neg)) : (test ? COLORS.pos : COLORS.neg) };
      return {
        type: "scatter", mode: "markers", name: test ? "test" : "train", hoverinfo: "x+y+name",
        x: xs.map((p) => p[0]), y: twoD ? xs.map((p) => p[1]) : ys,
        marker: { ...marker, size: BPV.isPresent() ? 9 : 7, symbol: test ? "diamond" : "circle",
                  line: { color: test || (isRegression() && twoD) ? "#111" : "#fff", width: test ? 1.5 : 1 } },
      };
    };
    const train = pointsOf("train", false), test = pointsOf("test", true);
    if (train) traces.push(train);
    if (test) traces.push(test);
    if (drop) {
      traces.push({ type: "scatter", mode: "markers", x: [drop.x[0]], y: [drop.x[1]], hoverinfo: "skip",
                    name: "this sample", marker: { size: 22, symbol: "circle-open", color: "#111", line: { width: 3 } } });
    }
    if (!traces.length) traces.push({ type: "scatter", x: [], y: [] });
    return traces;
  }


  function decimate(n, max = 1500) {   // indices 0..n-1, at most `max` of them, always the last
    const stride = Math.max(1, Math.ceil(n / max));
    const idx = [];
    for (let i = 0; i < n; i += stride) idx.push(i);
    if (n && idx[idx.length - 1] !== n - 1) idx.push(n - 1);
    return idx;
  }

  function ticks(top) {   // 3 to 6 round tick values on [0, top]
    const raw = top / 5;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => top / s <= 5.5) || 10 * mag;
    const vals = [];
    for (let v = 0; v <= top + 1e-12; v += step) vals.push(+v.toPrecision(12));
    return { tickmode: "array", tickvals: vals };
  }

  function roomy(v) {   // a round bound at or above v that changes rarely as v grows: 1, 1.2, 1.5, 2, ... x 10^k
    const mag = 10 ** Math.floor(Math.log10(Math.max(v, 1e-12)));
    return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((f) => f * mag).find((b) => b >= v * (1 - 1e-12));
  }

  // Train and test loss. Plotly draws the axes, only when their round bounds change; the curves go on a canvas
  // under it every update (a full Plotly redraw costs more than the rest of an update). Paused, Plotly draws the
  // curves itself so they can be hovered.
  let lossKey = "";
  function drawLoss() {
    const el = document.getElementById("pg-loss");
    const n = run.loss.length;
    const hasTest = !!run.last.m_test;
    let top = 1e-9;
    for (const series of hasTest ? [run.loss, run.testLoss] : [run.loss]) {
      for (const v of series) if (v !== null && v !== undefined && Number.isFinite(v)) top = Math.max(top, v);
    }
    const xTop = roomy(Math.max(10, n - 1)), yTop = roomy(top * 1.05);
    const big = BPV.isPresent();
    const key = JSON.stringify([xTop, yTop, big, playing, el.clientWidth, el.clientHeight, run.key,
                                playing ? 0 : n]);
    if (key !== lossKey) {
      lossKey = key;
      const idx = decimate(n, 600);
      const traces = playing ? [] : [
        { x: idx, y: idx.map((i) => run.loss[i] ?? null), name: "train", mode: n > 1 ? "lines" : "markers",
          line: { color: "#111", width: 2.5 }, marker: { color: "#111", size: 8 } },
        ...(hasTest ? [{ x: idx, y: idx.map((i) => run.testLoss[i] ?? null), name: "test", mode: n > 1 ? "lines" : "markers",
                         marker: { color: COLORS.pos, size: 8 },
                         line: { color: COLORS.pos, width: 2.5 } }] : [])];
      window.Plotly.react(el, traces.length ? traces : [{ x: [], y: [] }], BPV.plotLayout({
        margin: { l: big ? 62 : 46, r: 12, t: 8, b: big ? 58 : 38 }, showlegend: false,
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        xaxis: { title: { text: "step" }, range: [0, xTop], autorange: false, ...ticks(xTop) },
        yaxis: { title: { text: "loss" }, range: [0, yTop], autorange: false, ...ticks(yTop) },
        hovermode: playing ? false : "x unified",
      }), playing ? { staticPlot: true } : { ...BPV.plotConfig, displayModeBar: false });
    }
    const canvas = overlay(el, "loss-layer");
    const box = plotArea(el);
    if (!box) return;
    const ctx = sizeOverlay(canvas, box);
    const W = canvas.width, H = canvas.height, ratio = W / box.width;
    ctx.clearRect(0, 0, W, H);
    if (!playing) return;   // Plotly has the curves
    const idx = decimate(n, Math.max(200, Math.round(box.width)));
    const line = (series, color) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2.5 * ratio;
      ctx.lineJoin = "round";
      ctx.beginPath();
      let pen = false;
      for (const i of idx) {
        const v = series[i];
        if (v === null || v === undefined || !Number.isFinite(v)) { pen = false; continue; }
        const x = (i / xTop) * W, y = H - (v / yTop) * H;
        if (pen) ctx.lineTo(x, y); else { ctx.moveTo(x, y); pen = true; }
      }
      ctx.stroke();
    };
    line(run.loss, "#111");
    if (hasTest) line(run.testLoss, COLORS.pos);
  }

  function overlay(el, cls) {   // a canvas under a Plotly chart's SVG, created once
    let canvas = el.querySelector("canvas." + cls);
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "plot-layer " + cls;
      el.prepend(canvas);
    }
    return canvas;
  }

  function sizeOverlay(canvas, box) {
    const ratio = window.devicePixelRatio || 1;
    Object.assign(canvas.style, { left: box.left + "px", top: box.top + "px", width: box.width + "px", height: box.height + "px" });
    const W = Math.round(box.width * ratio), H = Math.round(box.height * ratio);
    if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
    return canvas.getContext("2d");
  }

  // ---- the network diagram: nodes are canvases over one SVG of edges --------------------------------------
  let geom = null;

  function buildDiagram() {
    const host = $("[data-testid=diagram]");
    host.replaceChildren();
    const sizes = layerSizes();
    const cols = sizes.length;
    const width = Math.max(280, host.clientWidth || 600);
    const big = BPV.isPresent();
    const labelPad = big ? 62 : 50;
    const spacing = cols > 1 ? (width - labelPad - 50) / (cols - 1) : width;
    const narrow = spacing < (big ? 110 : 84);     // many layers: stack the column heads' controls
    const head = narrow ? (big ? 100 : 86) : (big ? 72 : 64);
    const maxRows = Math.max(...sizes);
    const top = host.getBoundingClientRect().top + window.scrollY;
    const room = Math.max(260, window.innerHeight - top - 24) - head;   // keep the whole net on the first screen
    const node = Math.max(24, Math.min(big ? 56 : 50, Math.floor((width - labelPad) / (cols * 1.75)),
                                       Math.floor(room / (maxRows * 1.22))));
    const gap = Math.max(6, Math.round(node * 0.22));
    const xs = sizes.map((_, c) => labelPad + (cols === 1 ? 0 : c * (width - labelPad - node - 4) / (cols - 1)));
    const height = head + maxRows * (node + gap) + 4;
    const ys = sizes.map((n) => Array.from({ length: n }, (_, j) => head + j * (node + gap)));
    host.style.height = height + "px";
    geom = { sizes, xs, ys, node, head, width, height };

    const svgNS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("class", "edges");
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    geom.edges = [];
    for (let l = 0; l < cols - 1; l++) {
      const layerEdges = [];
      for (let j = 0; j < sizes[l + 1]; j++) {
        const row = [];
        for (let k = 0; k < sizes[l]; k++) {
          const x0 = xs[l] + node, y0 = ys[l][k] + node / 2, x1 = xs[l + 1], y1 = ys[l + 1][j] + node / 2;
          const mid = (x0 + x1) / 2;
          const d = `M${x0},${y0} C${mid},${y0} ${mid},${y1} ${x1},${y1}`;
          const g = document.createElementNS(svgNS, "g");
          g.setAttribute("class", "edge");
          g.dataset.l = String(l); g.dataset.j = String(j); g.dataset.k = String(k);
          const vis = document.createElementNS(svgNS, "path");
          vis.setAttribute("d", d);
          vis.setAttribute("class", "vis");
          const hit = document.createElementNS(svgNS, "path");
          hit.setAttribute("d", d);
          hit.setAttribute("class", "hit");
          const title = document.createElementNS(svgNS, "title");
          g.append(vis, hit, title);
          svg.append(g);
          row.push({ g, vis, title });
        }
        layerEdges.push(row);
      }
      geom.edges.push(layerEdges);
    }
    host.append(svg);

    geom.nodes = sizes.map((n, c) => Array.from({ length: n }, (_, j) => {
      const div = document.createElement("div");
      div.className = "node" + (c === 0 ? " input" : c === cols - 1 ? " output" : "");
      div.style.left = xs[c] + "px";
      div.style.top = ys[c][j] + "px";
      div.style.width = div.style.height = node + "px";
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 20;
      div.append(canvas);
      if (c === 0) {
        const label = document.createElement("span");
        label.className = "feat-label";
        label.textContent = FEATURE_LABELS[state.features[j]] || state.features[j];
        div.append(label);
        div.title = `input feature ${state.features[j]}`;
        div.dataset.testid = "feature-node";
      } else {
        div.dataset.testid = c === cols - 1 ? "output-node" : "hidden-node";
        div.dataset.l = String(c); div.dataset.j = String(j);
      }
      host.append(div);
      return { div, canvas };
    }));

    // Column heads: neurons +/- and the activation of each layer after the input.
    sizes.forEach((n, c) => {
      const headEl = document.createElement("div");
      headEl.className = "col-head controls" + (narrow ? " narrow" : "");
      headEl.style.left = (xs[c] + node / 2) + "px";
      if (narrow) headEl.style.width = Math.max(30, Math.floor(xs[1] - xs[0] - 4)) + "px";
      if (c === 0) {
        headEl.innerHTML = `<span class="col-title">inputs</span>`;
      } else {
        const hidden = c < cols - 1;
        if (hidden) {
          const row = document.createElement("div");
          row.className = "neurons";
          const minus = button("−", "Remove a unit", () => setNeurons(c - 1, -1));
          const plus = button("+", "Add a unit", () => setNeurons(c - 1, +1));
          minus.dataset.testid = `neurons-minus-${c}`;
          plus.dataset.testid = `neurons-plus-${c}`;
          const count = document.createElement("span");
          count.className = "num";
          count.textContent = String(n);
          if (narrow) row.append(plus, count, minus); else row.append(minus, count, plus);
          headEl.append(row);
        } else {
          const t = document.createElement("span");
          t.className = "col-title";
          t.textContent = "output";
          headEl.append(t);
        }
        const select = document.createElement("select");
        select.title = `activation of layer ${c}`;
        select.dataset.testid = `act-${c}`;
        const SHORT = { sigmoid: "sig", tanh: "tanh", relu: "relu", leaky_relu: "leaky", linear: "lin" };
        for (const a of CAT.activations) select.append(new Option(narrow ? SHORT[a.name] || a.name : a.name.replace("_", " "), a.name));
        select.value = state.acts[c - 1];
        select.addEventListener("change", () => {
          state.acts[c - 1] = select.value;
          if (c === cols - 1 && select.value !== "sigmoid" && state.loss === "bce") state.loss = isRegression() ? "mse" : "half_mse";
          changed(["acts"]);
        });
        headEl.append(select);
      }
      host.append(headEl);
    });
    $("[data-testid=n-layers]").textContent = String(state.hidden.length);
    drawInputs();
    if (run && run.last) updateDiagram(run.last);
  }

  function button(text, title, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost icon tiny";
    b.textContent = text;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.addEventListener("click", onClick);
    return b;
  }

  function paint(canvas, values, res, mapper) {   // a res x res grid, row 0 = bottom (y = -extent)
    if (canvas.width !== res) canvas.width = canvas.height = res;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(res, res);
    for (let r = 0; r < res; r++) {
      for (let c = 0; c < res; c++) {
        const v = values[r * res + c];
        const o = 4 * ((res - 1 - r) * res + c);
        if (Number.isNaN(v)) { img.data[o] = img.data[o + 1] = img.data[o + 2] = 200; img.data[o + 3] = 255; continue; }
        const i = Math.max(0, Math.min(255, Math.round((mapper(v) + 1) * 127.5))) * 3;
        img.data[o] = LUT[i]; img.data[o + 1] = LUT[i + 1]; img.data[o + 2] = LUT[i + 2]; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function curve(canvas, values, mapper) {   // 1-D inputs: the unit's value along x
    const W = 60;
    if (canvas.width !== W) canvas.width = canvas.height = W;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, W);
    ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, W / 2); ctx.lineTo(W, W / 2); ctx.stroke();
    ctx.strokeStyle = "#111"; ctx.lineWidth = 2.5; ctx.beginPath();
    const n = values.length;
    for (let i = 0; i < n; i++) {
      const y = W / 2 - Math.max(-1, Math.min(1, mapper(values[i]))) * (W / 2 - 3);
      const x = (i / (n - 1)) * W;
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    }
    ctx.stroke();
  }

  function mapperFor(act, values) {   // the activation's natural range to [-1, 1]
    if (act === "sigmoid") return (v) => 2 * v - 1;
    if (act === "tanh") return (v) => v;
    let M = 1e-9;
    for (const v of values) if (Number.isFinite(v)) M = Math.max(M, Math.abs(v));
    return (v) => v / M;
  }

  function drawInputs() {
    const e = (run && run.last) ? run.last.extent : 1.1;
    const res = 20;
    state.features.forEach((f, j) => {
      const cell = geom.nodes[0][j];
      if (!cell) return;
      const fn = FEATURE_FN[f];
      if (inputDims() === 1) {
        const vals = Array.from({ length: 60 }, (_, i) => fn(-e + (2 * e * i) / 59, 0));
        curve(cell.canvas, vals, mapperFor("linear", vals));
        return;
      }
      const vals = new Float32Array(res * res);
      for (let r = 0; r < res; r++) for (let c = 0; c < res; c++) {
        vals[r * res + c] = fn(-e + (2 * e * c) / (res - 1), -e + (2 * e * r) / (res - 1));
      }
      paint(cell.canvas, vals, res, mapperFor("linear", vals));
    });
    geom.inputExtent = e;
  }

  function updateDiagram(res) {
    if (!geom || geom.sizes.join() !== layerSizes().join()) buildDiagram();
    if (geom.inputExtent !== res.extent) drawInputs();
    const train = state.mode === "train" && res.dropout;
    const masks = train ? res.dropout.masks : null;
    // Edges: width and colour by weight; edges out of a dropped unit fade.
    let maxW = 1e-9;
    res.weights.forEach((W) => W.forEach((row) => row.forEach((w) => { if (Number.isFinite(w)) maxW = Math.max(maxW, Math.abs(w)); })));
    const scale = Math.max(1, maxW);
    geom.edges.forEach((layer, l) => layer.forEach((row, j) => row.forEach((e, k) => {
      const w = res.weights[l][j][k];
      const ok = w !== null && Number.isFinite(w);
      const width = ok ? 0.6 + 7 * Math.min(1, Math.abs(w) / scale) : 1;
      e.vis.setAttribute("stroke-width", width.toFixed(2));
      e.vis.setAttribute("stroke", !ok ? COLORS.grey : w >= 0 ? COLORS.edgePos : COLORS.edgeNeg);
      const droppedFrom = masks && l > 0 && masks[l - 1] && masks[l - 1][k] === 0;
      const droppedTo = masks && l < masks.length && masks[l][j] === 0;
      e.g.classList.toggle("off", !!(droppedFrom || droppedTo));
      e.title.textContent = `W${l + 1}[${j},${k}] = ${ok ? w.toFixed(4) : "null"} (click to edit)`;
    })));
    // Hidden units: their activation over the plane.
    res.neurons.forEach((layer, l) => layer.forEach((g, j) => {
      const cell = geom.nodes[l + 1][j];
      if (!cell) return;
      const u = unpack(g);
      const mapper = mapperFor(state.acts[l], u.values);
      if (res.n_inputs === 1) curve(cell.canvas, u.values, mapper);
      else paint(cell.canvas, u.values, u.shape[0], mapper);
      const b = res.biases[l][j];
      const dropped = masks && masks[l] && masks[l][j] === 0;
      cell.div.classList.toggle("dropped", !!dropped);
      cell.div.title = `layer ${l + 1}, unit ${j + 1} (${state.acts[l]}): bias b = ${fmt(b, 3)}` +
        (dropped ? " — dropped in this step's mask" : "");
    }));
    const outCell = geom.nodes[geom.nodes.length - 1][0];
    const out = unpack(res.output);
    const mapper = isRegression() ? mapperFor("linear", out.values) : (v) => 2 * v - 1;
    if (res.n_inputs === 1) curve(outCell.canvas, out.values, mapper);
    else paint(outCell.canvas, out.values, out.shape[0], mapper);
    outCell.div.title = `output (${state.acts[state.acts.length - 1]}): bias b = ${fmt(res.biases[res.biases.length - 1][0], 3)}`;
    const info = $("[data-testid=weights-info]");
    info.replaceChildren();
    if (state.w) {
      info.append("initial weights: edited ");
      info.append(button("use the initialiser", "Forget the edited weights", () => { state.w = null; changed(["w"]); }));
      info.lastChild.className = "ghost small";
    }
  }

  function setNeurons(layer, delta) {
    const n = state.hidden[layer] + delta;
    if (n < 1 || n > MAX_NEURONS) return;
    state.hidden[layer] = n;
    state.w = null;
    changed(["hidden"]);
  }

  function setLayers(delta) {
    const n = state.hidden.length + delta;
    if (n < 0 || n > MAX_LAYERS) return;
    if (delta > 0) { state.hidden.push(state.hidden[state.hidden.length - 1] || 4); state.acts.splice(n - 1, 0, state.acts[0] === state.acts[state.acts.length - 1] && state.hidden.length === 1 ? "tanh" : state.acts[Math.max(0, n - 2)]); }
    else { state.hidden.pop(); state.acts.splice(n, 1); }
    state.w = null;
    changed(["hidden"]);
  }

  // ---- editing one weight ------------------------------------------------------------------------------------
  let editing = null;
  function openEdgeEditor(event, l, j, k) {
    const res = run.last;
    if (!res) return;
    if (playing) pause();
    editing = { l, j, k };
    const box = $("[data-testid=edge-editor]");
    box.querySelector(".edge-name").textContent =
      `W${l + 1}[${j},${k}]: from ${l === 0 ? "input " + (FEATURE_LABELS[state.features[k]] || state.features[k]) : "unit " + (k + 1) + " of layer " + l} to ${l === state.hidden.length ? "the output" : "unit " + (j + 1) + " of layer " + (l + 1)}, at step ${res.t}`;
    const input = box.querySelector("input");
    const w = res.weights[l][j][k];
    input.value = w === null ? "0" : String(+w.toFixed(4));
    const host = ROOT.getBoundingClientRect();
    box.hidden = false;
    const x = Math.min(event.clientX - host.left + 8, ROOT.clientWidth - box.offsetWidth - 8);
    box.style.left = Math.max(8, x) + "px";
    box.style.top = (event.clientY - host.top + 8) + "px";
    input.focus();
    input.select();
  }

  function applyEdge() {
    const box = $("[data-testid=edge-editor]");
    const value = Number(box.querySelector("input").value);
    if (!editing || !Number.isFinite(value) || Math.abs(value) > 100) {
      box.querySelector("input").setCustomValidity("a number between -100 and 100");
      box.querySelector("input").reportValidity();
      return;
    }
    const res = run.last;
    const W = res.weights.map((m) => m.map((r) => r.slice()));
    const b = res.biases.map((r) => r.slice());
    W[editing.l][editing.j][editing.k] = value;
    state.w = { W, b };
    box.hidden = true;
    editing = null;
    changed(["w"]);
  }

  // ---- custom data: click to add, CSV upload ----------------------------------------------------------------
  function currentPoints() {
    if (state.pts) return state.pts.map((p) => p.slice());
    if (!run.data) return [];
    const all = [];
    for (const set of ["train", "test"]) run.data[set].x.forEach((x, i) => all.push([x[0], x[1], run.data[set].y[i]]));
    return all;
  }

  function onHeatmapClick(ev) {
    const mode = $("[data-testid=add-mode] input:checked")?.value || "off";
    const box = plotArea();
    if (mode === "off" || inputDims() !== 2 || !box || !run.last) return;
    const host = document.getElementById("pg-heatmap").getBoundingClientRect();
    const u = (ev.clientX - host.left - box.left) / box.width, v = (ev.clientY - host.top - box.top) / box.height;
    if (u < 0 || u > 1 || v < 0 || v > 1) return;
    const e = run.last.extent;
    const x = -e + 2 * e * u, y = e - 2 * e * v;
    const label = isRegression() ? Number($("[data-testid=add-value]")?.value || 0) : Number(mode);
    const pts = currentPoints();
    if (pts.length >= CAT.limits.csv_max_rows) { status(`At most ${CAT.limits.csv_max_rows} points.`, true); return; }
    pts.push([+x.toFixed(3), +y.toFixed(3), label]);
    state.pts = pts;
    changed(["pts"]);
  }

  async function uploadCSV(file) {
    const box = $("[data-testid=csv-result]");
    box.replaceChildren();
    if (!file) return;
    const show = (cls, lines) => {
      const div = document.createElement("div");
      div.className = cls;
      const ul = document.createElement("ul");
      for (const line of lines) { const li = document.createElement("li"); li.textContent = line; ul.append(li); }
      div.append(ul);
      box.append(div);
    };
    if (inputDims() !== 2) { show("error-box", ["Custom points need a 2-input dataset (not sine)."]); return; }
    if (file.size > CAT.limits.csv_max_bytes) {
      show("error-box", [`${file.name}: ${file.size} bytes; at most ${CAT.limits.csv_max_bytes} bytes.`]);
      return;
    }
    const text = await file.text();
    try {
      const res = await post("/api/v1/csv-points", { text, task: isRegression() ? "regression" : "classification" });
      state.pts = res.points;
      show("ok-box", [`Loaded ${res.n} points from ${file.name}.`]);
      changed(["pts"]);
    } catch (e) {
      show("error-box", [`${file.name} was not loaded:`, ...(e.messages && e.messages.length ? e.messages : [e.message])]);
    }
  }

  // ---- diagnostics --------------------------------------------------------------------------------------------
  function tex(el, source) {
    el.replaceChildren();
    for (const line of [].concat(source)) {
      const div = document.createElement("div");
      div.className = "tex";
      try { window.katex.render(line, div, { throwOnError: false, displayMode: true }); } catch (e) { div.textContent = line; }
      el.append(div);
    }
  }
  function tnum(x, digits = 3) {   // a number for LaTeX: scientific when tiny or huge, real minus sign
    if (x === null || x === undefined || Number.isNaN(x)) return "\\text{—}";
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a < 1e-3 || a >= 1e5) {
      const [m, e] = x.toExponential(2).split("e");
      return `${m} \\times 10^{${parseInt(e, 10)}}`;
    }
    return x.toFixed(digits);
  }

  function drawDiagnostics() {
    const tab = state.tab;
    if (tab === "gradients") drawGradients();
    else if (tab === "dropout") drawDropout();
    else if (tab === "regularization") drawRegularization();
  }

  function layerName(l, L) { return l === L ? `l = ${l} (output)` : `l = ${l}`; }

  function logTicks(values) {   // decades only, fewer of them on a wide span; 1-2-5 on a narrow one
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v > 0 && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!Number.isFinite(lo)) return {};
    const span = Math.log10(hi) - Math.log10(lo);
    return span < 1.5 ? { dtick: "D2" } : { dtick: Math.max(1, Math.ceil(span / 6)) };
  }

  function logLines(elId, series, L, title) {
    const n = series.length;
    const idx = decimate(n, 800);
    const traces = [];
    for (let l = 0; l < L; l++) {
      traces.push({ x: idx, y: idx.map((i) => { const v = series[i] && series[i][l]; return v > 0 ? v : null; }),
                    name: layerName(l + 1, L), mode: "lines", line: { color: LAYER_COLORS[l % 9], width: 2 } });
    }
    window.Plotly.react(elId, traces, BPV.plotLayout({
      margin: { t: 10 }, uirevision: "keep",
      yaxis: { type: "log", title: { text: title }, exponentformat: "power", automargin: true,
               ...logTicks(traces.flatMap((t) => t.y)) },
      xaxis: { title: { text: "step" }, rangemode: "tozero" },
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
      hovermode: playing ? false : "x unified",
      annotations: n ? [] : [{ text: "press ▶ or +1 to record the norms of each step", showarrow: false,
                               xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 14, color: "#555" } }],
    }), playing ? { staticPlot: true } : { ...BPV.plotConfig, displayModeBar: false });
  }

  function drawGradients() {
    const L = layerSizes().length - 1;
    logLines("pg-delta", run.delta, L, "‖δˡ‖");
    logLines("pg-dw", run.dW, L, "‖∂L/∂Wˡ‖");
    const last = run.delta[run.delta.length - 1];
    const el = $("[data-testid=delta-formula]");
    const lines = [String.raw`\delta^{[l]} = \left(W^{[l+1]}\right)^{T} \delta^{[l+1]} \odot \sigma'\!\left(z^{[l]}\right)`];
    if (last && L > 1) {
      const parts = last.map((v, l) => `\\|\\delta^{[${l + 1}]}\\| = ${tnum(v)}`);
      for (let i = 0; i < parts.length; i += 3) {
        lines.push((i ? "" : `\\text{step } ${run.delta.length - 1}:\\; `) + parts.slice(i, i + 3).join(",\\; "));
      }
      lines.push(`\\frac{\\|\\delta^{[1]}\\|}{\\|\\delta^{[${L}]}\\|} = \\frac{${tnum(last[0])}}{${tnum(last[L - 1])}} = ${tnum(last[0] / last[L - 1])}`);
    }
    const key = lines.join("|");
    if (el.dataset.key !== key) { el.dataset.key = key; tex(el, lines); }
  }

  // One-click comparisons on an 8-hidden-layer network (8 units each) on this page's data; /api/v1/train each.
  const CMP_STEPS = 50;
  function deepSpec(act, init, extra = {}) {
    const s = specOf();
    const L = 8;
    const out = isRegression() ? "linear" : "sigmoid";
    s.network = { layers: [state.features.length, ...Array(L).fill(8), 1], activations: [...Array(L).fill(act), out],
                  loss: isRegression() ? "mse" : "bce", init, seed: state.wseed };
    s.optimizer = { name: "sgd", lr: 0.1, batch_size: null };
    delete s.dropout; delete s.l1; delete s.l2;
    return { ...s, ...extra };
  }

  async function compare(kind) {
    const box = $("[data-testid=cmp-result]");
    box.replaceChildren();
    const wait = document.createElement("p");
    wait.className = "muted";
    wait.textContent = "Training…";
    box.append(wait);
    $$("[data-cmp]").forEach((b) => { b.disabled = true; });
    try {
      if (kind === "activation") await compareActivations(box);
      else if (kind === "init") await compareInits(box);
      else await compareClipping(box);
    } catch (e) {
      box.replaceChildren();
      const err = document.createElement("div");
      err.className = "error-box";
      err.textContent = (e.messages || [e.message]).join(" · ");
      box.append(err);
    } finally {
      $$("[data-cmp]").forEach((b) => { b.disabled = false; });
    }
  }

  function train(spec, steps) { return post("/api/v1/train", { ...spec, steps }); }

  function cmpChart(box, id, traces, layout) {
    const title = layout.title && layout.title.text;
    delete layout.title;
    if (title) box.append(Object.assign(document.createElement("h4"), { className: "chart-title", textContent: title }));
    const div = document.createElement("div");
    div.id = id;
    div.className = "chart";
    box.append(div);
    if (layout.yaxis && layout.yaxis.type === "log") {
      layout.yaxis = { ...layout.yaxis, ...logTicks(traces.flatMap((t) => (t.y || []).map((v) => (v === null ? NaN : v)))) };
    }
    window.Plotly.react(div, traces, BPV.plotLayout({
      ...layout, margin: { t: 34, ...(layout.margin || {}), ...{ t: 34 } },
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" } }), { ...BPV.plotConfig });
  }

  function normTable(box, rows, L, caption, testid) {
    const table = document.createElement("table");
    table.className = "num-table cmp-table";
    table.dataset.testid = testid;
    const cap = document.createElement("caption");
    cap.textContent = caption;
    table.append(cap);
    const head = table.createTHead().insertRow();
    head.append(Object.assign(document.createElement("th"), { textContent: "" }));
    for (let l = 1; l <= L; l++) head.append(Object.assign(document.createElement("th"), { textContent: `l = ${l}` }));
    for (const extra of rows[0].extra || []) head.append(Object.assign(document.createElement("th"), { textContent: extra[0] }));
    const body = table.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.name = r.name;
      tr.append(Object.assign(document.createElement("th"), { textContent: r.name }));
      r.values.forEach((v, l) => {
        const td = tr.insertCell();
        td.textContent = v === 0 ? "0" : fmt(v, 3);
        td.dataset.layer = String(l + 1);
        td.dataset.value = String(v);
      });
      for (const extra of r.extra || []) tr.insertCell().textContent = extra[1];
    }
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.append(table);
    box.append(wrap);
  }

  async function compareActivations(box) {
    const init = $("[data-cmp-opt=act-init]").value;
    const [sig, relu] = await Promise.all([train(deepSpec("sigmoid", init), CMP_STEPS), train(deepSpec("relu", init), CMP_STEPS)]);
    box.replaceChildren();
    const L = 9;
    const runs = [["sigmoid", sig, LAYER_COLORS[0]], ["ReLU", relu, LAYER_COLORS[1]]];
    const layers = Array.from({ length: L }, (_, i) => i + 1);
    const two = document.createElement("div");
    two.className = "two";
    box.append(two);
    const left = document.createElement("div"), right = document.createElement("div");
    two.append(left, right);
    cmpChart(left, "pg-cmp-a", runs.map(([name, r, color]) => ({
      x: layers, y: r.delta_norm[0].map((v) => (v > 0 ? v : null)), name, mode: "lines+markers",
      line: { color, width: 3 }, marker: { size: 9 } })), {
      margin: { t: 30 }, title: { text: "‖δˡ‖ at step 0, by layer", font: { size: 14 } },
      xaxis: { title: { text: "layer l (1 = first hidden, 9 = output)" }, dtick: 1 },
      yaxis: { type: "log", exponentformat: "power", automargin: true, title: { text: "‖δˡ‖" } } });
    cmpChart(right, "pg-cmp-b", runs.map(([name, r, color]) => ({
      x: r.grad_norm.map((_, i) => i), y: r.grad_norm.map((g) => (g[0] > 0 ? g[0] : null)), name, mode: "lines",
      line: { color, width: 3 } })), {
      margin: { t: 30 }, title: { text: "‖∂L/∂W¹‖ (first layer) while training", font: { size: 14 } },
      xaxis: { title: { text: "step" } }, yaxis: { type: "log", exponentformat: "power", automargin: true, title: { text: "‖∂L/∂W¹‖" } } });
    normTable(box, runs.map(([name, r]) => ({ name, values: r.delta_norm[0],
      extra: [["loss after " + CMP_STEPS, fmt(r.loss[CMP_STEPS], 4)]] })), L,
      `‖δˡ‖ at step 0 (RMS over the training samples), init ${init}`, "cmp-table");
    const ratio = (r) => r.delta_norm[0][0] / r.delta_norm[0][L - 1];
    const f = document.createElement("div");
    f.className = "tex-block";
    box.append(f);
    tex(f, [
      String.raw`\sigma'_{\text{sigmoid}}(z) = \sigma(z)\,(1-\sigma(z)) \le \tfrac14`,
      String.raw`\Rightarrow\; \text{8 hidden layers shrink } \delta \text{ by up to } \left(\tfrac14\right)^{8} = ${tnum(0.25 ** 8)} \text{ (times the weights)}`,
      String.raw`\text{sigmoid: } \frac{\|\delta^{[1]}\|}{\|\delta^{[9]}\|} = \frac{${tnum(sig.delta_norm[0][0])}}{${tnum(sig.delta_norm[0][L - 1])}} = ${tnum(ratio(sig))}`,
      String.raw`\text{ReLU: } \frac{\|\delta^{[1]}\|}{\|\delta^{[9]}\|} = \frac{${tnum(relu.delta_norm[0][0])}}{${tnum(relu.delta_norm[0][L - 1])}} = ${tnum(ratio(relu))}`,
      String.raw`\sigma'_{\text{ReLU}}(z) = [z > 0] \in \{0, 1\}:\ \text{active units pass } \delta \text{ back unshrunk}`,
    ]);
  }

  async function compareInits(box) {
    const act = $("[data-cmp-opt=init-act]").value;
    const inits = ["zeros", "small", "xavier", "he", "large"];
    const runs = await Promise.all(inits.map((i) => train(deepSpec(act, i), CMP_STEPS)));
    box.replaceChildren();
    const L = 9;
    const layers = Array.from({ length: L }, (_, i) => i + 1);
    cmpChart(box, "pg-cmp-a", runs.map((r, i) => ({
      x: layers, y: r.grad_norm[0].map((v) => (v > 0 ? v : null)), name: inits[i], mode: "lines+markers",
      line: { color: LAYER_COLORS[i], width: 3 }, marker: { size: 9 } })), {
      margin: { t: 30 }, title: { text: `‖∂L/∂Wˡ‖ at step 0, by layer (${act}; zeros is 0 everywhere, off the log scale)`, font: { size: 14 } },
      xaxis: { title: { text: "layer l" }, dtick: 1 },
      yaxis: { type: "log", exponentformat: "power", automargin: true, title: { text: "‖∂L/∂Wˡ‖_F" } } });
    normTable(box, runs.map((r, i) => ({ name: inits[i], values: r.grad_norm[0],
      extra: [["loss at 0", fmt(r.loss[0], 4)], ["after " + CMP_STEPS, fmt(r.loss[CMP_STEPS], 4)]] })), L,
      `‖∂L/∂Wˡ‖ at step 0, ${act} hidden layers`, "cmp-table");
    const f = document.createElement("div");
    f.className = "tex-block";
    box.append(f);
    tex(f, [
      String.raw`\text{zeros: } W = 0 \qquad \text{small: } 0.01\,\mathcal N(0,1) \qquad \text{large: } 3\,\mathcal N(0,1)`,
      String.raw`\text{Xavier: } U(-a, a),\ a = \sqrt{\tfrac{6}{n_{in}+n_{out}}} = \sqrt{\tfrac{6}{8+8}} = ${tnum(Math.sqrt(6 / 16))} \qquad \text{He: } \mathcal N\!\left(0, \tfrac{2}{n_{in}}\right),\ \text{sd} = \sqrt{\tfrac28} = ${tnum(0.5)}`,
      String.raw`\frac{\|\partial L/\partial W^{[1]}\|}{\|\partial L/\partial W^{[9]}\|}:\ ` + runs.map((r, i) => `\\text{${inits[i]}}\\ ${r.grad_norm[0][L - 1] > 0 ? tnum(r.grad_norm[0][0] / r.grad_norm[0][L - 1]) : "0/0"}`).join(",\\;"),
    ]);
  }

  async function compareClipping(box) {
    const which = $("[data-cmp-opt=clip-case]").value;
    const c = Number($("[data-cmp-opt=clip-c]").value);
    const base = which === "explode"
      ? deepSpec("leaky_relu", "large", { optimizer: { name: "sgd", lr: 0.0001, batch_size: 10 } })
      : deepSpec("relu", "he", { optimizer: { name: "sgd", lr: 0.5, batch_size: 10 } });
    const steps = 150;
    const [off, on] = await Promise.all([train(base, steps), train({ ...base, clip_norm: c }, steps)]);
    box.replaceChildren();
    const xs = off.grad_norm.map((_, i) => i);
    const offNorm = off.grad_norm.map((g) => { const s = Math.sqrt(g.reduce((a, v) => a + (v === null ? NaN : v * v), 0)); return Number.isFinite(s) && s > 0 ? s : null; });
    const two = document.createElement("div");
    two.className = "two";
    box.append(two);
    const left = document.createElement("div"), right = document.createElement("div");
    two.append(left, right);
    cmpChart(left, "pg-cmp-a", [
      { x: xs, y: offNorm, name: "off: ‖g‖", mode: "lines", line: { color: LAYER_COLORS[4], width: 2.5 } },
      { x: xs, y: on.clip_norm_before, name: "on: ‖g‖ before", mode: "lines", line: { color: LAYER_COLORS[0], width: 2, dash: "dot" } },
      { x: xs, y: on.clip_norm_after, name: "on: after", mode: "lines", line: { color: LAYER_COLORS[2], width: 3 } },
    ], { margin: { t: 30 }, title: { text: "gradient norm per step", font: { size: 14 } }, xaxis: { title: { text: "step" } },
         yaxis: { type: "log", exponentformat: "power", automargin: true, title: { text: "‖g‖" } } });
    cmpChart(right, "pg-cmp-b", [
      { x: off.loss.map((_, i) => i), y: off.loss, name: "clipping off", mode: "lines", line: { color: LAYER_COLORS[4], width: 2.5 } },
      { x: on.loss.map((_, i) => i), y: on.loss, name: `clipping at c = ${c}`, mode: "lines", line: { color: LAYER_COLORS[2], width: 3 } },
    ], { margin: { t: 30 }, title: { text: "training loss", font: { size: 14 } }, xaxis: { title: { text: "step" } },
         yaxis: { type: "log", exponentformat: "power", automargin: true, title: { text: "loss" } } });
    const finite = (a) => a.filter((v) => v !== null && Number.isFinite(v));
    const maxOff = Math.max(0, ...finite(offNorm)), maxBefore = Math.max(0, ...finite(on.clip_norm_before || [])),
          maxAfter = Math.max(0, ...finite(on.clip_norm_after || []));
    const f = document.createElement("div");
    f.className = "tex-block";
    box.append(f);
    const lastOf = (a) => { const v = finite(a); return v.length ? v[v.length - 1] : null; };
    tex(f, [
      String.raw`g \leftarrow g \cdot \min\!\left(1, \frac{c}{\|g\|}\right), \quad c = ${c}`,
      String.raw`\text{off: } \max_t \|g_t\| = ${tnum(maxOff)},\ \text{loss}_{${steps}} = ${off.diverged ? `\\text{diverged at step } ${off.diverged_at}` : tnum(lastOf(off.loss))} \qquad \text{on: } \max_t \|g_t\| = ${tnum(maxBefore)} \to ${tnum(maxAfter)},\ \text{loss}_{${steps}} = ${on.diverged ? `\\text{diverged at step } ${on.diverged_at}` : tnum(lastOf(on.loss))}`,
    ]);
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = "The off run's ‖g‖ is √Σ‖∂L/∂Wˡ‖² (weights only); the on run's is the clipped global norm over all parameters. " +
      (which === "explode" ? "Leaky ReLU with large initial weights: the norms grow by orders of magnitude per step until the loss is no longer finite."
                           : "ReLU, He, η = 0.5, batch 10: without clipping, occasional large steps undo the progress.");
    box.append(note);
  }

  // Gradient check: analytic against central differences, at this step's weights (sent as explicit weights).
  let gcResult = null;
  let gcBusy = false;
  async function gradcheck() {
    if (!run.last || gcBusy) return;
    if (playing) pause();
    gcBusy = true;
    const res = run.last;
    const spec = specOf();
    spec.network = { ...spec.network, weights: res.weights, biases: res.biases };
    const eps = 10 ** state.epsExp;
    const verdict = $("[data-testid=gc-verdict]");
    verdict.className = "gc-verdict muted";
    verdict.textContent = "Checking…";
    try {
      const P = res.weights.reduce((a, W, l) => a + W.length * (W[0].length + 1), 0);
      const body = { spec, t: 0, epsilon: eps };
      if (P > CAT.limits.max_gradcheck_params) body.max_params = CAT.limits.max_gradcheck_params;
      gcResult = { ...(await post("/api/v1/gradcheck", body)), step: res.t, P };
    } catch (e) {
      gcResult = { error: (e.messages || [e.message]).join(" · ") };
    } finally {
      gcBusy = false;
    }
    renderGradcheck();
  }

  const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
  function powerOfTen(exp) {   // -7 -> "10⁻⁷", -6.5 -> "3.2 × 10⁻⁷"
    const whole = Math.floor(exp);
    const mantissa = 10 ** (exp - whole);
    const power = "10" + String(whole).split("").map((c) => SUPERSCRIPT[c]).join("");
    return mantissa > 1.0001 ? `${mantissa.toFixed(1)} × ${power}` : power;
  }

  function norm(a) { return Math.sqrt(a.reduce((s, v) => s + v * v, 0)); }

  function renderGradcheck() {
    const formula = $("[data-testid=gc-formula]");
    if (!formula.dataset.done) {
      formula.dataset.done = "1";
      tex(formula, [
        String.raw`\frac{\partial J}{\partial \theta_i} \approx \frac{J(\theta + \varepsilon e_i) - J(\theta - \varepsilon e_i)}{2\varepsilon} \qquad \text{difference} = \frac{\|g_{\text{num}} - g_{\text{ana}}\|_2}{\|g_{\text{num}}\|_2 + \|g_{\text{ana}}\|_2} \;<\; 10^{-7}\ \text{passes (note 003)}`,
      ]);
    }
    $("[data-out=eps]").textContent = powerOfTen(state.epsExp);
    const verdict = $("[data-testid=gc-verdict]");
    const table = $("[data-testid=gc-table]");
    if (!gcResult) {
      verdict.className = "gc-verdict muted";
      verdict.textContent = "Press the button to compare backprop's gradient with central differences at the current weights (whole training set, no dropout).";
      table.replaceChildren();
      window.Plotly.purge("pg-gc-rel");
      window.Plotly.purge("pg-gc-scatter");
      return;
    }
    if (gcResult.error) { verdict.className = "gc-verdict error-box"; verdict.textContent = gcResult.error; return; }
    const r = gcResult;
    const gap = norm(r.numeric.map((v, i) => v - r.analytic[i])), nn = norm(r.numeric), na = norm(r.analytic);
    verdict.className = "gc-verdict " + (r.passed ? "ok-box" : "error-box");
    verdict.replaceChildren();
    const head = document.createElement("div");
    head.className = "gc-head";
    head.dataset.testid = "gc-pass";
    head.textContent = (r.passed ? "✓ PASSED" : "✗ FAILED") + ` — step ${r.step}, ε = ${r.epsilon.toExponential(1)}, ${r.index.length} of ${r.P} parameters`;
    const eq = document.createElement("div");
    verdict.append(head, eq);
    const diff = r.difference;
    tex(eq, String.raw`\frac{${tnum(gap)}}{${tnum(nn)} + ${tnum(na)}} = ${tnum(diff)} \;${r.passed ? "<" : "\\ge"}\; ${tnum(r.threshold)}`);
    const worst = r.relative_error.reduce((best, v, i) => (v > r.relative_error[best] ? i : best), 0);
    const note = document.createElement("p");
    note.className = "muted gc-note";
    note.textContent = `The note's test is on the whole vector. Per parameter, the largest relative error is ${r.names[worst]}: ` +
      `analytic ${r.analytic[worst].toPrecision(6)}, numeric ${r.numeric[worst].toPrecision(6)}, ${r.relative_error[worst].toExponential(1)}` +
      ` — small gradients lose digits to rounding in J(θ ± ε). Move ε: too small and rounding grows, too large and the O(ε²) truncation error grows.`;
    verdict.append(note);
    const big = BPV.isPresent();
    const floor = 1e-17;
    window.Plotly.react("pg-gc-rel", [
      { type: "bar", x: r.names, y: r.relative_error.map((v) => Math.max(v ?? 1, floor)), name: "relative error",
        marker: { color: r.relative_error.map((v) => (v < THRESHOLD ? "#009E73" : "#E69F00")) } },
      { type: "scatter", mode: "lines", x: [r.names[0], r.names[r.names.length - 1]], y: [THRESHOLD, THRESHOLD],
        name: "10⁻⁷", line: { color: "#111", dash: "dash", width: 2 } },
    ], BPV.plotLayout({ margin: { t: 30, b: big ? 90 : 70 }, title: { text: "|a − n| / (|a| + |n|) per parameter", font: { size: 14 } },
      showlegend: false, yaxis: { type: "log", exponentformat: "power", automargin: true }, xaxis: { tickangle: -60, automargin: true } }),
    { ...BPV.plotConfig, displayModeBar: false });
    const lim = Math.max(1e-12, ...r.analytic.map(Math.abs), ...r.numeric.map(Math.abs)) * 1.1;
    window.Plotly.react("pg-gc-scatter", [
      { type: "scatter", mode: "lines", x: [-lim, lim], y: [-lim, lim], name: "n = a", line: { color: "#999", dash: "dot" }, hoverinfo: "skip" },
      { type: "scatter", mode: "markers", x: r.analytic, y: r.numeric, text: r.names, name: "parameters",
        marker: { size: big ? 10 : 8, color: "#0072B2" }, hovertemplate: "%{text}<br>analytic %{x:.6g}<br>numeric %{y:.6g}<extra></extra>" },
    ], BPV.plotLayout({ margin: { t: 30 }, title: { text: "numeric against analytic", font: { size: 14 } }, showlegend: false,
      xaxis: { title: { text: "analytic (backprop)" }, exponentformat: "power" },
      yaxis: { title: { text: "numeric (central difference)" }, exponentformat: "power", automargin: true } }),
    { ...BPV.plotConfig, displayModeBar: false });
    table.replaceChildren();
    const hr = table.createTHead().insertRow();
    for (const h of ["parameter", "analytic", "numeric", "relative error", "< 10⁻⁷"]) hr.append(Object.assign(document.createElement("th"), { textContent: h }));
    const tb = table.createTBody();
    r.names.forEach((name, i) => {
      const tr = tb.insertRow();
      const ok = r.relative_error[i] < THRESHOLD;
      for (const text of [name, r.analytic[i].toPrecision(8), r.numeric[i].toPrecision(8),
                          r.relative_error[i] === 0 ? "0" : r.relative_error[i].toExponential(2), ok ? "yes" : "no"]) tr.insertCell().textContent = text;
      tr.className = ok ? "" : "warn";
    });
  }

  function drawDropout() {
    const res = run.last;
    const el = $("[data-testid=drop-formula]");
    const tables = $("[data-testid=drop-tables]");
    const d = res.dropout;
    $("[data-testid=drop-row]").textContent = d ? `${d.batch_row + 1} of ${d.batch_size}` : "—";
    if (!d) {
      const key = "none" + state.dropout + state.hidden.length;
      if (el.dataset.key !== key) {
        el.dataset.key = key;
        tex(el, [String.raw`\text{mask} \sim \text{Bernoulli}(1-p), \qquad \tilde a^{[l]} = \frac{a^{[l]} \odot \text{mask}^{[l]}}{\text{keep\_prob}}`]);
        tables.replaceChildren(Object.assign(document.createElement("p"), { className: "muted",
          textContent: state.dropout && !state.hidden.length
            ? "Dropout acts on hidden layers: add one to see this step's mask."
            : "Dropout is off. Choose p > 0 (here or in the bar above) to see this step's mask on the diagram." }));
      }
      return;
    }
    const p = d.layers[0].p, keep = d.layers[0].keep_prob;
    const key = JSON.stringify([res.t, d.batch_row, state.mode, p, res.metrics.loss]);
    if (el.dataset.key === key) return;
    el.dataset.key = key;
    tex(el, [
      String.raw`\text{mask} \sim \text{Bernoulli}(\text{keep\_prob}), \qquad \text{keep\_prob} = 1 - p = 1 - ${p} = ${tnum(keep, 2)}`,
      String.raw`\tilde a^{[l]} = \frac{a^{[l]} \odot \text{mask}^{[l]}}{${tnum(keep, 2)}} = ${tnum(1 / keep, 4)}\; a^{[l]} \odot \text{mask}^{[l]}`,
      ...(state.mode === "train" ? [
        String.raw`\text{training mode: step } ${res.t}\text{'s mask for sample } ${d.batch_row + 1} \text{ of the batch (training row } ${d.data_row}\text{,}`,
        String.raw`x = (${d.x.map((v) => tnum(v)).join(", ")})\text{), drawn on the diagram and applied to the output}`,
      ] : [
        String.raw`\text{evaluation mode: no mask and no rescaling}`,
        String.raw`\text{(inverted dropout rescaled during training, so } \mathbb E[\tilde a] = a\text{)}`,
      ]),
    ]);
    tables.replaceChildren();
    d.layers.forEach((layer, l) => {
      const table = document.createElement("table");
      table.className = "num-table drop-table";
      table.append(Object.assign(document.createElement("caption"), { textContent: `hidden layer ${l + 1}` }));
      const hr = table.createTHead().insertRow();
      for (const h of ["unit", "a", "mask", `ã = a·mask/${tnum(keep, 2)}`]) hr.append(Object.assign(document.createElement("th"), { textContent: h }));
      const tb = table.createTBody();
      layer.a_before.forEach((a, j) => {
        const tr = tb.insertRow();
        tr.className = layer.mask[j] ? "" : "dropped";
        for (const text of [String(j + 1), fmt(a, 4), String(layer.mask[j]), fmt(layer.a_after[j], 4)]) tr.insertCell().textContent = text;
      });
      tables.append(table);
    });
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = "Note 003 also allows the other convention: no rescaling in training and × (1 − p) at inference. The engine uses inverted dropout, as the note's code does.";
    tables.append(note);
  }

  function drawRegularization() {
    const res = run.last;
    const m = res.metrics;
    const el = $("[data-testid=reg-formula]");
    const key = JSON.stringify([res.t, m.loss, state.l1, state.l2]);
    if (el.dataset.key === key) return;
    el.dataset.key = key;
    const mt = res.m_train, lam = state.l2, lam1 = state.l1;
    tex(el, [
      String.raw`\text{note 003: } L_{total} = L_{data} + \frac{\lambda}{2m} \sum_l \|W^{[l]}\|_F^2, \qquad \frac{\partial L_{total}}{\partial W} = \frac{\partial L_{data}}{\partial W} + \frac{\lambda}{m} W`,
      String.raw`\text{engine: } J = L_{data} + \frac{\lambda_2}{2}\sum_l \|W^{[l]}\|_F^2 + \lambda_1 \sum_l |W^{[l]}|_1, \quad \lambda_2 = \frac{\lambda}{m}:\ \lambda_2 = ${lam} \text{ with } m = ${mt} \text{ is the note's } \lambda = ${tnum(lam * mt, 3)}`,
      String.raw`\text{step } ${res.t}:\ J = ${tnum(m.data_loss, 4)} + \frac{${lam}}{2} \times ${tnum(m.sum_w2, 3)} + ${lam1} \times ${tnum(m.sum_abs_w, 3)} = ${tnum(m.data_loss, 4)} + ${tnum(m.penalty, 4)} = ${tnum(m.loss, 4)}`,
      String.raw`\text{weight decay: } W \leftarrow W - \eta\left(\frac{\partial L_{data}}{\partial W} + \lambda_2 W + \lambda_1 \operatorname{sign}(W)\right), \quad \eta = ${state.lr}`,
    ]);
  }

  // ---- controls -------------------------------------------------------------------------------------------------
  function fill(select, values, label = (v) => String(v)) {
    select.replaceChildren(...values.map((v) => new Option(label(v), String(v))));
  }

  function buildControls() {
    fill($("[data-field=opt]"), CAT.optimizers.map((o) => o.name));
    fill($("[data-field=lr]"), OPTIONS.lr);
    fill($("[data-field=sched]"), CAT.schedules.map((s) => s.name));
    fill($("[data-field=batch]"), OPTIONS.batch, (v) => (v === 0 ? "full" : String(v)));
    fill($("[data-field=loss]"), CAT.losses.map((l) => l.name), (v) => ({ half_mse: "½ squared error", mse: "mean squared error", bce: "binary cross-entropy" }[v] || v));
    fill($("[data-field=init]"), CAT.initializers);
    fill($("[data-field=l2]"), OPTIONS.l2);
    fill($("[data-field=l1]"), OPTIONS.l1);
    $$("[data-field=dropout]").forEach((s) => fill(s, OPTIONS.dropout));
    fill($("[data-field=chunk]"), OPTIONS.chunk);
    fill($("[data-cmp-opt=act-init]"), CAT.initializers.filter((i) => i !== "zeros"));
    $("[data-cmp-opt=act-init]").value = "he";
    fill($("[data-cmp-opt=init-act]"), ["tanh", "sigmoid", "relu"]);
    fill($("[data-cmp-opt=clip-case]"), ["unstable", "explode"], (v) => (v === "explode" ? "leaky ReLU, large init, η = 10⁻⁴" : "ReLU, He, η = 0.5, batch 10"));
    fill($("[data-cmp-opt=clip-c]"), [0.1, 0.5, 1, 5, 10]);
    $("[data-cmp-opt=clip-c]").value = "1";

    const ds = $("[data-testid=datasets]");
    let group = "";
    for (const d of CAT.datasets) {
      const kind = d.task === "regression" ? "regression" : "classification";
      if (kind !== group) {
        group = kind;
        ds.append(Object.assign(document.createElement("span"), { className: "ds-group", textContent: kind }));
      }
      const label = document.createElement("label");
      label.className = "ds";
      label.title = d.description;
      const input = Object.assign(document.createElement("input"), { type: "radio", name: "pg-dataset", value: d.name });
      input.dataset.testid = `dataset-${d.name}`;
      label.append(input, document.createTextNode(DATASET_LABELS[d.name] || d.name));
      ds.append(label);
    }
    const feats = $("[data-testid=features]");
    for (const f of CAT.features) {
      const label = document.createElement("label");
      label.className = "chk";
      const input = Object.assign(document.createElement("input"), { type: "checkbox", value: f });
      input.dataset.testid = `feature-${f}`;
      label.append(input, document.createTextNode(" " + (FEATURE_LABELS[f] || f)));
      feats.append(label);
    }
  }

  function syncControls() {
    for (const el of $$("[data-field]")) {
      const k = el.dataset.field;
      if (!(k in state)) continue;
      if (el.type === "checkbox") el.checked = !!state[k];
      else if (el.type === "radio") el.checked = el.value === state[k];
      else el.value = String(state[k]);
    }
    $("[data-out=noise]").textContent = state.noise.toFixed(2);
    $("[data-out=test]").textContent = Math.round(state.test * 100) + "%";
    $$("[data-testid=datasets] input").forEach((i) => { i.checked = i.value === state.dataset; });
    $$("[data-testid=features] input").forEach((i) => {
      i.checked = state.features.includes(i.value);
      i.disabled = !featuresFor().includes(i.value);
      i.parentElement.classList.toggle("disabled", i.disabled);
    });
    const custom = !!state.pts;
    $("[data-testid=noise]").disabled = custom;
    $("[data-testid=test-ratio]").disabled = custom;
    $("[data-testid=regenerate]").disabled = custom;
    $("[data-testid=clear-points]").hidden = !custom;
    $("[data-testid=custom-info]").textContent = custom
      ? `Custom data: ${state.pts.length} points, all used for training (no test split).`
      : (inputDims() === 2 ? "Choose a class, then click the output to add points." : "Custom points need a 2-input dataset.");
    $("[data-testid=custom-info]").dataset.count = String(custom ? state.pts.length : 0);
    buildAddMode();
    const sp = $("[data-testid=sched-params]");
    sp.replaceChildren();
    for (const [k, label, min, max, step] of SCHEDULE_PARAMS[state.sched] || []) {
      const l = document.createElement("label");
      l.textContent = label + " ";
      const input = Object.assign(document.createElement("input"), { type: "number", min, max, step, value: state[k] });
      input.dataset.field = k;
      input.className = "narrow";
      input.addEventListener("change", () => {
        const v = Number(input.value);
        if (Number.isFinite(v) && v >= min && v <= max) { state[k] = v; changed([k]); } else input.value = state[k];
      });
      l.append(input);
      sp.append(l);
    }
    $("[data-field=chunk]").value = String(state.chunk);
    $("[data-testid=discretize]").disabled = isRegression();
    for (const o of $("[data-field=loss]").options) o.disabled = o.value === "bce" && isRegression();
    for (const sel of $$("select[data-field]")) {   // a value from a URL that no option offers gets one
      const v = String(state[sel.dataset.field]);
      if (sel.dataset.field in state && ![...sel.options].some((o) => o.value === v)) { sel.append(new Option(v, v)); sel.value = v; }
    }
    showTab(state.tab);
  }

  function buildAddMode() {
    const box = $("[data-testid=add-mode]");
    const want = isRegression() ? "regression" : "classification";
    if (box.dataset.kind === want && box.dataset.dims === String(inputDims())) return;
    const keep = box.querySelector("input:checked")?.value;
    box.dataset.kind = want;
    box.dataset.dims = String(inputDims());
    box.replaceChildren();
    const options = isRegression() ? [["off", "off"], ["value", "add a point with y ="]]
      : [["off", "off"], ["0", "add class 0"], ["1", "add class 1"]];
    for (const [value, text] of options) {
      const label = document.createElement("label");
      label.className = "chk" + (value === "0" ? " c0" : value === "1" ? " c1" : "");
      const input = Object.assign(document.createElement("input"), { type: "radio", name: "pg-add", value });
      input.dataset.testid = `add-${value}`;
      input.checked = value === (keep || "off");
      input.disabled = inputDims() !== 2;
      label.append(input, document.createTextNode(" " + text));
      box.append(label);
    }
    if (isRegression()) {
      const v = Object.assign(document.createElement("input"), { type: "number", value: "1", step: "0.1", min: "-100", max: "100", className: "narrow" });
      v.dataset.testid = "add-value";
      box.append(v);
    }
  }

  function playButton() {
    const b = $("[data-pg=play]");
    b.textContent = playing ? "❚❚" : "▶";
    b.setAttribute("aria-label", playing ? "Pause" : "Play");
    b.classList.toggle("on", playing);
  }

  function showTab(tab) {
    $$("[role=tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
    $$("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== tab; });
  }

  function wire() {
    ROOT.addEventListener("change", (ev) => {
      const el = ev.target;
      if (el.closest("[data-testid=datasets]")) {
        const before = isRegression();
        state.dataset = el.value;
        state.pts = null; state.w = null;
        if (before !== isRegression()) {   // a regression needs a linear output and squared error, and back
          state.acts[state.acts.length - 1] = isRegression() ? "linear" : "sigmoid";
          state.loss = isRegression() ? "mse" : "bce";
        }
        state.features = state.features.filter((f) => featuresFor().includes(f));
        changed(["dataset"]);
        return;
      }
      if (el.closest("[data-testid=features]")) {
        const on = new Set($$("[data-testid=features] input:checked").map((i) => i.value));
        state.features = CAT.features.filter((f) => on.has(f));
        state.w = null;
        changed(["features"]);
        return;
      }
      if (el.dataset.testid === "csv") { uploadCSV(el.files[0]); el.value = ""; return; }
      const k = el.dataset.field;
      if (!k || !(k in state) || el.closest("[data-testid=sched-params]")) return;
      if (el.type === "checkbox") state[k] = el.checked;
      else if (el.type === "radio") state[k] = el.value;
      else if (typeof FIELDS[k][1] === "number") state[k] = Number(el.value);
      else state[k] = el.value;
      if (k === "loss" && state.loss === "bce") state.acts[state.acts.length - 1] = "sigmoid";
      if (k === "opt") state.lr = closest(OPTIONS.lr, CAT.optimizers.find((o) => o.name === state.opt).defaults.lr);
      if (k === "epsExp") { renderGradcheck(); if (gcResult && !gcResult.error) gradcheck(); return; }
      changed([k]);
      if (["showTest", "discretize"].includes(k)) draw();
    });
    ROOT.addEventListener("input", (ev) => {
      const el = ev.target;
      if (el.dataset.field === "noise") $("[data-out=noise]").textContent = Number(el.value).toFixed(2);
      if (el.dataset.field === "test") $("[data-out=test]").textContent = Math.round(Number(el.value) * 100) + "%";
      if (el.dataset.field === "epsExp") $("[data-out=eps]").textContent = powerOfTen(Number(el.value));
    });
    ROOT.addEventListener("click", (ev) => {
      const edge = ev.target.closest(".edge");
      if (edge) { openEdgeEditor(ev, +edge.dataset.l, +edge.dataset.j, +edge.dataset.k); return; }
      const tab = ev.target.closest("[role=tab]");
      if (tab) { state.tab = tab.dataset.tab; showTab(state.tab); drawDiagnostics(); saveURL(true); return; }
      const cmp = ev.target.closest("[data-cmp]");
      if (cmp) { compare(cmp.dataset.cmp); return; }
      const action = ev.target.closest("[data-pg]")?.dataset.pg;
      if (!action) return;
      if (action === "play") { if (playing) pause(); else play(); }
      else if (action === "step") stepOnce();
      else if (action === "reset") reset();
      else if (action === "reseed") { state.wseed += 1; state.w = null; changed(["wseed"]); }
      else if (action === "regenerate") { state.dseed += 1; state.pts = null; changed(["dseed"]); }
      else if (action === "add-layer") setLayers(+1);
      else if (action === "remove-layer") setLayers(-1);
      else if (action === "clear-points") { state.pts = null; changed(["pts"]); }
      else if (action === "gradcheck") gradcheck();
      else if (action === "edge-apply") applyEdge();
      else if (action === "edge-cancel") { $("[data-testid=edge-editor]").hidden = true; editing = null; }
      else if (action === "row-prev" || action === "row-next") {
        const size = run.last?.dropout?.batch_size || 1;
        state.row = (state.row + (action === "row-next" ? 1 : size - 1)) % size;
        changed(["row"]);
      }
    });
    $("[data-testid=edge-editor] input").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") applyEdge();
      if (ev.key === "Escape") { $("[data-testid=edge-editor]").hidden = true; editing = null; }
      ev.target.setCustomValidity("");
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const t = ev.target;
      if (t && (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName))) return;
      if (ev.key === " ") {
        if (t && t.tagName === "BUTTON") return;   // Space presses the focused button itself
        ev.preventDefault();
        if (playing) pause(); else play();
      }
      else if (ev.key === "s" || ev.key === "S") { stepOnce(); ev.preventDefault(); }
      else if (ev.key === "r" || ev.key === "R") { reset(); ev.preventDefault(); }
    });
    let resizeTimer = 0;
    const relayout = () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { buildDiagram(); draw(); }, 120); };
    window.addEventListener("resize", relayout);
    document.addEventListener("bpv:present", relayout);
  }

  function closest(values, x) { return values.reduce((a, v) => (Math.abs(Math.log(v) - Math.log(x)) < Math.abs(Math.log(a) - Math.log(x)) ? v : a)); }

  // ---- start ---------------------------------------------------------------------------------------------------
  buildControls();
  syncControls();
  wire();
  newRun();
  buildDiagram();
  seek(state.t);

  // For tests and the curious: how many redraws "play" managed, and the run itself.
  window.BPV.playground = {
    get state() { return state; },
    get run() { return run; },
    stats() {
      const seconds = (perf.last - perf.first) / 1000;
      const n = Math.max(1, perf.updates);
      return { updates: perf.updates, seconds, perSecond: seconds > 0 ? perf.updates / seconds : 0,
               drawMs: perf.drawMs / n, waitMs: perf.waitMs / n };
    },
  };
})();
