"""The /playground's diagnostics, computed and formatted here: every number and equation the panels show.

Each function returns the context of templates/playground.html's `panel` block for one tab at step t: LaTeX
lines (numbers through app.views.format, computations shown with `holds`), tables of text, and chart figures the
page draws with plots.drawFragments. Colours come from app.views.colors.
"""

from __future__ import annotations

import math

import numpy as np

from engine.backprop import backprop
from engine.experiment import prepare, train
from engine.gradcheck import THRESHOLD, gradient_check
from engine.network import Params
from engine.spec import experiment_from_dict

from ..settings import get_settings
from . import colors
from . import format as fmt

COMPARE_STEPS = 50
CLIP_STEPS = 150
DEEP_LAYERS, DEEP_UNITS = 8, 8


def _norms(prep, params: Params):
    """||delta^l|| = sqrt(mean_i ||delta^l_i||^2) per layer on the whole training set (as the trainer records)."""
    with np.errstate(all="ignore"):
        bp = backprop(prep.net, params, prep.X, prep.Y)
    return [float(np.sqrt(np.mean(np.sum(layer.delta**2, axis=1)))) for layer in bp.layers]


def _ratio(a: float, b: float) -> str:
    """a / b = c, shown so it holds at the digits shown."""
    if not (b and math.isfinite(a) and math.isfinite(b)):
        return rf"\frac{{{fmt.tex(a)}}}{{{fmt.tex(b)}}}"
    shown = fmt.holds(lambda x, y: x / y, [a, b], a / b)
    return rf"\frac{{{shown.operands[0]}}}{{{shown.operands[1]}}} {shown.relation} {shown.result}"


def gradients(prep, spec, params: Params, t: int) -> dict:
    """The backward recursion and this step's ||delta^l|| per layer, first against last."""
    norms = _norms(prep, params)
    L = len(norms)
    lines = [r"\delta^{[l]} = \left(W^{[l+1]}\right)^{T} \delta^{[l+1]} \odot \sigma'\!\left(z^{[l]}\right)"]
    parts = [rf"\|\delta^{{[{l + 1}]}}\| = {fmt.tex(v)}" for l, v in enumerate(norms)]
    for i in range(0, L, 3):
        lines.append((rf"\text{{step }} {t}:\; " if i == 0 else "") + r",\; ".join(parts[i : i + 3]))
    if L > 1:
        lines.append(rf"\frac{{\|\delta^{{[1]}}\|}}{{\|\delta^{{[{L}]}}\|}} = {_ratio(norms[0], norms[-1])}")
    return {"tab": "gradients", "lines": lines, "norms": norms}


