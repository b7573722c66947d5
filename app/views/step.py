"""/step's view: what one phase of one step shows (title, equations, values, the SVG diagram, the note-002
check, chart data), built from the engine's step record; the template only lays it out.

The view state is the URL: ?spec=<token>&t=&phase=&sample=&unit=&T=&predict=&shown=&detail=&present=.
Big networks stay bounded: the diagram and tables show the first MAX_UNITS units of a layer ("… n more").
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from urllib.parse import urlencode

import numpy as np
from markupsafe import Markup, escape

from engine import equations as eqs
from engine.experiment import CheckpointCache, StepRecord, prepare, step_record, train
from engine.optimizers import OPTIMIZERS
from engine.spec import Experiment

from . import colors, format

MAX_UNITS = 10  # units of a layer drawn and tabulated
MAX_COLS = 8  # columns of a gradient matrix tabulated
MAX_PARAMS = 24  # rows of the update table
MAX_BARS = 400  # bars of a chart
SATURATED = 0.01  # sigma'(z) below this: the unit barely passes an error back

_checkpoints = CheckpointCache()


class _Records:
    """A small LRU of step records keyed by (spec, t): every phase of a step reads the same record."""

    def __init__(self, size: int = 64):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, spec: Experiment, t: int) -> StepRecord:
        key = (spec, t)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        rec = step_record(spec, t, 0, _checkpoints)
        with self.lock:
            self.items[key] = rec
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return rec


records = _Records()


@lru_cache(maxsize=16)
def loss_curve(spec: Experiment, T: int) -> tuple[float, ...]:
    """The training objective at theta_0 .. theta_T (whole training set): the loss chart."""
    return tuple(float(x) for x in train(spec, T)[0].loss)


@dataclass(frozen=True)
class View:
    """Everything the URL says about what /step shows."""

    token: str
    spec: Experiment
    t: int = 0
    phase: str = "z1"
    sample: int = 0  # 0-based
    unit: int = 0  # 0-based
    T: int = 100
    predict: bool = False
    shown: bool = False
    present: bool = False
    detail: str = ""  # "w<l>.<j>.<k>" or "b<l>.<j>" (1-based): that parameter's derivation
    note: str = ""

    @property
    def hidden(self) -> bool:
        return self.predict and not self.shown

    def query(self, **changes) -> dict:
        """The URL parameters of this view with `changes` applied (the names are View's fields)."""
        unknown = changes.keys() - self.__dataclass_fields__.keys()
        if unknown:
            raise TypeError(f"View has no field {sorted(unknown)}")
        v = self.__dict__ | changes  # a page has ~20 links: dataclasses.replace for each cost ~0.2 ms a request
        q = {"spec": v["token"], "t": v["t"], "phase": v["phase"], "sample": v["sample"] + 1}
        q |= {"unit": v["unit"] + 1, "T": v["T"]}
        if v["predict"]:
            q["predict"] = 1
            if v["shown"]:
                q["shown"] = 1
        if v["detail"]:
            q["detail"] = v["detail"]
        if v["note"]:
            q["note"] = v["note"]
        if v["present"]:
            q["present"] = 1
        return q

    @cached_property
    def _spec_param(self) -> str:
        """`spec=<token>`, quoted once: the token is the longest part of every link."""
        return urlencode({"spec": self.token})

    def url(self, **changes) -> str:
        q = self.query(**changes)
        token = q.pop("spec")
        spec = self._spec_param if token == self.token else urlencode({"spec": token})
        # numbers need no quoting; the strings (phase, detail, note) do
        return f"/step?{spec}&" + "&".join(f"{k}={v}" if type(v) is int else urlencode({k: v}) for k, v in q.items())


# ------------------------------------------------------------------ titles


def _sup(x) -> str:
    return f"<sup>{x}</sup>"


def title(phase: eqs.Phase, L: int, opt_name: str) -> Markup:
    l = phase.l
    where = "output layer" if l == L else f"layer {l}"
    text = {
        "z": f"Forward · {where} · weighted input z{_sup(l)}",
        "a": f"Forward · {where} · activation a{_sup(l)}",
        "loss": "Loss",
        "delta": f"Backward · output error δ{_sup('L')} (L = {L})"
        if l == L
        else f"Backward · error δ{_sup(l)} of layer {l}",
        "grad": f"Gradients · {where} · ∂L/∂W{_sup(l)}, ∂L/∂b{_sup(l)}",
        "update": f"Update · {escape(opt_name)} step: θ<sub>t</sub> → θ<sub>t+1</sub>",
    }[phase.kind]
    return Markup(text)


def short(phase: eqs.Phase) -> Markup:
    return Markup(
        {"z": f"z{_sup(phase.l)}", "a": f"a{_sup(phase.l)}", "loss": "L", "delta": f"δ{_sup(phase.l)}"}.get(
            phase.kind, f"∇{_sup(phase.l)}" if phase.kind == "grad" else "Δθ"
        )
    )


# ------------------------------------------------------------------ what is known at a phase


def _index(phases: list[eqs.Phase], kind: str, l: int) -> int:
    for i, p in enumerate(phases):
        if p.kind == kind and (p.l == l or kind in ("loss", "update")):
            return i
    return -1


# ------------------------------------------------------------------ the diagram


def _shown_units(n: int) -> list[int]:
    return list(range(n)) if n <= MAX_UNITS else list(range(MAX_UNITS - 1)) + [n - 1]


def diagram(view: View, rec: StepRecord, net, phases, i: int) -> Markup:
    """The network as SVG: nodes carry this phase's quantity, edges the weights (or dL/dW in gradient phases)."""
    phase = phases[i]
    bp = rec.backprop
    s = min(view.sample, bp.X.shape[0] - 1)
    sizes = net.layers
    L = net.depth
    shown = [_shown_units(n) for n in sizes]
    rows = max(len(u) for u in shown)
    # about the width it is drawn at (the projector's column is narrower): one viewBox unit is close to a CSS pixel,
    # so the 16-unit labels stay 16 px on screen
    VW = 400 if view.present else 480
    top, bottom = 58, 34
    spacing = 92 if rows <= 3 else 80 if rows <= 4 else max(34, 400 / rows)
    VH = int(top + bottom + spacing * rows)
    target_w, gap, margin = 56, 16, 8
    r = min(36.0, spacing * 0.4, (VW - 2 * margin - target_w - gap) / (L + 1) * 0.3)
    unit_w = (VW - 2 * margin - 2 * r - target_w - gap) / L
    xs = [margin + r + l * unit_w for l in range(L + 1)]

    def ys(n):
        return [top + (VH - top - bottom) / 2 + (k - (n - 1) / 2) * spacing for k in range(n)]

    backward = phase.kind in ("delta", "grad", "update")
    hide = view.hidden
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="14" markerHeight="14" '
        'markerUnits="userSpaceOnUse" '
        'orient="auto"><path d="M0,1 L9,5 L0,9 z" fill="#555"/></marker></defs>'
    ]
    # edges: weights, or in gradient phases dL/dW of the layers already computed (own scale)
    grad_known = [phase.kind in ("grad", "update") and _index(phases, "grad", l) <= i for l in range(1, L + 1)]
    weights = rec.params_after.W if phase.kind == "update" and not hide else rec.params_before.W
    wmax = max(float(np.max(np.abs(W))) for W in weights) or 1.0
    gmax = max((float(np.max(np.abs(bp.layers[l].dW))) for l in range(L) if grad_known[l]), default=0.0) or 1.0
    many = sum(len(shown[l]) * len(shown[l - 1]) for l in range(1, L + 1)) > 60
    hl = {"z": phase.l, "grad": phase.l, "delta": phase.l + 1 if phase.l < L else None}.get(phase.kind)
    for l in range(1, L + 1):
        y0, y1 = ys(len(shown[l - 1])), ys(len(shown[l]))
        on = hl == l or phase.kind == "update"
        for jj, j in enumerate(shown[l]):
            for kk, k in enumerate(shown[l - 1]):
                if grad_known[l - 1]:
                    v, scale = float(bp.layers[l - 1].dW[j, k]), gmax
                    if hide and phase.kind == "grad" and phase.l == l:
                        v = 0.0
                else:
                    v, scale = float(weights[l - 1][j, k]), wmax
                width = 1.2 + 7 * min(1.0, abs(v) / scale)
                colour = colors.POSITIVE if v > 0 else colors.NEGATIVE if v < 0 else "#888888"
                xa, ya, xb, yb = xs[l - 1] + r, y0[kk], xs[l] - r, y1[jj]
                if backward:  # the error flows right to left
                    xa, ya, xb, yb = xb, yb, xa, ya
                mx, my = (xa + xb) / 2, (ya + yb) / 2
                pts = f"{xa:.0f},{ya:.0f} {mx:.0f},{my:.0f} {xb:.0f},{yb:.0f}"
                cls = "edge" + (" hl" if on else "") + (" grad" if grad_known[l - 1] else "")
                marker = ' marker-mid="url(#arrow)"' if on else ""
                name = f"w{l}.{j + 1}.{k + 1}"
                if many:  # big networks: the same edge in fewer bytes (no test id, label or wide hit line)
                    parts.append(
                        f'<polyline class="{cls}" data-detail="{name}" points="{pts}" stroke="{colour}" '
                        f'stroke-width="{width:.1f}"{marker}/>'
                    )
                    continue
                parts.append(
                    f'<g class="{cls}" data-detail="{name}" data-testid="edge-{l}-{j + 1}-{k + 1}" tabindex="0" '
                    f'role="button" aria-label="weight w {l} {j + 1} {k + 1}">'
                    f'<polyline points="{pts}" stroke="{colour}" stroke-width="{width:.2f}"{marker}/>'
                    f'<polyline class="hit" points="{pts}"/></g>'
                )
    # output -> target
    yo = ys(len(shown[L]))
    xt = xs[L] + r + gap
    tgt_on = phase.kind == "loss" or (phase.kind == "delta" and phase.l == L)
    for yy in yo:
        parts.append(
            f'<line class="to-target{" hl" if tgt_on else ""}" x1="{xs[L] + r:.1f}" y1="{yy:.1f}" '
            f'x2="{xt:.1f}" y2="{yy:.1f}"/>'
        )
    # nodes
    scale_of = {
        "x": float(np.max(np.abs(bp.X[s]))) or 1.0,
        "z": max(float(np.max(np.abs(x.z[s]))) for x in bp.layers) or 1.0,
        "a": max(float(np.max(np.abs(x.a[s]))) for x in bp.layers) or 1.0,
        "delta": max(float(np.max(np.abs(x.delta[s]))) for x in bp.layers) or 1.0,
    }
    qty = {"x": "x", "z": "z", "a": "a", "delta": "δ", "a-dim": "a", "none": ""}
    font = max(13.0, min(r * 0.62, 20.0))
    for l in range(L + 1):
        if l == 0:
            kind, values, fresh = "x", bp.X[s], False
        else:
            lay = bp.layers[l - 1]
            if not backward:
                if _index(phases, "a", l) < i:
                    kind, fresh = "a", False
                elif phase.kind in ("z", "a") and phase.l == l:
                    kind, fresh = phase.kind, True
                else:
                    kind, fresh = "none", False
            elif _index(phases, "delta", l) <= i:
                kind, fresh = "delta", phase.kind == "delta" and phase.l == l
            else:
                kind, fresh = "a-dim", False
            values = {"z": lay.z, "a": lay.a, "delta": lay.delta, "a-dim": lay.a, "none": lay.a}[kind][s]
        yy = ys(len(shown[l]))
        parts.append(
            f'<text class="col-title" x="{xs[l]:.1f}" y="{top - 34:.1f}">'
            f"{'input' if l == 0 else 'output' if l == L else f'layer {l}'}</text>"
            + (f'<text class="col-qty" x="{xs[l]:.1f}" y="{top - 14:.1f}">{qty[kind]}</text>' if qty[kind] else "")
        )
        for jj, j in enumerate(shown[l]):
            v = float(values[j])
            secret = hide and fresh
            cls = "node"
            fill, ink = "#ffffff", colors.INK
            if kind == "none":
                cls += " unknown"
            elif kind == "a-dim":
                cls += " dim"
                fill = "#e8e8e8"
            elif not secret:
                sc = scale_of["a" if kind == "a-dim" else kind]
                fill = colors.diverging(v, sc)
                ink = "#ffffff" if abs(v) / sc > 0.6 else colors.INK
            if fresh:
                cls += " fresh"
            mark = ""
            if l >= 1 and kind in ("a", "delta", "a-dim") and net.activations[l - 1] in ("sigmoid", "tanh", "relu"):
                sp = float(bp.layers[l - 1].sigma_prime[s][j])
                if net.activations[l - 1] == "relu" and sp == 0.0:
                    cls, mark = cls + " dead", "dead"
                elif net.activations[l - 1] != "relu" and sp < SATURATED:
                    cls, mark = cls + " saturated", "σ′≈0"
            label = "" if kind == "none" else "?" if secret else format.text(v, 2 if r < 24 else 3)
            size = min(font, 3.3 * r / max(len(label), 1))
            if size < 16 and view.present and not secret:  # on a projector: two digits, or none (the table has it)
                label = format.text(v, 2)
                size = min(font, 3.3 * r / max(len(label), 1))
                if size < 16:
                    label, size = "", 16.0
            cx, cy = xs[l], yy[jj]
            detail = (
                f' data-detail="b{l}.{j + 1}" tabindex="0" role="button" aria-label="bias b {l} {j + 1}"' if l else ""
            )
            parts.append(
                f'<g class="{cls}" data-testid="node-{l}-{j + 1}"{detail}>'
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{fill}"/>'
                + (
                    f'<text x="{cx:.1f}" y="{cy:.1f}" fill="{ink}" font-size="{size:.1f}">{escape(label)}</text>'
                    if label and r >= 12
                    else ""
                )
                + (
                    f'<text class="mark" x="{cx:.1f}" y="{cy + r + 14:.1f}">{mark}</text>'
                    if mark and spacing >= 2 * r + 24
                    else ""
                )
                + "</g>"
            )
        if len(shown[l]) < sizes[l]:
            parts.append(f'<text class="more" x="{xs[l]:.1f}" y="{VH - 8:.1f}">+{sizes[l] - len(shown[l])}</text>')
    # targets y
    for jj, j in enumerate(shown[L]):
        cy = yo[jj]
        bh = min(spacing * 0.7, 40)
        parts.append(
            f'<g class="target{" hl" if tgt_on else ""}"><rect x="{xt:.1f}" y="{cy - bh / 2:.1f}" width="{target_w}" '
            f'height="{bh:.1f}" rx="5"/><text x="{xt + target_w / 2:.1f}" y="{cy:.1f}">'
            f"{escape(format.text(bp.Y[s][j], 3))}</text></g>"
        )
    parts.append(f'<text class="col-qty" x="{xt + target_w / 2:.1f}" y="{top - 14:.1f}">y</text>')
    arrow = "← backward: δ flows from the output to the input" if backward else "forward: input → output →"
    return Markup(
        f'<svg id="net" viewBox="0 0 {VW} {VH}" role="img" data-direction="{"backward" if backward else "forward"}" '
        f'aria-label="The network; {arrow}">' + "".join(parts) + "</svg>"
    ), arrow


