// The /step page: one training step of backpropagation, phase by phase.
// State (spec token, t, phase, sample, unit, predict) lives in the URL; step records come from POST /api/v1/step
// and are cached per (token, t), so stepping through the phases of a step needs no request. Every render is a
// pure function of the state and the cached records: going back shows exactly what was shown before.
(function () {
  "use strict";
  const BPV = window.BPV;
  const root = document.getElementById("step-root");
  if (!root) return;
  const cfg = JSON.parse(document.getElementById("step-config").textContent);
  const CAT = cfg.catalog;
  const el = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ numbers as text and as LaTeX
  const fmt = (x, d = 3) => BPV.fmt(x, d);

  function tn(x, d = 3) {
    // A number in LaTeX: fixed decimals, tiny or huge ones as a x 10^k, never "-0.000".
    if (x === null || x === undefined || Number.isNaN(x)) return "\\text{—}";
    if (!Number.isFinite(x)) return x > 0 ? "\\infty" : "-\\infty";
    const abs = Math.abs(x);
    if (abs !== 0 && (abs < 10 ** -d || abs >= 1e6)) {
      const [mant, exp] = x.toExponential(2).split("e");
      return `${mant}\\times 10^{${Number(exp)}}`;
    }
    const s = x.toFixed(d);
    return Number(s) === 0 ? (0).toFixed(d) : s;
  }
  const t6 = (x) => (x === 0 ? "0" : tn(x, 6));   // optimizer state: small numbers, zeros kept short
  const tp6 = (x) => (x < 0 || /times/.test(t6(x)) ? `\\left(${t6(x)}\\right)` : t6(x));
  const tp = (x, d = 3) => (x < 0 || /times/.test(tn(x, d)) ? `\\left(${tn(x, d)}\\right)` : tn(x, d));
  const col = (v, d) => `\\begin{bmatrix}${v.map((x) => tn(x, d)).join("\\\\")}\\end{bmatrix}`;
  const rowv = (v, d) => `\\begin{bmatrix}${v.map((x) => tn(x, d)).join("&")}\\end{bmatrix}`;
  const mat = (M, d) => `\\begin{bmatrix}${M.map((r) => r.map((x) => tn(x, d)).join("&")).join("\\\\")}\\end{bmatrix}`;
  const vecOrScalar = (v, d) => (v.length === 1 ? tn(v[0], d) : col(v, d));
  const vecOrScalarP = (v, d) => (v.length === 1 ? tp(v[0], d) : col(v, d));
  const hyp = (x) => String(Number(Number(x).toPrecision(4)));   // hyperparameters as typed: 0.5, 0.9, 1e-8
  const HIDDEN = "\\boxed{\\;?\\;}";

  const katexCache = new Map();   // tex -> HTML: revisiting a phase typesets nothing again
  function katex(tex, display = true) {
    const key = (display ? "D" : "I") + tex;
    let html = katexCache.get(key);
    if (html === undefined) {
      try {
        html = window.katex.renderToString(tex, { displayMode: display, throwOnError: false, strict: "ignore" });
      } catch (err) {
        html = `<code>${escapeHtml(tex)}</code>`;
      }
      if (katexCache.size > 3000) katexCache.clear();
      katexCache.set(key, html);
    }
    return html;
  }
  // Inline $...$ pieces inside a sentence (the notes' remarks).
  const inlineMath = (text) => text.replace(/\$([^$]+)\$/g, (_, tex) => katex(tex, false));

  function splitRelations(tex) {
    // "a = b \\leftarrow c" -> [{rel: "", tex: "a"}, {rel: "=", tex: "b"}, ...], split at top-level relations only.
    if (tex.includes("aligned")) return [{ rel: "", tex }];
    const parts = [];
    let depth = 0, start = 0, rel = "";
    for (let i = 0; i < tex.length; i++) {
      const c = tex[i];
      if (c === "{") depth++;
      else if (c === "}") depth--;
      else if (depth === 0 && c === " ") {
        const m = /^ (=|\\leftarrow) /.exec(tex.slice(i, i + 12));
        if (m) {
          parts.push({ rel, tex: tex.slice(start, i) });
          rel = m[1];
          start = i + m[0].length;
          i = start - 1;
        }
      }
    }
    parts.push({ rel, tex: tex.slice(start) });
    return parts;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  const sup = (l) => `<sup>${l}</sup>`;

  // ------------------------------------------------------------------ small array helpers
  const colMeans = (rows) => rows[0].map((_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length);
  const transpose = (M) => M[0].map((_, k) => M.map((r) => r[k]));
  const maxAbs = (arrs) => arrs.flat(Infinity).reduce((m, x) => (Number.isFinite(x) ? Math.max(m, Math.abs(x)) : m), 0);
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  // ------------------------------------------------------------------ phases of one step
  function phaseList(L) {
    const out = [];
    for (let l = 1; l <= L; l++) {
      out.push({ slug: `z${l}`, kind: "z", l }, { slug: `a${l}`, kind: "a", l });
    }
    out.push({ slug: "loss", kind: "loss", l: L });
    for (let l = L; l >= 1; l--) out.push({ slug: `delta${l}`, kind: "delta", l });
    for (let l = L; l >= 1; l--) out.push({ slug: `grad${l}`, kind: "grad", l });
    out.push({ slug: "update", kind: "update", l: L });
    return out;
  }

  function phaseTitle(ph, L, optName) {
    const l = ph.l;
    const where = l === L ? "output layer" : `layer ${l}`;
    switch (ph.kind) {
      case "z": return `Forward · ${where} · weighted input z${sup(l)}`;
      case "a": return `Forward · ${where} · activation a${sup(l)}`;
      case "loss": return "Loss";
      case "delta": return l === L ? `Backward · output error δ${sup("L")} (L = ${L})` : `Backward · error δ${sup(l)} of layer ${l}`;
      case "grad": return `Gradients · ${where} · ∂L/∂W${sup(l)}, ∂L/∂b${sup(l)}`;
      case "update": return `Update · ${escapeHtml(optName)} step: θ<sub>t</sub> → θ<sub>t+1</sub>`;
    }
    return "";
  }
  const phaseShort = (ph) => ({ z: `z${ph.l}`, a: `a${ph.l}`, loss: "L", delta: `δ${ph.l}`, grad: `∇${ph.l}`, update: "Δθ" })[ph.kind];

  // ------------------------------------------------------------------ state and the URL
  const state = {
    token: cfg.token, spec: cfg.spec, specId: cfg.spec_id, T: cfg.horizon,
    t: 0, phase: 0, sample: 0, unit: 0, predict: false, revealed: true, note: "",
  };
  let phases = phaseList(state.spec.network.layers.length - 1);

  function readUrl() {
    const q = new URLSearchParams(window.location.search);
    const int = (name, dflt) => {
      const v = Number.parseInt(q.get(name), 10);
      return Number.isFinite(v) && v >= 0 ? v : dflt;
    };
    state.T = clamp(int("T", state.T), 1, 5000);
    state.t = clamp(int("t", 0), 0, state.T);
    const slugIdx = phases.findIndex((p) => p.slug === q.get("phase"));
    state.phase = slugIdx >= 0 ? slugIdx : 0;
    state.sample = Math.max(0, int("sample", 1) - 1);
    state.unit = Math.max(0, int("unit", 1) - 1);
    state.predict = q.get("predict") === "1";
    state.revealed = !state.predict || q.get("shown") === "1";
    state.note = (q.get("note") || "").slice(0, 200);
  }

  function writeUrl() {
    const url = new URL(window.location.href);
    const q = url.searchParams;
    q.delete("preset");
    q.set("spec", state.token);
    q.set("t", String(state.t));
    q.set("phase", phases[state.phase].slug);
    q.set("sample", String(state.sample + 1));
    q.set("unit", String(state.unit + 1));
    q.set("T", String(state.T));
    if (state.predict) q.set("predict", "1"); else q.delete("predict");
    if (state.predict && state.revealed) q.set("shown", "1"); else q.delete("shown");
    if (state.note) q.set("note", state.note); else q.delete("note");
    if (BPV.isPresent()) q.set("present", "1"); else q.delete("present");
    history.replaceState(history.state, "", url);
  }

  // ------------------------------------------------------------------ the API, cached
  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let data = null;
    try { data = await res.json(); } catch (err) { data = null; }
    if (!res.ok) {
      const detail = data && data.detail;
      const msg = Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail || `HTTP ${res.status}`;
      throw new Error(msg);
    }
    return data;
  }

  const records = new Map();   // "token|t" -> Promise of the step record
  function getRecord(token, t) {
    const key = `${token}|${t}`;
    if (!records.has(key)) {
      const p = post("/api/v1/step", { spec_token: token, t, contestant: 0 });
      p.catch(() => records.delete(key));
      records.set(key, p);
      if (records.size > 400) records.delete(records.keys().next().value);
    }
    return records.get(key);
  }
  const recordNow = new Map(); // resolved records, so a render of a cached step is synchronous

  // The canonical spec (GET-free: it came with the page, /api/v1/spec or an edit) in the API's input form.
  function toApiSpec(c) {
    const strip = (o) => Object.fromEntries(Object.entries(o || {}).filter(([, v]) => v !== null && v !== undefined));
    const data = strip(c.data);
    if (data.X) { delete data.n; }
    const opt = { ...c.optimizers[0] };
    for (const k of Object.keys(opt)) if (opt[k] === null && k !== "batch_size") delete opt[k];
    if (opt.schedule) opt.schedule = strip(opt.schedule);
    const out = { network: strip(c.network), data, optimizer: opt, l2: c.l2 || 0, l1: c.l1 || 0, seed: c.seed || 0 };
    if (c.dropout && c.dropout.length) out.dropout = c.dropout;
    if (c.clip_norm !== null && c.clip_norm !== undefined) out.clip_norm = c.clip_norm;
    return out;
  }

  const losses = new Map();   // "token|T" -> Promise of {loss: [...]} from POST /api/v1/train
  const lossNow = new Map();
  function getLossCurve(token, spec, T) {
    const key = `${token}|${T}`;
    if (!losses.has(key)) {
      const p = post("/api/v1/train", { ...toApiSpec(spec), steps: T }).then((r) => {
        lossNow.set(key, r);
        return r;
      });
      p.catch(() => losses.delete(key));
      losses.set(key, p);
    }
    return losses.get(key);
  }

  // ------------------------------------------------------------------ what is known at the current phase
  function phaseIndex(kind, l) { return phases.findIndex((p) => p.kind === kind && (p.l === l || kind === "loss" || kind === "update")); }
  function known(kind, l) {
    const i = phaseIndex(kind, l);
    return i < state.phase || (i === state.phase && state.revealed);
  }
  const isHidden = () => state.predict && !state.revealed;

  // ------------------------------------------------------------------ view of one phase
  function actName(rec, l) { return rec.network.activations[l - 1]; }

  function actExpand(name, z, a) {
    // sigma(z) written out with the number in it, for one unit.
    switch (name) {
      case "sigmoid": return `\\frac{1}{1+e^{-${tp(z)}}}`;
      case "tanh": return `\\tanh ${tp(z)}`;
      case "relu": return `\\max\\left(0,\\ ${tn(z)}\\right)`;
      case "leaky_relu": return `\\max\\left(0.01 \\times ${tp(z)},\\ ${tn(z)}\\right)`;
      case "linear": return tn(z);
      default: return `\\sigma(${tn(z)})`;
    }
  }
  function spExpand(name, z, a) {
    // sigma'(z) with numbers, from a = sigma(z).
    switch (name) {
      case "sigmoid": return `${tn(a)}\\,(1 - ${tn(a)})`;
      case "tanh": return `1 - ${tp(a)}^2`;
      case "relu": return `[${tn(z)} > 0]`;
      case "leaky_relu": return z > 0 ? `1` : `0.01`;
      case "linear": return null;      // sigma'(z) = 1: nothing to work out
      default: return null;
    }
  }

  function sumTerms(ws, xs) {
    // w1 x1 + w2 x2 + ... written out, at most 4 terms (2 + ... + last when longer).
    const term = (i) => `${tp(ws[i])}\\cdot ${tp(xs[i])}`;
    const n = ws.length;
    if (n <= 4) return ws.map((_, i) => term(i)).join(" + ");
    return `${term(0)} + ${term(1)} + \\cdots + ${term(n - 1)}`;
  }

  function view(rec) {
    const ph = phases[state.phase];
    const L = rec.layers.length;
    const sizes = rec.network.layers;
    const m = rec.X.length;
    const s = Math.min(state.sample, m - 1);
    const hidden = isHidden();
    const R = (tex) => (hidden ? HIDDEN : tex);
    const W = rec.params_before.weights, B = rec.params_before.biases;
    const l = ph.l;
    const lay = rec.layers[l - 1];
    const prevRow = (ll, i) => (ll === 1 ? rec.X[i] : rec.layers[ll - 2].a[i]);
    const prevSym = (ll) => (ll === 1 ? "x" : `a^{${ll - 1}}`);
    const small = (ll) => sizes[ll] <= 4 && sizes[ll - 1] <= 4;
    const j = Math.min(state.unit, sizes[l] - 1);
    const act = actName(rec, l);
    const actInfo = CAT.activations[act] || { latex: "\\sigma(z)", latex_grad: "\\sigma'(z)" };
    const sym = [], sample = [], batch = [], notes = [];
    let values = "", bars = null;
    const sampleLabel = m === 1 ? "The sample (the whole batch)" : `Sample ${s + 1} of the batch of ${m}`;
    let batchNote = m === 1 ? "The batch is this one sample, so its average is the same." : "";
    const meanOf = (field, ll) => colMeans(rec.layers[ll - 1][field]);
    const unitLabel = (jj) => `${jj + 1}`;

    const vectorTable = (field, ll, label, extra) => {
      const rows = rec.layers[ll - 1][field][s].map((v, jj) => {
        const means = m > 1 ? meanOf(field, ll) : null;
        const cells = [`<th scope="row">${label}${sup(ll)}<sub>${jj + 1}</sub></th>`];
        if (extra) cells.push(`<td class="num">${fmt(extra.values[jj])}</td>`);
        cells.push(`<td class="num fresh-num" data-testid="num-${field === "sigma_prime" ? "sp" : field}-${ll}-${jj + 1}">${hidden ? "?" : fmt(v)}</td>`);
        if (means) cells.push(`<td class="num" data-testid="num-${field}-${ll}-${jj + 1}-mean">${hidden ? "?" : fmt(means[jj])}</td>`);
        return `<tr class="${jj === j ? "focus" : ""}">${cells.join("")}</tr>`;
      }).join("");
      const head = `<tr><th></th>${extra ? `<th>${extra.label}</th>` : ""}<th>sample ${s + 1}</th>${m > 1 ? "<th>batch mean</th>" : ""}</tr>`;
      return `<div class="vals-scroll"><table class="vals"><thead>${head}</thead><tbody>${rows}</tbody></table></div>`;
    };
    const barsFor = (field, ll, title) => ({
      title,
      x: rec.layers[ll - 1][field][s].map((_, jj) => unitLabel(jj)),
      series: [{ name: `sample ${s + 1}`, y: rec.layers[ll - 1][field][s] }].concat(m > 1 ? [{ name: "batch mean", y: meanOf(field, ll) }] : []),
      xtitle: "unit",
    });

    if (ph.kind === "z") {
      sym.push(`z^{${l}} = W^{${l}}\\,${prevSym(l)} + b^{${l}}`);
      if (l === 1) notes.push("The input is the layer before the first: a⁰ = x.");
      const ap = prevRow(l, s), z = lay.z[s];
      if (small(l)) {
        const Wt = sizes[l] === 1 ? rowv(W[l - 1][0]) : mat(W[l - 1]);
        sample.push(`z^{${l}} = ${Wt}${col(ap)} + ${vecOrScalar(B[l - 1])} = ${R(vecOrScalar(z))}`);
      } else {
        sample.push(`z^{${l}}_{${j + 1}} = \\sum_k w^{${l}}_{${j + 1}k}\\,${l === 1 ? "x" : `a^{${l - 1}}`}_k + b^{${l}}_{${j + 1}}`
          + ` = ${sumTerms(W[l - 1][j], ap)} + ${tp(B[l - 1][j])} = ${R(tn(z[j]))}`);
      }
      if (m > 1) {
        const mz = meanOf("z", l);
        batch.push(`\\overline{z^{${l}}} = \\frac{1}{${m}}\\sum_{i=1}^{${m}} z^{${l}}_{(i)} = ${R(sizes[l] <= 4 ? vecOrScalar(mz) : `\\left(${mz.slice(0, 3).map((x) => tn(x)).join(",\\ ")},\\ \\ldots\\right)`)}`);
      }
      values = vectorTable("z", l, "z");
      bars = barsFor("z", l, `z${sup(l)} per unit`);
    } else if (ph.kind === "a") {
      sym.push(`a^{${l}} = \\sigma(z^{${l}}),\\qquad \\sigma(z) = ${actInfo.latex}`);
      const z = lay.z[s], a = lay.a[s];
      if (act === "softmax") {
        const ez = z.map(Math.exp), tot = ez.reduce((p, q) => p + q, 0);
        sample.push(`a^{${l}}_{${j + 1}} = \\frac{e^{${tn(z[j])}}}{\\sum_k e^{z_k}} = \\frac{${tn(ez[j])}}{${tn(tot)}} = ${R(tn(a[j]))}`);
      } else if (sizes[l] <= 4) {
        sample.push(`a^{${l}} = \\sigma\\left(${vecOrScalar(z)}\\right) = ${R(vecOrScalar(a))}`);
        sample.push(`a^{${l}}_{${j + 1}} = ${actExpand(act, z[j], a[j])} = ${R(tn(a[j]))}`);
      } else {
        sample.push(`a^{${l}}_{${j + 1}} = \\sigma(z^{${l}}_{${j + 1}}) = ${actExpand(act, z[j], a[j])} = ${R(tn(a[j]))}`);
      }
      if (lay.mask) notes.push("Dropout this step: a dropped unit's a is 0; the kept ones are divided by the keep probability.");
      if (m > 1) {
        const ma = meanOf("a", l);
        batch.push(`\\overline{a^{${l}}} = \\frac{1}{${m}}\\sum_{i} a^{${l}}_{(i)} = ${R(sizes[l] <= 4 ? vecOrScalar(ma) : `\\left(${ma.slice(0, 3).map((x) => tn(x)).join(",\\ ")},\\ \\ldots\\right)`)}`);
      }
      values = vectorTable("a", l, "a", { label: "z", values: z });
      bars = barsFor("a", l, `a${sup(l)} = σ(z${sup(l)}) per unit`);
    } else if (ph.kind === "loss") {
      const lossName = rec.network.loss;
      const info = CAT.losses[lossName];
      sym.push(`\\ell(a^{L}, y) = ${info.latex.replace(/a_k/g, "a^{L}_k")}`);
      sym.push(`L = \\frac{1}{m}\\sum_{i=1}^{m} \\ell_{(i)}${rec.penalty ? " + \\text{penalty}" : ""}`);
      const a = rec.layers[L - 1].a[s], y = rec.Y[s], li = rec.per_sample_loss[s];
      const n = a.length;
      const idx = n <= 3 ? a.map((_, k) => k) : [0, 1, n - 1];
      const join = (f) => (n <= 3 ? idx.map(f).join(" + ") : `${f(0)} + ${f(1)} + \\cdots + ${f(n - 1)}`);
      let expr;
      if (lossName === "half_mse") expr = `\\tfrac{1}{2}${n === 1 ? "" : "\\left["}${join((k) => `(${tn(a[k])} - ${tn(y[k])})^2`)}${n === 1 ? "" : "\\right]"}`;
      else if (lossName === "mse") expr = `\\tfrac{1}{${n}}${n === 1 ? "" : "\\left["}${join((k) => `(${tn(a[k])} - ${tn(y[k])})^2`)}${n === 1 ? "" : "\\right]"}`;
      else if (lossName === "bce") expr = `-${n === 1 ? "" : "\\sum_k"}\\left[${tn(y[0])}\\log ${tn(a[0])} + (1 - ${tn(y[0])})\\log(1 - ${tn(a[0])})\\right]`;
      else {
        const c = y.indexOf(Math.max(...y));
        expr = `-\\log a^{L}_{${c + 1}} = -\\log ${tn(a[c])}`;
      }
      sample.push(`\\ell_{(${s + 1})} = ${expr} = ${R(tn(li))}`);
      const psl = rec.per_sample_loss;
      if (m > 1) {
        const listed = m <= 4 ? psl.map((v) => tn(v)).join(" + ") : `\\ell_{(1)} + \\cdots + \\ell_{(${m})}`;
        batch.push(`L = \\frac{1}{${m}}\\left(${listed}\\right) = ${R(tn(rec.data_loss))}`);
        batchNote = "";
      }
      if (rec.penalty) batch.push(`L + \\text{penalty} = ${tn(rec.data_loss)} + ${tn(rec.penalty)} = ${R(tn(rec.loss))}`);
      values = `<table class="vals"><tbody>
        <tr><th scope="row">ℓ of sample ${s + 1}</th><td class="num fresh-num" data-testid="num-loss-sample">${hidden ? "?" : fmt(li)}</td></tr>
        <tr><th scope="row">L, batch of ${m}</th><td class="num fresh-num" data-testid="num-loss">${hidden ? "?" : fmt(rec.loss)}</td></tr>
        ${rec.penalty ? `<tr><th scope="row">of which penalty</th><td class="num">${hidden ? "?" : fmt(rec.penalty)}</td></tr>` : ""}
        <tr><th scope="row">target y</th><td class="num">${y.map((v) => fmt(v)).join(", ")}</td></tr></tbody></table>`;
      bars = m <= 400 ? { title: `loss ℓ of each sample in the batch (L = mean${m > 1 ? ", dashed" : ""})`, x: psl.map((_, i) => `${i + 1}`),
        series: [{ name: "ℓ", y: psl, highlight: s }], hline: m > 1 ? rec.data_loss : null, xtitle: "sample" } : null;
    } else if (ph.kind === "delta" && l === L) {
      const lossName = rec.network.loss;
      const info = CAT.losses[lossName];
      const cancels = !!info.requires;
      sym.push(`\\delta^{L} = \\nabla_{a}\\ell \\odot \\sigma'(z^{L})`);
      sym.push(`\\delta^{L} = ${info.latex_delta}${cancels ? "\\quad\\text{(}\\sigma'\\text{ cancels)}" : ""}`);
      if (!cancels) sym.push(`\\sigma'(z) = ${actInfo.latex_grad}`);
      const a = lay.a[s], y = rec.Y[s], sp = lay.sigma_prime[s], z = lay.z[s], d = lay.delta[s];
      const pre = lossName === "mse" ? `\\tfrac{2}{${a.length}}` : "";
      if (!cancels && spExpand(act, z[j], a[j])) sample.push(`\\sigma'(z^{L}_{${j + 1}}) = \\sigma'(${tn(z[j])}) = ${spExpand(act, z[j], a[j])} = ${tn(sp[j])}`);
      if (cancels) {
        if (a.length <= 4) sample.push(`\\delta^{L} = a^{L} - y = ${a.length === 1 ? `${tn(a[0])} - ${tn(y[0])}` : `${col(a)} - ${col(y)}`} = ${R(vecOrScalar(d))}`);
        else sample.push(`\\delta^{L}_{${j + 1}} = a^{L}_{${j + 1}} - y_{${j + 1}} = ${tn(a[j])} - ${tn(y[j])} = ${R(tn(d[j]))}`);
        notes.push(lossName === "bce" ? "Sigmoid output with binary cross-entropy: σ′(z) cancels the 1/(a(1−a)) of ∇ₐℓ, so δᴸ = a − y (note 003: dZ = A − Y)."
          : "Softmax output with cross-entropy: the Jacobian cancels, so δᴸ = a − y.");
      } else if (a.length === 1) {
        sample.push(`\\delta^{L} = ${pre}(a^{L} - y)\\,\\sigma'(z^{L}) = ${pre}(${tn(a[0])} - ${tn(y[0])}) \\times ${tn(sp[0])} = ${R(tn(d[0]))}`);
      } else if (a.length <= 4) {
        sample.push(`\\delta^{L} = ${pre}\\left(${col(a)} - ${col(y)}\\right) \\odot ${col(sp)} = ${R(col(d))}`);
      } else {
        sample.push(`\\delta^{L}_{${j + 1}} = ${pre}(${tn(a[j])} - ${tn(y[j])}) \\times ${tn(sp[j])} = ${R(tn(d[j]))}`);
      }
      if (m > 1) batch.push(`\\overline{\\delta^{L}} = \\frac{1}{${m}}\\sum_i \\delta^{L}_{(i)} = ${R(sizes[l] <= 4 ? vecOrScalar(meanOf("delta", l)) : tn(meanOf("delta", l)[j]) + "\\ (\\text{unit } " + (j + 1) + ")")}`);
      values = vectorTable("delta", l, "δ", cancels ? { label: "a − y", values: a.map((v, k) => v - y[k]) } : { label: "σ′(z)", values: sp });
      bars = barsFor("delta", l, `δ${sup("L")} per output unit`);
    } else if (ph.kind === "delta") {
      const Wn = W[l], dn = rec.layers[l].delta[s], sp = lay.sigma_prime[s], d = lay.delta[s];
      const up = sp.map((_, k) => dn.reduce((acc, dj, jj) => acc + dj * Wn[jj][k], 0));
      sym.push(`\\delta^{${l}} = \\left((W^{${l + 1}})^{T}\\,\\delta^{${l + 1}}\\right) \\odot \\sigma'(z^{${l}})`);
      sym.push(`\\sigma'(z) = ${actInfo.latex_grad}`);
      if (sizes[l] <= 4 && sizes[l + 1] <= 4) {
        const first = sizes[l + 1] === 1 ? `\\left(${col(Wn[0])} \\times ${tp(dn[0])}\\right)` : `\\left(${mat(transpose(Wn))}${col(dn)}\\right)`;
        sample.push(`\\delta^{${l}} = ${first} \\odot ${col(sp)} = ${R(col(up))} \\odot ${col(sp)} = ${R(col(d))}`);
      } else {
        const wcol = Wn.map((r) => r[j]);
        sample.push(`\\delta^{${l}}_{${j + 1}} = \\Big(\\sum_k w^{${l + 1}}_{k${j + 1}}\\,\\delta^{${l + 1}}_k\\Big)\\,\\sigma'(z^{${l}}_{${j + 1}}) = \\big(${sumTerms(wcol, dn)}\\big) \\times ${tn(sp[j])} = ${R(tp(up[j]))} \\times ${tn(sp[j])} = ${R(tn(d[j]))}`);
      }
      const spx = spExpand(act, lay.z[s][j], lay.a[s][j]);
      if (spx) sample.push(`\\sigma'(z^{${l}}_{${j + 1}}) = \\sigma'(${tn(lay.z[s][j])}) = ${spx} = ${tn(sp[j])}`);
      if (lay.mask) notes.push("Dropout: a unit dropped in the forward pass passes no error back (its δ is 0).");
      if (m > 1) batch.push(`\\overline{\\delta^{${l}}} = \\frac{1}{${m}}\\sum_i \\delta^{${l}}_{(i)} = ${R(sizes[l] <= 4 ? vecOrScalar(meanOf("delta", l)) : tn(meanOf("delta", l)[j]) + "\\ (\\text{unit } " + (j + 1) + ")")}`);
      values = vectorTable("delta", l, "δ", { label: "σ′(z)", values: sp });
      bars = barsFor("delta", l, `δ${sup(l)} per unit`);
    } else if (ph.kind === "grad") {
      const d = lay.delta[s], ap = prevRow(l, s);
      sym.push(`\\frac{\\partial \\ell}{\\partial W^{${l}}} = \\delta^{${l}}\\,(${prevSym(l)})^{T},\\qquad \\frac{\\partial \\ell}{\\partial b^{${l}}} = \\delta^{${l}}`);
      sym.push(`\\frac{\\partial L}{\\partial W^{${l}}} = \\frac{1}{m}\\sum_{i=1}^{m} \\delta^{${l}}_{(i)}\\,(${prevSym(l)}_{(i)})^{T}`);
      const outer = d.map((dj) => ap.map((ak) => dj * ak));
      if (small(l)) {
        const lhs = `\\delta^{${l}}_{(${s + 1})}(${prevSym(l)}_{(${s + 1})})^{T}`;
        const res = sizes[l] === 1 ? rowv(outer[0]) : mat(outer);
        sample.push(`${lhs} = ${vecOrScalar(d)}${rowv(ap)} = ${R(res)}`);
      } else {
        sample.push(`\\frac{\\partial \\ell}{\\partial w^{${l}}_{${j + 1}1}} = \\delta^{${l}}_{${j + 1}}\\,${l === 1 ? "x" : `a^{${l - 1}}`}_{1} = ${tp(d[j])} \\times ${tp(ap[0])} = ${R(tn(outer[j][0]))}`);
      }
      if (m > 1) {
        if (small(l)) batch.push(`\\frac{\\partial L}{\\partial W^{${l}}} = ${R(sizes[l] === 1 ? rowv(lay.dW[0]) : mat(lay.dW))},\\quad \\frac{\\partial L}{\\partial b^{${l}}} = ${R(vecOrScalar(lay.db))}`);
        else batch.push(`\\frac{\\partial L}{\\partial w^{${l}}_{${j + 1}1}} = \\frac{1}{${m}}\\sum_i \\delta^{${l}}_{(i)${j + 1}}\\,${l === 1 ? "x" : `a^{${l - 1}}`}_{(i)1} = ${R(tn(lay.dW[j][0]))}`);
      } else {
        batchNote = "The batch is this one sample: its outer product is the gradient, and ∂L/∂b = δ.";
      }
      const g = rec.grad.weights[l - 1];
      const differs = g.some((r, jj) => r.some((v, k) => Math.abs(v - lay.dW[jj][k]) > 1e-15));
      if (differs) notes.push(`The optimizer receives g = ∂L/∂W${sup(l)} plus the regularisation${rec.clip ? " and clipping" : ""} terms (the update phase shows g).`);
      const head = `<tr><th></th>${ap.map((_, k) => `<th>k=${k + 1}</th>`).join("")}<th class="bcol">∂L/∂b</th></tr>`;
      // Wide matrices keep fixed decimals (no 1.23e-4) so that the columns stay narrow.
      const cell = sizes[l - 1] > 4 ? (x) => nodeLabel(x, 3) : (x) => fmt(x);
      const body = lay.dW.map((r, jj) => `<tr class="${jj === j ? "focus" : ""}"><th scope="row">j=${jj + 1}</th>${r.map((v, k) =>
        `<td class="num fresh-num" data-testid="num-dW-${l}-${jj + 1}-${k + 1}">${hidden ? "?" : cell(v)}</td>`).join("")}
        <td class="num fresh-num bcol" data-testid="num-db-${l}-${jj + 1}">${hidden ? "?" : cell(lay.db[jj])}</td></tr>`).join("");
      values = `<div class="vals-caption">∂L/∂W${sup(l)} (row j: unit of layer ${l}; column k: ${l === 1 ? "input" : `unit of layer ${l - 1}`})</div>
        <div class="vals-scroll"><table class="vals matrix ${sizes[l - 1] > 4 ? "wide" : ""}"><thead>${head}</thead><tbody>${body}</tbody></table></div>`;
      const xs = [], ys = [], colors = [];
      lay.dW.forEach((r, jj) => r.forEach((v, k) => { xs.push(`w<sub>${jj + 1}${k + 1}</sub>`); ys.push(v); colors.push(0); }));
      lay.db.forEach((v, jj) => { xs.push(`b<sub>${jj + 1}</sub>`); ys.push(v); colors.push(1); });
      bars = { title: `∂L/∂W${sup(l)} and ∂L/∂b${sup(l)} (batch average)`, x: xs, series: [{ name: "gradient", y: ys, colors }], xtitle: "" };
    } else if (ph.kind === "update") {
      const o = rec.optimizer, hp = o.hyper, lr = rec.learning_rate;
      o.equations.forEach((e) => sym.push(e));
      sym.push(`g = \\frac{\\partial L}{\\partial \\theta},\\qquad \\eta_t = ${hyp(lr)}${o.step ? `,\\qquad t = ${o.step}` : ""}`);
      const after = rec.params_after, G = rec.grad;
      const plain = o.name === "sgd" && !hp.momentum && !hp.weight_decay;
      const allSmall = sizes.every((n) => n <= 4);
      if (plain && allSmall) {
        for (let ll = 1; ll <= L; ll++) {
          const one = sizes[ll] === 1;
          const Wm = one ? rowv(W[ll - 1][0]) : mat(W[ll - 1]);
          const Gm = one ? rowv(G.weights[ll - 1][0]) : mat(G.weights[ll - 1]);
          const Am = one ? rowv(after.weights[ll - 1][0]) : mat(after.weights[ll - 1]);
          sample.push(`W^{${ll}} \\leftarrow ${Wm} - ${hyp(lr)}\\,${Gm} = ${R(Am)}`);
          sample.push(`b^{${ll}} \\leftarrow ${vecOrScalar(B[ll - 1])} - ${hyp(lr)}\\,${vecOrScalarP(G.biases[ll - 1])} = ${R(vecOrScalar(after.biases[ll - 1]))}`);
        }
      } else {
        // One parameter with every number: w^L_{j1}, the weight from unit 1 of the layer below into output unit j.
        const jj = Math.min(state.unit, sizes[L] - 1);
        const th = W[L - 1][jj][0], gg = G.weights[L - 1][jj][0], th1 = after.weights[L - 1][jj][0];
        const sb = (name) => o.state_before[name].weights[L - 1][jj][0];
        const sa = (name) => o.state_after[name].weights[L - 1][jj][0];
        const p = `w^{${L}}_{${jj + 1}1}`;
        let geff = gg;
        if (hp.weight_decay && o.name !== "adamw") {
          geff = gg + hp.weight_decay * th;
          sample.push(`g \\leftarrow g + \\lambda\\theta = ${tn(gg)} + ${tn(hp.weight_decay)} \\times ${tp(th)} = ${tn(geff)}`);
        }
        const n4 = hyp;
        switch (o.name) {
          case "sgd":
            if (hp.momentum) {
              sample.push(`b_t = \\mu b_{t-1} + g = ${n4(hp.momentum)} \\times ${tp6(sb("velocity"))} + ${tp(geff)} = ${R(tn(sa("velocity")))}`);
              sample.push(`${p} \\leftarrow ${tn(th)} - ${n4(lr)} \\times ${R(tp(sa("velocity")))} = ${R(tn(th1))}`);
            } else sample.push(`${p} \\leftarrow ${tn(th)} - ${n4(lr)} \\times ${tp(geff)} = ${R(tn(th1))}`);
            break;
          case "momentum":
            sample.push(`v_t = \\beta v_{t-1} + (1-\\beta)\\,g = ${n4(hp.beta)} \\times ${tp6(sb("velocity"))} + ${n4(1 - hp.beta)} \\times ${tp(geff)} = ${R(tn(sa("velocity")))}`);
            sample.push(`${p} \\leftarrow ${tn(th)} - ${n4(lr)} \\times ${R(tp(sa("velocity")))} = ${R(tn(th1))}`);
            break;
          case "nesterov":
            sample.push(`b_t = \\mu b_{t-1} + g = ${n4(hp.momentum)} \\times ${tp6(sb("velocity"))} + ${tp(geff)} = ${R(tn(sa("velocity")))}`);
            sample.push(`${p} \\leftarrow ${tn(th)} - ${n4(lr)}\\,(${tn(geff)} + ${n4(hp.momentum)} \\times ${R(tp(sa("velocity")))}) = ${R(tn(th1))}`);
            break;
          case "rmsprop":
            sample.push(`s_t = \\beta s_{t-1} + (1-\\beta)\\,g^2 = ${n4(hp.beta)} \\times ${tp6(sb("s"))} + ${n4(1 - hp.beta)} \\times ${tp(geff)}^2 = ${R(t6(sa("s")))}`);
            sample.push(`${p} \\leftarrow ${tn(th)} - \\frac{${n4(lr)}}{\\sqrt{${R(t6(sa("s")))}} + \\epsilon} \\times ${tp(geff)} = ${R(tn(th1))}`);
            break;
          case "adam": case "adamw":
            if (o.name === "adamw" && hp.weight_decay) sample.push(`\\theta \\leftarrow \\theta(1 - \\eta\\lambda) = ${tn(th)} \\times (1 - ${n4(lr)} \\times ${n4(hp.weight_decay)})`);
            sample.push(`m_t = ${n4(hp.beta1)} \\times ${tp6(sb("m"))} + ${n4(1 - hp.beta1)} \\times ${tp(geff)} = ${R(t6(sa("m")))}`);
            sample.push(`v_t = ${n4(hp.beta2)} \\times ${tp6(sb("v"))} + ${n4(1 - hp.beta2)} \\times ${tp(geff)}^2 = ${R(t6(sa("v")))}`);
            sample.push(`\\hat m_t = \\frac{${R(t6(sa("m")))}}{1 - ${n4(hp.beta1)}^{${o.step}}} = ${R(t6(sa("m_hat")))}`);
            sample.push(`\\hat v_t = \\frac{${R(t6(sa("v")))}}{1 - ${n4(hp.beta2)}^{${o.step}}} = ${R(t6(sa("v_hat")))}`);
            sample.push(`${p} \\leftarrow ${tn(th)} - \\frac{${n4(lr)}}{\\sqrt{${R(t6(sa("v_hat")))}} + \\epsilon}\\,${R(tp6(sa("m_hat")))} = ${R(tn(th1))}`);
            break;
          case "adagrad":
            sample.push(`G_t = G_{t-1} + g^2 = ${tp6(sb("sum"))} + ${tp(geff)}^2 = ${R(t6(sa("sum")))}`);
            sample.push(`${p} \\leftarrow ${tn(th)} - \\frac{\\eta_t}{\\sqrt{G_t} + \\epsilon}\\,g = ${R(tn(th1))}`);
            break;
          default:
            sample.push(`${p} \\leftarrow ${tn(th)} \\to ${R(tn(th1))}`);
        }
        notes.push(`Every number written out for one weight, w${sup(L)}<sub>${jj + 1}1</sub>; the table and the chart hold every Δθ.`);
      }
      if (rec.clip) notes.push(`Clipping: ‖g‖ = ${fmt(rec.clip.before, 4)} → ${fmt(rec.clip.after, 4)} (max ${fmt(rec.clip.max_norm, 4)}).`);
      batchNote = "The update uses the batch-averaged gradient g of the gradient phases.";
      // Table: every parameter when few, else the output layer's.
      const rows = [];
      const nParams = sizes.slice(1).reduce((acc, n, i) => acc + n * (sizes[i] + 1), 0);
      const layersShown = nParams <= 12 ? [...Array(L).keys()].map((i) => i + 1) : [L];
      for (const ll of layersShown) {
        W[ll - 1].forEach((r, jj) => r.forEach((v, k) => rows.push({ name: `w${sup(ll)}<sub>${jj + 1}${k + 1}</sub>`, id: `W-${ll}-${jj + 1}-${k + 1}`, before: v,
          g: G.weights[ll - 1][jj][k], delta: rec.update.weights[ll - 1][jj][k], after: after.weights[ll - 1][jj][k] })));
        B[ll - 1].forEach((v, jj) => rows.push({ name: `b${sup(ll)}<sub>${jj + 1}</sub>`, id: `b-${ll}-${jj + 1}`, before: v,
          g: G.biases[ll - 1][jj], delta: rec.update.biases[ll - 1][jj], after: after.biases[ll - 1][jj] }));
      }
      values = `<div class="vals-scroll"><table class="vals params"><thead><tr><th></th><th>θ<sub>t</sub></th><th class="gcol">g</th><th>Δθ</th><th>θ<sub>t+1</sub></th></tr></thead><tbody>${rows.map((r) =>
        `<tr><th scope="row">${r.name}</th><td class="num">${fmt(r.before)}</td><td class="num gcol">${fmt(r.g)}</td>
         <td class="num fresh-num" data-testid="num-update-${r.id}">${hidden ? "?" : fmt(r.delta)}</td>
         <td class="num fresh-num" data-testid="num-after-${r.id}">${hidden ? "?" : fmt(r.after)}</td></tr>`).join("")}</tbody></table></div>
         ${layersShown.length < L ? `<p class="muted small">The output layer's ${rows.length} parameters; the chart shows all ${nParams}.</p>` : ""}`;
      const xs = [], ys = [], colors = [];
      for (let ll = 1; ll <= L; ll++) {
        rec.update.weights[ll - 1].forEach((r, jj) => r.forEach((v, k) => { xs.push(`w<sup>${ll}</sup><sub>${jj + 1}${k + 1}</sub>`); ys.push(v); colors.push(ll - 1); }));
        rec.update.biases[ll - 1].forEach((v, jj) => { xs.push(`b<sup>${ll}</sup><sub>${jj + 1}</sub>`); ys.push(v); colors.push(ll - 1); });
      }
      bars = { title: "Δθ = θ<sub>t+1</sub> − θ<sub>t</sub>, every parameter (colour: layer)", x: xs, series: [{ name: "Δθ", y: ys, colors, byLayer: true }], xtitle: "" };
    }
    const label = ph.kind === "update" ? "With this step's numbers" : sampleLabel;
    return { ph, L, m, s, j, hidden, sym, sample, batch, batchNote, sampleLabel: label, notes, values, bars };
  }

  // ------------------------------------------------------------------ note 002's printed numbers
  function notesChecks(rec, ph) {
    if (rec.spec_id !== cfg.notes.spec_id || rec.t !== 0) return "";
    const items = cfg.notes.checks.filter((c) => c.phase === ph.slug);
    if (!items.length) return "";
    const lookup = (path) => {
      const [head, idx, field] = path.split(".");
      if (head === "loss") return [rec.loss];
      if (head === "upstream") {
        const l = Number(idx) + 1, Wn = rec.params_before.weights[l], dn = rec.layers[l].delta[0];
        return rec.layers[l - 1].z[0].map((_, k) => dn.reduce((acc, dj, jj) => acc + dj * Wn[jj][k], 0));
      }
      const v = rec.layers[Number(idx)][field];
      return field === "dW" ? v.flat() : v[0];
    };
    const hidden = isHidden();
    const rows = items.map((c) => {
      if (hidden) return `<li class="check-hidden">Note 002 prints ${katex(c.label, false)} — revealed with the numbers.</li>`;
      const actual = lookup(c.path);
      const printed = c.printed;
      const shown = (xs, d) => xs.map((x) => fmt(x, d)).join(", ");
      const bracket = (s, n) => (n > 1 ? `[${s}]` : s);
      const same = printed.every((p, i) => Number(actual[i].toFixed(c.digits)) === p);
      const remark = c.remark ? `<div class="remark">${inlineMath(c.remark)}</div>` : "";
      if (same) {
        return `<li class="ok" data-testid="note-ok">Note 002 prints ${katex(c.label, false)} = <span class="num">${bracket(shown(printed, c.digits), printed.length)}</span> <span class="tick" aria-label="agrees">✓</span>${remark}</li>`;
      }
      const far = printed.some((p, i) => Math.abs(p - actual[i]) > 10 ** -c.digits);
      const why = c.why ? `; ${escapeHtml(c.why)}` : far ? "" : ` (the note truncates)`;
      return `<li class="slip" data-testid="note-slip"><strong>${far ? "Slip in note 002" : "Note 002 rounds off"}:</strong> it prints ${katex(c.label, false)} = <span class="num">${bracket(shown(printed, c.digits), printed.length)}</span>;
        it is <span class="num">${bracket(shown(actual, 4), actual.length)}</span>, which is <span class="num">${bracket(shown(actual, c.digits), actual.length)}</span> to ${c.digits} decimals${why}.${remark}</li>`;
    });
    return `<h3>Against note 002's worked example</h3><ul>${rows.join("")}</ul>`;
  }

  // ------------------------------------------------------------------ the network diagram (SVG)
  const POS = [213, 94, 0], NEG = [0, 114, 178];   // Okabe-Ito vermillion (> 0) and blue (< 0)
  function fillFor(v, scale) {
    if (!Number.isFinite(v)) return "#dddddd";
    const t = clamp(scale > 0 ? Math.abs(v) / scale : 0, 0, 1) * 0.9;
    const c = v >= 0 ? POS : NEG;
    const mix = c.map((ch) => Math.round(255 + (ch - 255) * t));
    return `rgb(${mix.join(",")})`;
  }
  function nodeLabel(v, digits) {
    // Fixed decimals in the circles (an overview; the tables and tooltips hold the exact values).
    if (!Number.isFinite(v)) return "—";
    const s = Math.abs(v).toFixed(digits);
    return (v < 0 && Number(s) !== 0 ? "\u2212" : "") + s;
  }
  const inkFor = (v, scale) => (scale > 0 && Math.abs(v) / scale > 0.55 ? "#ffffff" : "#111111");

  function nodeModel(rec, ph) {
    // What every node shows in this phase: x for the inputs, then z, a or delta, or nothing yet.
    const L = rec.layers.length, s = Math.min(state.sample, rec.X.length - 1);
    const layers = [{ kind: "x", values: rec.X[s], fresh: false }];
    const backward = ["delta", "grad", "update"].includes(ph.kind);
    for (let l = 1; l <= L; l++) {
      const lay = rec.layers[l - 1];
      let kind = "none", fresh = false;
      if (!backward) {
        if (known("a", l)) kind = "a";
        else if (ph.kind === "z" && ph.l === l) { kind = "z"; fresh = true; }
        else if (ph.kind === "a" && ph.l === l) { kind = "a"; fresh = true; }
        if (ph.kind === "a" && ph.l === l) fresh = true;
      } else if (known("delta", l) || (ph.kind === "delta" && ph.l === l)) {
        kind = "delta"; fresh = ph.kind === "delta" && ph.l === l;
      } else kind = "a-dim";
      const field = { z: "z", a: "a", delta: "delta", "a-dim": "a" }[kind];
      layers.push({ kind, fresh, values: field ? lay[field][s] : lay.z[s].map(() => null) });
    }
    return layers;
  }

  function diagramHtml(rec, ph) {
    const svg = el("net");
    const present = BPV.isPresent();
    const Wpx = Math.max(280, layoutBox.fig);
    const rem = layoutBox.rem;
    const sizes = rec.network.layers, L = sizes.length - 1, maxN = Math.max(...sizes);
    const Hpx = Math.round(clamp(Wpx * (maxN > 4 ? (present ? 1.0 : 0.8) : present ? 0.78 : 0.62), 240, present ? Math.max(320, window.innerHeight * 0.6) : 560));
    const top = rem * 2.3, bottom = rem * 1.7, margin = rem * 0.5;
    const spacing = (Hpx - top - bottom) / maxN;
    const tw = rem * 2.9, gapT = rem * (present ? 0.7 : 1.2);            // the target column: box width and its gap
    let r = 20, unit = 100;
    for (let pass = 0; pass < 3; pass++) {             // r depends on the column gap and the gap on r
      unit = (Wpx - 2 * margin - 2 * r - gapT - tw) / L;
      r = clamp(Math.min(spacing * 0.38, unit * 0.27), 7, present ? 46 : 36);
    }
    const xs = sizes.map((_, l) => margin + r + l * unit);
    const xY = xs[L] + r + gapT;                        // left edge of the target boxes
    const ys = (n) => [...Array(n).keys()].map((j) => top + (Hpx - top - bottom) / 2 + (j - (n - 1) / 2) * spacing);
    const hidden = isHidden();
    const nodes = nodeModel(rec, ph);
    const weights = ph.kind === "update" && known("update", L) ? rec.params_after.weights : rec.params_before.weights;
    const wmax = maxAbs(rec.params_before.weights) || 1;
    const s = Math.min(state.sample, rec.X.length - 1);
    const scaleOf = { x: maxAbs([rec.X[s]]), z: maxAbs(rec.layers.map((x) => x.z[s])), a: maxAbs(rec.layers.map((x) => x.a[s])),
      delta: maxAbs(rec.layers.map((x) => x.delta[s])) };
    // Edges: highlighted where this phase reads or writes weights.
    let hl = null;
    if (ph.kind === "z" || ph.kind === "grad") hl = ph.l;
    else if (ph.kind === "delta" && ph.l < L) hl = ph.l + 1;
    else if (ph.kind === "update") hl = "all";
    const parts = [];
    parts.push(`<defs><filter id="glow" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="3"/></filter></defs>`);
    for (let l = 1; l <= L; l++) {
      const y0 = ys(sizes[l - 1]), y1 = ys(sizes[l]);
      const on = hl === "all" || hl === l;
      for (let jj = 0; jj < sizes[l]; jj++) {
        for (let k = 0; k < sizes[l - 1]; k++) {
          const w = weights[l - 1][jj][k];
          const width = (1.2 + 7 * Math.min(1, Math.abs(w) / wmax)) * (present ? 1.3 : 1);
          const color = w > 0 ? "var(--positive)" : w < 0 ? "var(--negative)" : "#999";
          const cls = `edge${hl === null ? "" : on ? " hl" : " dim"}`;
          const coords = `x1="${(xs[l - 1] + r).toFixed(1)}" y1="${y0[k].toFixed(1)}" x2="${(xs[l] - r).toFixed(1)}" y2="${y1[jj].toFixed(1)}"`;
          parts.push(`<line class="${cls}" ${coords} stroke="${color}" stroke-width="${width.toFixed(2)}"/>`);
          parts.push(`<line class="edge-hit" ${coords} data-edge="${l},${jj},${k}" data-testid="edge-${l}-${jj + 1}-${k + 1}" tabindex="-1"/>`);
        }
      }
    }
    // Output -> target.
    const yOut = ys(sizes[L]);
    const tgtOn = ph.kind === "loss" || (ph.kind === "delta" && ph.l === L);
    yOut.forEach((yy) => parts.push(`<line class="to-target${tgtOn ? " hl" : ""}" x1="${(xs[L] + r).toFixed(1)}" y1="${yy.toFixed(1)}" x2="${xY.toFixed(1)}" y2="${yy.toFixed(1)}"/>`));
    // Nodes.
    const labelFont = Math.min(r * 0.56, rem * 0.82);
    const digits = r >= 25 ? 3 : 2;
    nodes.forEach((layer, l) => {
      const yy = ys(sizes[l]);
      const scale = scaleOf[layer.kind] || scaleOf.a;
      yy.forEach((cy, jj) => {
        const v = layer.values[jj];
        const secret = hidden && layer.fresh;
        let fill = "#ffffff", ink = "#111111", cls = "node";
        if (layer.kind === "none") cls += " unknown";
        else if (layer.kind === "a-dim") { fill = "#eeeeee"; ink = "#555555"; cls += " dim"; }
        else if (!secret) { fill = fillFor(v, scale); ink = inkFor(v, scale); }
        if (layer.fresh) cls += " fresh";
        if (l > 0 && jj === Math.min(state.unit, sizes[l] - 1) && (ph.l === l)) cls += " focus";
        const text = layer.kind === "none" ? "" : secret ? "?" : r >= 15 ? nodeLabel(v, digits) : "";
        parts.push(`<g class="${cls}" data-node="${l},${jj}" data-testid="node-${l}-${jj + 1}">`
          + `<circle cx="${xs[l].toFixed(1)}" cy="${cy.toFixed(1)}" r="${r.toFixed(1)}" fill="${fill}"/>`
          + (text ? `<text x="${xs[l].toFixed(1)}" y="${cy.toFixed(1)}" fill="${ink}" font-size="${Math.min(labelFont, (1.7 * r) / (0.62 * text.length)).toFixed(1)}">${text}</text>` : "")
          + `</g>`);
      });
    });
    // Targets y.
    const yT = rec.Y[s];
    const bh = Math.min(Math.max(r * 1.3, rem * 1.4), ((Hpx - top - bottom) / sizes[L]) * 0.8);
    const xc = xY + tw / 2;
    yOut.forEach((cy, jj) => {
      parts.push(`<g class="target${tgtOn ? " hl" : ""}" data-target="${jj}"><rect x="${xY.toFixed(1)}" y="${(cy - bh / 2).toFixed(1)}" width="${tw.toFixed(1)}" height="${bh.toFixed(1)}" rx="5"/>`
        + `<text x="${xc.toFixed(1)}" y="${cy.toFixed(1)}" font-size="${Math.min(rem * 0.8, bh * 0.62, tw / 3.4).toFixed(1)}">${fmt(yT[jj], 3)}</text></g>`);
    });
    if (known("loss", L) || ph.kind === "loss") {
      const li = hidden && ph.kind === "loss" ? "?" : fmt(rec.per_sample_loss[s]);
      const ly = yOut[yOut.length - 1] + bh / 2 + rem * 1.1;
      parts.push(`<text class="loss-label${ph.kind === "loss" ? " fresh" : ""}" x="${(Wpx - 3).toFixed(1)}" y="${ly.toFixed(1)}" font-size="${(rem * 0.8).toFixed(1)}">ℓ = ${li}</text>`);
    }
    // Column titles and the quantity each column shows.
    const qty = { x: "x", z: "z", a: "a", delta: "δ", "a-dim": "a", none: "" };
    const titleFont = rem * 0.78;
    const roomy = unit > titleFont * 4.6;   // "layer 2" fits over its column; otherwise the activation names alone
    nodes.forEach((layer, l) => {
      const name = l === 0 ? "input" : l === L ? "output" : `layer ${l}`;
      const actLabel = l === 0 ? "" : rec.network.activations[l - 1];
      const tx = Math.max(xs[l], titleFont * 1.7);
      if (roomy) parts.push(`<text class="col-title" x="${tx.toFixed(1)}" y="${(rem * 0.9).toFixed(1)}" font-size="${titleFont.toFixed(1)}">${name}</text>`);
      if (actLabel) parts.push(`<text class="col-sub" x="${xs[l].toFixed(1)}" y="${(rem * 1.75).toFixed(1)}" font-size="${(titleFont * 0.85).toFixed(1)}">${actLabel}</text>`);
      const q = qty[layer.kind];
      if (q) parts.push(`<text class="col-qty${layer.fresh ? " fresh" : ""}" x="${xs[l].toFixed(1)}" y="${(Hpx - rem * 0.5).toFixed(1)}" font-size="${(titleFont * 1.05).toFixed(1)}">${q}${l > 0 ? `<tspan baseline-shift="super" font-size="70%">${l}</tspan>` : ""}</text>`);
    });
    if (xc - xs[L] > rem * 4.6) parts.push(`<text class="col-title" x="${xc.toFixed(1)}" y="${(rem * 0.9).toFixed(1)}" font-size="${titleFont.toFixed(1)}">target</text>`);
    parts.push(`<text class="col-qty" x="${xc.toFixed(1)}" y="${(Hpx - rem * 0.5).toFixed(1)}" font-size="${(titleFont * 1.05).toFixed(1)}">y</text>`);
    svg.setAttribute("viewBox", `0 0 ${Wpx} ${Hpx}`);
    svg.setAttribute("width", String(Wpx));
    svg.setAttribute("height", String(Hpx));
    // Legend.
    const freshKind = nodes.find((n) => n.fresh)?.kind || (["delta", "grad", "update"].includes(ph.kind) ? "delta" : "a");
    const qName = { x: "input x", z: "weighted input z", a: "activation a", delta: "error δ", "a-dim": "activation a" }[freshKind];
    const sc = scaleOf[freshKind] || scaleOf.a;
    const legend = `<span class="lg-item"><span class="lg-ramp" aria-hidden="true"></span><span>node: ${qName}${hidden ? " (blue &lt; 0 &lt; vermillion)" : `, <span class="num">${fmt(-sc)}</span> … <span class="num">${fmt(sc)}</span>`}</span></span>
      <span class="lg-item"><span class="lg-line neg" aria-hidden="true"></span><span class="lg-line pos" aria-hidden="true"></span><span>edge: w &lt; 0 / w &gt; 0, width ∝ |w|${ph.kind === "update" ? ", after the update" : ""}</span></span>
      <span class="lg-item"><span class="lg-ring" aria-hidden="true"></span><span>computed in this phase</span></span>
      ${["delta", "grad", "update"].includes(ph.kind) && nodes.some((n) => n.kind === "a-dim") ? `<span class="lg-item"><span class="lg-dim" aria-hidden="true"></span><span>δ not yet computed (shows a)</span></span>` : ""}`;
    return { svg: parts.join(""), legend };
  }

  // ------------------------------------------------------------------ tooltips and weight editing
  let lastRec = null;
  function tipHtml(target) {
    const rec = lastRec;
    if (!rec) return "";
    const s = Math.min(state.sample, rec.X.length - 1);
    const L = rec.layers.length;
    const ex = (x) => (x === null || x === undefined ? "—" : BPV.fmt(x, 6));
    const hidden = isHidden();
    if (target.dataset.node) {
      const [l, j] = target.dataset.node.split(",").map(Number);
      if (l === 0) return `<strong>input x<sub>${j + 1}</sub></strong><dl><dt>x</dt><dd>${ex(rec.X[s][j])}</dd></dl>`;
      const lay = rec.layers[l - 1];
      const rows = [];
      const ph = phases[state.phase];
      const secret = (kind) => hidden && ph.kind === kind && ph.l === l;
      if (known("z", l) && !secret("z")) rows.push(["z", lay.z[s][j]], ["b", rec.params_before.biases[l - 1][j]]);
      if (known("a", l) && !secret("a")) rows.push(["a = σ(z)", lay.a[s][j]], ["σ′(z)", lay.sigma_prime[s][j]]);
      if (known("delta", l) && !secret("delta")) rows.push(["δ", lay.delta[s][j]]);
      if (known("grad", l) && !secret("grad")) rows.push(["∂L/∂b (batch)", lay.db[j]]);
      const body = rows.length ? rows.map(([k, v]) => `<dt>${k}</dt><dd>${ex(v)}</dd>`).join("") : "<dt>not computed yet</dt><dd></dd>";
      return `<strong>${l === L ? "output" : `layer ${l}`}, unit ${j + 1}</strong> <span class="muted">sample ${s + 1} · click to focus</span><dl>${body}</dl>`;
    }
    if (target.dataset.edge) {
      const [l, j, k] = target.dataset.edge.split(",").map(Number);
      const rows = [["w (θ_t)", rec.params_before.weights[l - 1][j][k]]];
      const ph = phases[state.phase];
      if (known("grad", l) && !(hidden && ph.kind === "grad" && ph.l === l)) rows.push(["∂L/∂w (batch)", rec.layers[l - 1].dW[j][k]], ["g (to optimizer)", rec.grad.weights[l - 1][j][k]]);
      if (known("update", L)) rows.push(["Δw", rec.update.weights[l - 1][j][k]], ["w (θ_t+1)", rec.params_after.weights[l - 1][j][k]]);
      const from = l === 1 ? `x<sub>${k + 1}</sub>` : `unit ${k + 1} of layer ${l - 1}`;
      return `<strong>w${sup(l)}<sub>${j + 1}${k + 1}</sub></strong> <span class="muted">${from} → unit ${j + 1} of ${l === L ? "output" : `layer ${l}`} · click to edit</span>
        <dl>${rows.map(([a, v]) => `<dt>${a}</dt><dd>${ex(v)}</dd>`).join("")}</dl>`;
    }
    return "";
  }

  function showTip(target, x, y) {
    const tip = el("tip");
    const html = tipHtml(target);
    if (!html) { tip.hidden = true; return; }
    tip.innerHTML = html;
    tip.hidden = false;
    const pad = 14, w = tip.offsetWidth, h = tip.offsetHeight;
    const left = x + pad + w > window.innerWidth ? x - pad - w : x + pad;
    const topPos = y + pad + h > window.innerHeight ? y - pad - h : y + pad;
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${Math.max(4, topPos)}px`;
  }
  const hideTip = () => { el("tip").hidden = true; };

  let editing = null;
  function openEdit(l, j, k) {
    const rec = lastRec;
    if (!rec) return;
    editing = { l, j, k };
    const w = rec.params_before.weights[l - 1][j][k];
    el("edit-title").innerHTML = `Edit w${sup(l)}<sub>${j + 1}${k + 1}</sub>`;
    el("edit-values").innerHTML = `<dl><dt>now (θ<sub>t</sub>, t = ${rec.t})</dt><dd class="num">${BPV.fmt(w, 6)}</dd>
      <dt>∂L/∂w</dt><dd class="num">${BPV.fmt(rec.layers[l - 1].dW[j][k], 6)}</dd></dl>`;
    el("edit-value").value = String(Number(w.toPrecision(6)));
    el("edit-dialog").showModal();
    el("edit-value").select();
  }

  async function applyEdit() {
    const rec = lastRec;
    const { l, j, k } = editing;
    const value = Number(el("edit-value").value);
    if (!Number.isFinite(value)) return;
    const old = rec.params_before.weights[l - 1][j][k];
    const weights = JSON.parse(JSON.stringify(rec.params_before.weights));
    weights[l - 1][j][k] = value;
    const spec = toApiSpec(state.spec);
    spec.network = { ...spec.network, weights, biases: rec.params_before.biases };
    const phaseSlug = phases[state.phase].slug;
    try {
      const res = await post("/api/v1/spec", { spec });
      const supD = (n) => String(n).replace(/\d/g, (d) => "⁰¹²³⁴⁵⁶⁷⁸⁹"[d]);
      const subD = (n) => String(n).replace(/\d/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);
      const note = `w${supD(l)}${subD(j + 1)}${j + 1 > 9 || k + 1 > 9 ? "," : ""}${subD(k + 1)}: ${BPV.fmt(old)} → ${BPV.fmt(value)}, from the weights of step t = ${rec.t}`;
      setSpec(res.spec_token, res.spec, { keepPhase: phaseSlug, note, T: state.T });
    } catch (err) {
      showError(`Could not edit the weight: ${err.message}`);
    }
  }

  // ------------------------------------------------------------------ charts
  let barsShape = null;
  function barsChart(v, rec) {
    const div = el("chart-bars");
    el("bars-title").innerHTML = v.bars ? v.bars.title + (v.hidden ? " — hidden until revealed" : "") : "No chart for this phase";
    const big = BPV.isPresent();
    const layerColors = BPV.PALETTE;
    let traces = [];
    if (v.bars) {
      traces = v.bars.series.map((ser, i) => {
        let color = i === 0 ? BPV.PALETTE[0] : BPV.PALETTE[1];
        if (ser.colors) color = ser.colors.map((c) => (ser.byLayer ? layerColors[c % layerColors.length] : c ? BPV.PALETTE[1] : BPV.PALETTE[0]));
        if (ser.highlight !== undefined) color = ser.y.map((_, k) => (k === ser.highlight ? BPV.PALETTE[1] : BPV.PALETTE[0]));
        return { type: "bar", uid: `bars${i}`, name: ser.name, x: v.bars.x, y: v.hidden ? ser.y.map(() => 0) : ser.y, marker: { color },
          hovertemplate: "%{x}: %{y:.5f}<extra></extra>" };
      });
    }
    // Animate only between phases whose bars are the same quantities (z -> a of a layer, step to step);
    // bars of other units simply replace the old ones.
    const shape = v.bars ? `${v.bars.x.join("|")}#${traces.length}` : "";
    const animate = shape === barsShape;
    barsShape = shape;
    const many = v.bars && v.bars.x.length > 24;
    const layout = BPV.plotLayout({
      height: big ? 300 : 260, barmode: "group", showlegend: traces.length > 1,
      margin: { t: traces.length > 1 ? 30 : 10, b: big ? 62 : 48, l: big ? 90 : 64, r: 10 },
      xaxis: { type: "category", title: { text: v.bars ? v.bars.xtitle : "", standoff: 4 }, tickangle: 0, showticklabels: !many },
      yaxis: { zeroline: true, zerolinewidth: 2, zerolinecolor: "#444", tickformat: ".3~f" },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      ...(animate ? { transition: { duration: 300, easing: "cubic-in-out" } } : {}),
      shapes: v.bars && v.bars.hline !== null && v.bars.hline !== undefined && !v.hidden ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: v.bars.hline, y1: v.bars.hline, line: { dash: "dash", color: "#111", width: 2 } }] : [],
      annotations: v.hidden ? [{ text: "predict first", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: big ? 30 : 20, color: "#555" } }] : [],
    });
    return window.Plotly.react(div, traces, layout, plotConfig());
  }

  let lossMemo = null;
  function lossChart(rec) {
    const div = el("chart-loss");
    const key = `${state.token}|${state.T}`;
    const run = lossNow.get(key);
    const big = BPV.isPresent();
    const upto = state.t + (known("loss", rec.layers.length) ? 1 : 0);   // loss at theta_t appears at the loss phase
    const ys = run ? run.loss.slice(0, upto) : [];
    const xs = ys.map((_, i) => i);
    const traces = [{ type: "scatter", uid: "loss", mode: "lines+markers", x: xs, y: ys, name: "loss", line: { color: BPV.PALETTE[0], width: 3 },
      marker: { size: xs.map((x) => (x === state.t ? (big ? 14 : 10) : xs.length > 60 ? 0 : 5)), color: xs.map((x) => (x === state.t ? BPV.PALETTE[1] : BPV.PALETTE[0])) },
      hovertemplate: "t = %{x}: %{y:.5f}<extra></extra>" }];
    const all = run ? run.loss.filter(Number.isFinite) : [0, 1];
    const ymax = Math.max(...all, 1e-9) * 1.05;
    const memo = `${key}|${upto}|${state.t}|${big}|${run ? 1 : 0}|${layoutBox.fig}`;
    if (memo === lossMemo) return Promise.resolve();   // nothing on this chart changed between these phases
    lossMemo = memo;
    const layout = BPV.plotLayout({
      height: big ? 300 : 260, showlegend: false, margin: { t: 10, b: big ? 62 : 48, l: big ? 90 : 64, r: 15 },
      xaxis: { title: { text: "step t", standoff: 4 }, range: [-0.5, state.T + 0.5] },
      yaxis: { title: { text: "L", standoff: 6 }, range: [0, ymax], tickformat: ".3~f" },
      annotations: run ? [] : [{ text: "loading…", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
    });
    return window.Plotly.react(div, traces, layout, plotConfig());
  }

  function plotConfig() {
    // BPV.plotConfig's "Download as SVG" button, with an icon Plotly can draw.
    const cfgIn = BPV.plotConfig;
    const buttons = (cfgIn.modeBarButtonsToAdd || []).map((b) => ({ ...b, title: b.title || b.name, icon: b.icon || window.Plotly.Icons.camera }));
    return { ...cfgIn, modeBarButtonsToAdd: buttons, toImageButtonOptions: { ...cfgIn.toImageButtonOptions, filename: `step-t${state.t}-${phases[state.phase].slug}` } };
  }

  // ------------------------------------------------------------------ render
  function showError(msg) {
    const box = el("step-error");
    box.textContent = msg;
    box.hidden = !msg;
  }

  function presetOfSpec() { return cfg.presets.find((p) => p.spec_id === state.specId) || null; }

  function renderToolbar(rec) {
    const last = phases.length - 1;
    el("t-slider").max = String(state.T);
    el("t-slider").value = String(state.t);
    el("t-out").textContent = String(state.t);
    const m = rec ? rec.X.length : 1;
    const si = el("sample-input");
    si.max = String(m);
    si.value = String(Math.min(state.sample, m - 1) + 1);
    el("sample-of").textContent = `of ${m}`;
    el("predict-toggle").checked = state.predict;
    root.querySelector("[data-step-action=prev]").disabled = state.t === 0 && state.phase === 0;
    root.querySelector("[data-step-action=next]").disabled = state.t >= state.T && state.phase === last && state.revealed;
    const preset = presetOfSpec();
    el("preset-select").value = preset ? preset.id : "";
    const note = el("custom-note");
    if (!preset) {
      note.hidden = false;
      note.innerHTML = `<strong>Custom experiment</strong>${state.note ? ` — edited ${escapeHtml(state.note)}` : ""}. Its step t counts from the change (t = 0 is the changed network).`;
    } else note.hidden = true;
  }

  // The equations of a view as HTML. A chain a = b = c too wide for its column breaks after each relation
  // instead of scrolling; which form fits is measured once per (column width, equation) and remembered.
  function mathHtml(v) {
    const alts = [];
    const line = (tex) => {
      const parts = splitRelations(tex);
      if (parts.length < 2) return `<div class="eqline">${katex(tex)}</div>`;
      const rows = parts.slice(1).map((p) => `&${p.rel} ${p.tex}`);
      const forms = [tex];
      // Break after the left-hand side, then put even the left-hand side on its own line.
      if (parts.length > 2) forms.push(`\\begin{aligned}${parts[0].tex} ${rows.join("\\\\ ")}\\end{aligned}`);
      forms.push(`\\begin{aligned}&${parts[0].tex} \\\\ ${rows.join("\\\\ ")}\\end{aligned}`);
      const key = `${layoutBox.math}|${tex}`;
      const known = fitCache.get(key);
      if (known !== undefined) return `<div class="eqline">${katex(forms[known])}</div>`;
      alts.push({ forms, key, at: 0 });
      return `<div class="eqline" data-alt="${alts.length - 1}">${katex(tex)}</div>`;
    };
    const block = (cls, label, lines, note) => (lines.length || note ? `<section class="eq ${cls}"><h3>${label}</h3>${lines.map(line).join("")}${note ? `<p class="eq-note">${escapeHtml(note)}</p>` : ""}</section>` : "");
    const reveal = v.hidden ? `<div class="predict-banner" data-testid="predict-banner"><span>Predict first: what will the numbers be?</span> <button type="button" data-step-action="reveal">Reveal <kbd>→</kbd></button></div>` : "";
    const html = block("eq-sym", "In symbols", v.sym)
      + reveal
      + block("eq-sample", v.sampleLabel, v.sample, v.batch.length ? "" : v.batchNote)
      + (v.batch.length ? block("eq-batch", "Batch average", v.batch, v.batchNote) : "")
      + (v.notes.length ? `<ul class="eq-notes">${v.notes.map((n) => `<li>${n}</li>`).join("")}</ul>` : "")
      + `<p class="round-note muted">Shown to 3 decimals; every number is computed at full precision (hover a node or edge for more digits).</p>`;
    return { html, alts };
  }

  function fitLines(container, alts) {
    let pending = Array.from(container.querySelectorAll(".eqline[data-alt]"));
    while (pending.length) {
      // One layout read for all lines, then the writes: no read-write interleaving.
      const wide = pending.map((div) => { const box = div.firstElementChild; return box && box.scrollWidth > box.clientWidth + 1; });
      const next = [];
      pending.forEach((div, i) => {
        const a = alts[Number(div.dataset.alt)];
        if (wide[i] && a.at < a.forms.length - 1) { a.at += 1; div.innerHTML = katex(a.forms[a.at]); next.push(div); }
        else { fitCache.set(a.key, a.at); div.removeAttribute("data-alt"); }
      });
      pending = next;
    }
  }

  // Widths the render depends on, read once (before any write) and again only after a resize, a mode switch
  // or the panel opening/closing.
  const layoutBox = { fig: 0, math: 0, rem: 17, valid: false };
  const fitCache = new Map();
  function measureLayout() {
    if (layoutBox.valid) return;
    layoutBox.fig = Math.floor(el("net").parentElement.clientWidth);
    layoutBox.math = Math.floor(el("math").clientWidth);
    layoutBox.rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 17;
    layoutBox.valid = true;
  }
  const invalidateLayout = () => { layoutBox.valid = false; };

  // The diagram, the equations, the tables: everything but the charts.
  function renderMain(rec) {
    lastRec = rec;
    measureLayout();
    const ph = phases[state.phase];
    const v = view(rec);
    el("step-label").innerHTML = `Step t = ${rec.t} <span class="muted">(θ<sub>${rec.t}</sub> → θ<sub>${rec.t + 1}</sub>) · phase ${state.phase + 1} of ${phases.length}</span>`;
    const title = el("phase-name");
    title.innerHTML = phaseTitle(ph, v.L, rec.optimizer.name);
    title.dataset.phase = ph.slug;
    el("phase-dots").innerHTML = phases.map((p, i) => `<li><button type="button" class="dot ${i < state.phase ? "done" : ""}" data-goto="${i}"
      ${i === state.phase ? 'aria-current="step"' : ""} title="${p.slug}">${phaseShort(p)}</button></li>`).join("");
    const d = diagramHtml(rec, ph);
    el("net").innerHTML = d.svg;
    el("legend").innerHTML = d.legend;
    const m = mathHtml(v);
    el("math").innerHTML = m.html;
    el("values").innerHTML = v.values;
    el("notes-check").innerHTML = notesChecks(rec, ph);
    root.dataset.hidden = v.hidden ? "1" : "0";
    renderToolbar(rec);
    if (m.alts.length) fitLines(el("math"), m.alts);   // the only layout read, and only on a first visit
    return v;
  }

  function renderCharts(v, rec) {
    return Promise.all([barsChart(v, rec), lossChart(rec)]);
  }

  function render(rec) {
    // Everything at once (resize, mode switch, panel toggle).
    return renderCharts(renderMain(rec), rec);
  }

  // While the class looks at this phase, typeset the next one off screen and measure which equation forms fit,
  // so that stepping forward reads no layout.
  function prefitNext(rec) {
    if (state.phase + 1 >= phases.length) return;
    const saved = { phase: state.phase, revealed: state.revealed };
    state.phase += 1;
    state.revealed = !state.predict;
    let m;
    try { m = mathHtml(view(rec)); } finally { Object.assign(state, saved); }
    if (!m.alts.length) return;
    const host = el("math-measure");
    host.innerHTML = m.html;
    fitLines(host, m.alts);
    host.innerHTML = "";
  }
  const whenIdle = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

  let seq = 0;
  async function update() {
    writeUrl();
    const my = ++seq;
    const key = `${state.token}|${state.t}`;
    let rec = recordNow.get(key);
    if (!rec) {
      root.dataset.state = "loading";
      renderToolbar(lastRec);
      try {
        rec = await getRecord(state.token, state.t);
        recordNow.set(key, rec);
      } catch (err) {
        if (my === seq) { showError(`Could not compute step ${state.t}: ${err.message}`); root.dataset.state = "error"; }
        return;
      }
      if (my !== seq) return;
    }
    showError("");
    // Redraw time, measured in the page: the main content (DOM, KaTeX, SVG) is drawn and painted first, the
    // charts (Plotly.react, then animating on their own) right after; __lastRedrawMs is the sum of both.
    performance.mark("bpv-redraw-start");
    const t0 = performance.now();
    const v = renderMain(rec);
    const tMain = performance.now() - t0;
    await nextFrame();
    if (my !== seq) return;
    const t1 = performance.now();
    const drawn = renderCharts(v, rec);
    const tCharts = performance.now() - t1;
    performance.mark("bpv-redraw-end");
    window.__lastMainMs = tMain;
    window.__lastChartsMs = tCharts;
    window.__lastRedrawMs = tMain + tCharts;
    window.__lastFrameMs = performance.now() - t0;   // wall time from key to charts drawn, incl. one paint
    await drawn;
    if (my !== seq) return;
    root.dataset.state = "ready";
    root.dataset.rendered = `${state.t}:${phases[state.phase].slug}:${state.revealed ? 1 : 0}`;
    whenIdle(() => { if (my === seq) prefitNext(rec); });
    // Prefetch the next step so crossing into it needs no wait.
    if (state.t + 1 <= state.T) {
      const nk = `${state.token}|${state.t + 1}`;
      if (!recordNow.has(nk)) getRecord(state.token, state.t + 1).then((r) => recordNow.set(nk, r)).catch(() => {});
    }
  }

  function ensureLossCurve() {
    const token = state.token, T = state.T;
    const key = `${token}|${T}`;
    if (lossNow.has(key)) { root.dataset.loss = "ready"; return; }
    root.dataset.loss = "loading";
    getLossCurve(token, state.spec, T).then(() => {
      if (token === state.token && T === state.T) {
        root.dataset.loss = "ready";
        if (lastRec && lastRec.spec_token === token) lossChart(lastRec);
      }
    }).catch((err) => {
      if (token === state.token) { root.dataset.loss = "error"; showError(`Loss curve: ${err.message}`); }
    });
  }

  // ------------------------------------------------------------------ navigation
  function next() {
    if (state.predict && !state.revealed) { state.revealed = true; return update(); }
    if (state.phase < phases.length - 1) state.phase += 1;
    else if (state.t < state.T) { state.t += 1; state.phase = 0; }
    else return undefined;
    state.revealed = !state.predict;
    return update();
  }
  function prev() {
    if (state.phase > 0) state.phase -= 1;
    else if (state.t > 0) { state.t -= 1; state.phase = phases.length - 1; }
    else return undefined;
    state.revealed = true;
    return update();
  }
  function reset() { state.t = 0; state.phase = 0; state.revealed = !state.predict; return update(); }
  function gotoStep(t) { state.t = clamp(t, 0, state.T); state.revealed = true; return update(); }

  function setSpec(token, spec, opts = {}) {
    state.token = token;
    state.spec = spec;
    state.specId = null;
    state.t = 0;
    state.sample = 0;
    state.note = opts.note || "";
    state.revealed = !state.predict;
    const preset = cfg.presets.find((p) => p.token === token);
    state.specId = preset ? preset.spec_id : "custom";
    state.T = opts.T || (preset ? preset.steps : cfg.default_horizon);
    phases = phaseList(spec.network.layers.length - 1);
    const keep = opts.keepPhase ? phases.findIndex((p) => p.slug === opts.keepPhase) : -1;
    state.phase = keep >= 0 ? keep : 0;
    state.unit = 0;
    ensureLossCurve();
    refreshPanel();
    // The record tells the real spec id, so a custom spec equal to a preset is recognised.
    getRecord(token, 0).then((r) => { if (token === state.token) { state.specId = r.spec_id; renderToolbar(r); } }).catch(() => {});
    return update();
  }

  function refreshPanel() {
    if (window.htmx) {
      window.htmx.ajax("GET", `/step/panel?spec=${encodeURIComponent(state.token)}`, { target: "#panel", swap: "outerHTML" })
        .then(() => { const h = document.querySelector("#spec-form [name=horizon]"); if (h) h.value = String(state.T); });
    }
  }

  // ------------------------------------------------------------------ the settings panel
  function parseRows(text, name) {
    const rows = text.trim().split(/\n+/).map((line) => line.trim()).filter(Boolean)
      .map((line) => line.replace(/[[\]]/g, "").split(/[\s,;]+/).filter(Boolean).map(Number));
    if (!rows.length || rows.some((r) => !r.length || r.some((x) => !Number.isFinite(x)))) {
      throw new Error(`data.${name}: one sample a line, numbers separated by commas`);
    }
    return rows;
  }

  function specFromForm(form) {
    const f = new FormData(form);
    const num = (name) => (f.get(name) === "" || f.get(name) === null ? null : Number(f.get(name)));
    const layers = String(f.get("layers") || "").split(/[\s,;]+/).filter(Boolean).map(Number);
    if (layers.length < 2 || layers.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("network.layers: at least two whole numbers ≥ 1, e.g. 2, 4, 1");
    const acts = f.getAll("act");
    if (acts.length !== layers.length - 1) throw new Error(`network.activations: one per layer after the input (${layers.length - 1})`);
    const network = { layers, activations: acts, loss: f.get("loss"), init: f.get("init"), seed: num("net_seed") ?? 0 };
    if (f.get("keep_weights")) {
      const cur = state.spec.network;
      if (JSON.stringify(cur.layers) !== JSON.stringify(layers)) throw new Error("network.weights: the explicit weights fit sizes " + cur.layers.join(", ") + "; untick “keep explicit weights” to initialise new ones");
      network.weights = cur.weights; network.biases = cur.biases;
    }
    let data;
    const ds = f.get("dataset");
    if (!ds) data = { X: parseRows(String(f.get("X") || ""), "X"), Y: parseRows(String(f.get("Y") || ""), "Y") };
    else {
      data = { dataset: ds, noise: num("noise") ?? 0.1, seed: num("data_seed") ?? 0 };
      if (num("n") !== null) data.n = num("n");
      if (state.spec.data.dataset === ds) {
        if (state.spec.data.test_fraction) data.test_fraction = state.spec.data.test_fraction;
        if (state.spec.data.features) data.features = state.spec.data.features;
      }
    }
    const optimizer = { name: f.get("optimizer"), batch_size: num("batch_size") };
    form.querySelectorAll("[data-hyper]").forEach((inp) => { if (inp.value !== "") optimizer[inp.dataset.hyper] = Number(inp.value); });
    const c = state.spec;
    const spec = { network, data, optimizer, l2: c.l2 || 0, l1: c.l1 || 0, seed: c.seed || 0 };
    if (c.dropout && c.dropout.length === layers.length - 1) spec.dropout = c.dropout;
    if (c.clip_norm !== null && c.clip_norm !== undefined) spec.clip_norm = c.clip_norm;
    return spec;
  }

  async function applyPanel(form) {
    const errBox = form.querySelector("#panel-error");
    errBox.hidden = true;
    try {
      const spec = specFromForm(form);
      const T = clamp(Number.parseInt(form.querySelector("[name=horizon]").value, 10) || state.T, 1, 5000);
      const res = await post("/api/v1/spec", { spec });
      await setSpec(res.spec_token, res.spec, { T });
    } catch (err) {
      errBox.textContent = err.message;
      errBox.hidden = false;
    }
  }

  // ------------------------------------------------------------------ exports
  function exportJson() {
    const rec = lastRec;
    if (!rec) return;
    BPV.download(`step-t${rec.t}.json`, JSON.stringify({ spec_token: state.token, spec: state.spec, record: rec }, null, 1), "application/json");
  }
  function exportCsv() {
    const rec = lastRec;
    if (!rec) return;
    const lines = ["tensor,layer,sample,row,col,value"];
    const add = (name, l, sample, r, c, v) => lines.push(`${name},${l},${sample},${r},${c},${v === null ? "" : v}`);
    rec.X.forEach((row, i) => row.forEach((v, k) => add("x", 0, i + 1, "", k + 1, v)));
    rec.Y.forEach((row, i) => row.forEach((v, k) => add("y", "", i + 1, "", k + 1, v)));
    rec.layers.forEach((lay, li) => {
      const l = li + 1;
      for (const f of ["z", "a", "sigma_prime", "delta"]) lay[f].forEach((row, i) => row.forEach((v, j) => add(f, l, i + 1, j + 1, "", v)));
      lay.dW.forEach((row, j) => row.forEach((v, k) => add("dW", l, "", j + 1, k + 1, v)));
      lay.db.forEach((v, j) => add("db", l, "", j + 1, "", v));
      for (const [name, src] of [["W_before", rec.params_before], ["grad_W", rec.grad], ["update_W", rec.update], ["W_after", rec.params_after]]) {
        src.weights[li].forEach((row, j) => row.forEach((v, k) => add(name, l, "", j + 1, k + 1, v)));
      }
      for (const [name, src] of [["b_before", rec.params_before], ["grad_b", rec.grad], ["update_b", rec.update], ["b_after", rec.params_after]]) {
        src.biases[li].forEach((v, j) => add(name, l, "", j + 1, "", v));
      }
    });
    rec.per_sample_loss.forEach((v, i) => add("loss", "", i + 1, "", "", v));
    add("L", "", "", "", "", rec.loss);
    BPV.download(`step-t${rec.t}.csv`, lines.join("\n") + "\n", "text/csv");
  }

  // ------------------------------------------------------------------ events
  function typing(target) {
    return target && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    if (typing(event.target) && event.target.type !== "checkbox") return;
    let handled = true;
    switch (event.key) {
      case "ArrowRight": case " ": case "Spacebar": next(); break;
      case "ArrowLeft": prev(); break;
      case "Home": reset(); break;
      case "PageDown": gotoStep(state.t + 1); break;
      case "PageUp": gotoStep(state.t - 1); break;
      case "r": case "R": state.predict = !state.predict; state.revealed = true; update(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  root.addEventListener("click", (event) => {
    const actionEl = event.target.closest("[data-step-action]");
    const action = actionEl && actionEl.dataset.stepAction;
    if (action === "next") next();
    else if (action === "prev") prev();
    else if (action === "reset") reset();
    else if (action === "reveal") { state.revealed = true; update(); }
    else if (action === "export-json") exportJson();
    else if (action === "export-csv") exportCsv();
    else if (action === "toggle-panel" || action === "close-panel") {
      root.dataset.panel = root.dataset.panel === "open" || action === "close-panel" ? "closed" : "open";
      invalidateLayout();
      if (lastRec) render(lastRec);
    } else if (action === "edit-cancel") el("edit-dialog").close();
    const goto = event.target.closest("[data-goto]");
    if (goto) { state.phase = Number(goto.dataset.goto); state.revealed = true; update(); }
  });

  const svg = el("net");
  svg.addEventListener("pointermove", (event) => {
    const target = event.target.closest("[data-node],[data-edge]");
    if (target) showTip(target, event.clientX, event.clientY); else hideTip();
  });
  svg.addEventListener("pointerleave", hideTip);
  svg.addEventListener("click", (event) => {
    const target = event.target.closest("[data-node],[data-edge]");
    if (!target) return;
    if (target.dataset.edge) {
      hideTip();
      const [l, j, k] = target.dataset.edge.split(",").map(Number);
      openEdit(l, j, k);
    } else {
      const [l, j] = target.dataset.node.split(",").map(Number);
      showTip(target, event.clientX, event.clientY);   // a tap on a touch screen shows the values too
      if (l > 0 && state.unit !== j) { state.unit = j; update(); }
    }
  });
  el("edit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    el("edit-dialog").close();
    applyEdit();
  });

  el("t-slider").addEventListener("input", (event) => gotoStep(Number(event.target.value)));
  // After a drag, the arrow keys step phases again (keyboard users who tab to the slider keep its arrows).
  el("t-slider").addEventListener("pointerup", (event) => event.target.blur());
  el("sample-input").addEventListener("change", (event) => {
    const v = Number.parseInt(event.target.value, 10);
    if (Number.isFinite(v)) { state.sample = Math.max(0, v - 1); update(); }
    event.target.blur();   // so that the arrow keys step phases again
  });
  el("predict-toggle").addEventListener("change", (event) => { state.predict = event.target.checked; state.revealed = true; update(); });
  el("preset-select").addEventListener("change", async (event) => {
    const preset = cfg.presets.find((p) => p.id === event.target.value);
    if (!preset) return;
    event.target.blur();
    try {
      const res = await post("/api/v1/spec", { spec_token: preset.token });
      await setSpec(preset.token, res.spec, { T: preset.steps });
    } catch (err) { showError(err.message); }
  });
  document.addEventListener("submit", (event) => {
    if (event.target.id === "spec-form") { event.preventDefault(); applyPanel(event.target); }
  });
  document.addEventListener("bpv:present", () => { writeUrl(); invalidateLayout(); if (lastRec) render(lastRec); });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { invalidateLayout(); if (lastRec) render(lastRec); }, 120);
  });

  // ------------------------------------------------------------------ start
  if (window.innerWidth < 1300) root.dataset.panel = "closed";
  readUrl();
  const h = document.querySelector("#spec-form [name=horizon]");
  if (h) h.value = String(state.T);
  ensureLossCurve();
  update();
  window.__bpvStep = { state, next, prev, reset };
})();
