"""The race's JSON endpoints; the /race page itself is app/routes/race_view.py (included below).

POST /api/v1/race/stream    a network race as NDJSON events while it trains: start, chunk..., surface, boundary, done
POST /api/v1/function-race  a race on a 2-D test function of engine.problems, with its contour
"""

import dataclasses
import logging
import math
import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import Field

from engine import experiment, problems, surfaces
from engine.gradcheck import parameter_names
from engine.optimizers import OPTIMIZERS, Optimizer
from engine.spec import Experiment, experiment_from_dict, optimizer_from_dict

from .. import cost
from ..schemas import OptimizerIn, RaceRequest, Steps, Strict
from ..serialize import dumps, json_response
from ..settings import get_settings
from . import race_view
from .api import ERRORS, check_features

log = logging.getLogger(__name__)
S = get_settings()
router = APIRouter()


# ---- shapes shared by the endpoints ----------------------------------------------------------------------------
def _contestant_dict(opt) -> dict:
    """An OptimizerSpec as the page edits it (and the API reads it back): every hyperparameter spelled out."""
    return {
        "name": opt.name,
        **dict(opt.hyper),
        "batch_size": opt.batch_size,
        "schedule": {"name": opt.schedule.name, **dict(opt.schedule.params)},
    }


# ---- POST /api/v1/function-race ------------------------------------------------------------------------------------
def _optimizer_dicts(optimizers: list[OptimizerIn], allow_batch: bool) -> list[dict]:
    """OptimizerIn models as the engine's plain dicts (unset fields left to the engine's defaults)."""
    out = []
    for k, o in enumerate(optimizers):
        d = o.model_dump(exclude_unset=True)
        if not allow_batch and d.get("batch_size") is not None:
            raise ValueError(f"optimizers.{k}.batch_size: a 2-D function has no data, so no batches; leave it out")
        d = {key: v for key, v in d.items() if v is not None and key not in ("batch_size", "label")}
        if d.get("schedule"):
            d["schedule"] = {key: v for key, v in d["schedule"].items() if v is not None}
        out.append(d)
    return out


Coordinate = Annotated[float, Field(ge=-1000, le=1000)]


class FunctionRaceRequest(Strict):
    """2 to 8 optimizers from the same start on a 2-D test function f(x, y) with an analytic gradient."""

    problem: Literal[tuple(problems.PROBLEMS)] = Field("rosenbrock", description="Which function.")
    optimizers: Annotated[list[OptimizerIn], Field(min_length=2, max_length=S.max_contestants)]
    steps: Steps
    start: Annotated[list[Coordinate], Field(min_length=2, max_length=2)] | None = Field(
        None, description="theta_0 = (x, y); default: the problem's own start."
    )
    resolution: Annotated[int, Field(ge=11, le=201)] = Field(121, description="Contour grid points per axis.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "problem": "rosenbrock",
                    "steps": 500,
                    "optimizers": [
                        {"name": "sgd", "lr": 0.001},
                        {"name": "momentum", "lr": 0.01},
                        {"name": "rmsprop", "lr": 0.01},
                        {"name": "adam", "lr": 0.05},
                    ],
                }
            ]
        }
    }


def _problem_payload(p: problems.Problem, start) -> dict:
    return {
        "name": p.name,
        "title": p.title,
        "latex": p.latex,
        "latex_grad": list(p.latex_grad),
        "description": p.description,
        "x_range": list(p.x_range),
        "y_range": list(p.y_range),
        "minima": [list(m) for m in p.minima],
        "saddles": [list(s) for s in p.saddles],
        "log_contour": p.log_contour,
        "start": list(start),
    }


@router.post("/api/v1/function-race", tags=["api v1"], responses=ERRORS, summary="Race optimizers on a 2-D function")
def function_race(body: FunctionRaceRequest):
    """f(theta_t), theta_t, lr_t, gradient, update and optimizer state per step for each contestant, and f on a grid."""
    p = problems.get_problem(body.problem)
    start = p.start if body.start is None else tuple(body.start)
    dicts = _optimizer_dicts(body.optimizers, allow_batch=False)
    specs = [optimizer_from_dict(d) for d in dicts]
    cost.function_race(body.steps, [len(OPTIMIZERS[o.name].state_names) for o in specs], body.resolution).enforce()
    started = time.perf_counter()
    runs = problems.FunctionTrainer(p, [experiment.contestant(o, body.steps) for o in specs], start).run(body.steps)
    x, y, f = problems.contour_grid(p, body.resolution)
    return json_response(
        {
            "problem": _problem_payload(p, start),
            "steps": body.steps,
            "contour": {"x": x, "y": y, "z": f},
            "runs": [
                {
                    "optimizer": _contestant_dict(o) | {"batch_size": None},
                    "loss": r.loss,
                    "path": r.path,
                    "learning_rate": r.learning_rate,
                    "grad": r.grad,
                    "update": r.update,
                    "states": r.states,
                    "diverged": r.diverged_at is not None,
                    "diverged_at": r.diverged_at,
                }
                for o, r in zip(specs, runs)
            ],
            "elapsed": time.perf_counter() - started,
        }
    )