# ------------------------------------------------------------------ tables


def _cell(v, hide=False) -> Markup:
    return Markup('<td class="num">?</td>') if hide else Markup(f'<td class="num">{escape(format.text(v))}</td>')


def values_table(view: View, rec: StepRecord, net, phase: eqs.Phase) -> dict:
    """Header and rows (bounded) of this phase's values for the chosen sample (and the batch mean)."""
    bp = rec.backprop
    s = min(view.sample, bp.X.shape[0] - 1)
    m = bp.X.shape[0]
    hide = view.hidden
    l = phase.l
    out: dict = {"caption": "", "head": [], "rows": [], "more": 0}
    if phase.kind in ("z", "a", "delta"):
        lay = bp.layers[l - 1]
        field = {"z": "z", "a": "a", "delta": "delta"}[phase.kind]
        sym = {"z": "z", "a": "a", "delta": "δ"}[phase.kind]
        extra = None
        if phase.kind == "a":
            extra = ("z", lay.z[s])
        elif phase.kind == "delta":
            if l == net.depth and net.loss_fn.requires:
                extra = ("a − y", lay.a[s] - bp.Y[s])
            else:
                extra = ("σ′(z)", lay.sigma_prime[s])
        values = getattr(lay, field)
        means = values.mean(axis=0) if m > 1 else None
        out["head"] = [""] + ([extra[0]] if extra else []) + [f"sample {s + 1}"] + (["batch mean"] if m > 1 else [])
        units = _shown_units(values.shape[1])
        for j in units:
            cells = [Markup(f'<th scope="row">{sym}{_sup(l)}<sub>{j + 1}</sub></th>')]
            if extra:
                cells.append(_cell(extra[1][j]))
            cells.append(
                Markup(f'<td class="num fresh-num" data-testid="num-{field}-{l}-{j + 1}">')
                + ("?" if hide else format.text(values[s, j]))
                + Markup("</td>")
            )
            if means is not None:
                cells.append(_cell(means[j], hide))
            out["rows"].append({"cells": cells, "focus": j == view.unit})
        out["more"] = values.shape[1] - len(units)
    elif phase.kind == "loss":
        out["head"] = ["", "value"]
        rows = [
            (f"ℓ of sample {s + 1}", bp.per_sample_loss[s], "num-loss-sample"),
            (f"L, batch of {m}", bp.loss, "num-loss"),
        ]
        if bp.penalty:
            rows.append(("of which penalty", bp.penalty, "num-penalty"))
        for name, v, tid in rows:
            out["rows"].append(
                {
                    "cells": [
                        Markup(f'<th scope="row">{escape(name)}</th>'),
                        Markup(f'<td class="num fresh-num" data-testid="{tid}">')
                        + ("?" if hide else format.text(v))
                        + Markup("</td>"),
                    ]
                }
            )
        out["rows"].append(
            {
                "cells": [
                    Markup('<th scope="row">target y</th>'),
                    Markup('<td class="num">')
                    + ", ".join(format.text(v) for v in bp.Y[s][:MAX_UNITS])
                    + Markup("</td>"),
                ]
            }
        )
    elif phase.kind == "grad":
        lay = bp.layers[l - 1]
        units, cols = _shown_units(lay.dW.shape[0]), list(range(min(MAX_COLS, lay.dW.shape[1])))
        out["caption"] = Markup(
            f"∂L/∂W{_sup(l)} (row j: unit of layer {l}; column k: {'input' if l == 1 else f'unit of layer {l - 1}'})"
        )
        out["head"] = [""] + [f"k={k + 1}" for k in cols] + (["…"] if len(cols) < lay.dW.shape[1] else []) + ["∂L/∂b"]
        for j in units:
            cells = [Markup(f'<th scope="row">j={j + 1}</th>')]
            for k in cols:
                cells.append(
                    Markup(f'<td class="num fresh-num" data-testid="num-dW-{l}-{j + 1}-{k + 1}">')
                    + ("?" if hide else format.text(lay.dW[j, k]))
                    + Markup("</td>")
                )
            if len(cols) < lay.dW.shape[1]:
                cells.append(Markup('<td class="num">…</td>'))
            cells.append(
                Markup(f'<td class="num fresh-num" data-testid="num-db-{l}-{j + 1}">')
                + ("?" if hide else format.text(lay.db[j]))
                + Markup("</td>")
            )
            out["rows"].append({"cells": cells, "focus": j == view.unit})
        out["more"] = lay.dW.shape[0] - len(units)
    return out


