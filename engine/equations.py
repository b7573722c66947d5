"""Every equation of one training step, in symbols and with the step's numbers, phase by phase (notes 001-003).

The engine knows the math; the page knows how numbers look. So each function here takes `n`, a number
formatter with `tex(x, sig)` and `holds(combine, operands, result, sig)` (the app passes app.views.format),
and returns LaTeX strings. Nothing here imports the web layer.

A phase is one of: z (weighted input of layer l), a (activation), loss, delta (error of layer l, from L down
to 1), grad (dL/dW^l, dL/db^l) and update (the optimizer's step). `WORKED_UPDATES` holds, per optimizer, its
update written out for one parameter with every number, next to the state it keeps (engine.optimizers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .activations import LEAKY_SLOPE
from .network import Params

HIDDEN = r"\boxed{\;?\;}"
TERMS = 4  # a sum with more terms is written first, second, ..., last


@dataclass(frozen=True)
class Phase:
    """One phase of a step: its kind ("z", "a", "loss", "delta", "grad", "update") and layer (1..L)."""

    kind: str
    l: int

    @property
    def slug(self) -> str:
        return self.kind if self.kind in ("loss", "update") else f"{self.kind}{self.l}"


def phases(L: int) -> list[Phase]:
    """Forward z1, a1, ..., zL, aL; the loss; delta L..1; gradients L..1; the update."""
    out = []
    for l in range(1, L + 1):
        out += [Phase("z", l), Phase("a", l)]
    out.append(Phase("loss", L))
    out += [Phase("delta", l) for l in range(L, 0, -1)]
    out += [Phase("grad", l) for l in range(L, 0, -1)]
    out.append(Phase("update", L))
    return out


@dataclass
class Equations:
    """What a phase writes: the rule in symbols, the chosen sample's numbers, the batch, and remarks."""

    symbolic: list[str] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)
    batch: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label: str = ""  # what the numbers are of, when not the chosen sample (the page says it)


class Writer:
    """Number-to-LaTeX helpers over a formatter `n`, and the 'predict first' box for hidden results."""

    def __init__(self, n, hide: bool = False):
        self.n, self.hide = n, hide

    def t(self, x, sig: int = 3) -> str:
        return self.n.tex(x, sig)

    def f(self, x, sig: int = 3) -> str:
        """x as a factor: negatives and powers of ten in parentheses."""
        s = self.n.tex(x, sig)
        return rf"\left({s}\right)" if s.startswith("-") or r"\times" in s else s

    def r(self, tex: str) -> str:
        """A result: hidden behind a box in 'predict first' mode."""
        return HIDDEN if self.hide else tex

    def vec(self, v, sig: int = 3) -> str:
        v = np.ravel(v)
        return self.t(v[0], sig) if v.size == 1 else self.n.tex_vector(v, sig)

    def vecf(self, v, sig: int = 3) -> str:
        """A vector, or a lone number as a factor (in parentheses when negative)."""
        v = np.ravel(v)
        return self.f(v[0], sig) if v.size == 1 else self.n.tex_vector(v, sig)

    def row(self, v, sig: int = 3) -> str:
        return self.n.tex_row(v, sig)

    def mat(self, M, sig: int = 3) -> str:
        M = np.atleast_2d(M)
        return self.row(M[0], sig) if M.shape[0] == 1 else self.n.tex_matrix(M, sig)

    def holds(self, combine: Callable, operands, result, sig: int = 3):
        """(operand texts as factors, relation, result text) such that the shown computation holds."""
        shown = self.n.holds(combine, [float(x) for x in operands], float(result), sig, extra=3)
        ops = [rf"\left({o}\right)" if o.startswith("-") or r"\times" in o else o for o in shown.operands]
        return ops, shown.relation, shown.result


def _prev_sym(l: int) -> str:
    return "x" if l == 1 else f"a^{{{l - 1}}}"


def _sum_terms(ws: list[str], xs: list[str]) -> str:
    terms = [rf"{w}\cdot {x}" for w, x in zip(ws, xs)]
    if len(terms) <= TERMS:
        return " + ".join(terms)
    return rf"{terms[0]} + {terms[1]} + \cdots + {terms[-1]}"


