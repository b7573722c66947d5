// The optimizer race page: edit 2 to 8 contestants, run the race (streamed for networks), play it back.
//
// Three pieces of state, each in one object: `setup` (what a link reproduces: problem, steps, contestants),
// `race` (the numbers the server sent, filled in as the stream arrives) and `player` (the step on screen).
// Charts are drawn with Plotly.react once and grown frame by frame with Plotly.extendTraces; going back in
// time (scrubbing) redraws with Plotly.react. Nothing calls Plotly.newPlot.
(function () {
  "use strict";
  const BPV = window.BPV;
  const Plotly = window.Plotly;
  const config = JSON.parse(document.getElementById("race-config").textContent);
  const PROBLEMS = config.problems;
  const LIMITS = config.limits;
  const $ = (id) => document.getElementById(id);

  const PRETTY = { sgd: "SGD", momentum: "Momentum", nesterov: "Nesterov", rmsprop: "RMSprop", adam: "Adam",
                   adamw: "AdamW", adagrad: "Adagrad" };
  const ORDER = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad"];
  const HYPER_LABEL = { lr: "\u03b7 (lr)", momentum: "\u03bc", beta: "\u03b2", beta1: "\u03b2\u2081",
                        beta2: "\u03b2\u2082", eps: "\u03b5", weight_decay: "weight decay \u03bb",
                        lr_decay: "lr decay" };
  const SCHEDULE_LABEL = { gamma: "\u03b3", step_size: "k (steps)", decay: "\u03bb", lr_min: "\u03b7 min", T: "T (steps)" };
  const QUANTITY_LABEL = { update: "step \u0394\u03b8 (what the weight moved)", g: "gradient g", velocity: "velocity v / b",
                           s: "s (RMSprop's mean g\u00b2)", m: "m", v: "v", m_hat: "m\u0302 (Adam)", v_hat: "v\u0302 (Adam)",
                           sum: "G (Adagrad's sum g\u00b2)" };
  const QUANTITY_ORDER = ["update", "g", "velocity", "s", "m_hat", "v_hat", "m", "v", "sum"];
  const BATCHES = [null, 1, 4, 8, 16, 32, 64];
  const BASE_SECONDS = 10;          // a race plays in about this long at 1x

  // ---- setup: what a link reproduces -------------------------------------------------------------------------------
  const setup = {
    problem: config.initial.problem,
    steps: config.initial.steps,
    seed: config.initial.seed || 0,
    log: config.initial.log !== false,
    contestants: config.initial.contestants.map((c) => structuredClone(c)),
    stateIndex: 0,            // the weight whose optimizer state a network race records
  };
  let catalog = null;         // GET /api/v1/catalog: optimizers and schedules by name
  let race = null;            // the current race's numbers
  let controller = null;      // aborts a running request when a new race starts
  const player = { t: 0, playing: false, speed: 1, last: 0, raf: 0, shown: null, drawnAt: 0, interval: 30 };

  const problem = () => PROBLEMS[setup.problem];
  const isFunction = () => problem().kind === "function";

  // ---- labels and colours --------------------------------------------------------------------------------------------
  function short(x) {
    if (x === null || x === undefined) return "\u2014";
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e4)) return x.toExponential(0).replace("e-", "e\u2212");
    return String(Number(x.toPrecision(3)));
  }

  function labelOf(c, kind) {
    let label = `${PRETTY[c.name] || c.name} \u03b7=${short(c.lr)}`;
    if (kind === "network" && c.batch_size != null) label += ` \u00b7 batch ${c.batch_size}`;
    if (c.schedule && c.schedule.name !== "constant") label += ` \u00b7 ${c.schedule.name}`;
    return label;
  }

  function labels(list, kind) {
    const raw = list.map((c) => labelOf(c, kind));
    return raw.map((l, k) => (raw.indexOf(l) !== raw.lastIndexOf(l) ? `${l} #${k + 1}` : l));
  }

  const colorOf = (k) => BPV.PALETTE[k % BPV.PALETTE.length];

  // ---- contestant editor -----------------------------------------------------------------------------------------------
  function suggestedLr(name) {
    const table = problem().suggested_lr || {};
    return table[name] ?? catalog.optimizers[name].defaults.lr;
  }

  function freshContestant(name, keep) {
    const c = { name, ...catalog.optimizers[name].defaults, lr: suggestedLr(name) };
    c.batch_size = keep ? keep.batch_size : null;
    c.schedule = keep ? keep.schedule : { name: "constant" };
    return c;
  }

  function scheduleFor(name) {
    // defaults scaled to the race's length, so a schedule does something visible within it
    const s = { name, ...catalog.schedules[name].defaults };
    const n = Math.max(1, setup.steps);
    if (name === "cosine") s.T = n;
    if (name === "step") s.step_size = Math.max(1, Math.round(n / 4));
    if (name === "exponential") s.decay = Number((3 / n).toPrecision(2));
    return s;
  }

  function renderContestants() {
    const box = $("contestants");
    box.replaceChildren(...setup.contestants.map(contestantCard));
    const n = setup.contestants.length;
    $("contestant-count").textContent = `(${n} of ${LIMITS.min_contestants}\u2013${LIMITS.max_contestants})`;
    $("add-contestant").disabled = n >= LIMITS.max_contestants;
    box.querySelectorAll("[data-action=remove]").forEach((b) => { b.disabled = n <= LIMITS.min_contestants; });
  }

  function numberInput(value, attrs) {
    const input = document.createElement("input");
    input.type = "number";
    input.step = "any";
    input.value = value;
    Object.assign(input.dataset, attrs);
    return input;
  }

  function field(labelText, control) {
    const label = document.createElement("label");
    label.className = "field";
    const span = document.createElement("span");
    span.textContent = labelText;
    label.append(span, control);
    return label;
  }

  function select(options, value, attrs) {
    const s = document.createElement("select");
    for (const [v, text] of options) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = text;
      if (String(v) === String(value)) o.selected = true;
      s.append(o);
    }
    Object.assign(s.dataset, attrs);
    return s;
  }

  function math(tex, display = true) {
    const el = document.createElement("div");
    el.className = "eq";
    if (window.katex) window.katex.render(tex, el, { displayMode: display, throwOnError: false });
    else el.textContent = tex;
    return el;
  }

  function contestantCard(c, k) {
    const card = document.createElement("article");
    card.className = "contestant";
    card.style.setProperty("--c", colorOf(k));
    card.dataset.index = k;
    card.dataset.testid = "contestant";
    card.setAttribute("data-testid", "contestant");

    const head = document.createElement("header");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    const name = select(ORDER.filter((n) => catalog.optimizers[n]).map((n) => [n, PRETTY[n] || n]), c.name,
                        { field: "name" });
    name.setAttribute("aria-label", `Contestant ${k + 1} optimizer`);
    name.setAttribute("data-testid", "contestant-optimizer");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "ghost remove";
    remove.dataset.action = "remove";
    remove.setAttribute("data-testid", "remove-contestant");
    remove.setAttribute("aria-label", `Remove contestant ${k + 1}`);
    remove.textContent = "\u2715";
    head.append(swatch, name, remove);

    const hypers = document.createElement("div");
    hypers.className = "hypers";
    for (const key of Object.keys(catalog.optimizers[c.name].defaults)) {
      const input = numberInput(c[key], { field: key });
      input.setAttribute("data-testid", `hyper-${key}`);
      hypers.append(field(HYPER_LABEL[key] || key, input));
    }
    if (!isFunction()) {
      const rows = problem().rows;
      const options = BATCHES.filter((b) => b === null || b < rows)
        .map((b) => [b === null ? "" : b, b === null ? "full (GD)" : b === 1 ? "1 (SGD)" : `${b} (mini-batch)`]);
      if (c.batch_size != null && !BATCHES.includes(c.batch_size)) options.push([c.batch_size, String(c.batch_size)]);
      const batch = select(options, c.batch_size ?? "", { field: "batch_size" });
      batch.setAttribute("data-testid", "contestant-batch");
      hypers.append(field("batch", batch));
    }
    const schedule = select(Object.keys(catalog.schedules).map((n) => [n, n]), c.schedule.name, { field: "schedule" });
    schedule.setAttribute("data-testid", "contestant-schedule");
    hypers.append(field("schedule", schedule));
    for (const key of Object.keys(catalog.schedules[c.schedule.name].defaults)) {
      hypers.append(field(SCHEDULE_LABEL[key] || key, numberInput(c.schedule[key], { field: `schedule.${key}` })));
    }

    const eqs = document.createElement("div");
    eqs.className = "equations";
    eqs.setAttribute("data-testid", "contestant-equations");
    for (const tex of catalog.optimizers[c.name].equations) eqs.append(math(tex));
    eqs.append(math(catalog.schedules[c.schedule.name].equation));
    const matches = document.createElement("p");
    matches.className = "muted matches";
    matches.textContent = `= ${catalog.optimizers[c.name].matches}; g = \u2202J/\u2202\u03b8 on the batch`;
    card.append(head, hypers, eqs, matches);
    return card;
  }

  function onContestantInput(event) {
    const el = event.target;
    const card = el.closest(".contestant");
    if (!card || !el.dataset.field) return;
    const k = Number(card.dataset.index);
    const c = setup.contestants[k];
    const f = el.dataset.field;
    if (f === "name") {
      setup.contestants[k] = freshContestant(el.value, c);
      renderContestants();
    } else if (f === "schedule") {
      c.schedule = scheduleFor(el.value);
      renderContestants();
    } else if (f === "batch_size") {
      c.batch_size = el.value === "" ? null : Number(el.value);
    } else if (f.startsWith("schedule.")) {
      c.schedule[f.slice(9)] = el.value === "" ? null : Number(el.value);
    } else {
      c[f] = el.value === "" ? null : Number(el.value);
    }
  }

  function addContestant() {
    if (setup.contestants.length >= LIMITS.max_contestants) return;
    const used = setup.contestants.map((c) => c.name);
    const name = ORDER.find((n) => !used.includes(n)) || "adam";
    setup.contestants.push(freshContestant(name));
    renderContestants();
  }

  function removeContestant(k) {
    if (setup.contestants.length <= LIMITS.min_contestants) return;
    setup.contestants.splice(k, 1);
    renderContestants();
  }

  function applySuggestedLr() {
    setup.contestants.forEach((c) => { c.lr = suggestedLr(c.name); });
    renderContestants();
  }

  function changeProblem(name) {
    setup.problem = name;
    setup.steps = problem().steps;
    setup.stateIndex = 0;
    $("steps").value = setup.steps;
    setup.contestants.forEach((c) => {
      c.lr = suggestedLr(c.name);
      if (isFunction()) c.batch_size = null;
      if (c.schedule.name !== "constant") c.schedule = scheduleFor(c.schedule.name);
    });
    renderContestants();
    resetRace(`Press \u25b6 Start race to race on ${problem().title}.`);
  }

  // ---- the request -----------------------------------------------------------------------------------------------------
  function optimizerPayload(c) {
    const out = { name: c.name };
    for (const key of Object.keys(catalog.optimizers[c.name].defaults)) {
      if (c[key] !== null && c[key] !== undefined) out[key] = c[key];
    }
    const s = { name: c.schedule.name };
    for (const key of Object.keys(catalog.schedules[c.schedule.name].defaults)) {
      if (c.schedule[key] !== null && c.schedule[key] !== undefined) s[key] = c.schedule[key];
    }
    out.schedule = s;
    if (!isFunction()) out.batch_size = c.batch_size ?? null;
    return out;
  }

  function requestBody() {
    const optimizers = setup.contestants.map(optimizerPayload);
    if (isFunction()) return { problem: setup.problem, optimizers, steps: setup.steps };
    return { ...problem().spec, optimizers, steps: setup.steps, seed: setup.seed, state_index: setup.stateIndex };
  }

  function errorMessage(body, status) {
    const detail = body && body.detail;
    if (Array.isArray(detail) && detail.length) return detail.map((d) => d.msg).join("; ");
    return `The server answered ${status}.`;
  }

  // ---- running a race --------------------------------------------------------------------------------------------------
  function newRace(kind, steps, optimizers) {
    const K = optimizers.length;
    const empty = (n) => Array.from({ length: K }, () => new Array(n).fill(null));
    return {
      kind, problem: setup.problem, steps, K, optimizers,
      labels: labels(optimizers, kind), colors: optimizers.map((_, k) => colorOf(k)),
      loss: empty(steps + 1), lr: empty(steps), acc: null, diverged: new Array(K).fill(null),
      received: -1, done: false, landscape: null, boundary: null,
      stateRaw: null, states: Array.from({ length: K }, () => ({})), stateNames: optimizers.map(() => []),
      weightNames: [], specToken: null, specId: null,
    };
  }

  async function startRace() {
    if (!catalog) return;
    const steps = Number($("steps").value);
    if (!Number.isInteger(steps) || steps < 1 || steps > LIMITS.max_steps) {
      showError(`steps: must be a whole number from 1 to ${LIMITS.max_steps}`);
      return;
    }
    setup.steps = steps;
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    showError(null);
    pause();
    const optimizers = setup.contestants.map((c) => structuredClone(c));
    race = newRace(problem().kind, steps, optimizers);
    player.t = 0;
    player.shown = null;
    setStatus("running", "Training\u2026", 0);
    buildScoreboard();
    drawAll(true);
    play();
    try {
      if (isFunction()) await runFunctionRace(signal);
      else await runNetworkRace(signal);
    } catch (err) {
      if (err.name === "AbortError") return;
      setStatus("error", "Failed");
      showError(err.message || String(err));
      return;
    }
    updateUrl();
  }

  async function post(url, body, signal) {
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                   body: JSON.stringify(body), signal });
    if (!res.ok) {
      const err = await res.json().catch(() => null);
      throw new Error(errorMessage(err, res.status));
    }
    return res;
  }

  async function runFunctionRace(signal) {
    const res = await post("/api/v1/function-race", requestBody(), signal);
    const data = await res.json();
    const r = race;
    r.runs = data.runs;
    data.runs.forEach((run, k) => {
      r.loss[k] = run.loss;
      r.lr[k] = run.learning_rate;
      r.diverged[k] = run.diverged_at;
      r.stateNames[k] = Object.keys(run.states);
    });
    r.stateRaw = data.runs.map((run) => ({ update: run.update, g: run.grad, ...run.states }));
    r.weightNames = ["x", "y"];
    const p = data.problem;
    r.landscape = clampPaths({
      kind: "function", u: data.contour.x, v: data.contour.y, z: data.contour.z, log: p.log_contour,
      axes: ["x", "y"], minima: p.minima, saddles: p.saddles, start: p.start, equal: true,
      paths: data.runs.map((run) => run.path), pathSteps: data.runs[0].path.map((_, t) => t),
    });
    r.received = r.steps;
    selectStateSeries();
    await prepareLandscape(r.landscape);
    if (race === r) finishRace();
  }

  async function runNetworkRace(signal) {
    const res = await post("/api/v1/race/stream", requestBody(), signal);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) onEvent(JSON.parse(line));
      }
    }
    const r = race;
    if (!r.streamDone) throw new Error("The race stream ended early.");
    if (r.pending) await r.pending;             // the landscape image, so "done" means everything is drawn
    if (race === r) finishRace();
  }

  function onEvent(e) {
    const r = race;
    if (e.event === "start") {
      r.specToken = e.spec_token;
      r.specId = e.spec_id;
      r.weightNames = e.parameter_names;
      r.stateIndex = e.state_index;
      r.stateNames = e.state_names;
      r.classify = e.classify;
      if (e.classify) r.acc = r.loss.map((l) => new Array(l.length).fill(null));
      r.data = e.data;
      fillStateControls();
    } else if (e.event === "chunk") {
      for (let k = 0; k < r.K; k++) {
        e.loss[k].forEach((v, i) => { r.loss[k][e.t0 + i] = v; });
        if (r.acc && e.accuracy) e.accuracy[k].forEach((v, i) => { r.acc[k][e.t0 + i] = v; });
        e.learning_rate[k].forEach((v, i) => { r.lr[k][e.s0 + i] = v; });
        for (const [name, values] of Object.entries(e.state[k])) {
          if (!r.states[k][name]) r.states[k][name] = new Array(r.steps).fill(null);
          values.forEach((v, i) => { r.states[k][name][e.s0 + i] = v; });
        }
      }
      r.diverged = e.diverged_at;
      r.received = e.t1;
      setStatus("running", e.t1 < r.steps ? `Training\u2026 step ${e.t1} of ${r.steps}` : "Drawing the landscape\u2026",
                r.steps ? e.t1 / r.steps : 1);
      onDataArrived();
    } else if (e.event === "surface") {
      const L = clampPaths({
        kind: e.kind, u: e.u, v: e.v, z: e.loss, log: true, axes: e.axes, minima: e.minimum ? [e.minimum] : [],
        saddles: [], start: e.start, equal: false, paths: e.paths, pathSteps: e.path_steps,
      });
      r.landscape = L;
      r.pending = prepareLandscape(L).then(() => { if (race === r) { player.shown = null; if (!player.playing) drawAll(); } });
      player.shown = null;
    } else if (e.event === "boundary") {
      r.boundary = { x: e.x, y: e.y, steps: e.steps, z: e.z };
      player.shown = null;
    } else if (e.event === "done") {
      r.streamDone = true;
    } else if (e.event === "error") {
      throw new Error(errorMessage(e, "an error"));
    }
  }

  function finishRace() {
    race.done = true;
    const diverged = race.diverged.filter((d) => d !== null).length;
    setStatus("done", `Done: ${race.steps} steps` + (diverged ? `, ${diverged} diverged` : ""), 1);
    ["export-csv", "export-png", "export-svg"].forEach((id) => { $(id).disabled = false; });
    $("spec-id").textContent = race.specId ? `spec id ${race.specId}` : "";
    onDataArrived();
  }

  function onDataArrived() {
    $("scrub").max = String(race.steps);
    $("scrub").disabled = false;
    $("play").disabled = false;
    $("to-end").disabled = false;
    player.shown = null;          // ranges and static curves changed: redraw on the next frame
    if (!player.playing) drawAll(true);
  }

  function resetRace(message) {
    if (controller) controller.abort();
    controller = null;
    pause();
    race = null;
    player.t = 0;
    player.shown = null;
    setStatus("idle", message || "Ready", 0);
    $("scrub").disabled = true;
    $("play").disabled = true;
    $("to-end").disabled = true;
    ["export-csv", "export-png", "export-svg"].forEach((id) => { $(id).disabled = true; });
    $("spec-id").textContent = "";
    buildScoreboard();
    fillStateControls();
    drawAll(true);
  }

  function setStatus(state, text, progress) {
    const el = $("race-status");
    el.dataset.state = state;
    el.textContent = text;
    if (progress !== undefined) $("race-progress").value = progress;
    $("race-start").disabled = !catalog;
  }

  function showError(message) {
    const box = $("race-error");
    box.hidden = !message;
    box.textContent = message || "";
  }

  // ---- the player ------------------------------------------------------------------------------------------------------
  function play() {
    if (!race) return;
    if (race.done && player.t >= race.steps) player.t = 0;
    player.playing = true;
    player.last = performance.now();
    $("play").innerHTML = "&#10074;&#10074;";
    $("play").setAttribute("aria-label", "Pause");
    cancelAnimationFrame(player.raf);
    player.raf = requestAnimationFrame(frame);
  }

  function pause() {
    player.playing = false;
    cancelAnimationFrame(player.raf);
    $("play").innerHTML = "&#9654;";
    $("play").setAttribute("aria-label", "Play");
  }

  function frame(now) {
    if (!player.playing || !race) return;
    const dt = Math.min(0.25, (now - player.last) / 1000);
    player.last = now;
    const rate = Math.max(20, race.steps / BASE_SECONDS) * player.speed;
    player.t = Math.min(player.t + rate * dt, Math.max(0, race.received));
    const end = race.done && player.t >= race.steps;
    // draw as often as drawing allows: a slow machine shows fewer frames, never a slower race
    if (end || now - player.drawnAt >= player.interval) {
      const started = performance.now();
      draw(Math.floor(player.t));
      player.drawnAt = now;
      player.interval = Math.min(400, Math.max(30, 1.5 * (performance.now() - started)));
    }
    if (end) { pause(); return; }
    player.raf = requestAnimationFrame(frame);
  }

  function seek(t) {
    if (!race) return;
    pause();
    player.t = Math.max(0, Math.min(t, Math.max(0, race.received)));
    draw(Math.floor(player.t));
  }

  // ---- drawing ---------------------------------------------------------------------------------------------------------
  const range = (n) => Array.from({ length: n }, (_, i) => i);
  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
  const layout = (extra) => BPV.plotLayout(extra);
  const lineWidth = () => (BPV.isPresent() ? 4 : 2.5);

  function placeholder(gd, text) {
    const line = gd.parentElement.querySelector(".now-line");
    if (line) line.hidden = true;
    Plotly.react(gd, [], layout({
      xaxis: { visible: false }, yaxis: { visible: false }, margin: { l: 10, r: 10, t: 10, b: 10 },
      annotations: [{ text, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
                      font: { size: BPV.isPresent() ? 22 : 15, color: "#4a4a4a" } }],
    }), BPV.plotConfig);
  }

  // Everything drawn at step t; `force` redraws with Plotly.react, otherwise the growing traces are extended.
  function draw(t, force) {
    if (!race) return;
    const shown = player.shown;
    const grow = !force && shown && t >= shown.t;
    if (shown && t === shown.t && !force) return;
    drawLoss(t, grow ? shown.t : null);
    drawLandscape(t, grow ? shown : null);
    drawNowLines(t, !grow);
    drawBoundary(t, !grow);
    updateScoreboard(t);
    $("scrub").value = String(t);
    $("step-readout").textContent = `step ${t} / ${race.steps}`;
    player.shown = { t, paths: pathCount(t), snap: snapIndex(t) };
  }

  function drawAll() {
    if (!race) {
      for (const id of ["loss-chart", "landscape-chart", "lr-chart", "state-chart"]) {
        placeholder($(id), id === "loss-chart" ? "Press \u25b6 Start race" : " ");
      }
      $("boundary-card").hidden = true;
      $("landscape-caption").textContent = landscapeCaption();
      return;
    }
    player.shown = null;
    drawLr();
    drawState();
    draw(Math.floor(player.t), true);
  }

  // Ticks of a log axis spanning 10^lo .. 10^hi, labelled with their full value (Plotly's own minor labels
  // print 0.2 as "2"): decades when it spans many, else 1, 2, 5 (or more) in each decade.
  function logTicks(lo, hi) {
    const span = hi - lo;
    const mantissas = span > 3 ? [1] : span > 1.2 ? [1, 2, 5] : span > 0.5 ? [1, 2, 3, 5, 7] : [1, 1.5, 2, 3, 4, 5, 6, 8];
    const vals = [], text = [];
    const sup = (n) => String(n).replace("-", "\u2212");
    for (let d = Math.floor(lo) - 1; d <= Math.ceil(hi); d++) {
      for (const m of mantissas) {
        const v = m * 10 ** d;
        const e = Math.log10(v);
        if (e < lo - 1e-9 || e > hi + 1e-9) continue;
        vals.push(v);
        if (span > 3) text.push(d === 0 ? "1" : d === 1 ? "10" : `10<sup>${sup(d)}</sup>`);
        else text.push(d >= -4 && d <= 4 ? String(Number(v.toPrecision(3))) : `${m}\u00b710<sup>${sup(d)}</sup>`);
      }
    }
    return { tickmode: "array", tickvals: vals, ticktext: text };
  }

  // -- loss
  function lossRange() {
    const r = race;
    const cap = lossCap();
    const values = [];
    r.loss.forEach((l, k) => {
      for (const v of l) {
        if (finite(v) && (r.diverged[k] === null ? true : v <= cap)) values.push(v);
      }
    });
    if (!values.length) return null;
    let hi = Math.max(...values);
    if (setup.log) {
      const positive = values.filter((v) => v > 0);
      if (!positive.length) return null;
      hi = Math.max(...positive);
      const lo = Math.max(Math.min(...positive), hi * 1e-12);
      const a = Math.log10(lo), b = Math.log10(hi);
      const pad = Math.max(0.1, 0.06 * (b - a));
      return [a - pad, b + pad];
    }
    const lo = Math.min(0, ...values);
    return [lo, hi + 0.06 * (hi - lo || 1)];
  }

  // Each diverged contestant: an x on its curve where it left, and a label with the step, staggered so
  // several contestants diverging at nearly the same step stay readable.
  function divergence(t, yRange) {
    const r = race;
    const x = [], y = [], color = [], annotations = [];
    r.diverged.forEach((d, k) => {
      if (d === null || d > t) return;
      const before = r.loss[k].slice(0, d + 1).filter(finite);
      let v = before.length ? before[before.length - 1] : null;
      const top = yRange ? (setup.log ? 10 ** yRange[1] : yRange[1]) : v;
      if (v === null || (top !== null && v > top)) v = top;
      const right = d <= 0.55 * r.steps;
      x.push(d);
      y.push(v);
      color.push(r.colors[k]);
      annotations.push({
        x: d, y: setup.log ? Math.log10(v) : v, xref: "x", yref: "y", text: `\u2715 ${r.labels[k]} diverged at step ${d}`,
        showarrow: true, arrowhead: 0, arrowwidth: 1.5, arrowcolor: r.colors[k], ax: right ? 40 : -40,
        ay: 28 + 26 * annotations.length * (BPV.isPresent() ? 1.5 : 1), xanchor: right ? "left" : "right",
        font: { size: BPV.isPresent() ? 18 : 13, color: "#000" }, bgcolor: "rgba(255,255,255,0.85)",
        bordercolor: r.colors[k], borderwidth: 1.5, borderpad: 3,
      });
    });
    const trace = {
      type: "scatter", mode: "markers", x, y, meta: "diverged", name: "diverged", showlegend: false,
      hoverinfo: "skip", cliponaxis: false,
      marker: { symbol: "x", size: BPV.isPresent() ? 22 : 16, color, line: { width: 2, color: "#000" } },
    };
    return { trace, annotations };
  }

  // A diverging loss runs off the top of the chart; values far beyond it would overflow SVG coordinates.
  function lossCap() {
    const starts = race.loss.map((l) => l[0]).filter(finite);
    return starts.length ? 1e3 * Math.max(...starts, 1e-300) : Infinity;
  }

  function clipLoss(values) {
    const cap = lossCap();
    return values.map((v) => (finite(v) && v > cap ? 10 * cap : v));
  }

  function lossTraces(t) {
    const r = race;
    return r.loss.map((l, k) => ({
      type: "scatter", mode: "lines", name: r.labels[k], meta: "loss",
      x: range(t + 1), y: clipLoss(l.slice(0, t + 1)), customdata: r.lr[k].slice(0, t + 1).concat(t === r.steps ? [null] : []),
      line: { color: r.colors[k], width: lineWidth() },
      hovertemplate: "loss %{y:.4g} \u00b7 \u03b7<sub>t</sub> %{customdata:.3g}<extra>%{fullData.name}</extra>",
    }));
  }

  function drawLoss(t, from) {
    const gd = $("loss-chart");
    const r = race;
    const yRange = lossRange();
    if (from === null || !gd.data || gd.data.length !== r.K + 1) {
      const caption = r.classify ? "J(\u03b8_t) on the training set; accuracy in the table" : "J(\u03b8_t)";
      $("loss-caption").textContent = `\u2014 ${caption}`;
      const marks = divergence(t, yRange);
      Plotly.react(gd, [...lossTraces(t), marks.trace], layout({
        xaxis: { title: { text: "step t" }, range: [0, r.steps], zeroline: false, unifiedhovertitle: { text: "step %{x}" } },
        yaxis: { title: { text: r.kind === "function" ? "f(\u03b8_t)" : "loss" }, type: setup.log ? "log" : "linear",
                 range: yRange || undefined, autorange: yRange ? false : true, exponentformat: "power",
                 ...(setup.log && yRange ? logTicks(yRange[0], yRange[1]) : {}) },
        hovermode: "x unified", showlegend: true, annotations: marks.annotations,
        legend: { orientation: "h", y: -0.22, x: 0 },
        margin: { r: 25 },
      }), BPV.plotConfig);
      gd.dataset.diverged = String(r.diverged.filter((d) => d !== null && d <= t).length);
      return;
    }
    if (t > from) {
      const xs = [], ys = [], cs = [];
      for (let k = 0; k < r.K; k++) {
        xs.push(range(t - from).map((i) => from + 1 + i));
        ys.push(clipLoss(r.loss[k].slice(from + 1, t + 1)));
        cs.push(r.lr[k].slice(from + 1, t + 1).concat(t === r.steps ? [null] : []));
      }
      Plotly.extendTraces(gd, { x: xs, y: ys, customdata: cs }, range(r.K));
    }
    const count = String(r.diverged.filter((d) => d !== null && d <= t).length);
    if (gd.dataset.diverged !== count) {
      gd.dataset.diverged = count;
      const marks = divergence(t, yRange);
      Plotly.update(gd, { x: [marks.trace.x], y: [marks.trace.y], "marker.color": [marks.trace.marker.color] },
                    { annotations: marks.annotations }, [r.K]);
    }
  }

  // -- learning rates and the optimizer state: whole curves, with a line at the current step. The line is a
  // positioned element over the plot, so moving it costs no Plotly redraw.
  function placeNowLine(gd, t) {
    const card = gd.parentElement;
    let line = card.querySelector(".now-line");
    if (!line) {
      line = document.createElement("div");
      line.className = "now-line";
      line.setAttribute("aria-hidden", "true");
      card.append(line);
    }
    const full = gd._fullLayout;
    const axis = full && full.xaxis;
    if (!race || !axis || !axis.range || !gd.data || !gd.data.length) { line.hidden = true; return; }
    const [a, b] = axis.range, size = full._size;
    const x = size.l + ((Math.min(Math.max(t, a), b) - a) / (b - a)) * size.w;
    line.hidden = false;
    line.style.left = `${gd.offsetLeft + x}px`;
    line.style.top = `${gd.offsetTop + size.t}px`;
    line.style.height = `${size.h}px`;
  }

  function drawLr() {
    const r = race;
    const traces = r.lr.map((l, k) => ({
      type: "scatter", mode: "lines", name: r.labels[k], meta: "lr", x: range(r.steps), y: l,
      line: { color: r.colors[k], width: lineWidth(), dash: k % 2 ? "dash" : "solid" },
      hovertemplate: "\u03b7 %{y:.3g}<extra>%{fullData.name}</extra>",
    }));
    const rates = r.lr.flat().filter((v) => finite(v) && v > 0);
    const lo = rates.length ? Math.log10(Math.min(...rates)) : -2, hi = rates.length ? Math.log10(Math.max(...rates)) : 0;
    const pad = Math.max(0.15, 0.08 * (hi - lo));
    Plotly.react($("lr-chart"), traces, layout({
      xaxis: { title: { text: "step t" }, range: [0, r.steps], zeroline: false, unifiedhovertitle: { text: "step %{x}" } },
      yaxis: { title: { text: "\u03b7_t" }, type: "log", exponentformat: "power", range: [lo - pad, hi + pad],
               ...logTicks(lo - pad, hi + pad) },
      hovermode: "x unified", showlegend: false, margin: { t: 10 },
    }), BPV.plotConfig);
    placeNowLine($("lr-chart"), Math.floor(player.t));
  }

  function drawNowLines(t, force) {
    if (force) { drawLr(); drawState(); return; }
    placeNowLine($("lr-chart"), t);
    placeNowLine($("state-chart"), t);
  }

  function fillStateControls() {
    const weight = $("state-weight");
    const quantity = $("state-quantity");
    const r = race;
    let names = [];
    if (r && r.weightNames.length) names = r.weightNames;
    else if (isFunction()) names = ["x", "y"];
    else if (problem().two_params) names = ["w", "b"];
    const current = r && r.kind === "function" ? (r.stateAxis || 0) : setup.stateIndex;
    weight.replaceChildren(...names.map((n, i) => {
      const o = document.createElement("option");
      o.value = i;
      o.textContent = r && r.kind === "function" ? `coordinate ${n}` : `weight ${n}`;
      o.selected = i === current;
      return o;
    }));
    const have = new Set(["update", "g"]);
    const stateNames = r ? r.stateNames : setup.contestants.map((c) => catalog ? catalog.optimizers[c.name].state_names || [] : []);
    stateNames.forEach((list) => (list || []).forEach((n) => have.add(n)));
    const chosen = quantity.value || "update";
    quantity.replaceChildren(...QUANTITY_ORDER.filter((q) => have.has(q)).map((q) => {
      const o = document.createElement("option");
      o.value = q;
      o.textContent = QUANTITY_LABEL[q] || q;
      o.selected = q === chosen;
      return o;
    }));
  }

  function selectStateSeries() {
    const r = race;
    if (!r || !r.stateRaw) return;
    const axis = r.stateAxis || 0;
    r.states = r.stateRaw.map((raw) => Object.fromEntries(Object.entries(raw).map(
      ([name, rows]) => [name, rows.map((row) => (row ? row[axis] : null))])));
    fillStateControls();
  }

  function drawState() {
    const r = race;
    const gd = $("state-chart");
    const q = $("state-quantity").value || "update";
    const traces = [];
    // the y range follows the contestants that did not diverge; the others are clipped just beyond it
    const calm = [];
    r.states.forEach((s, k) => { if (s[q] && r.diverged[k] === null) calm.push(...s[q].filter(finite)); });
    let lo = calm.length ? Math.min(...calm) : -1, hi = calm.length ? Math.max(...calm) : 1;
    if (hi - lo === 0) { lo -= Math.abs(lo) || 1; hi += Math.abs(hi) || 1; }
    const pad = 0.06 * (hi - lo);
    const limit = 10 * Math.max(Math.abs(lo), Math.abs(hi));
    r.states.forEach((s, k) => {
      if (!s[q]) return;
      const y = s[q].map((v) => (finite(v) && Math.abs(v) <= limit ? v : null));
      traces.push({ type: "scatter", mode: "lines", name: r.labels[k], meta: "state", x: range(r.steps), y,
                    line: { color: r.colors[k], width: lineWidth() - 0.5 },
                    hovertemplate: "%{y:.3g}<extra>%{fullData.name}</extra>" });
    });
    const weight = r.weightNames[r.kind === "function" ? (r.stateAxis || 0) : r.stateIndex ?? 0] || "";
    if (!traces.length) { placeholder(gd, `No contestant keeps ${QUANTITY_LABEL[q] || q}`); return; }
    Plotly.react(gd, traces, layout({
      xaxis: { title: { text: "step t" }, range: [0, r.steps], zeroline: false, unifiedhovertitle: { text: "step %{x}" } },
      yaxis: { title: { text: `${(QUANTITY_LABEL[q] || q).split(" (")[0]} of ${weight}` }, exponentformat: "power",
               range: [lo - pad, hi + pad] },
      hovermode: "x unified", showlegend: false, margin: { t: 10 },
    }), BPV.plotConfig);
    placeNowLine(gd, Math.floor(player.t));
  }

  // -- the landscape and the paths on it
  function landscapeCaption() {
    const p = problem();
    if (p.kind === "function") return `${p.title}: contour of f(x, y) and each contestant's path`;
    if (p.two_params) return "Loss over (w, b) and each contestant's path";
    return "Loss on a filter-normalised 2-D slice through \u03b8\u2080, with each path projected onto it";
  }

  // A diverging path leaves the grid by many orders of magnitude. Each excursion keeps its first point outside
  // the view (so a line is seen leaving), clamped to a box 1000 times the grid so SVG coordinates stay finite;
  // the rest of the excursion is a gap until the path comes back, if it does.
  function clampPaths(L) {
    const cx = (L.u[0] + L.u[L.u.length - 1]) / 2, hx = Math.abs(L.u[L.u.length - 1] - L.u[0]) / 2;
    const cy = (L.v[0] + L.v[L.v.length - 1]) / 2, hy = Math.abs(L.v[L.v.length - 1] - L.v[0]) / 2;
    const clamp = (v, c, h) => Math.max(c - 1e3 * h, Math.min(c + 1e3 * h, v));
    L.paths = L.paths.map((path) => {
      let outside = false;
      return path.map((p) => {
        if (!p || !finite(p[0]) || !finite(p[1])) return null;
        const out = Math.abs(p[0] - cx) > 1.5 * hx || Math.abs(p[1] - cy) > 1.5 * hy;
        const keep = !out || !outside;
        outside = out;
        return keep ? [clamp(p[0], cx, hx), clamp(p[1], cy, hy)] : null;
      });
    });
    return L;
  }

  function pathCount(t) {
    const L = race && race.landscape;
    if (!L) return 0;
    let lo = 0, hi = L.pathSteps.length;           // number of kept steps <= t
    while (lo < hi) { const mid = (lo + hi) >> 1; if (L.pathSteps[mid] <= t) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function headPoint(k, n) {
    const path = race.landscape.paths[k];
    for (let i = n - 1; i >= 0; i--) if (path[i] && finite(path[i][0]) && finite(path[i][1])) return path[i];
    return [null, null];
  }

  // The contour is drawn once, off screen, into an image that sits under the paths as a layout image: every
  // extendTraces redraws the whole figure, and re-tracing two dozen contour levels on each frame would cost
  // more than everything else on the page together.
  const CONTOUR_COLORS = [[0, "#ffffff"], [0.5, "#e3e7ee"], [1, "#a7b0bf"]];

  function contourValues(L) {
    const z = L.log ? L.z.map((row) => row.map((v) => (finite(v) && v > 0 ? Math.log10(v) : null))) : L.z;
    const flat = z.flat().filter(finite);
    return { z, zmin: Math.min(...flat), zmax: Math.max(...flat) };
  }

  async function prepareLandscape(L) {
    const { z, zmin, zmax } = contourValues(L);
    L.zRange = [zmin, zmax];
    const span = (a) => [a[0], a[a.length - 1]];
    const figure = {
      data: [{ type: "contour", x: L.u, y: L.v, z, zmin, zmax, ncontours: 24, showscale: false,
               colorscale: CONTOUR_COLORS, contours: { coloring: "heatmap", showlines: true },
               line: { color: "rgba(60,60,60,0.4)", width: 1.2 } }],
      layout: { width: 800, height: 800, margin: { l: 0, r: 0, t: 0, b: 0 }, paper_bgcolor: "rgba(0,0,0,0)",
                xaxis: { visible: false, range: span(L.u) }, yaxis: { visible: false, range: span(L.v) } },
    };
    L.image = await Plotly.toImage(figure, { format: "png", width: 800, height: 800 });
  }

  function landscapeTraces(L, t, n) {
    const r = race, K = r.K;
    const [zmin, zmax] = L.zRange;
    const traces = [{
      // carries the colour bar of the contour image underneath (one invisible point)
      type: "scatter", mode: "markers", meta: "colorbar", x: [L.u[0]], y: [L.v[0]], hoverinfo: "skip", showlegend: false,
      marker: { size: 0.1, opacity: 0, color: [zmin], cmin: zmin, cmax: zmax, colorscale: CONTOUR_COLORS, showscale: true,
                colorbar: { title: { text: L.log ? "log\u2081\u2080 loss" : "loss", side: "right" }, thickness: 12,
                            len: 0.9, outlinecolor: "#777" } },
    }, {
      type: "scatter", mode: "markers", meta: "minimum", name: "minimum", showlegend: false,
      x: L.minima.map((m) => m[0]).concat(L.saddles.map((s) => s[0])),
      y: L.minima.map((m) => m[1]).concat(L.saddles.map((s) => s[1])),
      marker: { symbol: L.minima.map(() => "star").concat(L.saddles.map(() => "x-thin-open")),
                size: BPV.isPresent() ? 24 : 18, color: "#000", line: { color: "#000", width: 2 } },
      hovertemplate: "%{x:.3g}, %{y:.3g}<extra>" + (L.kind === "function" ? "minimum / saddle" : "lowest on the grid") + "</extra>",
    }, {
      type: "scatter", mode: "markers+text", meta: "start", x: [L.start[0]], y: [L.start[1]], text: ["\u03b8\u2080"],
      textposition: "top center", showlegend: false, hoverinfo: "skip",
      marker: { symbol: "circle-open", size: BPV.isPresent() ? 20 : 15, color: "#000", line: { width: 3 } },
      textfont: { size: BPV.isPresent() ? 20 : 14 },
    }];
    for (let k = 0; k < K; k++) {
      const seg = L.paths[k].slice(0, n);
      traces.push({
        type: "scatter", mode: "lines", meta: "path", name: r.labels[k], showlegend: false,
        x: seg.map((p) => (p ? p[0] : null)), y: seg.map((p) => (p ? p[1] : null)),
        customdata: L.pathSteps.slice(0, n), line: { color: r.colors[k], width: lineWidth() },
        hovertemplate: "step %{customdata}: (%{x:.3g}, %{y:.3g})<extra>%{fullData.name}</extra>",
      });
    }
    for (let k = 0; k < K; k++) {
      const h = headPoint(k, n);
      const dead = r.diverged[k] !== null && r.diverged[k] <= t;
      traces.push({
        type: "scatter", mode: "markers", meta: "head", name: r.labels[k], showlegend: false, hoverinfo: "skip",
        x: [h[0]], y: [h[1]], customdata: [t], cliponaxis: true,
        marker: { size: BPV.isPresent() ? 18 : 13, color: r.colors[k], symbol: dead ? "x" : "circle",
                  line: { color: "#fff", width: 2 } },
      });
    }
    return traces;
  }

  function drawLandscape(t, shown) {
    const gd = $("landscape-chart");
    const r = race;
    const L = r.landscape;
    $("landscape-caption").textContent = landscapeCaption();
    if (!L || !L.image) {
      const text = !L && r.done ? "No landscape" : L ? "Drawing the landscape\u2026" : "The landscape is drawn when training ends\u2026";
      if (gd.dataset.waiting !== text) { placeholder(gd, text); gd.dataset.waiting = text; }
      return;
    }
    delete gd.dataset.waiting;
    const n = pathCount(t);
    const K = r.K, first = 3;
    if (shown && gd.data && gd.data.length === first + 2 * K && gd.dataset.image === "1") {
      if (n > shown.paths) {          // one call grows every path and moves every head (kept at 1 point)
        const x = [], y = [], c = [];
        for (let k = 0; k < K; k++) {
          const seg = L.paths[k].slice(shown.paths, n);
          x.push(seg.map((p) => (p ? p[0] : null)));
          y.push(seg.map((p) => (p ? p[1] : null)));
          c.push(L.pathSteps.slice(shown.paths, n));
        }
        for (let k = 0; k < K; k++) {
          const h = headPoint(k, n);
          x.push([h[0]]);
          y.push([h[1]]);
          c.push([t]);
        }
        const keep = range(2 * K).map((i) => (i < K ? -1 : 1));
        Plotly.extendTraces(gd, { x, y, customdata: c }, range(2 * K).map((i) => first + i),
                            { x: keep, y: keep, customdata: keep });
      }
      return;
    }
    const span = (a) => [a[0], a[a.length - 1]];
    const [u0, u1] = span(L.u), [v0, v1] = span(L.v);
    Plotly.react(gd, landscapeTraces(L, t, n), layout({
      xaxis: { title: { text: L.axes[0] }, range: [u0, u1], zeroline: false, showgrid: false },
      yaxis: { title: { text: L.axes[1] }, range: [v0, v1], zeroline: false, showgrid: false,
               ...(L.equal ? { scaleanchor: "x", scaleratio: 1 } : {}) },
      images: [{ source: L.image, xref: "x", yref: "y", x: u0, y: v1, sizex: u1 - u0, sizey: v1 - v0,
                 sizing: "stretch", layer: "below", xanchor: "left", yanchor: "top" }],
      showlegend: false, hovermode: "closest", margin: { t: 10, r: 10 },
    }), BPV.plotConfig);
    gd.dataset.image = "1";
  }

  // -- decision boundaries, one small heatmap per contestant
  function snapIndex(t) {
    const B = race && race.boundary;
    if (!B) return -1;
    let i = -1;
    B.steps.forEach((s, j) => { if (s <= t) i = j; });
    return i;
  }

  function drawBoundary(t, force) {
    const card = $("boundary-card");
    const r = race;
    const B = r.boundary;
    card.hidden = !B;
    if (!B) return;
    const j = snapIndex(t);
    if (!force && player.shown && player.shown.snap === j) return;
    const K = r.K;
    const columns = K <= 4 ? K : Math.ceil(K / 2);
    const rows = Math.ceil(K / columns);
    const traces = [], annotations = [], axes = {};
    const X = r.data ? r.data.X : [], Y = r.data ? r.data.Y : [];
    for (let k = 0; k < K; k++) {
      const n = k === 0 ? "" : String(k + 1);
      traces.push({
        type: "heatmap", x: B.x, y: B.y, z: B.z[k][Math.max(0, j)], zmin: 0, zmax: 100, zsmooth: "best", xaxis: `x${n}`, yaxis: `y${n}`,
        colorscale: [[0, "#7fb5dc"], [0.5, "#ffffff"], [1, "#f2c35c"]], showscale: k === K - 1, meta: "boundary",
        colorbar: { title: { text: "P(1) %" }, thickness: 10, len: 0.9 },
        hovertemplate: `${r.labels[k]}<br>P(class 1) %{z}%<extra></extra>`,
      });
      traces.push({
        type: "scatter", mode: "markers", xaxis: `x${n}`, yaxis: `y${n}`, hoverinfo: "skip", showlegend: false,
        x: X.map((p) => p[0]), y: X.map((p) => p[1]),
        marker: { size: BPV.isPresent() ? 6 : 4, color: Y.map((y) => (y[0] > 0.5 ? "#b36b00" : "#004f80")),
                  line: { color: "#fff", width: 0.5 } },
      });
      axes[`xaxis${n}`] = { showticklabels: false, ticks: "", showgrid: false, zeroline: false,
                            range: [B.x[0], B.x[B.x.length - 1]] };
      axes[`yaxis${n}`] = { showticklabels: false, ticks: "", showgrid: false, zeroline: false,
                            range: [B.y[0], B.y[B.y.length - 1]], scaleanchor: `x${n}`, scaleratio: 1 };
      const acc = r.acc ? r.acc[k][B.steps[Math.max(0, j)]] : null;
      annotations.push({ text: `<b>${r.labels[k]}</b>` + (finite(acc) ? `<br>accuracy ${Math.round(100 * acc)}%` : ""),
                         xref: `x${n} domain`, yref: `y${n} domain`, x: 0.5, y: 1.02, xanchor: "center",
                         yanchor: "bottom", showarrow: false,
                         font: { size: BPV.isPresent() ? 16 : 12, color: r.colors[k] === "#F0E442" ? "#8a7d00" : r.colors[k] } });
    }
    $("boundary-caption").textContent = `\u2014 at step ${B.steps[Math.max(0, j)]}`;
    const gd = $("boundary-chart");
    gd.style.height = `${rows * (BPV.isPresent() ? 15 : 12)}rem`;
    Plotly.react(gd, traces, layout({
      grid: { rows, columns, pattern: "independent", xgap: 0.06, ygap: 0.18 }, ...axes, annotations,
      margin: { l: 10, r: 10, t: BPV.isPresent() ? 60 : 45, b: 10 }, showlegend: false,
    }), BPV.plotConfig);
  }

  // -- the standings table
  function buildScoreboard() {
    const body = document.querySelector("#scoreboard tbody");
    const list = race ? race.labels : labels(setup.contestants, problem().kind);
    const showAcc = (race ? PROBLEMS[race.problem] : problem()).task in { binary: 1, multiclass: 1 };
    document.querySelectorAll("#scoreboard .acc-col").forEach((el) => { el.hidden = !showAcc; });
    body.replaceChildren(...list.map((label, k) => {
      const tr = document.createElement("tr");
      tr.style.setProperty("--c", colorOf(k));
      tr.setAttribute("data-testid", "score-row");
      tr.innerHTML = `<th scope="row"><span class="swatch"></span><span class="who"></span></th>` +
        `<td class="num lr"></td><td class="num loss"></td><td class="num acc acc-col"></td><td class="status"></td>`;
      tr.querySelector(".who").textContent = label;
      tr.querySelector(".acc").hidden = !showAcc;
      return tr;
    }));
  }

  function updateScoreboard(t) {
    const r = race;
    const rows = document.querySelectorAll("#scoreboard tbody tr");
    const alive = range(r.K).filter((k) => (r.diverged[k] === null || r.diverged[k] > t) && finite(r.loss[k][t]));
    const leader = alive.length ? alive.reduce((a, b) => (r.loss[b][t] < r.loss[a][t] ? b : a)) : -1;
    rows.forEach((tr, k) => {
      const lr = r.lr[k][Math.min(t, r.steps - 1)];
      tr.querySelector(".lr").textContent = finite(lr) ? short(lr) : "\u2014";
      tr.querySelector(".loss").textContent = BPV.fmt(r.loss[k][t], 4);
      if (r.acc) tr.querySelector(".acc").textContent = finite(r.acc[k][t]) ? `${(100 * r.acc[k][t]).toFixed(0)}%` : "\u2014";
      const status = tr.querySelector(".status");
      const d = r.diverged[k];
      if (d !== null && d <= t) {
        if (!status.querySelector(".diverged")) {
          status.innerHTML = `<span class="badge diverged" data-testid="divergence-marker"></span>`;
          status.firstChild.textContent = `\u2715 diverged at step ${d}`;
        }
      } else if (k === leader) {
        if (!status.querySelector(".leader")) status.innerHTML = `<span class="badge leader">leading</span>`;
      } else if (status.firstChild) {
        status.replaceChildren();
      }
    });
  }

  // ---- URL state and exports -------------------------------------------------------------------------------------------
  function encodeContestants(list) {
    const json = JSON.stringify(list);
    return btoa(unescape(encodeURIComponent(json))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function updateUrl() {
    const url = new URL(window.location.href);
    const params = url.searchParams;
    for (const key of ["problem", "steps", "c", "spec", "log"]) params.delete(key);
    params.set("problem", setup.problem);
    params.set("steps", String(setup.steps));
    params.set("c", encodeContestants(setup.contestants));
    if (race && race.specToken && race.problem === setup.problem) params.set("spec", race.specToken);
    if (!setup.log) params.set("log", "0");
    history.replaceState(history.state, "", url);
  }

  function exportCsv() {
    const r = race;
    if (!r) return;
    const header = ["step"];
    const names = r.landscape ? r.landscape.axes.map((a) => a.split(" ")[0]) : [];
    const pathCols = r.landscape && (r.landscape.kind === "function" || r.landscape.kind === "parameters");
    r.labels.forEach((l) => {
      header.push(`${l}: loss`, `${l}: lr`);
      if (r.acc) header.push(`${l}: accuracy`);
      if (pathCols) header.push(`${l}: ${names[0]}`, `${l}: ${names[1]}`);
      if (r.diverged.some((d) => d !== null)) header.push(`${l}: diverged`);
    });
    const quote = (s) => `"${String(s).replace(/"/g, '""')}"`;
    const lines = [header.map(quote).join(",")];
    const cell = (v) => (finite(v) ? String(v) : "");
    for (let t = 0; t <= r.steps; t++) {
      const row = [t];
      for (let k = 0; k < r.K; k++) {
        row.push(cell(r.loss[k][t]), cell(r.lr[k][t]));
        if (r.acc) row.push(cell(r.acc[k][t]));
        if (pathCols) {
          const p = r.landscape.paths[k][t];
          row.push(cell(p ? p[0] : null), cell(p ? p[1] : null));
        }
        if (r.diverged.some((d) => d !== null)) row.push(r.diverged[k] !== null && t >= r.diverged[k] ? "1" : "0");
      }
      lines.push(row.join(","));
    }
    BPV.download(`race-${r.problem}-${r.steps}-steps.csv`, lines.join("\n") + "\n", "text/csv");
  }

  function exportCharts(format) {
    const ids = ["loss-chart", "landscape-chart", "lr-chart", "state-chart"];
    if (!$("boundary-card").hidden) ids.push("boundary-chart");
    for (const id of ids) {
      const gd = $(id);
      if (!gd.data) continue;
      Plotly.downloadImage(gd, { format, filename: `race-${setup.problem}-${id.replace("-chart", "")}`,
                                 width: gd.offsetWidth, height: gd.offsetHeight, scale: format === "png" ? 2 : 1 });
    }
  }

  // ---- wiring ----------------------------------------------------------------------------------------------------------
  function wire() {
    $("problem").value = setup.problem;
    $("steps").value = setup.steps;
    $("log-toggle").checked = setup.log;
    $("problem").addEventListener("change", (e) => changeProblem(e.target.value));
    $("steps").addEventListener("change", (e) => { setup.steps = Number(e.target.value) || setup.steps; });
    $("race-start").addEventListener("click", startRace);
    $("play").addEventListener("click", () => (player.playing ? pause() : play()));
    $("to-end").addEventListener("click", () => seek(race ? race.steps : 0));
    $("speed").addEventListener("change", (e) => { player.speed = Number(e.target.value); });
    $("scrub").addEventListener("input", (e) => seek(Number(e.target.value)));
    $("log-toggle").addEventListener("change", (e) => {
      setup.log = e.target.checked;
      if (race) { player.shown = null; draw(Math.floor(player.t), true); }
      if (race && race.done) updateUrl();
    });
    $("add-contestant").addEventListener("click", addContestant);
    $("suggested-lr").addEventListener("click", applySuggestedLr);
    const box = $("contestants");
    box.addEventListener("change", onContestantInput);
    box.addEventListener("click", (e) => {
      const b = e.target.closest("[data-action=remove]");
      if (b) removeContestant(Number(b.closest(".contestant").dataset.index));
    });
    $("state-quantity").addEventListener("change", () => { if (race) drawState(); });
    $("state-weight").addEventListener("change", (e) => {
      const i = Number(e.target.value);
      if (race && race.kind === "function") { race.stateAxis = i; selectStateSeries(); drawState(); }
      else { setup.stateIndex = i; if (race) startRace(); }
    });
    $("export-csv").addEventListener("click", exportCsv);
    $("export-png").addEventListener("click", () => exportCharts("png"));
    $("export-svg").addEventListener("click", () => exportCharts("svg"));
    $("copy-link").addEventListener("click", () => {
      updateUrl();
      if (navigator.clipboard) navigator.clipboard.writeText(window.location.href).catch(() => {});
      $("copy-link").textContent = "Link copied";
      setTimeout(() => { $("copy-link").textContent = "Copy link to this race"; }, 1500);
    });
    document.body.addEventListener("htmx:afterSwap", (e) => {
      if (e.detail && e.detail.target && e.detail.target.id === "problem-info") BPV.renderMath(e.detail.target);
    });
    document.addEventListener("bpv:present", () => { drawAll(); });
    window.addEventListener("resize", () => {
      if (!race) return;
      requestAnimationFrame(() => { placeNowLine($("lr-chart"), Math.floor(player.t));
                                    placeNowLine($("state-chart"), Math.floor(player.t)); });
    });
    document.addEventListener("keydown", onKey);
  }

  function onKey(event) {
    const t = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (t && (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName))) return;
    if (t && t.tagName === "BUTTON" && (event.key === " " || event.key === "Enter")) return;
    const step = event.shiftKey ? 10 : 1;
    if (event.key === " ") { if (race) (player.playing ? pause() : play()); }
    else if (event.key === "ArrowRight") seek(Math.floor(player.t) + step);
    else if (event.key === "ArrowLeft") seek(Math.floor(player.t) - step);
    else if (event.key === "Home") seek(0);
    else if (event.key === "End") seek(race ? race.steps : 0);
    else if (event.key === "l" || event.key === "L") $("log-toggle").click();
    else if (event.key === "s" || event.key === "S") startRace();
    else return;
    event.preventDefault();
  }

  async function init() {
    wire();
    BPV.renderMath($("problem-info"));
    buildScoreboard();
    drawAll();
    setStatus("idle", "Loading\u2026", 0);
    try {
      const res = await fetch("/api/v1/catalog");
      const data = await res.json();
      catalog = {
        optimizers: Object.fromEntries(data.optimizers.map((o) => [o.name, o])),
        schedules: Object.fromEntries(data.schedules.map((s) => [s.name, s])),
      };
    } catch (err) {
      showError(`Could not load the optimizer catalogue: ${err.message}`);
      return;
    }
    renderContestants();
    fillStateControls();
    setStatus("idle", "Ready: press \u25b6 Start race", 0);
  }

  window.BPV.race = { get race() { return race; }, get setup() { return setup; }, seek, play, pause, startRace };
  init();
})();