def gradcheck(prep, spec, params: Params, t: int, epsilon: float) -> dict:
    """Backprop's gradient against central differences at theta_t on the whole training set (no dropout)."""
    limit = get_settings().max_gradcheck_params
    P = prep.net.n_params
    gc = gradient_check(prep.net, params, prep.X, prep.Y, spec.l2, spec.l1, epsilon, limit if limit < P else None)
    gap = float(np.linalg.norm(gc.numeric - gc.analytic))
    nn, na = float(np.linalg.norm(gc.numeric)), float(np.linalg.norm(gc.analytic))
    relation = "<" if gc.passed else r"\ge"
    verdict = (
        rf"\frac{{{fmt.tex(gap)}}}{{{fmt.tex(nn)} + {fmt.tex(na)}}} = {fmt.tex(gc.difference)} \;{relation}\; "
        rf"{fmt.tex(gc.threshold)}"
    )
    rows = [
        {
            "name": name,
            "analytic": fmt.text(a, 6),
            "numeric": fmt.text(n, 6),
            "relative": fmt.text(r, 2),
            "ok": bool(r < THRESHOLD),
        }
        for name, a, n, r in zip(gc.names, gc.analytic, gc.numeric, gc.relative_error)
    ]
    floor = 1e-17
    chart = {
        "data": [
            {
                "type": "bar",
                "x": list(gc.names),
                "y": [max(float(v), floor) if math.isfinite(v) else None for v in gc.relative_error],
                "marker": {"color": [colors.GOOD if r["ok"] else colors.POSITIVE for r in rows]},
                "name": "relative error",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": [gc.names[0], gc.names[-1]],
                "y": [THRESHOLD, THRESHOLD],
                "line": {"color": colors.INK, "dash": "dash", "width": 2},
                "name": "10⁻⁷",
            },
        ],
        "layout": {
            "showlegend": False,
            "yaxis": {"type": "log", "exponentformat": "power", "title": {"text": "|a − n| / (|a| + |n|)"}},
            "xaxis": {"tickangle": -60},
        },
        "kind": "bar",
    }
    return {
        "tab": "gradcheck",
        "passed": gc.passed,
        "head": f"{'✓ PASSED' if gc.passed else '✗ FAILED'}: step {t}, ε = {fmt.text(epsilon, 2)}, "
        f"{len(gc.names)} of {P} parameters",
        "lines": [
            r"\frac{\partial J}{\partial \theta_i} \approx \frac{J(\theta + \varepsilon e_i) - J(\theta - "
            r"\varepsilon e_i)}{2\varepsilon}, \qquad \text{difference} = \frac{\|g_{\text{num}} - "
            r"g_{\text{ana}}\|_2}{\|g_{\text{num}}\|_2 + \|g_{\text{ana}}\|_2} < 10^{-7} \text{ passes (note 003)}",
            verdict,
        ],
        "worst": gc.worst,
        "rows": rows[:200],
        "more_rows": max(0, len(rows) - 200),
        "chart": chart,
    }


def dropout(prep, spec, params: Params, t: int, row: int, mode: str) -> dict:
    """Step t's keep-mask of one sample of its batch and that sample's activations before and after 1/keep_prob."""
    from ..routes.playground_page import dropout_step

    d = dropout_step(spec, prep, params, t, row)
    base = [
        r"\text{mask} \sim \text{Bernoulli}(1-p), \qquad \tilde a^{[l]} = \frac{a^{[l]} \odot \text{mask}^{[l]}}{1-p}"
    ]
    if d is None:
        return {"tab": "dropout", "lines": base, "off": True, "hidden": prep.net.depth > 1}
    p, keep = d["layers"][0]["p"], d["layers"][0]["keep_prob"]
    lines = [
        rf"\text{{mask}} \sim \text{{Bernoulli}}(\text{{keep\_prob}}), \qquad \text{{keep\_prob}} = 1 - {fmt.tex(p)} = "
        rf"{fmt.tex(keep)}",
        rf"\tilde a^{{[l]}} = \frac{{a^{{[l]}} \odot \text{{mask}}^{{[l]}}}}{{{fmt.tex(keep)}}}",
    ]
    if mode == "train":
        x = ", ".join(fmt.tex(v) for v in d["x"][:4])
        lines.append(
            rf"\text{{training mode: step }} {t}\text{{'s mask for sample }} {d['batch_row'] + 1} \text{{ of }} "
            rf"{d['batch_size']} \text{{ (row }} {d['data_row']},\ x = ({x}))"
        )
    else:
        lines.append(r"\text{evaluation mode: no mask, no rescaling (inverted dropout keeps } \mathbb E[\tilde a] = a)")
    tables = [
        {
            "layer": l + 1,
            "keep": fmt.text(layer["keep_prob"]),
            "rows": [
                {"unit": j + 1, "a": fmt.text(a, 4), "mask": int(m), "after": fmt.text(b, 4)}
                for j, (a, m, b) in enumerate(zip(layer["a_before"], layer["mask"], layer["a_after"]))
            ],
        }
        for l, layer in enumerate(d["layers"])
    ]
    return {"tab": "dropout", "lines": lines, "tables": tables, "sample": f"{d['batch_row'] + 1} of {d['batch_size']}"}