def _dot(w: Writer, weights, inputs, bias, result):
    """sum_k w_k x_k + b written out so that it holds at the digits shown (every term when few)."""
    weights, inputs = np.ravel(weights), np.ravel(inputs)
    if weights.size <= TERMS:
        ops, rel, res = w.holds(
            lambda *v: sum(v[2 * i] * v[2 * i + 1] for i in range(weights.size)) + v[-1],
            [x for pair in zip(weights, inputs) for x in pair] + [bias],
            result,
        )
        terms = " + ".join(rf"{ops[2 * i]}\cdot {ops[2 * i + 1]}" for i in range(weights.size))
        return rf"{terms} + {ops[-1]}", rel, res
    terms = _sum_terms([w.f(x) for x in weights], [w.f(x) for x in inputs])
    return rf"{terms} + {w.f(bias)}", "=", w.t(result)


def forward_z(rec, l: int, s: int, j: int, w: Writer) -> Equations:
    bp, P = rec.backprop, rec.params_before
    W, b = P.W[l - 1], P.b[l - 1]
    prev = bp.X[s] if l == 1 else bp.layers[l - 2].a[s]
    z = bp.layers[l - 1].z[s]
    eq = Equations([rf"z^{{{l}}} = W^{{{l}}}\,{_prev_sym(l)} + b^{{{l}}}"])
    if l == 1:
        eq.notes.append("The input is the layer before the first: a⁰ = x.")
    if W.shape[0] <= TERMS and W.shape[1] <= TERMS:
        eq.sample.append(rf"z^{{{l}}} = {w.mat(W)}{w.n.tex_vector(prev)} + {w.vecf(b)} = {w.r(w.vec(z))}")
    expr, rel, res = _dot(w, W[j], prev, b[j], z[j])
    x = "x" if l == 1 else f"a^{{{l - 1}}}"
    eq.sample.append(
        rf"z^{{{l}}}_{{{j + 1}}} = \sum_k w^{{{l}}}_{{{j + 1}k}}\,{x}_k + b^{{{l}}}_{{{j + 1}}}"
        rf" = {expr} {rel} {w.r(res)}"
    )
    _batch_mean(eq, rec, "z", l, j, w)
    return eq


def _act_expand(name: str, z: float, w: Writer) -> str | None:
    if name == "sigmoid":
        return rf"\frac{{1}}{{1+e^{{-{w.f(z)}}}}}"
    if name == "tanh":
        return rf"\tanh {w.f(z)}"
    if name == "relu":
        return rf"\max\left(0,\ {w.t(z)}\right)"
    if name == "leaky_relu":
        return rf"\max\left({LEAKY_SLOPE:g} \times {w.f(z)},\ {w.t(z)}\right)"
    return None


def forward_a(rec, net, l: int, s: int, j: int, w: Writer) -> Equations:
    lay = rec.backprop.layers[l - 1]
    act = net.acts[l - 1]
    z, a = lay.z[s], lay.a[s]
    eq = Equations([rf"a^{{{l}}} = \sigma(z^{{{l}}}),\qquad \sigma(z) = {act.latex}"])
    if act.name == "softmax":
        eq.sample.append(
            rf"a^{{{l}}}_{{{j + 1}}} = \frac{{e^{{z_{{{j + 1}}}}}}}{{\sum_k e^{{z_k}}}}"
            rf" = \frac{{e^{{{w.t(z[j])}}}}}{{\sum_k e^{{z_k}}}} = {w.r(w.t(a[j]))}"
        )
        eq.notes.append(f"Softmax: every output depends on every z; the sum of the {z.size} outputs is 1.")
    else:
        if z.size <= TERMS:
            eq.sample.append(rf"a^{{{l}}} = \sigma\left({w.vec(z)}\right) = {w.r(w.vec(a))}")
        expanded = _act_expand(act.name, z[j], w)
        body = rf" = {expanded}" if expanded else ""
        eq.sample.append(rf"a^{{{l}}}_{{{j + 1}}} = \sigma({w.t(z[j])}){body} = {w.r(w.t(lay.a[s][j]))}")
    if lay.mask is not None:
        eq.notes.append(
            "Dropout this step: a dropped unit's a is 0; the kept ones are divided by the keep probability."
        )
    _batch_mean(eq, rec, "a", l, j, w)
    return eq


def _batch_mean(eq: Equations, rec, field_name: str, l: int, j: int, w: Writer) -> None:
    m = rec.backprop.X.shape[0]
    if m == 1:
        return
    values = getattr(rec.backprop.layers[l - 1], field_name)
    mean = values.mean(axis=0)
    sym = {"z": "z", "a": "a", "delta": r"\delta"}[field_name]
    eq.batch.append(
        rf"\overline{{{sym}^{{{l}}}_{{{j + 1}}}}} = \frac{{1}}{{{m}}}\sum_{{i=1}}^{{{m}}} {sym}^{{{l}}}_{{{j + 1}(i)}}"
        rf" = {w.r(w.t(mean[j]))}"
    )