# ---- POST /api/v1/race/stream --------------------------------------------------------------------------------------
class RaceStreamRequest(RaceRequest):
    """A network race streamed while it trains, with the views the race page draws."""

    state_index: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        0, description="The weight (index into theta) whose optimizer state is recorded at every step."
    )
    chunk: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        None, description="Steps per progress event; default about 1/25 of the race."
    )
    surface_resolution: Annotated[int, Field(ge=9, le=min(61, S.max_surface_resolution))] = 41
    boundary_resolution: Annotated[int, Field(ge=8, le=64)] = 32
    snapshots: Annotated[int, Field(ge=2, le=60)] = Field(
        26, description="Decision-boundary frames per contestant, evenly spaced over the race."
    )


PATH_FLOATS = 2_000_000  # theta values kept for the landscape paths (thinned to fit)
CHUNK_FLOATS = 2_000_000  # theta values one chunk of training may record


def _recording(optimizer: Optimizer, index: int, sink: dict) -> Optimizer:
    """The same optimizer, its update wrapped to write g, the update and every state entry of theta[index] into
    sink[name][step] after each step: the state a page shows is the state the race used."""
    inner = optimizer.update

    def update(theta, g, state, lr, t, hp):
        before, grad = theta[index], g[index]  # numpy scalars: copies, as g may be overwritten
        inner(theta, g, state, lr, t, hp)
        if t - 1 < len(sink["g"]):
            sink["g"][t - 1] = grad
            sink["update"][t - 1] = theta[index] - before
            for name, value in state.items():
                sink[name][t - 1] = value[index]

    return dataclasses.replace(optimizer, update=update)


def _names(net) -> list[str]:
    """Parameter names; note 000's one-weight regression calls its two parameters w and b."""
    return ["w", "b"] if tuple(net.layers) == (1, 1) else parameter_names(net)


def _line(event: dict) -> bytes:
    return dumps(event) + b"\n"  # one orjson pass (NaN -> null)


def _reach(points: list[np.ndarray]) -> np.ndarray | None:
    """The finite (x, y) points of several paths stacked, or None."""
    finite = [p[np.all(np.isfinite(p), axis=1)] for p in points if p is not None and len(p)]
    finite = [p for p in finite if len(p)]
    return np.vstack(finite) if finite else None


