"""JSON API v1: trace, train, race, step, gradcheck, surface, and the catalogues (datasets, presets, ...)."""

import numpy as np
from fastapi import APIRouter

from engine import surfaces
from engine.activations import ACTIVATIONS
from engine.datasets import DATASETS, FEATURES
from engine.experiment import CheckpointCache, prepare, step_record, train_runs
from engine.gradcheck import check_experiment
from engine.initializers import INITIALIZERS
from engine.losses import LOSSES
from engine.optimizers import OPTIMIZERS
from engine.presets import PRESETS
from engine.schedules import SCHEDULES
from engine.spec import Experiment, experiment_from_dict

from .. import cost, payloads
from ..errors import BudgetError
from ..schemas import (
    ErrorOut,
    GradcheckRequest,
    RaceRequest,
    SpecRef,
    StepRequest,
    SurfaceRequest,
    TraceRequest,
    TrainRequest,
)
from ..serialize import json_response
from ..settings import get_settings

ERRORS = {
    413: {"model": ErrorOut, "description": "Body too large"},
    422: {"model": ErrorOut, "description": "Invalid input; `detail[].loc` names the field"},
}
router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=ERRORS)
cache = CheckpointCache(get_settings().checkpoint_cache_bytes, get_settings().checkpoint_every)


def check_budget(prep, steps: int, contestants: int = 1, field: str = "steps"):
    """Refuse `steps` training steps of `contestants` over the work budget (app.cost), naming the field."""
    check_features(prep)
    cost.training(prep, steps, contestants, field).enforce()


def check_features(prep):
    """At most max_features inputs, counted after the playground's derived features are added."""
    if prep.net.layers[0] > get_settings().max_features:
        raise BudgetError(f"network.layers: at most {get_settings().max_features} inputs")


def check_limits(spec: Experiment) -> Experiment:
    """The server's size limits on a spec, whichever way it came (a URL token skips the pydantic schema)."""
    s = get_settings()
    layers = spec.network.layers
    if max(layers[1:]) > s.max_layer_width:
        raise BudgetError(f"network.layers: at most {s.max_layer_width} units per layer")
    if len(layers) - 2 > s.max_hidden_layers:
        raise BudgetError(f"network.layers: at most {s.max_hidden_layers} hidden layers")
    if layers[0] > s.max_features:
        raise BudgetError(f"network.layers: at most {s.max_features} inputs")
    if spec.data.n is not None and spec.data.n > s.max_rows:
        raise BudgetError(f"data.n: at most {s.max_rows} rows")
    if spec.data.X is not None and len(spec.data.X) > s.max_rows:
        raise BudgetError(f"data.X: at most {s.max_rows} rows")
    if len(spec.optimizers) > s.max_contestants:
        raise BudgetError(f"optimizers: at most {s.max_contestants} contestants")
    return spec


def resolve(ref: SpecRef) -> Experiment:
    """The Experiment of an inline spec or a URL token, with limits and the contestant index checked."""
    spec = Experiment.from_token(ref.spec_token) if ref.spec_token else experiment_from_dict(ref.spec.engine_dict())
    check_limits(spec)
    if ref.contestant >= len(spec.optimizers):
        raise ValueError(f"contestant: this spec has {len(spec.optimizers)} optimizer(s)")
    return spec


def ids(spec: Experiment) -> dict:
    return {"spec_id": spec.id, "spec_token": spec.to_token()}


def run_payload(spec: Experiment, steps: int, evaluate_every: int = 1) -> dict:
    prep = prepare(spec)
    check_features(prep)
    cost.train_or_race(prep, steps, len(spec.optimizers)).enforce()
    runs = train_runs(spec, steps, evaluate_every=evaluate_every)
    return {
        "runs": [
            payloads.history_payload(spec, prep, k, r.history, r.theta, evaluate_every) for k, r in enumerate(runs)
        ],
        "steps": steps,
        **ids(spec),
    }