def loss_phase(rec, net, s: int, w: Writer) -> Equations:
    bp, loss = rec.backprop, net.loss_fn
    a, y, li = bp.layers[-1].a[s], bp.Y[s], bp.per_sample_loss[s]
    eq = Equations([rf"\ell(a^{{L}}, y) = {loss.latex}", r"L = \frac{1}{m}\sum_{i=1}^{m} \ell_{(i)}"])
    if bp.penalty:
        eq.symbolic[-1] += r" + \text{penalty}"
    n = a.size
    idx = list(range(n)) if n <= 3 else [0, 1, n - 1]

    def join(term):
        parts = [term(k) for k in idx]
        return " + ".join(parts) if n <= 3 else rf"{parts[0]} + {parts[1]} + \cdots + {parts[2]}"

    if loss.name in ("half_mse", "mse"):
        pre = r"\tfrac{1}{2}" if loss.name == "half_mse" else rf"\tfrac{{1}}{{{n}}}"
        inner = join(lambda k: rf"({w.t(a[k])} - {w.t(y[k])})^2")
        expr = pre + (inner if n == 1 else rf"\left[{inner}\right]")
    elif loss.name == "bce":
        expr = join(lambda k: rf"-\left[{w.t(y[k])}\log {w.t(a[k])} + (1 - {w.t(y[k])})\log(1 - {w.t(a[k])})\right]")
    else:
        c = int(np.argmax(y))
        expr = rf"-\log a^{{L}}_{{{c + 1}}} = -\log {w.t(a[c])}"
    eq.sample.append(rf"\ell_{{({s + 1})}} = {expr} = {w.r(w.t(li))}")
    m = bp.X.shape[0]
    if m > 1:
        listed = (
            " + ".join(w.t(v) for v in bp.per_sample_loss) if m <= 4 else rf"\ell_{{(1)}} + \cdots + \ell_{{({m})}}"
        )
        eq.batch.append(rf"L = \frac{{1}}{{{m}}}\left({listed}\right) = {w.r(w.t(bp.data_loss))}")
    if bp.penalty:
        ops, rel, res = w.holds(lambda a_, b_: a_ + b_, [bp.data_loss, bp.penalty], bp.loss)
        eq.batch.append(rf"L + \text{{penalty}} = {ops[0]} + {ops[1]} {rel} {w.r(res)}")
    return eq


def _sp_expand(name: str, z: float, a: float, w: Writer) -> str | None:
    if name == "sigmoid":
        return rf"{w.t(a)}\,(1 - {w.t(a)})"
    if name == "tanh":
        return rf"1 - {w.f(a)}^2"
    if name == "relu":
        return rf"[{w.t(z)} > 0]"
    if name == "leaky_relu":
        return "1" if z > 0 else f"{LEAKY_SLOPE:g}"
    return None


def output_delta(rec, net, s: int, j: int, w: Writer) -> Equations:
    lay, loss = rec.backprop.layers[-1], net.loss_fn
    act = net.acts[-1]
    a, y, sp, z, d = lay.a[s], rec.backprop.Y[s], lay.sigma_prime[s], lay.z[s], lay.delta[s]
    cancels = loss.requires is not None
    eq = Equations([r"\delta^{L} = \nabla_{a}\ell \odot \sigma'(z^{L})"])
    eq.symbolic.append(
        rf"\delta^{{L}} = {loss.latex_delta}" + (r"\quad\text{(}\sigma'\text{ cancels)}" if cancels else "")
    )
    if not cancels:
        eq.symbolic.append(rf"\sigma'(z) = {act.latex_grad}")
        expanded = _sp_expand(act.name, z[j], a[j], w)
        if expanded:
            eq.sample.append(rf"\sigma'(z^{{L}}_{{{j + 1}}}) = \sigma'({w.t(z[j])}) = {expanded} = {w.t(sp[j])}")
    if cancels:
        if a.size <= TERMS:
            body = f"{w.t(a[0])} - {w.t(y[0])}" if a.size == 1 else f"{w.vec(a)} - {w.vec(y)}"
            eq.sample.append(rf"\delta^{{L}} = a^{{L}} - y = {body} = {w.r(w.vec(d))}")
        ops, rel, res = w.holds(lambda a_, y_: a_ - y_, [a[j], y[j]], d[j])
        if a.size > 1:
            eq.sample.append(rf"\delta^{{L}}_{{{j + 1}}} = {ops[0]} - {ops[1]} {rel} {w.r(res)}")
        eq.notes.append(
            "Sigmoid output with binary cross-entropy: σ′(z) cancels the 1/(a(1−a)) of ∇ₐℓ, so δᴸ = a − y "
            "(note 003: dZ = A − Y)."
            if loss.name == "bce"
            else "Softmax output with cross-entropy: the Jacobian cancels, so δᴸ = a − y."
        )
    else:
        scale = 2.0 / a.size if loss.name == "mse" else 1.0
        pre = rf"\tfrac{{2}}{{{a.size}}}" if loss.name == "mse" else ""
        if act.name == "softmax":
            eq.sample.append(rf"\delta^{{L}}_{{{j + 1}}} = {w.r(w.t(d[j]))}")
            eq.notes.append("Softmax with a squared error: δᴸ is the softmax Jacobian times ∇ₐℓ.")
        else:
            ops, rel, res = w.holds(lambda a_, y_, s_: scale * (a_ - y_) * s_, [a[j], y[j], sp[j]], d[j])
            sub = f"_{{{j + 1}}}" if a.size > 1 else ""
            eq.sample.append(
                rf"\delta^{{L}}{sub} = {pre}(a^{{L}}{sub} - y{sub})\,\sigma'(z^{{L}}{sub})"
                rf" = {pre}({ops[0]} - {ops[1]}) \times {ops[2]} {rel} {w.r(res)}"
            )
    _batch_mean(eq, rec, "delta", net.depth, j, w)
    return eq