def parameters(net, limit: int | None = None) -> list[tuple[str, int, int, int | None]]:
    """(name, layer, j, k) of the first `limit` parameters in theta's flat order (Params.flat: each row j of
    [W^l | b^l] in turn, so w^l_j1 .. w^l_jn then b^l_j)."""

    def names():
        for l in range(1, net.depth + 1):
            n_out, n_in = net.layers[l], net.layers[l - 1]
            for j in range(n_out):
                for k in range(n_in):
                    yield (f"w{l}.{j + 1}.{k + 1}", l, j, k)
                yield (f"b{l}.{j + 1}", l, j, None)

    return list(itertools.islice(names(), limit))


def _flat_index(net, name: str) -> int:
    """Where parameter `name` ("w2.1.3", "b1.2") sits in the flat theta (Params.flat's order)."""
    kind, rest = name[0], name[1:]
    idx = [int(x) for x in rest.split(".")]
    offset = 0
    for l in range(1, idx[0]):
        offset += net.layers[l] * (net.layers[l - 1] + 1)
    n_in = net.layers[idx[0] - 1]
    row = offset + (idx[1] - 1) * (n_in + 1)  # row j of [W^l | b^l]
    return row + (idx[2] - 1 if kind == "w" else n_in)


def parse_param(net, name: str) -> tuple[str, int, int, int | None]:
    """A parameter name from the URL, checked against the network: ("w", l, j, k) / ("b", l, j, None), 0-based."""
    try:
        kind, idx = name[0], [int(x) for x in name[1:].split(".")]
        l = idx[0]
        if kind == "w" and len(idx) == 3 and 1 <= l <= net.depth:
            j, k = idx[1] - 1, idx[2] - 1
            if 0 <= j < net.layers[l] and 0 <= k < net.layers[l - 1]:
                return "w", l, j, k
        if kind == "b" and len(idx) == 2 and 1 <= l <= net.depth and 0 <= idx[1] - 1 < net.layers[l]:
            return "b", l, idx[1] - 1, None
    except (ValueError, IndexError):
        pass
    raise ValueError(f"detail: '{name[:30]}' is not a parameter of this network (e.g. w1.1.1 or b1.1)")