class StreamedRace:
    """A network race trained chunk by chunk (each batch-size group as one StackedTrainer), as NDJSON events."""

    def __init__(self, spec: Experiment, body: RaceStreamRequest):
        self.spec, self.body = spec, body
        self.prep = prep = experiment.prepare(spec)
        self.K, self.steps, self.P = len(spec.optimizers), body.steps, prep.net.n_params
        if body.state_index >= self.P:
            raise ValueError(f"state_index: this network has {self.P} parameters (0 to {self.P - 1})")
        self.boundary = prep.net.layers[0] == 2 and not spec.data.features and prep.data.info.task == "binary"
        check_features(prep)
        cost.race_stream(
            prep,
            self.steps,
            self.K,
            body.surface_resolution,
            self.boundary,
            body.boundary_resolution,
            body.snapshots,
            PATH_FLOATS + CHUNK_FLOATS,
        ).enforce()
        cap = max(1, CHUNK_FLOATS // (self.K * self.P))
        self.chunk = min(body.chunk or max(1, math.ceil(self.steps / 25)), cap)
        # theta kept for drawing paths: every step for two parameters, else thinned to fit PATH_FLOATS
        self.stride = 1 if self.P == 2 else max(1, math.ceil((self.steps + 1) * self.K * self.P / PATH_FLOATS))
        self.snap_steps = sorted(set(np.linspace(0, self.steps, body.snapshots).round().astype(int).tolist()))

    def events(self):
        """start, chunk per `chunk` steps, surface, boundary (two-input classifiers), done; error if it fails."""
        started = time.perf_counter()
        try:
            yield _line(self._start_event())
            yield from self._train()
            yield _line(self._surface_event())
            if self.boundary:
                yield _line(self._boundary_event())
            yield _line({"event": "done", "elapsed": time.perf_counter() - started})
        except Exception as exc:  # the status line is gone: report in the stream and log it
            log.exception("race stream failed")
            yield _line({"event": "error", "detail": [{"loc": ["body"], "msg": str(exc), "type": "stream_error"}]})

    def _start_event(self) -> dict:
        spec, prep = self.spec, self.prep
        names = _names(prep.net)
        data = None
        if prep.net.layers[0] <= 2 and prep.X.shape[0] <= S.max_rows:
            data = {"X": prep.X, "Y": prep.Y}
        return {
            "event": "start",
            "steps": self.steps,
            "chunk": self.chunk,
            "spec_id": spec.id,
            "spec_token": spec.to_token(),
            "n_params": self.P,
            "parameter_names": names[:500],
            "state_index": self.body.state_index,
            "state_name": names[self.body.state_index],
            "state_names": [list(OPTIMIZERS[o.name].state_names) for o in spec.optimizers],
            "optimizers": [_contestant_dict(o) for o in spec.optimizers],
            "groups": list(experiment.groups(spec).values()),
            "task": prep.data.info.task,
            "classify": prep.classify,
            "data": data,
            "boundary": self.boundary,
            "evaluate_every": self.body.evaluate_every,  # mini-batch groups: whole-set losses at multiples of it
        }

    def _train(self):
        spec, prep, K, steps = self.spec, self.prep, self.K, self.steps
        idx = self.body.state_index
        self.records = []
        contestants = []
        for o in spec.optimizers:
            c = experiment.contestant(o, steps)
            sink = {name: np.full(steps, np.nan) for name in ("g", "update", *c.optimizer.state_names)}
            c.optimizer = _recording(c.optimizer, idx, sink)
            contestants.append(c)
            self.records.append(sink)
        self.trainers = experiment.stacked_trainers(prep, contestants)
        self.loss = np.full((steps + 1, K), np.nan)
        self.acc = np.full((steps + 1, K), np.nan) if prep.classify else None
        self.lr = np.full((steps, K), np.nan)
        self.diverged: list[int | None] = [None] * K
        self.path_steps = list(range(0, steps + 1, self.stride))
        if self.path_steps[-1] != steps:
            self.path_steps.append(steps)
        self.paths = np.full((len(self.path_steps), K, self.P), np.nan)
        self.snaps = np.full((len(self.snap_steps), K, self.P), np.nan)
        path_row = {t: r for r, t in enumerate(self.path_steps)}
        snap_row = {t: r for r, t in enumerate(self.snap_steps)}
        done = 0
        while True:
            n = min(self.chunk, steps - done)
            for members, trainer in self.trainers:
                if all(self.diverged[k] is not None for k in members) and done:
                    continue  # all of them diverged: nothing left to compute
                for _i, (k, h) in enumerate(
                    zip(members, trainer.run(n, keep_path=True, evaluate_every=self.body.evaluate_every))
                ):
                    self.loss[done : done + n + 1, k] = h.loss
                    if self.acc is not None:
                        self.acc[done : done + n + 1, k] = h.accuracy
                    self.lr[done : done + n, k] = h.learning_rate
                    if h.diverged_at is not None and self.diverged[k] is None:
                        self.diverged[k] = done + h.diverged_at
                    if self.diverged[k] is not None:  # nothing after the step the rule flagged
                        self.loss[self.diverged[k] + 1 :, k] = np.nan
                        if self.acc is not None:
                            self.acc[self.diverged[k] + 1 :, k] = np.nan
                        self.lr[self.diverged[k] :, k] = np.nan
                    for t in range(done, done + n + 1):
                        if t in path_row:
                            self.paths[path_row[t], k] = h.path[t - done]
                        if t in snap_row:
                            self.snaps[snap_row[t], k] = h.path[t - done]
            first = 0 if done == 0 else done + 1
            yield _line(
                {
                    "event": "chunk",
                    "t0": first,
                    "t1": done + n,
                    "s0": done,
                    "loss": self.loss[first : done + n + 1].T,
                    "accuracy": None if self.acc is None else self.acc[first : done + n + 1].T,
                    "learning_rate": self.lr[done : done + n].T,
                    "state": [{name: v[done : done + n] for name, v in rec.items()} for rec in self.records],
                    "diverged_at": self.diverged,
                }
            )
            done += n
            if done >= steps:
                return

    def _surface_event(self) -> dict:
        """The loss over (w, b) for a two-parameter network, else over a filter-normalised slice through theta_0."""
        prep, spec, body = self.prep, self.spec, self.body
        theta0 = prep.params0.flat()
        alive = [k for k in range(self.K) if self.diverged[k] is None]
        names = _names(prep.net)
        if self.P == 2:
            paths = [self.paths[:, k, :] for k in range(self.K)]
            points = _reach([theta0[None]] + [paths[k] for k in alive])
            lo, hi = points.min(axis=0), points.max(axis=0)
            center = (lo + hi) / 2
            half = np.maximum((hi - lo) / 2 * 1.25, 0.5)
            grid = surfaces.parameter_grid(
                prep.net,
                center,
                prep.X,
                prep.Y,
                0,
                1,
                float(half[0]),
                float(half[1]),
                body.surface_resolution,
                spec.l2,
                spec.l1,
            )
            axes = [names[0], names[1]]
        else:
            d1, d2 = surfaces.random_directions(prep.net, prep.params0, spec.seed)
            paths = [surfaces.project(self.paths[:, k, :], theta0, d1, d2) for k in range(self.K)]
            points = _reach([paths[k] for k in alive] or [p[: max(2, len(p) // 10)] for p in paths])
            reach = 0.0 if points is None else float(np.max(np.abs(points)))
            span = max(0.05, 1.25 * reach)
            grid = surfaces.slice_grid(
                prep.net, theta0, d1, d2, prep.X, prep.Y, span, body.surface_resolution, spec.l2, spec.l1
            )
            axes = ["direction 1 (filter-normalised)", "direction 2 (filter-normalised)"]
        lowest = grid.argmin  # drawn only inside the grid: on its edge it is not a minimum
        inside = lowest is not None and grid.u[0] < lowest[0] < grid.u[-1] and grid.v[0] < lowest[1] < grid.v[-1]
        return {
            "event": "surface",
            "kind": "parameters" if self.P == 2 else "slice",
            "u": grid.u,
            "v": grid.v,
            "loss": grid.loss,
            "axes": axes,
            "paths": paths,
            "path_steps": self.path_steps,
            "start": [grid.center[0], grid.center[1]] if self.P != 2 else theta0[:2],
            "minimum": lowest if inside else None,
        }

    def _boundary_event(self) -> dict:
        """P(class 1) in whole percent on a grid over the data, for each contestant at evenly spaced steps."""
        prep, R = self.prep, self.body.boundary_resolution
        lo, hi = prep.X.min(axis=0), prep.X.max(axis=0)
        pad = 0.12 * (hi - lo) + 1e-9
        xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], R)
        ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], R)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        thetas = self.snaps.swapaxes(0, 1).reshape(-1, self.P)  # contestant-major: (K * snapshots, P)
        z = surfaces.predictions(prep.net, thetas, grid)[:, :, 0].reshape(self.K, len(self.snap_steps), R, R)
        z[~np.all(np.isfinite(thetas), axis=1).reshape(self.K, -1)] = np.nan  # diverged: no picture
        z[~np.isfinite(z)] = np.nan
        return {"event": "boundary", "x": xs, "y": ys, "steps": self.snap_steps, "z": np.rint(100 * z)}  # percent


@router.post(
    "/api/v1/race/stream",
    tags=["api v1"],
    summary="Race 2 to 8 optimizers, streamed as it trains",
    responses={
        **ERRORS,
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One JSON object per line: start, chunk..., surface, "
            "boundary (two-input classifiers), done (or error).",
        },
    },
)
def race_stream(body: RaceStreamRequest):
    """Like /race, with progress: losses, lr and one weight's optimizer state per chunk, then landscape and paths."""
    spec = experiment_from_dict(body.engine_dict())
    race = StreamedRace(spec, body)  # validates and checks the budget before the first byte is sent
    return StreamingResponse(
        race.events(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store", "X-Spec-Id": spec.id}
    )


# the page itself (GET /race, its fragments, its event stream and CSV): app/routes/race_view.py
router.include_router(race_view.router)