def hidden_delta(rec, net, l: int, s: int, j: int, w: Writer) -> Equations:
    bp = rec.backprop
    lay, nxt = bp.layers[l - 1], bp.layers[l]
    Wn = rec.params_before.W[l]
    dn, sp, d, up = nxt.delta[s], lay.sigma_prime[s], lay.delta[s], lay.upstream[s]
    act = net.acts[l - 1]
    eq = Equations(
        [
            rf"\delta^{{{l}}} = \left((W^{{{l + 1}}})^{{T}}\,\delta^{{{l + 1}}}\right) \odot \sigma'(z^{{{l}}})",
            rf"\sigma'(z) = {act.latex_grad}",
        ]
    )
    if Wn.shape[0] <= TERMS and Wn.shape[1] <= TERMS:
        first = rf"{w.vec(Wn[0])} \times {w.f(dn[0])}" if Wn.shape[0] == 1 else rf"{w.mat(Wn.T)}{w.n.tex_vector(dn)}"
        eq.sample.append(
            rf"\delta^{{{l}}} = \left({first}\right) \odot {w.vec(sp)} = {w.r(w.vec(up))} \odot {w.vec(sp)}"
            rf" = {w.r(w.vec(d))}"
        )
    col = Wn[:, j]
    if col.size <= TERMS:
        ops, rel, res = w.holds(
            lambda *v: sum(v[2 * i] * v[2 * i + 1] for i in range(col.size)), _pairs(col, dn), up[j]
        )
        terms = " + ".join(rf"{ops[2 * i]}\cdot {ops[2 * i + 1]}" for i in range(col.size))
    else:
        terms, rel, res = _sum_terms([w.f(x) for x in col], [w.f(x) for x in dn]), "=", w.t(up[j])
    eq.sample.append(rf"\textstyle\sum_k w^{{{l + 1}}}_{{k{j + 1}}}\,\delta^{{{l + 1}}}_k = {terms} {rel} {w.r(res)}")
    ops, rel, res = w.holds(lambda u, s_: u * s_, [up[j], sp[j]], d[j])
    eq.sample.append(rf"\delta^{{{l}}}_{{{j + 1}}} = {w.r(ops[0])} \times {ops[1]} {rel} {w.r(res)}")
    expanded = _sp_expand(act.name, lay.z[s][j], lay.a[s][j], w)
    if expanded:
        eq.sample.append(rf"\sigma'(z^{{{l}}}_{{{j + 1}}}) = \sigma'({w.t(lay.z[s][j])}) = {expanded} = {w.t(sp[j])}")
    if lay.mask is not None:
        eq.notes.append("Dropout: a unit dropped in the forward pass passes no error back (its δ is 0).")
    _batch_mean(eq, rec, "delta", l, j, w)
    return eq


def _pairs(a, b) -> list[float]:
    return [float(x) for pair in zip(np.ravel(a), np.ravel(b)) for x in pair]


