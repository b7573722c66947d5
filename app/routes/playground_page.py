"""The /playground page, and the two JSON endpoints only it needs: the network over a grid at step t, and CSV points.

POST /api/v1/activations-grid is how the page trains: the state at step t is a pure function of (spec, t), so
"play" asks for t + chunk, the server resumes from the nearest cached checkpoint (the CheckpointCache of the API),
takes the chunk's steps and answers with the output and every hidden unit over a grid, the per-step history of the
chunk (losses, ||delta^l||, ||dW^l||) and this step's dropout mask for one sample.
"""

import base64
import math
import re
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.activations import ACTIVATIONS
from engine.backprop import forward
from engine.datasets import DATASETS, FEATURES, add_features
from engine.experiment import prepare, start, trainer_for
from engine.gradcheck import EPSILON_RANGE, THRESHOLD
from engine.initializers import INITIALIZERS
from engine.losses import LOSSES
from engine.network import Params
from engine.optimizers import OPTIMIZERS
from engine.regularization import batch_indices, dropout_masks
from engine.schedules import SCHEDULES

from ..schemas import SpecRef
from ..serialize import json_response
from ..settings import get_settings
from ..templating import templates
from .api import ERRORS, cache, check_budget, resolve

S = get_settings()
router = APIRouter()

PLAYGROUND_DATASETS = ("circles", "xor_cloud", "gaussians", "spiral", "moons", "plane", "sine")
MAX_T = 1_000_000  # any step is reachable; the work budget limits each request's cold computation
MAX_HISTORY = 20_000  # steps of history one answer may carry
CSV_MAX_CHARS = 100_000  # ~100 kB: a few thousand rows of x1,x2,label
CSV_MAX_ROWS = min(S.max_rows, 1000)
CSV_COORD_LIMIT = 10.0
CSV_TARGET_LIMIT = 1000.0
CSV_MAX_MESSAGES = 50


# ---- the page ------------------------------------------------------------------------------------------------


def catalog() -> dict:
    """What the page's controls may name: one source for the dropdowns, the validation and the URL state."""
    return {
        "datasets": [
            {
                "name": n,
                "task": DATASETS[n].task,
                "n_inputs": DATASETS[n].n_inputs,
                "default_n": DATASETS[n].default_n,
                "description": DATASETS[n].description,
            }
            for n in PLAYGROUND_DATASETS
        ],
        "features": list(FEATURES),
        "activations": [
            {"name": a.name, "latex": a.latex, "latex_grad": a.latex_grad}
            for a in ACTIVATIONS.values()
            if not a.output_only
        ],
        "losses": [
            {"name": l.name, "latex": l.latex, "requires": l.requires}
            for l in LOSSES.values()
            if l.requires != "softmax"
        ],
        "initializers": list(INITIALIZERS),
        "optimizers": [{"name": o.name, "defaults": o.defaults} for o in OPTIMIZERS.values()],
        "schedules": [{"name": s.name, "defaults": s.defaults, "equation": s.equation} for s in SCHEDULES.values()],
        "limits": {
            "max_hidden_layers": 8,
            "max_neurons": 8,
            "max_steps_per_request": S.max_steps,
            "csv_max_bytes": CSV_MAX_CHARS,
            "csv_max_rows": CSV_MAX_ROWS,
            "gradcheck_threshold": THRESHOLD,
            "epsilon_range": list(EPSILON_RANGE),
            "max_gradcheck_params": S.max_gradcheck_params,
        },
    }


@router.get("/playground", include_in_schema=False)
def playground(request: Request, present: int = 0):
    """Build a network, train it, watch it learn; vanishing gradients, gradient checking, dropout."""
    return templates.TemplateResponse(
        request, "playground.html", {"page": "playground", "present": bool(present), "catalog": catalog()}
    )


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