def param_symbol(name: str) -> str:
    kind, idx = name[0], name[1:].split(".")
    return f"w^{{{idx[0]}}}_{{{''.join(idx[1:])}}}" if kind == "w" else f"b^{{{idx[0]}}}_{{{idx[1]}}}"


def param_html(name: str) -> Markup:
    kind, idx = name[0], name[1:].split(".")
    sub = ",".join(idx[1:]) if any(len(x) > 1 for x in idx[1:]) else "".join(idx[1:])
    return Markup(f"{kind}<sup>{idx[0]}</sup><sub>{sub}</sub>")


def update_param(rec: StepRecord, net, name: str) -> eqs.Param:
    i = _flat_index(net, name)
    before, after = rec.params_before.flat(), rec.params_after.flat()
    return eqs.Param(
        param_symbol(name),
        float(before[i]),
        float(rec.grad[i]),
        float(after[i]),
        {k: float(v[i]) for k, v in rec.state_before.items()},
        {k: float(v[i]) for k, v in rec.state_after.items()},
    )


def update_table(view: View, rec: StepRecord, net) -> dict:
    """Every parameter (bounded): theta_t, g, each optimizer state before -> after, Delta theta, theta_{t+1}."""
    names = parameters(net, MAX_PARAMS)
    states = [st for st in rec.state_after if np.any(rec.state_after[st]) or np.any(rec.state_before[st])]
    before, after, upd = rec.params_before.flat(), rec.params_after.flat(), rec.update.flat()
    hide = view.hidden
    rows = []
    for i, (name, *_rest) in enumerate(names[:MAX_PARAMS]):
        cells = [_cell(before[i]), _cell(rec.grad[i])]
        for st in states:
            b, a = rec.state_before[st][i], rec.state_after[st][i]
            cells.append(
                Markup('<td class="num state"><span class="before">')
                + format.text(b)
                + Markup('</span><span class="after">')
                + ("?" if hide else format.text(a))
                + Markup("</span></td>")
            )
        cells.append(
            Markup(f'<td class="num fresh-num" data-testid="num-update-{name}">')
            + ("?" if hide else format.text(upd[i]))
            + Markup("</td>")
        )
        cells.append(
            Markup(f'<td class="num fresh-num" data-testid="num-after-{name}">')
            + ("?" if hide else format.text(after[i]))
            + Markup("</td>")
        )
        rows.append({"name": name, "label": param_html(name), "cells": cells})
    state_labels = {"velocity": "v", "s": "s", "m": "m", "v": "v", "m_hat": "m̂", "v_hat": "v̂", "sum": "G"}
    return {
        "head": ["θ<sub>t</sub>", "g"]
        + [f"{state_labels.get(st, st)} <span class='muted'>before / after</span>" for st in states]
        + ["Δθ", "θ<sub>t+1</sub>"],
        "rows": rows,
        "more": net.n_params - len(rows),
        "total": net.n_params,
    }