def gradient(rec, net, l: int, s: int, j: int, w: Writer) -> Equations:
    bp = rec.backprop
    lay = bp.layers[l - 1]
    prev_all = bp.X if l == 1 else bp.layers[l - 2].a
    d, ap = lay.delta[s], prev_all[s]
    ps = _prev_sym(l)
    m = bp.X.shape[0]
    eq = Equations(
        [
            rf"\frac{{\partial \ell}}{{\partial W^{{{l}}}}} = \delta^{{{l}}}\,({ps})^{{T}},\qquad "
            rf"\frac{{\partial \ell}}{{\partial b^{{{l}}}}} = \delta^{{{l}}}",
            rf"\frac{{\partial L}}{{\partial W^{{{l}}}}} = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} \delta^{{{l}}}_{{(i)}}"
            rf"\,({ps}_{{(i)}})^{{T}}",
        ]
    )
    outer = np.outer(d, ap)
    if d.size <= TERMS and ap.size <= TERMS:
        eq.sample.append(rf"\delta^{{{l}}}({ps})^{{T}} = {w.vec(d)}{w.row(ap)} = {w.r(w.mat(outer))}")
    x = "x" if l == 1 else f"a^{{{l - 1}}}"
    ops, rel, res = w.holds(lambda a_, b_: a_ * b_, [d[j], ap[0]], outer[j, 0])
    eq.sample.append(
        rf"\frac{{\partial \ell}}{{\partial w^{{{l}}}_{{{j + 1}1}}}} = \delta^{{{l}}}_{{{j + 1}}}\,{x}_{{1}}"
        rf" = {ops[0]} \times {ops[1]} {rel} {w.r(res)}"
    )
    if m > 1:
        if lay.dW.shape[0] <= TERMS and lay.dW.shape[1] <= TERMS:
            eq.batch.append(
                rf"\frac{{\partial L}}{{\partial W^{{{l}}}}} = {w.r(w.mat(lay.dW))},\quad "
                rf"\frac{{\partial L}}{{\partial b^{{{l}}}}} = {w.r(w.vec(lay.db))}"
            )
        else:
            eq.batch.append(
                rf"\frac{{\partial L}}{{\partial w^{{{l}}}_{{{j + 1}1}}}} = \frac{{1}}{{{m}}}\sum_i "
                rf"\delta^{{{l}}}_{{{j + 1}(i)}}\,{x}_{{1(i)}} = {w.r(w.t(lay.dW[j, 0]))}"
            )
    else:
        eq.notes.append("The batch is this one sample: its outer product is the gradient, and ∂L/∂b = δ.")
    if not np.array_equal(bp.grad_W[l - 1], lay.dW):
        eq.notes.append("The optimizer receives g = ∂L/∂W plus the regularisation term (the update phase shows g).")
    return eq


# ------------------------------------------------------------------ the update, one parameter written out


@dataclass(frozen=True)
class Param:
    """One parameter's numbers in an update: theta_t, the gradient g, theta_{t+1}, state before/after."""

    symbol: str
    theta: float
    g: float
    after: float
    before_state: dict
    after_state: dict


def _wd(p: Param, hp: dict, w: Writer, lines: list) -> float:
    """PyTorch's coupled weight decay, written out when on; returns the g the rule sees."""
    if not hp.get("weight_decay"):
        return p.g
    g = p.g + hp["weight_decay"] * p.theta
    ops, rel, res = w.holds(lambda a, l_, t: a + l_ * t, [p.g, hp["weight_decay"], p.theta], g, 4)
    lines.append(rf"g \leftarrow g + \lambda\theta = {ops[0]} + {ops[1]} \times {ops[2]} {rel} {res}")
    return g


def _worked_sgd(p: Param, hp, lr, t, w: Writer) -> list[str]:
    lines: list[str] = []
    g = _wd(p, hp, w, lines)
    if hp.get("momentum"):
        b = p.after_state["velocity"]
        ops, rel, res = w.holds(lambda mu, b0, g_: mu * b0 + g_, [hp["momentum"], p.before_state["velocity"], g], b, 4)
        lines.append(rf"b_t = \mu b_{{t-1}} + g = {ops[0]} \times {ops[1]} + {ops[2]} {rel} {w.r(res)}")
        g = b
    ops, rel, res = w.holds(lambda th, e, g_: th - e * g_, [p.theta, lr, g], p.after, 3)
    lines.append(
        rf"{p.symbol} \leftarrow {ops[0]} - {ops[1]} \times {w.r(ops[2]) if hp.get('momentum') else ops[2]}"
        rf" {rel} {w.r(res)}"
    )
    return lines