@router.post("/trace", summary="One forward and backward pass at theta_0")
def trace(body: TraceRequest):
    """z, a, delta (one row per sample), dW and db for every layer, and the loss, at the initial weights."""
    spec = experiment_from_dict(
        {"network": body.network.model_dump(exclude_none=True), "data": body.data.model_dump(exclude_none=True)}
    )
    prep = prepare(spec)
    cost.trace(prep).enforce()
    return json_response(payloads.trace_payload(prep))


@router.post("/train", summary="Train one optimizer")
def train_one(body: TrainRequest):
    """The training objective at theta_0 .. theta_steps, metrics per step, final weights, divergence."""
    spec = experiment_from_dict(body.engine_dict())
    result = run_payload(spec, body.steps, body.evaluate_every)
    run = result.pop("runs")[0]
    return json_response({**run, **result})


@router.post("/race", summary="Race 2 to 8 optimizers")
def race(body: RaceRequest):
    """Every contestant starts from the same theta_0 and sees the same batch order; one train result each."""
    spec = experiment_from_dict(body.engine_dict())
    return json_response(run_payload(spec, body.steps, body.evaluate_every))


@router.post("/step", summary="The full record of step t")
def step(body: StepRequest):
    """Forward, loss, deltas, gradients, optimizer state and update of step t (theta_t -> theta_{t+1})."""
    spec = resolve(body)
    prep = prepare(spec)
    batch = spec.optimizers[body.contestant].batch_size or prep.X.shape[0]
    shown = None if body.samples is None else len(body.samples)
    cost.step_record(prep, body.t, min(batch, prep.X.shape[0]), shown).enforce()
    record = step_record(spec, body.t, body.contestant, cache)
    payload = payloads.select_step(payloads.step_payload(spec, prep, body.contestant, record), body.samples, body.parts)
    return json_response({**payload, **ids(spec)})


@router.post("/gradcheck", summary="Gradient check by central differences")
def gradcheck(body: GradcheckRequest):
    """Analytic vs numeric gradient per parameter at theta_t, the relative errors, and pass/fail at 1e-7."""
    spec = resolve(body)
    prep = prepare(spec)
    cost.gradcheck(prep, body.t, min(body.max_params or prep.net.n_params, prep.net.n_params)).enforce()
    if body.max_params is None and prep.net.n_params > get_settings().max_gradcheck_params:
        raise BudgetError(
            f"max_params: this network has {prep.net.n_params} parameters; check at most "
            f"{get_settings().max_gradcheck_params} (a seeded sample)"
        )
    result = check_experiment(
        spec, t=body.t, k=body.contestant, epsilon=body.epsilon, max_params=body.max_params, seed=body.seed
    )
    return json_response(
        {
            "t": body.t,
            "epsilon": result.epsilon,
            "threshold": result.threshold,
            "passed": result.passed,
            "difference": result.difference,
            "index": result.index,
            "names": result.names,
            "analytic": result.analytic,
            "numeric": result.numeric,
            "relative_error": result.relative_error,
            **ids(spec),
        }
    )