def regularization(prep, spec, params: Params, t: int, m: dict) -> dict:
    """The objective at theta_t split into data loss and penalty, with the notes' lambda/m convention."""
    lam, lam1, mt = spec.l2, spec.l1, int(prep.X.shape[0])
    parts = fmt.holds(lambda a, b: a + b, [m["data_loss"], m["penalty"]], m["loss"], sig=4)
    lines = [
        r"\text{note 003: } L_{total} = L_{data} + \frac{\lambda}{2m} \sum_l \|W^{[l]}\|_F^2",
        r"\text{engine: } J = L_{data} + \frac{\lambda_2}{2}\sum_l \|W^{[l]}\|_F^2 + \lambda_1 \sum_l |W^{[l]}|_1",
        rf"\lambda_2 = {fmt.tex(lam)} \text{{ with }} m = {mt} \text{{ is the note's }} \lambda = {fmt.tex(lam * mt)}",
        rf"\text{{step }} {t}:\ J = {parts.operands[0]} + {parts.operands[1]} {parts.relation} {parts.result}",
        rf"\text{{penalty}} = \frac{{{fmt.tex(lam)}}}{{2}} \times {fmt.tex(m['sum_w2'])} + {fmt.tex(lam1)} \times "
        rf"{fmt.tex(m['sum_abs_w'])}",
    ]
    return {"tab": "regularization", "lines": lines}


def _deep_spec(spec, act: str, init: str, optimizer: dict, clip: float | None = None) -> dict:
    """This page's data on an 8-hidden-layer network of 8 units (SGD, no regularisation)."""
    d = spec.to_dict()
    n_in, n_out = spec.network.layers[0], spec.network.layers[-1]
    out_act, loss = spec.network.activations[-1], spec.network.loss
    out = {
        "network": {
            "layers": [n_in, *[DEEP_UNITS] * DEEP_LAYERS, n_out],
            "activations": [act] * DEEP_LAYERS + [out_act],
            "loss": loss,
            "init": init,
            "seed": spec.network.seed,
        },
        "data": {k: v for k, v in d["data"].items() if v is not None},
        "optimizer": optimizer,
        "seed": spec.seed,
    }
    if clip:
        out["clip_norm"] = clip
    return out


def _line(x, y, name, color, dash=None):
    clean = [None if v is None or not math.isfinite(v) or v <= 0 else float(v) for v in y]
    return {
        "x": list(x),
        "y": clean,
        "name": name,
        "mode": "lines+markers" if len(clean) < 20 else "lines",
        "line": {"color": color, "width": 3, **({"dash": dash} if dash else {})},
    }


def _log_chart(traces, x_title, y_title) -> dict:
    return {
        "data": traces,
        "layout": {
            "xaxis": {"title": {"text": x_title}},
            "yaxis": {"type": "log", "exponentformat": "power", "title": {"text": y_title}},
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        },
        "kind": "line",
    }


def _train(d: dict, steps: int):
    """Train a derived spec (a comparison's deep network), refused over the work budget like any request."""
    from .. import cost

    spec = experiment_from_dict(d)
    cost.training(prepare(spec), steps, 1, "kind").enforce()
    return train(spec, steps)[0]


