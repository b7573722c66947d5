"""The /playground page, its fragments (settings form, diagnostics panels) and the JSON endpoints only it needs.

POST /api/v1/activations-grid is how the page trains: the state at step t is a pure function of (spec, t), so
"play" asks for t + chunk, the server resumes from the nearest cached checkpoint (the CheckpointCache of the API),
takes the chunk's steps and answers with the output and every hidden unit over a grid (the class and its
probability for 3+ classes; the chosen image and its 10 probabilities for digits), the per-step history of the
chunk (losses, ||delta^l||, ||dW^l||), this step's dropout mask for one sample, what a hidden layer sees (points and
grid lines in its activation space) and the numbers the page shows, formatted here. POST /api/v1/export downloads
the network at step t (JSON, .npz, a PyTorch snippet) or the data (CSV); POST /api/v1/csv-points reads a CSV.
"""

import base64
import math
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import parse_qs

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from engine import divergence
from engine import export as exporter
from engine.backprop import forward
from engine.csvdata import parse_points, to_csv
from engine.datasets import add_features
from engine.experiment import prepare, start, trainer_for
from engine.gradcheck import EPSILON_RANGE
from engine.hidden import grid_lines, hidden_view
from engine.network import Params
from engine.regularization import batch_indices, dropout_masks
from engine.spec import Experiment, experiment_from_dict

from .. import cost
from ..schemas import SpecRef
from ..serialize import json_response
from ..settings import get_settings
from ..templating import templates
from ..views import format as fmt
from ..views import playground as pv
from .api import ERRORS, cache, check_budget, check_limits, resolve

S = get_settings()
router = APIRouter()

MAX_T = 1_000_000  # any step is reachable; the work budget limits each request's cold computation
MAX_HISTORY = 20_000  # steps of history one answer may carry
CSV_MAX_CHARS = 100_000  # ~100 kB: a few thousand rows of x1,x2,label
CSV_MAX_ROWS = min(S.max_rows, pv.MAX_POINTS)
CSV_MAX_MESSAGES = 50
HIDDEN_MAX_POINTS = 600  # training points drawn in the hidden-layer view
CHECK_ROWS = 5  # inputs the PyTorch snippet checks itself on


# ---- the page ------------------------------------------------------------------------------------------------


def page_context(s: dict) -> dict:
    """The form, the summary and the run (spec, token, what the script needs to draw it) of these settings."""
    spec_d = pv.spec_dict(s)
    spec = check_limits(experiment_from_dict(spec_d))
    return {
        "form": pv.form(s),
        "summary": pv.summary(s),
        "run": {"spec": spec_d, "token": spec.to_token(), "spec_id": spec.id, "meta": pv.meta(s)},
        "limits": {"csv_max_bytes": CSV_MAX_CHARS, "csv_max_rows": CSV_MAX_ROWS, "epsilon_range": EPSILON_RANGE},
    }


@router.get("/playground", include_in_schema=False)
def playground(
    request: Request,
    spec: Annotated[str | None, Query(max_length=20_000)] = None,
    t: Annotated[int, Query(ge=0, le=MAX_T)] = 0,
    present: int = 0,
):
    """Build a network, train it, watch it learn; what the hidden layers see; diagnostics; exports."""
    notice = None
    s = pv.settings_from_query(request.query_params) or pv.sanitize({})
    if spec:
        try:
            s = pv.settings_from_spec(check_limits(Experiment.from_token(spec)))
        except ValueError as exc:
            notice = f"The link's spec could not be used ({exc}); these are the default settings."
    ctx = page_context(s)
    # a link whose spec cannot be used still opens the default settings, with the reason, under a 4xx status
    return templates.TemplateResponse(
        request,
        "playground.html",
        {"page": "playground", "present": bool(present), "t": t, "notice": notice, **ctx},
        status_code=422 if notice else 200,
    )