# ------------------------------------------------------------------ charts (data only: plots.js draws them)


def _sign_colours(values) -> list[str]:
    return [colors.POSITIVE if v > 0 else colors.NEGATIVE if v < 0 else "#888888" for v in values]


def _finite(values) -> list:
    return [float(v) if np.isfinite(v) else None for v in values]


def bars_chart(view: View, rec: StepRecord, net, phase: eqs.Phase) -> dict | None:
    """This phase's values as bars coloured by sign (the same meaning as every chart of every page)."""
    bp = rec.backprop
    s = min(view.sample, bp.X.shape[0] - 1)
    l = phase.l
    if view.hidden:
        return {
            "data": [],
            "layout": {"title": {"text": "Predict first: the values appear with the numbers"}},
            "kind": "bar",
        }
    if phase.kind in ("z", "a", "delta"):
        v = getattr(bp.layers[l - 1], {"z": "z", "a": "a", "delta": "delta"}[phase.kind])[s][:MAX_BARS]
        x = [str(j + 1) for j in range(v.size)]
        title = f"{ {'z': 'z', 'a': 'a', 'delta': 'δ'}[phase.kind] }<sup>{l}</sup> per unit, sample {s + 1}"
        xtitle = "unit"
    elif phase.kind == "loss":
        v = bp.per_sample_loss[:MAX_BARS]
        x = [str(i + 1) for i in range(v.size)]
        title, xtitle = "loss ℓ of each sample in the batch", "sample"
    elif phase.kind == "grad":
        lay = bp.layers[l - 1]
        v = np.concatenate([lay.dW.ravel(), lay.db])[:MAX_BARS]
        n_in = lay.dW.shape[1]
        x = [f"w{i // n_in + 1},{i % n_in + 1}" for i in range(lay.dW.size)] + [f"b{j + 1}" for j in range(lay.db.size)]
        x = x[:MAX_BARS]
        title, xtitle = f"∂L/∂W<sup>{l}</sup> and ∂L/∂b<sup>{l}</sup> (batch average)", ""
    else:
        v = rec.update.flat()[:MAX_BARS]
        x = [name for name, *_ in parameters(net, MAX_BARS)]
        title, xtitle = (
            "Δθ = θ<sub>t+1</sub> − θ<sub>t</sub>" + (f" (first {MAX_BARS})" if len(x) == MAX_BARS else ""),
            "",
        )
    return {
        "data": [{"type": "bar", "x": x, "y": _finite(v), "marker": {"color": _sign_colours(v)}, "name": ""}],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": xtitle}, "type": "category"},
            "showlegend": False,
        },
        "kind": "bar",
    }