def advance(spec, prep, t: int, since: int | None):
    """theta_t from the nearest cached checkpoint (stepping forward as needed), and the history since..t."""
    opt, spec_id = spec.optimizers[0], spec.id
    checkpoint = cache.nearest(spec_id, 0, t if since is None else since)
    if checkpoint is None:
        checkpoint = start(prep, 1)
    steps = t - checkpoint.t
    history = None
    if steps > 0:
        check_budget(prep, steps, field="t")
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
        return loss, float(np.mean((acts[-1] > 0.5) == (Y > 0.5))) if prep.classify else None

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
        zs, _ = forward(prep.net, params, X, fixed, keep)
        return [act.f(z) for act, z in zip(prep.net.acts, zs)]


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
    if n_raw > 2:
        raise ValueError("spec.data: the playground draws data with 1 or 2 inputs")
    if prep.net.layers[-1] != 1:
        raise ValueError("spec.network.layers: the playground draws one output unit")
    checkpoint, history = advance(spec, prep, body.t, body.since)
    start_t = body.t if history is None else body.t - (len(history.loss) - 1)
    params = Params.from_flat(prep.net, checkpoint.theta[0])
    raw_all = np.vstack([prep.data.X_train, prep.data.X_test])
    extent = extent_of(raw_all)

    def axis(res):
        return np.linspace(-extent, extent, res)

    def grid(res):
        u = axis(res)
        if n_raw == 1:
            return u[:, None]
        gx, gy = np.meshgrid(u, u)  # row = y index, column = x index (Plotly's z)
        return np.column_stack([gx.ravel(), gy.ravel()])

    now = metrics(prep, params, spec)
    drop = dropout_step(spec, prep, params, body.t, body.mask_row)
    masks = drop["masks"] if (drop and body.mode == "train") else None

    def shaped(values, res):
        return values.reshape(res, res) if n_raw == 2 else values

    out_acts = grid_forward(prep, spec, params, grid(body.resolution), masks)
    neuron_acts = grid_forward(prep, spec, params, grid(body.neuron_resolution), masks)
    if body.encoding == "packed":

        def encode(values, digits):
            return pack(values, 8 if digits == 3 else 16)
    else:

        def encode(values, digits):
            return np.round(values, digits)

    neurons = [
        [encode(shaped(layer[:, j], body.neuron_resolution), 3) for j in range(layer.shape[1])]
        for layer in neuron_acts[:-1]
    ]
    payload = {
        "t": body.t,
        "task": prep.data.info.task,
        "n_inputs": n_raw,
        "m_train": int(prep.X.shape[0]),
        "m_test": int(prep.X_test.shape[0]),
        "batch_size": spec.optimizers[0].batch_size,
        "extent": extent,
        "axis": np.round(axis(body.resolution), 4),
        "neuron_axis": np.round(axis(body.neuron_resolution), 4),
        "output": encode(shaped(out_acts[-1][:, 0], body.resolution), 4),
        "encoding": body.encoding,
        "neurons": neurons,
        "weights": list(params.W),
        "biases": list(params.b),
        "metrics": now,
        "dropout": drop,
        "mode": body.mode,
        "diverged": not bool(np.all(np.isfinite(checkpoint.theta))),
    }
    if body.since is not None:
        payload["history"] = history_payload(history, start_t, body.since, now, prep.net.depth)
    if body.include_data:
        payload["data"] = {
            "train": {"x": prep.data.X_train, "y": prep.data.Y_train[:, 0]},
            "test": {"x": prep.data.X_test, "y": prep.data.Y_test[:, 0]},
        }
    return json_response(payload)


# ---- POST /api/v1/csv-points ---------------------------------------------------------------------------------

NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$")
HEADER = ("x1", "x2", "label")


class CsvRequest(BaseModel):
    """The text of a CSV file of x1,x2,label rows (a header line is optional)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    text: Annotated[
        str, Field(max_length=CSV_MAX_CHARS, description="The file's contents, at most 100 000 characters.")
    ]
    task: Literal["classification", "regression"] = Field(
        "classification", description="classification: label is 0 or 1; regression: label is the target value."
    )


def _shown(value: str) -> str:
    """A cell as quoted in a message: at most 24 characters (the page renders messages as text, never HTML)."""
    return repr(value if len(value) <= 24 else value[:21] + "...")


def parse_csv(text: str, task: str) -> tuple[list, list[tuple[int, str]]]:
    """Rows of (x1, x2, label) and a message per bad row (1-based line numbers); nothing is evaluated."""
    points, errors = [], []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if not points and not errors and tuple(c.lower().strip('"') for c in cells) == HEADER:
            continue
        if len(cells) != 3:
            errors.append((number, f"row {number}: expected 3 values x1,x2,label, found {len(cells)}"))
            continue
        row, problems = [], []
        for name, cell in zip(HEADER, cells):
            if not NUMBER.match(cell):
                problems.append(f"{name} {_shown(cell)} is not a number")
                continue
            value = float(cell)
            if not math.isfinite(value):
                problems.append(f"{name} {_shown(cell)} is not finite")
            elif name != "label" and abs(value) > CSV_COORD_LIMIT:
                problems.append(f"{name} {cell} is outside [-{CSV_COORD_LIMIT:g}, {CSV_COORD_LIMIT:g}]")
            elif name == "label" and task == "classification" and value not in (0.0, 1.0):
                problems.append(f"label {cell} must be 0 or 1")
            elif name == "label" and abs(value) > CSV_TARGET_LIMIT:
                problems.append(f"label {cell} is outside [-{CSV_TARGET_LIMIT:g}, {CSV_TARGET_LIMIT:g}]")
            row.append(value)
        if problems:
            errors.append((number, f"row {number}: " + "; ".join(problems)))
        else:
            points.append(row)
    return points, errors


@router.post("/api/v1/csv-points", tags=["playground"], responses=ERRORS, summary="Validate a CSV of points")
def csv_points(body: CsvRequest):
    """x1,x2,label rows checked one by one: the points, or a 422 with a message for every bad row."""
    points, errors = parse_csv(body.text, body.task)
    if len(points) + len(errors) > CSV_MAX_ROWS:
        raise ValueError(f"text: {len(points) + len(errors)} rows; at most {CSV_MAX_ROWS}")
    if errors:
        shown = errors[:CSV_MAX_MESSAGES]
        detail = [{"loc": ["body", "text", number], "msg": msg, "type": "value_error"} for number, msg in shown]
        if len(errors) > len(shown):
            detail.append(
                {
                    "loc": ["body", "text"],
                    "type": "value_error",
                    "msg": f"text: {len(errors) - len(shown)} more bad rows not listed",
                }
            )
        return json_response({"detail": detail}, status_code=422)
    if not points:
        raise ValueError("text: no data rows (expected lines of x1,x2,label)")
    return json_response({"points": points, "n": len(points)})