async def form_of(request: Request) -> dict[str, list[str]]:
    """An htmx form post (application/x-www-form-urlencoded) as {name: [values]}, read with the standard library."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=2000)


@router.post("/playground/settings", include_in_schema=False)
async def playground_settings(request: Request):
    """The settings form after a change or a button: the form again, the summary, and the run to start."""
    ctx = page_context(pv.read_form(await form_of(request)))
    return templates.TemplateResponse(request, "playground.html", ctx, block_names=["controls", "summary", "addmode"])


# ---- POST /api/v1/activations-grid ---------------------------------------------------------------------------


class GridRequest(SpecRef):
    """The network at step t over a grid of the input plane, and optionally the history of steps since..t."""

    t: Annotated[int, Field(ge=0, le=MAX_T, description="The step whose parameters theta_t are drawn.")] = 0
    since: (
        Annotated[int, Field(ge=0, le=MAX_T, description="Return per-step history for since..t (omit for none).")]
        | None
    ) = None
    resolution: Annotated[int, Field(ge=5, le=100, description="Grid points per axis for the output.")] = 50
    neuron_resolution: Annotated[int, Field(ge=4, le=50, description="Grid points per axis per hidden unit.")] = 20
    include_data: bool = Field(False, description="Also return the raw data points (train and test).")
    mode: Literal["eval", "train"] = Field(
        "eval",
        description="train: apply step t's dropout mask of sample mask_row to every grid point, scaled by 1/keep_prob.",
    )
    mask_row: Annotated[
        int, Field(ge=0, le=100_000, description="Which sample of step t's batch the dropout panel shows.")
    ] = 0
    encoding: Literal["json", "packed"] = Field(
        "json",
        description="json: grids as nested lists (rounded); packed: each grid as {lo, hi, shape, bits, "
        "b64}, little-endian unsigned codes c with value = lo + c (hi - lo) / (2^bits - 2) and "
        "the top code 2^bits - 1 meaning null (about 5x smaller; what the page uses).",
    )
    hidden_layer: Annotated[
        int,
        Field(
            ge=0,
            le=8,
            description="Also return what hidden layer l sees: the training points and the input grid lines in its "
            "activation space (first two principal components when wider than 2); 0 for none.",
        ),
    ] = 0
    sample: Annotated[
        int,
        Field(
            ge=0, le=100_000, description="Image data (digits): which test image (train if no test set) to classify."
        ),
    ] = 0

    def check_window(self):
        """Raised in the handler, not a validator, so the 422's loc names `since` (see app.errors)."""
        if self.since is not None:
            if self.since > self.t:
                raise ValueError("since: must be at most t")
            if self.t - self.since > MAX_HISTORY:
                raise ValueError(f"since: at most {MAX_HISTORY} steps of history per request")


def extent_of(points: np.ndarray) -> float:
    """Half-width of the square (or interval) drawn: the data's reach plus 10%, at least 1, rounded up to 0.1."""
    reach = float(np.max(np.abs(points))) if points.size else 1.0
    return math.ceil(max(1.0, 1.1 * reach) * 10) / 10


def advance(spec, prep, t: int, since: int | None, extra: cost.Estimate | None = None):
    """theta_t from the nearest cached checkpoint (stepping forward as needed), and the history since..t."""
    opt, spec_id = spec.optimizers[0], spec.id
    checkpoint = cache.nearest(spec_id, 0, t if since is None else since)
    if checkpoint is None:
        checkpoint = start(prep, 1)
    steps = t - checkpoint.t
    history = None
    if steps > 0:
        check_budget(prep, 0)
        cost.training(prep, steps, 1, "t").merge(extra or cost.Estimate()).enforce()  # the steps and the grids
        trainer = trainer_for(prep, [0], opt.batch_size, t, checkpoint)
        history = trainer.run(steps)[0]
        checkpoint = trainer.checkpoint()
        cache.put((spec_id, 0, t), checkpoint)
    return checkpoint, history


def history_payload(history, start_t: int, since: int, now: dict, depth: int) -> dict:
    """A run that began at start_t sliced to since..t: losses at theta_since..theta_t, norms of steps since..t-1."""
    if history is None:  # nothing was stepped: since == t, and the metrics at t are the whole history
        return {
            "since": since,
            "loss": [now["loss"]],
            "test_loss": [now["test_loss"]],
            "accuracy": [now["accuracy"]],
            "test_accuracy": [now["test_accuracy"]],
            "delta_norm": np.zeros((0, depth)),
            "grad_norm": np.zeros((0, depth)),
            "diverged_at": None,
        }
    i = since - start_t

    def tail(a):
        return [] if a is None else a[i:]

    return {
        "since": since,
        "loss": tail(history.loss),
        "test_loss": tail(history.test_loss),
        "accuracy": tail(history.accuracy),
        "test_accuracy": tail(history.test_accuracy),
        "delta_norm": tail(history.delta_norm),
        "grad_norm": tail(history.grad_norm),
        "diverged_at": None if history.diverged_at is None else start_t + history.diverged_at,
    }