def loss_chart(view: View, losses: tuple[float, ...]) -> dict:
    """The training objective at theta_0..theta_T, the current step marked."""
    ts = list(range(len(losses)))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": ts,
                "y": _finite(losses),
                "name": "L(θ_t)",
                "line": {"color": colors.PALETTE[0]},
            },
            {
                "type": "scatter",
                "mode": "markers",
                "x": [view.t],
                "y": _finite([losses[min(view.t, len(losses) - 1)]]),
                "name": f"t = {view.t}",
                "marker": {"size": 12, "color": colors.PALETTE[1]},
            },
        ],
        "layout": {
            "xaxis": {"title": {"text": "step t"}},
            "yaxis": {"title": {"text": "L (whole data)"}, "type": "log" if min(losses, default=1) > 0 else "linear"},
            "showlegend": False,
        },
        "kind": "line",
    }


# ------------------------------------------------------------------ note 002's printed numbers


def note_checks(view: View, rec: StepRecord, phase: eqs.Phase, checks: list[dict]) -> list[dict]:
    """Each number note 002 prints for this phase, against the engine's: agrees, rounds off, or slips."""
    bp = rec.backprop
    out = []
    for c in checks:
        if c["phase"] != phase.slug:
            continue
        head, *rest = c["path"].split(".")
        if head == "loss":
            actual = [bp.loss]
        elif head == "upstream":
            actual = list(bp.layers[int(rest[0])].upstream[0])
        else:
            v = getattr(bp.layers[int(rest[0])], rest[1])
            actual = list(np.ravel(v)) if rest[1] == "dW" else list(v[0])
        d = c["digits"]
        printed = c["printed"]

        def bracket(xs, digits):
            text = ", ".join(format.decimals(x, digits) for x in xs)
            return f"[{text}]" if len(xs) > 1 else text

        same = all(round(float(a), d) == p for a, p in zip(actual, printed))
        far = any(abs(p - a) > 10**-d for a, p in zip(actual, printed))
        out.append(
            {
                "label": c["label"],
                "printed": bracket(printed, d),
                "actual": bracket(actual, d),
                "exact": bracket(actual, d + 1),
                "digits": d,
                "state": "ok" if same else "slip" if far else "rounds",
                "why": c.get("why", "" if far else "the note truncates"),
                "remark": c.get("remark", ""),
            }
        )
    return out