def _worked_momentum(p: Param, hp, lr, t, w: Writer) -> list[str]:
    lines: list[str] = []
    g = _wd(p, hp, w, lines)
    v = p.after_state["velocity"]
    ops, rel, res = w.holds(
        lambda be, v0, g_: be * v0 + (1 - be) * g_, [hp["beta"], p.before_state["velocity"], g], v, 4
    )
    lines.append(
        rf"v_t = \beta v_{{t-1}} + (1-\beta)\,g = {ops[0]} \times {ops[1]} + (1 - {ops[0]}) \times {ops[2]}"
        rf" {rel} {w.r(res)}"
    )
    ops, rel, res = w.holds(lambda th, e, v_: th - e * v_, [p.theta, lr, v], p.after, 3)
    lines.append(rf"{p.symbol} \leftarrow {ops[0]} - {ops[1]} \times {w.r(ops[2])} {rel} {w.r(res)}")
    return lines


def _worked_nesterov(p: Param, hp, lr, t, w: Writer) -> list[str]:
    lines: list[str] = []
    g = _wd(p, hp, w, lines)
    b = p.after_state["velocity"]
    ops, rel, res = w.holds(lambda mu, b0, g_: mu * b0 + g_, [hp["momentum"], p.before_state["velocity"], g], b, 4)
    lines.append(rf"b_t = \mu b_{{t-1}} + g = {ops[0]} \times {ops[1]} + {ops[2]} {rel} {w.r(res)}")
    ops, rel, res = w.holds(
        lambda th, e, g_, mu, b_: th - e * (g_ + mu * b_), [p.theta, lr, g, hp["momentum"], b], p.after, 3
    )
    lines.append(
        rf"{p.symbol} \leftarrow {ops[0]} - {ops[1]}\,({ops[2]} + {ops[3]} \times {w.r(ops[4])}) {rel} {w.r(res)}"
    )
    return lines


def _worked_rmsprop(p: Param, hp, lr, t, w: Writer) -> list[str]:
    lines: list[str] = []
    g = _wd(p, hp, w, lines)
    s = p.after_state["s"]
    ops, rel, res = w.holds(lambda be, s0, g_: be * s0 + (1 - be) * g_ * g_, [hp["beta"], p.before_state["s"], g], s, 4)
    lines.append(
        rf"s_t = \beta s_{{t-1}} + (1-\beta)\,g^2 = {ops[0]} \times {ops[1]} + (1 - {ops[0]}) \times {ops[2]}^2"
        rf" {rel} {w.r(res)}"
    )
    eps = hp["eps"]
    ops, rel, res = w.holds(lambda th, e, s_, g_: th - e * g_ / (np.sqrt(s_) + eps), [p.theta, lr, s, g], p.after, 3)
    lines.append(
        rf"{p.symbol} \leftarrow {ops[0]} - \frac{{{ops[1]}}}{{\sqrt{{{w.r(ops[2])}}} + \epsilon}} \times {ops[3]}"
        rf" {rel} {w.r(res)}"
    )
    return lines


def _worked_adam(p: Param, hp, lr, t, w: Writer, decoupled: bool = False) -> list[str]:
    lines: list[str] = []
    theta = p.theta
    if decoupled:
        if hp.get("weight_decay"):
            theta = p.theta * (1 - lr * hp["weight_decay"])
            ops, rel, res = w.holds(lambda th, e, l_: th * (1 - e * l_), [p.theta, lr, hp["weight_decay"]], theta, 4)
            lines.append(
                rf"\theta \leftarrow \theta(1 - \eta\lambda) = {ops[0]}\,(1 - {ops[1]} \times {ops[2]}) {rel} {res}"
            )
        g = p.g
    else:
        g = _wd(p, hp, w, lines)
    b1, b2, eps = hp["beta1"], hp["beta2"], hp["eps"]
    st0, st1 = p.before_state, p.after_state
    ops, rel, res = w.holds(lambda m0, g_: b1 * m0 + (1 - b1) * g_, [st0["m"], g], st1["m"], 4)
    lines.append(rf"m_t = {w.t(b1, 4)} \times {ops[0]} + {w.t(1 - b1, 4)} \times {ops[1]} {rel} {w.r(res)}")
    ops, rel, res = w.holds(lambda v0, g_: b2 * v0 + (1 - b2) * g_ * g_, [st0["v"], g], st1["v"], 4)
    lines.append(rf"v_t = {w.t(b2, 4)} \times {ops[0]} + {w.t(1 - b2, 4)} \times {ops[1]}^2 {rel} {w.r(res)}")
    ops, rel, res = w.holds(lambda m_: m_ / (1 - b1**t), [st1["m"]], st1["m_hat"], 4)
    lines.append(rf"\hat m_t = \frac{{{w.r(ops[0])}}}{{1 - {w.t(b1, 4)}^{{{t}}}}} {rel} {w.r(res)}")
    ops, rel, res = w.holds(lambda v_: v_ / (1 - b2**t), [st1["v"]], st1["v_hat"], 4)
    lines.append(rf"\hat v_t = \frac{{{w.r(ops[0])}}}{{1 - {w.t(b2, 4)}^{{{t}}}}} {rel} {w.r(res)}")
    ops, rel, res = w.holds(
        lambda th, e, mh, vh: th - e * mh / (np.sqrt(vh) + eps), [theta, lr, st1["m_hat"], st1["v_hat"]], p.after, 3
    )
    lines.append(
        rf"{p.symbol} \leftarrow {ops[0]} - \frac{{{ops[1]}}}{{\sqrt{{{w.r(ops[3])}}} + \epsilon}}\,{w.r(ops[2])}"
        rf" {rel} {w.r(res)}"
    )
    return lines