def metrics(prep, params: Params, spec) -> dict:
    """The objective, its data and penalty parts, test loss and accuracy at theta_t (evaluation mode)."""
    net = prep.net
    sum_w2 = float(sum(np.sum(W * W) for W in params.W))
    sum_abs = float(sum(np.sum(np.abs(W)) for W in params.W))
    penalty = 0.5 * spec.l2 * sum_w2 + spec.l1 * sum_abs

    def evaluate(X, Y):
        if X.shape[0] == 0:
            return None, None
        zs, acts = forward(net, params, X)
        loss = float(np.mean(net.loss_fn.per_sample(zs[-1], acts[-1], Y)))
        return loss, accuracy_of(acts[-1], Y) if prep.classify else None

    with np.errstate(all="ignore"):
        data_loss, accuracy = evaluate(prep.X, prep.Y)
        test_loss, test_accuracy = evaluate(prep.X_test, prep.Y_test)
    return {
        "loss": data_loss + penalty,
        "data_loss": data_loss,
        "penalty": penalty,
        "sum_w2": sum_w2,
        "sum_abs_w": sum_abs,
        "test_loss": test_loss,
        "accuracy": accuracy,
        "test_accuracy": test_accuracy,
    }


def accuracy_of(a: np.ndarray, Y: np.ndarray) -> float:
    """The share of samples classified right: a > 0.5 against 0/1 targets, or the largest output against one-hot."""
    if Y.shape[1] > 1:
        return float(np.mean(np.argmax(a, axis=1) == np.argmax(Y, axis=1)))
    return float(np.mean((a > 0.5) == (Y > 0.5)))