# ------------------------------------------------------------------ one phase, everything the stage shows


def clamp_view(view: View, net, m: int) -> View:
    """Indices the URL gave, brought into range for this network and batch."""
    slugs = [p.slug for p in eqs.phases(net.depth)]
    phase = view.phase if view.phase in slugs else slugs[0]
    t = max(0, min(view.t, view.T))
    sample = max(0, min(view.sample, m - 1))
    return replace(view, phase=phase, t=t, sample=sample)


def stage(view: View, checks: list[dict], notes_spec_id: str) -> dict:
    """The context of the stage block: the phase's title, equations, table, diagram, check, charts, links."""
    prep = prepare(view.spec)
    net = prep.net
    rec = records.get(view.spec, view.t)
    view = clamp_view(view, net, rec.backprop.X.shape[0])
    phases = eqs.phases(net.depth)
    i = [p.slug for p in phases].index(view.phase)
    phase = phases[i]
    L = net.depth
    unit_n = net.layers[phase.l] if phase.kind not in ("update",) else net.layers[L]
    view = replace(view, unit=max(0, min(view.unit, unit_n - 1)))
    opt_spec = view.spec.optimizers[0]
    optimizer = OPTIMIZERS[opt_spec.name]
    hp = dict(opt_spec.hyper)
    w = eqs.Writer(format, view.hidden)
    focus = view.detail if view.detail.startswith("w") or view.detail.startswith("b") else ""
    try:
        focus_param = parse_param(net, focus) and focus if focus else f"w{L}.{view.unit + 1}.1"
    except ValueError:
        focus_param = f"w{L}.{view.unit + 1}.1"
    param = update_param(rec, net, focus_param)
    equations = eqs.phase_equations(phase, rec, net, optimizer, hp, view.sample, view.unit, param, w)
    svg, direction = diagram(view, rec, net, phases, i)

    # navigation: predict-first reveals before it moves on
    if view.hidden:
        nxt = view.url(shown=True, detail="")
    elif i + 1 < len(phases):
        nxt = view.url(phase=phases[i + 1].slug, shown=False, detail="")
    elif view.t < view.T:
        nxt = view.url(t=view.t + 1, phase=phases[0].slug, shown=False, detail="")
    else:
        nxt = None
    if i > 0:
        prv = view.url(phase=phases[i - 1].slug, shown=True, detail="")
    elif view.t > 0:
        prv = view.url(t=view.t - 1, phase=phases[-1].slug, shown=True, detail="")
    else:
        prv = None
    losses = loss_curve(view.spec, view.T)
    detail = None
    if view.detail:
        detail = detail_context(view, rec, net)
    is_notes = view.spec.id == notes_spec_id and view.t == 0
    m = rec.backprop.X.shape[0]
    return {
        "view": view,
        "rec": rec,
        "net": net,
        "m": m,
        "L": L,
        "phase": phase,
        "index": i,
        "phases": [
            {
                "slug": p.slug,
                "short": short(p),
                "title": title(p, L, opt_spec.name),
                "url": view.url(phase=p.slug, detail="", shown=False),
            }
            for p in phases
        ],
        "title": title(phase, L, opt_spec.name),
        "eq": equations,
        "sample_label": equations.label
        or (
            ("The sample (the whole batch)" if m == 1 else f"Sample {view.sample + 1} of the batch of {m}")
            if phase.kind != "update"
            else Markup("One parameter, ") + param_html(focus_param) + Markup(", with this step's numbers")
        ),
        "table": values_table(view, rec, net, phase) if phase.kind != "update" else None,
        "update_table": update_table(view, rec, net) if phase.kind == "update" else None,
        "svg": svg,
        "direction": direction,
        "checks": note_checks(view, rec, phase, checks) if is_notes else [],
        "bars": bars_chart(view, rec, net, phase),
        "loss": loss_chart(view, losses),
        "next_url": nxt,
        "prev_url": prv,
        "home_url": view.url(t=0, phase=phases[0].slug, shown=False, detail=""),
        "step_next_url": view.url(t=view.t + 1, detail="") if view.t < view.T else None,
        "step_prev_url": view.url(t=view.t - 1, detail="") if view.t > 0 else None,
        "predict_url": view.url(predict=not view.predict, shown=False),
        "detail": detail,
        "optimizer": optimizer,
        "hp": hp,
        "diverged": not bool(np.isfinite(rec.backprop.loss)),
    }