def _worked_adamw(p: Param, hp, lr, t, w: Writer) -> list[str]:
    return _worked_adam(p, hp, lr, t, w, decoupled=True)


def _worked_adagrad(p: Param, hp, lr, t, w: Writer) -> list[str]:
    lines: list[str] = []
    g = _wd(p, hp, w, lines)
    G = p.after_state["sum"]
    ops, rel, res = w.holds(lambda G0, g_: G0 + g_ * g_, [p.before_state["sum"], g], G, 4)
    lines.append(rf"G_t = G_{{t-1}} + g^2 = {ops[0]} + {ops[1]}^2 {rel} {w.r(res)}")
    eta = lr / (1.0 + (t - 1) * hp["lr_decay"])
    if hp["lr_decay"]:
        lines.append(rf"\eta_t = \frac{{\eta}}{{1 + (t-1)\,\text{{lr\_decay}}}} = {w.t(eta, 4)}")
    eps = hp["eps"]
    ops, rel, res = w.holds(lambda th, e, G_, g_: th - e * g_ / (np.sqrt(G_) + eps), [p.theta, eta, G, g], p.after, 3)
    lines.append(
        rf"{p.symbol} \leftarrow {ops[0]} - \frac{{{ops[1]}}}{{\sqrt{{{w.r(ops[2])}}} + \epsilon}} \times {ops[3]}"
        rf" {rel} {w.r(res)}"
    )
    return lines


# Each optimizer's update for one parameter, with every number (the rules themselves: engine.optimizers).
WORKED_UPDATES: dict[str, Callable[..., list[str]]] = {
    "sgd": _worked_sgd,
    "momentum": _worked_momentum,
    "nesterov": _worked_nesterov,
    "rmsprop": _worked_rmsprop,
    "adam": _worked_adam,
    "adamw": _worked_adamw,
    "adagrad": _worked_adagrad,
}


def update(rec, net, optimizer, hp: dict, param: Param, w: Writer) -> Equations:
    """The optimizer's rule in symbols, then one parameter's update with every number."""
    t = rec.t + 1
    eq = Equations(list(optimizer.equations))
    eq.symbolic.append(
        rf"g = \frac{{\partial L}}{{\partial \theta}},\qquad \eta_t = {w.t(rec.learning_rate, 4)},\qquad t = {t}"
    )
    plain = optimizer.name == "sgd" and not hp.get("momentum") and not hp.get("weight_decay")
    if plain and all(n <= TERMS for n in net.layers) and rec.clip_before is None:
        eta = w.t(rec.learning_rate, 4)
        G = Params.from_flat(net, rec.grad)
        for l in range(1, net.depth + 1):
            before, after = rec.params_before, rec.params_after
            eq.sample.append(
                rf"W^{{{l}}} \leftarrow {w.mat(before.W[l - 1])} - {eta}\,{w.mat(G.W[l - 1])}"
                rf" = {w.r(w.mat(after.W[l - 1]))}"
            )
            eq.sample.append(
                rf"b^{{{l}}} \leftarrow {w.vec(before.b[l - 1])} - {eta}\,{w.vecf(G.b[l - 1])}"
                rf" = {w.r(w.vec(after.b[l - 1]))}"
            )
        eq.label = "Every parameter, with this step's numbers"
        return eq
    eq.sample = WORKED_UPDATES[optimizer.name](param, hp, rec.learning_rate, t, w)
    if rec.clip_before is not None:
        eq.notes.append(
            f"Clipping: ‖g‖ = {w.n.text(rec.clip_before, 4)} → {w.n.text(rec.clip_after, 4)} before the update."
        )
    eq.notes.append("The update uses the batch-averaged gradient g of the gradient phases.")
    return eq