def compare(prep, spec, kind: str, form) -> dict:
    """One-click comparisons on a deep network with this data: sigmoid vs ReLU, initialisers, clipping."""
    layers = list(range(1, DEEP_LAYERS + 2))
    sgd = {"name": "sgd", "lr": 0.1, "batch_size": None}
    if kind == "activation":
        init = str(form.get("init", "he"))
        runs = {a: _train(_deep_spec(spec, a, init, sgd), COMPARE_STEPS) for a in ("sigmoid", "relu")}
        chart = _log_chart(
            [_line(layers, runs[a].delta_norm[0], a, colors.PALETTE[i]) for i, a in enumerate(runs)],
            "layer l (1 = first hidden, 9 = output)",
            "‖δˡ‖ at step 0",
        )
        lines = [
            r"\sigma'_{\text{sigmoid}}(z) = \sigma(z)(1-\sigma(z)) \le \tfrac14 \;\Rightarrow\; "
            rf"8 \text{{ layers shrink }} \delta \text{{ by up to }} \left(\tfrac14\right)^8 = {fmt.tex(0.25**8)}",
            *[
                rf"\text{{{a}: }} \frac{{\|\delta^{{[1]}}\|}}{{\|\delta^{{[9]}}\|}} = "
                rf"{_ratio(float(r.delta_norm[0][0]), float(r.delta_norm[0][-1]))}"
                for a, r in runs.items()
            ],
        ]
        table = [(a, [fmt.text(v) for v in r.delta_norm[0]], fmt.text(r.loss[-1], 4)) for a, r in runs.items()]
        caption = f"‖δˡ‖ at step 0 (RMS over the training samples), init {init}; loss after {COMPARE_STEPS} steps"
    elif kind == "init":
        act = str(form.get("act", "tanh"))
        inits = ("zeros", "small", "xavier", "he", "large")
        runs = {i: _train(_deep_spec(spec, act, i, sgd), COMPARE_STEPS) for i in inits}
        chart = _log_chart(
            [_line(layers, runs[i].grad_norm[0], i, colors.PALETTE[k]) for k, i in enumerate(inits)],
            "layer l",
            "‖∂L/∂Wˡ‖ at step 0",
        )
        lines = [
            r"\text{zeros: } W = 0 \qquad \text{small: } 0.01\,\mathcal N(0,1) \qquad "
            r"\text{large: } 3\,\mathcal N(0,1)",
            rf"\text{{Xavier: }} U(-a, a),\ a = \sqrt{{\tfrac{{6}}{{8+8}}}} = {fmt.tex(math.sqrt(6 / 16))} \qquad "
            rf"\text{{He: sd}} = \sqrt{{\tfrac28}} = {fmt.tex(0.5)}",
        ]
        table = [(i, [fmt.text(v) for v in r.grad_norm[0]], fmt.text(r.loss[-1], 4)) for i, r in runs.items()]
        caption = f"‖∂L/∂Wˡ‖ at step 0, {act} hidden layers (zeros: 0 everywhere, off the log scale)"
    elif kind == "clip":
        try:
            c = float(form.get("c", 1.0))
        except ValueError:
            raise ValueError("c: the clipping norm must be a number") from None
        if not 0 < c <= 1e6:
            raise ValueError("c: the clipping norm must be greater than 0")
        opt = {"name": "sgd", "lr": 0.5, "batch_size": 10}
        off = _train(_deep_spec(spec, "relu", "he", opt), CLIP_STEPS)
        on = _train(_deep_spec(spec, "relu", "he", opt, c), CLIP_STEPS)
        steps = list(range(CLIP_STEPS + 1))
        chart = _log_chart(
            [
                _line(steps, off.loss, "clipping off", colors.PALETTE[4]),
                _line(steps, on.loss, f"clipping at c = {fmt.text(c)}", colors.PALETTE[2]),
            ],
            "step",
            "training loss",
        )

        def last(h):
            return "diverged" if h.diverged_at is not None else fmt.text(h.loss[-1], 4)

        lines = [
            rf"g \leftarrow g \cdot \min\!\left(1, \frac{{c}}{{\|g\|}}\right), \quad c = {fmt.tex(c)}",
            rf"\text{{on: }} \max_t \|g_t\| = {fmt.tex(float(np.nanmax(on.clip_before)))} \to "
            rf"{fmt.tex(float(np.nanmax(on.clip_after)))}",
        ]
        table = [("off", [], last(off)), ("on", [], last(on))]
        caption = f"ReLU, He, SGD η = 0.5, batch 10, {CLIP_STEPS} steps: final training loss"
    else:
        raise ValueError(f"kind: unknown comparison {kind!r} (activation, init, clip)")
    return {
        "tab": "compare",
        "kind": kind,
        "lines": lines,
        "chart": chart,
        "table": table,
        "caption": caption,
        "layers": layers if kind != "clip" else [],
    }


__all__ = ["compare", "dropout", "gradcheck", "gradients", "regularization"]