def detail_context(view: View, rec: StepRecord, net) -> dict:
    """One parameter: its chain-rule derivation for the chosen sample, and the form that edits it."""
    kind, l, j, k = parse_param(net, view.detail)
    w = eqs.Writer(format)
    s = view.sample
    if kind == "w":
        lines = eqs.weight_chain(rec, net, l, j, k, s, w)
        value, grad = rec.params_before.W[l - 1][j, k], rec.backprop.layers[l - 1].dW[j, k]
    else:
        lines = eqs.bias_chain(rec, net, l, j, s, w)
        value, grad = rec.params_before.b[l - 1][j], rec.backprop.layers[l - 1].db[j]
    return {
        "name": view.detail,
        "label": param_html(view.detail),
        "lines": lines,
        "value": float(value),
        "value_text": format.text(value, 6),
        "grad_text": format.text(grad, 4),
        "input_value": repr(float(value)),
        "close_url": view.url(detail=""),
        "unit": j + 1,
        # the same kind of phase, at the parameter's layer, with its unit j written out
        "unit_url": view.url(
            detail="",
            unit=j,
            phase=view.phase.rstrip("0123456789") + str(l) if view.phase[-1].isdigit() else view.phase,
        ),
    }


def edited_spec(spec: Experiment, t: int, name: str, value: float) -> tuple[dict, float]:
    """A new experiment at t = 0 whose theta_0 is this step's theta_t with one parameter changed (optimizer state
    starts from zero); also the old value."""
    prep = prepare(spec)
    kind, l, j, k = parse_param(prep.net, name)
    rec = records.get(spec, t)
    W = [m.copy() for m in rec.params_before.W]
    b = [v.copy() for v in rec.params_before.b]
    if kind == "w":
        old = float(W[l - 1][j, k])
        W[l - 1][j, k] = value
    else:
        old = float(b[l - 1][j])
        b[l - 1][j] = value
    d = spec.to_dict()
    d["network"]["weights"] = [m.tolist() for m in W]
    d["network"]["biases"] = [v.tolist() for v in b]
    d["optimizer"] = d.pop("optimizers")[0]
    return d, old