def weight_chain(rec, net, l: int, j: int, k: int, s: int, w: Writer) -> list[str]:
    """dL/dw^l_jk for sample s: delta^l_j a^{l-1}_k, with delta^l_j expanded one layer up; then the batch mean."""
    bp = rec.backprop
    lay = bp.layers[l - 1]
    prev = bp.X[s] if l == 1 else bp.layers[l - 2].a[s]
    x = "x" if l == 1 else f"a^{{{l - 1}}}"
    d = lay.delta[s]
    lines = []
    ops, rel, res = w.holds(lambda a_, b_: a_ * b_, [d[j], prev[k]], d[j] * prev[k])
    lines.append(
        rf"\frac{{\partial \ell}}{{\partial w^{{{l}}}_{{{j + 1}{k + 1}}}}}"
        rf" = \delta^{{{l}}}_{{{j + 1}}}\,{x}_{{{k + 1}}} = {ops[0]} \times {ops[1]} {rel} {res}"
    )
    if l < net.depth:
        col, dn = rec.params_before.W[l][:, j], bp.layers[l].delta[s]
        up, sp = lay.upstream[s][j], lay.sigma_prime[s][j]
        if col.size <= TERMS:
            o, r_, rs = w.holds(lambda *v: sum(v[2 * i] * v[2 * i + 1] for i in range(col.size)), _pairs(col, dn), up)
            terms = " + ".join(rf"{o[2 * i]}\cdot {o[2 * i + 1]}" for i in range(col.size))
        else:
            terms, r_, rs = _sum_terms([w.f(v) for v in col], [w.f(v) for v in dn]), "=", w.t(up)
        lines.append(
            rf"\delta^{{{l}}}_{{{j + 1}}} = \Big(\sum_i w^{{{l + 1}}}_{{i{j + 1}}}\,\delta^{{{l + 1}}}_i\Big)"
            rf"\,\sigma'(z^{{{l}}}_{{{j + 1}}})"
        )
        o2, r2, rs2 = w.holds(lambda u, s_: u * s_, [up, sp], d[j])
        lines.append(rf"\quad = ({terms}) \times {o2[1]} {r_} {rs} \times {o2[1]} {r2} {rs2}")
    else:
        lines.append(rf"\delta^{{L}}_{{{j + 1}}} = {w.t(d[j])}\quad\text{{(the output error phase)}}")
    m = bp.X.shape[0]
    if m > 1:
        lines.append(
            rf"\frac{{\partial L}}{{\partial w^{{{l}}}_{{{j + 1}{k + 1}}}}} = \frac{{1}}{{{m}}}\sum_i "
            rf"\delta^{{{l}}}_{{{j + 1}(i)}}\,{x}_{{{k + 1}(i)}} = {w.t(lay.dW[j, k])}"
        )
    return lines


def bias_chain(rec, net, l: int, j: int, s: int, w: Writer) -> list[str]:
    """dL/db^l_j = delta^l_j for sample s, then the batch mean."""
    lay = rec.backprop.layers[l - 1]
    db = rf"\frac{{\partial \ell}}{{\partial b^{{{l}}}_{{{j + 1}}}}}"
    lines = [rf"{db} = \delta^{{{l}}}_{{{j + 1}}} = {w.t(lay.delta[s][j])}"]
    m = rec.backprop.X.shape[0]
    if m > 1:
        lines.append(
            rf"\frac{{\partial L}}{{\partial b^{{{l}}}_{{{j + 1}}}}}"
            rf" = \frac{{1}}{{{m}}}\sum_i \delta^{{{l}}}_{{{j + 1}(i)}} = {w.t(lay.db[j])}"
        )
    return lines


def phase_equations(phase: Phase, rec, net, optimizer, hp: dict, s: int, j: int, param: Param, w: Writer) -> Equations:
    """The equations of one phase for sample s and unit j (the update writes out `param`)."""
    l = phase.l
    if phase.kind == "z":
        return forward_z(rec, l, s, j, w)
    if phase.kind == "a":
        return forward_a(rec, net, l, s, j, w)
    if phase.kind == "loss":
        return loss_phase(rec, net, s, w)
    if phase.kind == "delta":
        return output_delta(rec, net, s, j, w) if l == net.depth else hidden_delta(rec, net, l, s, j, w)
    if phase.kind == "grad":
        return gradient(rec, net, l, s, j, w)
    return update(rec, net, optimizer, hp, param, w)