@router.post("/surface", summary="Loss surface and optimizer paths")
def surface(body: SurfaceRequest):
    """The loss over a grid of two parameters or of a filter-normalised 2-D slice, and each contestant's path."""
    spec = resolve(body)
    prep = prepare(spec)
    cost.surface(prep, body.steps, len(spec.optimizers), body.resolution).enforce()
    if body.steps * len(spec.optimizers) * prep.net.n_params > 5_000_000:
        raise BudgetError(
            "steps: paths keep theta at every step; at most 5e6 values (steps x contestants x "
            f"parameters), this needs {body.steps * len(spec.optimizers) * prep.net.n_params:.3g}"
        )
    P = prep.net.n_params
    runs = train_runs(spec, body.steps, keep_path=True) if body.steps else []
    theta0 = prep.params0.flat()
    if body.kind == "parameters":
        if body.i >= P or body.j >= P or body.i == body.j:
            raise ValueError(f"i: i and j must be two different parameter indices below {P}")
        center = theta0
        points = [center[[body.i, body.j]]] + [r.history.path[:, [body.i, body.j]] for r in runs]
        span = body.span
        if span is None:
            reach = max((np.nanmax(np.abs(p - center[[body.i, body.j]]), initial=0) for p in points[1:]), default=0)
            span = float(max(1.0, 1.2 * reach))
        grid = surfaces.parameter_grid(
            prep.net, prep.params0, prep.X, prep.Y, body.i, body.j, span, span, body.resolution, spec.l2, spec.l1
        )
        paths = [r.history.path[:, [body.i, body.j]] for r in runs]
        axes = [grid.u, grid.v]
    elif body.kind == "pca":
        # the plane the paths live in, through theta_0, fitted to the runs that did not diverge: the same
        # landscape /race draws (engine.surfaces.path_landscape)
        if not runs:
            raise ValueError("steps: the plane of the paths needs at least one step")
        alive = [k for k, r in enumerate(runs) if r.history.diverged_at is None] or None
        histories = [r.history.path for r in runs]
        grid, plane, paths = surfaces.path_landscape(
            prep.net, theta0, histories, prep.X, prep.Y, body.resolution, spec.l2, spec.l1, body.seed, alive
        )
        span = float(max(np.max(np.abs(grid.u)), np.max(np.abs(grid.v))))
        axes = [grid.u, grid.v]
    else:
        d1, d2 = surfaces.random_directions(prep.net, prep.params0, body.seed)
        center = theta0  # every kind is centred on theta_0, like /race's landscape
        paths = [surfaces.project(r.history.path, center, d1, d2) for r in runs]
        span = body.span
        if span is None:
            reach = max((np.nanmax(np.abs(p), initial=0) for p in paths), default=0)
            span = float(max(1.0, 1.2 * reach))
        grid = surfaces.slice_grid(prep.net, center, d1, d2, prep.X, prep.Y, span, body.resolution, spec.l2, spec.l1)
        axes = [grid.u, grid.v]
    names = surfaces.parameter_names(prep.net)
    return json_response(
        {
            "kind": body.kind,
            "u": axes[0],
            "v": axes[1],
            "loss": grid.loss,
            "span": span,
            "axes": [names[body.i], names[body.j]]
            if body.kind == "parameters"
            else (["PC 1", "PC 2"] if body.kind == "pca" else ["direction 1", "direction 2"]),
            "paths": paths,
            **({"explained": list(plane.explained)} if body.kind == "pca" else {}),
            "steps": body.steps,
            **ids(spec),
        }
    )


@router.post("/spec", summary="Canonical form, id and URL token of a spec")
def canonical(body: SpecRef):
    """Fill in every default and hash the result: equal specs, equal ids, on any worker."""
    spec = resolve(body)
    return json_response({"spec": spec.to_dict(), **ids(spec)})


@router.get("/datasets", summary="The datasets")
def datasets():
    """Every dataset's name, task, sizes and description."""
    return json_response({"datasets": [vars(info) for info in DATASETS.values()], "features": list(FEATURES)})


@router.get("/presets", summary="Ready experiments")
def presets():
    """The notes' worked example, XOR, y = 2x and a spiral classifier, as specs."""
    return json_response(
        {"presets": [{**p, "spec_token": experiment_from_dict(p["spec"]).to_token()} for p in PRESETS]}
    )


@router.get("/catalog", summary="Activations, losses, initialisers, optimizers, schedules")
def catalog():
    """Names, defaults and equations of everything a spec can name (drives the pages' dropdowns)."""
    return json_response(
        {
            "activations": [
                {"name": a.name, "latex": a.latex, "latex_grad": a.latex_grad, "output_only": a.output_only}
                for a in ACTIVATIONS.values()
            ],
            "losses": [
                {"name": l.name, "latex": l.latex, "latex_delta": l.latex_delta, "requires": l.requires}
                for l in LOSSES.values()
            ],
            "initializers": list(INITIALIZERS),
            "optimizers": [
                {
                    "name": o.name,
                    "defaults": o.defaults,
                    "equations": list(o.equations),
                    "matches": o.matches,
                    "state": list(o.state_names),
                }
                for o in OPTIMIZERS.values()
            ],
            "schedules": [{"name": s.name, "defaults": s.defaults, "equation": s.equation} for s in SCHEDULES.values()],
        }
    )