def shown(prep, spec, t: int, now: dict) -> dict:
    """The numbers the page prints, formatted here (app.views.format): step, epoch, losses, accuracies."""
    m = int(prep.X.shape[0])
    per_epoch = math.ceil(m / (spec.optimizers[0].batch_size or m))
    has_test = prep.X_test.shape[0] > 0
    return {
        "step": str(t),
        "epoch": str(t // per_epoch),
        "loss": fmt.text(now["loss"], 4),
        "test_loss": fmt.text(now["test_loss"], 4) if has_test else "no test data",
        "accuracy": fmt.percent(now["accuracy"]) if now["accuracy"] is not None else fmt.DASH,
        "test_accuracy": fmt.percent(now["test_accuracy"])
        if has_test and now["test_accuracy"] is not None
        else fmt.DASH,
    }


def dropout_step(spec, prep, params: Params, t: int, row: int) -> dict | None:
    """Step t's keep-mask for one sample of its batch, and that sample's activations before and after 1/keep_prob."""
    if not spec.dropout:
        return None
    net, opt = prep.net, spec.optimizers[0]
    m = prep.X.shape[0]
    rows = batch_indices(spec.seed, t, m, m if opt.batch_size is None else opt.batch_size)
    r = row % len(rows)
    masks = dropout_masks(spec.seed, t, len(rows), net.layers[1:], spec.dropout)
    keep = [1.0 - p for p in spec.dropout]
    sample = [None if mask is None else mask[r : r + 1] for mask in masks]  # this sample's row of each mask
    with np.errstate(all="ignore"):
        zs, after = forward(net, params, prep.X[rows[r]][None, :], sample, keep)
    hidden = [
        {
            "p": spec.dropout[l],
            "keep_prob": keep[l],
            "mask": np.ones(n) if sample[l] is None else sample[l][0],
            "a_before": net.acts[l].f(zs[l])[0],
            "a_after": after[l][0],
        }
        for l, n in enumerate(net.layers[1:-1])
    ]
    return {
        "t": t,
        "batch_row": r,
        "batch_size": len(rows),
        "data_row": int(rows[r]),
        "x": prep.data.X_train[rows[r]],
        "layers": hidden,
        "masks": [layer["mask"] for layer in hidden],
    }


def pack(values: np.ndarray, bits: int) -> dict:
    """A grid as base64 codes between its min and max (see GridRequest.encoding); NaN gets the top code."""
    top = (1 << bits) - 1
    finite = np.isfinite(values)
    lo = float(values[finite].min()) if finite.any() else 0.0
    hi = float(values[finite].max()) if finite.any() else 0.0
    scale = (top - 1) / (hi - lo) if hi > lo else 0.0
    if finite.all():  # the usual case: no NaN to mask
        codes = np.rint((values - lo) * scale)
    else:
        codes = np.where(finite, np.rint((np.nan_to_num(values) - lo) * scale), top)
    dtype = "<u1" if bits == 8 else "<u2"
    return {
        "lo": lo,
        "hi": hi,
        "shape": list(values.shape),
        "bits": bits,
        "b64": base64.b64encode(codes.astype(dtype).tobytes()).decode(),
    }


def grid_forward(prep, spec, params: Params, raw: np.ndarray, masks=None) -> list[np.ndarray]:
    """sigma(z^l) of every layer over raw input points (rows), the hidden layers optionally thinned by one fixed
    dropout mask (training mode: every point sees the same sample's mask, kept units scaled by 1/keep_prob)."""
    X = add_features(raw, spec.data.features) if spec.data.features else raw
    keep = [1.0 - p for p in spec.dropout] if spec.dropout else None
    fixed = None if masks is None else [m[None, :] for m in masks] + [None]
    with np.errstate(all="ignore"):
        zs, acts = forward(prep.net, params, X, fixed, keep)
        if fixed is None:  # no mask: forward's activations are sigma(z^l) already
            return acts
        return [act.f(z) for act, z in zip(prep.net.acts, zs)]


def pack_units(layer: np.ndarray, shape: tuple) -> list[dict]:
    """`pack(values, 8)` of every unit (column) of a layer's grid at once: the same codes, fewer NumPy calls."""
    if not np.all(np.isfinite(layer)):
        return [pack(layer[:, j].reshape(shape), 8) for j in range(layer.shape[1])]
    lo, hi = layer.min(axis=0), layer.max(axis=0)
    span = hi - lo
    scale = np.divide(254.0, span, out=np.zeros_like(span), where=span > 0)
    codes = np.rint((layer - lo) * scale).astype("<u1")
    return [
        {
            "lo": float(lo[j]),
            "hi": float(hi[j]),
            "shape": list(shape),
            "bits": 8,
            "b64": base64.b64encode(np.ascontiguousarray(codes[:, j]).tobytes()).decode(),
        }
        for j in range(layer.shape[1])
    ]


@lru_cache(maxsize=64)
def plane(extent: float, res: int, n_raw: int) -> np.ndarray:
    """The grid points over [-extent, extent]^n_raw, row = y index, column = x index (Plotly's z); read-only."""
    u = np.linspace(-extent, extent, res)
    if n_raw == 1:
        points = u[:, None]
    else:
        gx, gy = np.meshgrid(u, u)
        points = np.column_stack([gx.ravel(), gy.ravel()])
    points.setflags(write=False)
    return points


def labels_of(prep, which: str) -> np.ndarray:
    """Class labels (classification) or target values (regression) of the train or test rows."""
    d = prep.data
    if d.info.task == "regression":
        return (d.Y_train if which == "train" else d.Y_test)[:, 0]
    return d.labels_train if which == "train" else d.labels_test


def hidden_payload(prep, spec, params: Params, layer: int, extent: float) -> dict:
    """What hidden layer `layer` sees: training points (at most HIDDEN_MAX_POINTS) and the input grid lines."""
    if layer >= prep.net.depth:
        raise ValueError(f"hidden_layer: this network has {prep.net.depth - 1} hidden layer(s)")
    raw = prep.data.X_train[:HIDDEN_MAX_POINTS]
    n_raw = raw.shape[1]
    lines = grid_lines(extent, n_raw) if n_raw <= 2 else None
    view = hidden_view(prep.net, params, raw, layer, spec.data.features, lines)
    variance = None
    if view.variance is not None:
        variance = (
            f"PC1 holds {fmt.percent(view.variance[0])} and PC2 {fmt.percent(view.variance[1])} of the variance "
            f"of the {view.width} activations"
        )
    return {
        "layer": view.layer,
        "width": view.width,
        "axes": view.axes,
        "variance": view.variance,
        "variance_text": variance,
        "points": np.round(view.points, 4),
        "labels": labels_of(prep, "train")[:HIDDEN_MAX_POINTS],
        "lines": np.round(view.lines, 4),
    }


def sample_payload(prep, spec, params: Params, index: int) -> dict:
    """Image data: one image (test set, else train), its label, the 10 output probabilities, hidden activations."""
    which = "test" if prep.X_test.shape[0] else "train"
    X = prep.X_test if which == "test" else prep.X
    i = index % X.shape[0]
    with np.errstate(all="ignore"):
        _, acts = forward(prep.net, params, X[i : i + 1])
    probs = acts[-1][0]
    return {
        "set": which,
        "index": i,
        "count": int(X.shape[0]),
        "image": X[i],
        "label": int(labels_of(prep, which)[i]),
        "predicted": int(np.argmax(probs)) if np.all(np.isfinite(probs)) else None,
        "probs": probs,
        "probs_text": [fmt.percent(p) for p in probs],
        "hidden": [a[0] for a in acts[:-1]],
    }


@router.post(
    "/api/v1/activations-grid",
    tags=["playground"],
    responses=ERRORS,
    summary="The output and every hidden unit over a grid at step t",
)
def activations_grid(body: GridRequest):
    """theta_t (resumed from a cached checkpoint), the net over a grid, metrics, history since..t, dropout mask."""
    body.check_window()
    spec = resolve(body)
    if len(spec.optimizers) != 1:
        raise ValueError("spec.optimizers: the playground trains one optimizer")
    prep = prepare(spec)
    n_raw = prep.data.X_train.shape[1]
    images = n_raw > 2
    if images and prep.data.info.task != "multiclass":
        raise ValueError("spec.data: the playground draws data with 1 or 2 inputs, or classifies images")
    multiclass = prep.net.layers[-1] > 1
    if multiclass and prep.data.info.task != "multiclass":
        raise ValueError("spec.network.layers: more than one output unit needs a multiclass task")
    grids = cost.activations_grid(
        prep,
        0,
        0 if body.since is None else body.t - body.since,
        0 if images else body.resolution,
        0 if images else body.neuron_resolution,
        body.encoding == "packed",
    )
    if body.hidden_layer:  # the hidden-layer view: the training points and the grid lines through the network
        points = min(HIDDEN_MAX_POINTS, prep.X.shape[0]) + (0 if images else 22 * 41)
        grids.add("hidden_layer", work=cost.forward_work(prep, points), response=points * 2 * cost.ROUNDED_BYTES)
    grids.enforce()
    checkpoint, history = advance(spec, prep, body.t, body.since, grids)
    start_t = body.t if history is None else body.t - (len(history.loss) - 1)
    params = Params.from_flat(prep.net, checkpoint.theta[0])
    raw_all = np.vstack([prep.data.X_train, prep.data.X_test])
    extent = 1.0 if images else extent_of(raw_all)

    def axis(res):
        return np.linspace(-extent, extent, res)

    def grid(res):
        return plane(extent, res, n_raw)

    now = metrics(prep, params, spec)
    drop = dropout_step(spec, prep, params, body.t, body.mask_row)
    masks = drop["masks"] if (drop and body.mode == "train") else None

    def shaped(values, res):
        return values.reshape(res, res) if n_raw == 2 else values

    if body.encoding == "packed":

        def encode(values, digits):
            return pack(values, 8 if digits == 3 else 16)
    else:

        def encode(values, digits):
            return np.round(values, digits)

    payload = {
        "t": body.t,
        "task": prep.data.info.task,
        "n_inputs": n_raw,
        "classes": int(prep.net.layers[-1]) if multiclass else (2 if prep.classify else 0),
        "m_train": int(prep.X.shape[0]),
        "m_test": int(prep.X_test.shape[0]),
        "batch_size": spec.optimizers[0].batch_size,
        "extent": extent,
        "encoding": body.encoding,
        "weights": list(params.W),
        "biases": list(params.b),
        "metrics": now,
        "text": shown(prep, spec, body.t, now),
        "dropout": drop,
        "mode": body.mode,
        # the engine's one divergence rule (engine/divergence.py), and the sentence the page shows for it
        "diverged": not bool(np.all(np.isfinite(checkpoint.theta)))
        or (checkpoint.start_loss is not None and bool(divergence.is_diverged(now["loss"], checkpoint.start_loss[0]))),
        "divergence_rule": divergence.describe(),
    }
    if images:
        payload.update(neurons=[], output=None, sample=sample_payload(prep, spec, params, body.sample))
    else:
        # one forward pass over both grids (the output's and the units'): fewer, larger NumPy calls
        big, small = grid(body.resolution), grid(body.neuron_resolution)
        both = grid_forward(prep, spec, params, np.vstack([big, small]), masks)
        neuron_acts = [a[len(big) :] for a in both]
        out = both[-1][: len(big)]
        payload.update(
            axis=np.round(axis(body.resolution), 4),
            neuron_axis=np.round(axis(body.neuron_resolution), 4),
            neurons=[
                pack_units(layer, (body.neuron_resolution,) * n_raw)
                if body.encoding == "packed"
                else [encode(shaped(layer[:, j], body.neuron_resolution), 3) for j in range(layer.shape[1])]
                for layer in neuron_acts[:-1]
            ],
        )
        if multiclass:  # the most probable class at each point and its probability
            with np.errstate(invalid="ignore"):
                best = np.where(np.all(np.isfinite(out), axis=1), np.argmax(out, axis=1), np.nan)
            payload["output"] = encode(shaped(np.max(out, axis=1), body.resolution), 4)
            payload["output_class"] = encode(shaped(best.astype(float), body.resolution), 3)
        else:
            payload["output"] = encode(shaped(out[:, 0], body.resolution), 4)
    if body.hidden_layer:
        payload["hidden"] = hidden_payload(prep, spec, params, body.hidden_layer, extent)
    if body.since is not None:
        payload["history"] = history_payload(history, start_t, body.since, now, prep.net.depth)
    if body.include_data and not images:
        payload["data"] = {
            "train": {"x": prep.data.X_train, "y": labels_of(prep, "train")},
            "test": {"x": prep.data.X_test, "y": labels_of(prep, "test")},
        }
    return json_response(payload)


# ---- POST /api/v1/export ---------------------------------------------------------------------------------------


class ExportRequest(SpecRef):
    """The network at step t, or the experiment's data, as a file."""

    t: Annotated[int, Field(ge=0, le=MAX_T, description="The step whose parameters theta_t are exported.")] = 0
    format: Literal["json", "npz", "torch", "csv"] = Field(
        "json",
        description="json: {layers, activations, loss, features, weights, biases} (W^l as n_l rows of n_{l-1}); "
        "npz: NumPy arrays W1..WL, b1..bL, layers, activations, loss, features (np.load, no pickle); torch: a "
        "runnable Python program rebuilding the network as torch.nn.Sequential (float64) that checks its outputs "
        "against ours to 1e-12; csv: the data, train rows then test rows, x..., label.",
    )


@router.post(
    "/api/v1/export",
    tags=["playground"],
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "description": "The file, as an attachment (Content-Disposition names it)",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "text/x-python": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
    summary="Download the network at step t or the data",
)
def export(body: ExportRequest):
    """The network's weights and biases at step t as JSON, .npz or a PyTorch snippet; or the data as CSV."""
    spec = resolve(body)
    prep = prepare(spec)
    name = f"backprop-viz-{spec.id}"
    if body.format == "csv":
        d = prep.data
        X = np.vstack([d.X_train, d.X_test])
        n_raw = X.shape[1]
        header = (
            (*(f"x{i + 1}" for i in range(n_raw)), "label")
            if n_raw <= 2
            else (*(f"p{i}" for i in range(n_raw)), "label")
        )
        text = to_csv(X, np.concatenate([labels_of(prep, "train"), labels_of(prep, "test")]), header)
        return _attachment(text.encode(), "text/csv; charset=utf-8", f"{name}-data.csv")
    check_budget(prep, 0)
    # the snippet writes every parameter in full (~25 bytes each); JSON and .npz are smaller
    answer = cost.Estimate().add("network.layers", response=prep.net.n_params * 25)
    answer.enforce()
    checkpoint, _ = advance(spec, prep, body.t, None, answer)
    params = Params.from_flat(prep.net, checkpoint.theta[0])
    if not np.all(np.isfinite(checkpoint.theta)):
        raise ValueError(f"t: the run has diverged by step {body.t}; its weights are not finite numbers")
    features = spec.data.features
    stem = f"{name}-t{body.t}"
    if body.format == "json":
        d = {**exporter.to_dict(prep.net, params, features), "t": body.t, "spec_id": spec.id}
        return _attachment(json_response(d).body, "application/json", f"{stem}.json")
    if body.format == "npz":
        return _attachment(exporter.to_npz(prep.net, params, features), "application/octet-stream", f"{stem}.npz")
    code = exporter.pytorch_snippet(prep.net, params, features, check_inputs=prep.data.X_train[:CHECK_ROWS])
    return _attachment(code.encode(), "text/x-python; charset=utf-8", f"{stem}.py")


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


# ---- POST /api/v1/csv-points ---------------------------------------------------------------------------------


class CsvRequest(BaseModel):
    """The text of a CSV file of x1,x2,label rows (a header line is optional; `,` `;` or tab separated)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    text: Annotated[
        str, Field(max_length=CSV_MAX_CHARS, description="The file's contents, at most 100 000 characters.")
    ]
    task: Literal["classification", "regression"] = Field(
        "classification",
        description="classification: label is a class 0..9 (2 classes: binary; more: softmax); regression: any number.",
    )


@router.post("/api/v1/csv-points", tags=["playground"], responses=ERRORS, summary="Validate a CSV of points")
def csv_points(body: CsvRequest):
    """x1,x2,label rows read by Python's csv module and checked one by one: the points, or a 422 per bad row."""
    got = parse_points(body.text, body.task, 2, CSV_MAX_ROWS, pv.POINT_LIMIT)
    if got.errors:
        listed = got.errors[:CSV_MAX_MESSAGES]
        detail = [{"loc": ["body", "text", number], "msg": msg, "type": "value_error"} for number, msg in listed]
        if len(got.errors) > len(listed):
            more = len(got.errors) - len(listed)
            detail.append(
                {"loc": ["body", "text"], "type": "value_error", "msg": f"text: {more} more bad rows not listed"}
            )
        return json_response({"detail": detail}, status_code=422)
    if not got.points:
        raise ValueError("text: no data rows (expected lines of x1,x2,label)")
    return json_response(
        {
            "points": got.points,
            "n": len(got.points),
            "header": got.header,
            "separator": {"\t": "tab", ";": ";", ",": ","}[got.separator],
            "classes": got.n_classes if body.task == "classification" else None,
        }
    )


# ---- POST /playground/panel: the diagnostics, rendered here ---------------------------------------------------


@router.post("/playground/panel", include_in_schema=False)
async def playground_panel(request: Request):
    """One diagnostics tab at step t (gradients, gradient check, dropout, L1/L2, comparisons) as an HTML fragment."""
    form = {k: v[0] for k, v in (await form_of(request)).items()}
    tab = str(form.get("tab", "gradients"))
    try:
        spec = check_limits(Experiment.from_token(str(form.get("token", ""))))
        t = _form_int(form, "t", 0, 0, MAX_T)
        ctx = panel_context(spec, tab, t, form)
        status = 200
    except ValueError as exc:
        ctx, status = {"tab": tab, "error": str(exc)}, 422
    return templates.TemplateResponse(request, "playground.html", ctx, block_name="panel", status_code=status)


def _form_int(form, key, default, low, high) -> int:
    try:
        value = int(form.get(key, default))
    except (TypeError, ValueError):
        raise ValueError(f"{key}: must be a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{key}: must be between {low} and {high}")
    return value


def panel_context(spec: Experiment, tab: str, t: int, form) -> dict:
    from ..views import playground_panels as panels

    prep = prepare(spec)
    check_budget(prep, 0)
    checkpoint, _ = advance(spec, prep, t, None, cost.Estimate())
    params = Params.from_flat(prep.net, checkpoint.theta[0])
    if tab == "gradients":
        return panels.gradients(prep, spec, params, t)
    if tab == "gradcheck":
        eps = 10.0 ** _form_int(form, "eps", -7, -10, -2)
        cost.gradcheck(prep, 0, min(prep.net.n_params, S.max_gradcheck_params)).enforce()
        return panels.gradcheck(prep, spec, params, t, eps)
    if tab == "dropout":
        row = _form_int(form, "row", 0, 0, 100_000)
        return panels.dropout(prep, spec, params, t, row, str(form.get("mode", "eval")))
    if tab == "regularization":
        return panels.regularization(prep, spec, params, t, metrics(prep, params, spec))
    if tab == "compare":
        return panels.compare(prep, spec, str(form.get("kind", "activation")), form)
    raise ValueError(f"tab: unknown {tab!r}")
