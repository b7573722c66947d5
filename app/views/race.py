"""The /race page's view of a race: problems, the default race, contestant cards (the two momentum conventions,
effective step sizes), the race computed for playback (frames, standings text, landscape on the PCA plane,
optimizer state of every weight), and the CSV export.

Every number a person reads is formatted here (app.views.format); the page script only draws and animates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass, field, replace

import numpy as np

from engine import experiment, problems, surfaces
from engine.divergence import FACTOR as DIVERGENCE_FACTOR
from engine.gradcheck import parameter_names
from engine.initializers import INITIALIZERS
from engine.optimizers import OPTIMIZERS, Optimizer
from engine.presets import PRESETS_BY_ID
from engine.spec import Experiment, experiment_from_dict, optimizer_from_dict

from . import colors
from . import format as fmt

# ---- problems ----------------------------------------------------------------------------------------------------


def _preset(preset_id: str, **data) -> dict:
    spec = PRESETS_BY_ID[preset_id]["spec"]
    return {"network": spec["network"], "data": {**spec["data"], **data}}


PROBLEMS = {
    "spiral": {
        "title": "Spiral (2-8-8-1)",
        "steps": 1000,
        **_preset("spiral-2-8-8-1", test_fraction=0.25),
        "description": "Two interleaved spirals, 200 points (a quarter held out to test); tanh hidden layers.",
    },
    "moons": {
        "title": "Moons (2-8-1)",
        "steps": 500,
        "network": {"layers": [2, 8, 1], "activations": ["tanh", "sigmoid"], "loss": "bce", "init": "xavier"},
        "data": {"dataset": "moons", "n": 200, "noise": 0.1, "seed": 0, "test_fraction": 0.25},
        "description": "Two interleaving half circles, 200 noisy points (a quarter held out to test); one tanh "
        "hidden layer of 8 units.",
    },
    "xor": {
        "title": "XOR (2-4-1)",
        "steps": 500,
        **_preset("xor-2-4-1"),
        "description": "The 4 XOR points of note 002; a sigmoid hidden layer.",
    },
    "y2x": {
        "title": "y = 2x (note 000)",
        "steps": 300,
        **_preset("linear-y-2x"),
        "description": "Note 000's regression y = w x + b on x = 1, 2, 3, w and b from 0: two parameters, so the "
        "landscape is the loss over (w, b) itself.",
    },
    "digits": {
        "title": "Digits (64-16-10)",
        "steps": 300,
        "network": {"layers": [64, 16, 10], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
        "data": {"dataset": "digits", "n": 300, "seed": 0, "test_fraction": 0.25},
        "description": "300 of sklearn's 8x8 handwritten digits, 10 classes (a quarter held out to test).",
    },
}
DEFAULT_PROBLEM = "spiral"
DEFAULT_STEPS = 1000

# The default race teaches what the notes say (momentum and Adam beat plain SGD) and shows the two momentum
# conventions are one rule: PyTorch's b = mu b + g at lr eta moves exactly like the notes' v = beta v + (1-beta) g
# at lr eta / (1 - beta). On the spiral (150 training rows), 1000 steps: SGD 0.592, both momentum forms 0.0289,
# Adam 0.0233 (tests/app/test_race_api.py holds the order).
DEFAULT_RACE = [
    {"name": "sgd", "lr": 0.3},
    {"name": "sgd", "lr": 0.3, "momentum": 0.9},
    {"name": "momentum", "lr": 3.0, "beta": 0.9},
    {"name": "adam", "lr": 0.01},
]

WHY_DEFAULT = (
    "Plain SGD at η = 0.3 crawls: along the spiral's long, gently sloping valleys the gradient is small but points "
    "the same way step after step. Momentum adds those consistent gradients up. In PyTorch's form "
    "(b = μb + g) the steady step is η/(1−μ) = 10η; in the notes' form (v = βv + (1−β)g) v is an average of "
    "gradients, so its steady step is η, and η = 3 gives it the same steady step 3: the two curves nearly "
    "coincide, because they are one rule with η rescaled (only the start differs: PyTorch's b starts at g, the "
    "notes' v at (1−β)g). Adam divides each weight's step by √v̂, the size of its recent "
    "gradients, so every weight moves about η per step however small its gradient: small gradients no longer "
    "mean small steps."
)

OUTPUT_FOR_LOSS = {"bce": "sigmoid", "cross_entropy": "softmax"}


def loss_choices(problem: dict) -> list[str]:
    """The losses this problem's output can take: binary (bce or mse), multiclass (cross-entropy or mse), regression."""
    loss = problem["network"]["loss"]
    if loss == "bce":
        return ["bce", "mse"]
    if loss == "cross_entropy":
        return ["cross_entropy", "mse"]
    return ["mse", "half_mse"]


LOSS_TITLES = {
    "bce": "binary cross-entropy (sigmoid output)",
    "cross_entropy": "cross-entropy (softmax output)",
    "mse": "mean squared error",
    "half_mse": "½ squared error (notes 001/002)",
}


def race_spec(problem: str, optimizers: list[dict], init: str | None = None, loss: str | None = None) -> dict:
    """The API spec of a race on a problem, with the race's initialiser and loss (the output activation follows)."""
    p = PROBLEMS[problem]
    network = dict(p["network"])
    network["activations"] = list(network["activations"])
    if init is not None:
        if init not in INITIALIZERS:
            raise ValueError(f"network.init: unknown '{init}' (choose from {', '.join(INITIALIZERS)})")
        network["init"] = init
    if loss is not None and loss != network["loss"]:
        if loss not in loss_choices(p):
            raise ValueError(f"network.loss: {problem} takes {' or '.join(loss_choices(p))}, not '{loss}'")
        if loss in OUTPUT_FOR_LOSS:
            network["activations"][-1] = OUTPUT_FOR_LOSS[loss]
        network["loss"] = loss
    return {"network": network, "data": dict(p["data"]), "optimizers": optimizers}


def match_problem(spec: Experiment) -> str | None:
    """The problem whose data (and layer sizes) the spec uses, if any."""
    d = spec.to_dict()
    for name, p in PROBLEMS.items():
        theirs = experiment_from_dict({"network": p["network"], "data": p["data"]}).to_dict()
        if d["data"] == theirs["data"] and d["network"]["layers"] == theirs["network"]["layers"]:
            return name
    return None


# ---- contestant cards: names, conventions, effective step size ------------------------------------------------------

FORMS = {
    "sgd": ("SGD", "plain gradient descent"),
    "nesterov": ("Nesterov", "PyTorch's form: b = μb + g, step η(g + μb)"),
    "momentum": ("Momentum (notes' form)", "the notes' form: v = βv + (1−β)g, an average of gradients"),
    "rmsprop": ("RMSprop", "the notes' form = PyTorch's RMSprop with α = β"),
    "adam": ("Adam", "torch.optim.Adam"),
    "adamw": ("AdamW", "torch.optim.AdamW"),
    "adagrad": ("Adagrad", "torch.optim.Adagrad"),
}


def contestant_title(opt) -> str:
    """The contestant's name as the page writes it: the momentum convention is part of the name."""
    hyper = dict(opt.hyper)
    if opt.name == "sgd" and hyper.get("momentum"):
        return "SGD + momentum (PyTorch's form)"
    return FORMS.get(opt.name, (opt.name, ""))[0]


def effective_step(opt) -> dict:
    """The steady-state step size of a contestant on a constant gradient, as text and LaTeX that hold at the
    digits shown: eta for SGD and the notes' momentum, eta/(1-mu) for PyTorch's momentum and Nesterov, about eta
    per weight for the adaptive methods (the step is divided by the gradient's own size)."""
    hyper = dict(opt.hyper)
    lr = float(hyper["lr"])
    mu = float(hyper.get("momentum", 0.0)) if opt.name in ("sgd", "nesterov") else 0.0
    if opt.name in ("sgd", "nesterov") and mu > 0:
        eff = lr / (1 - mu)
        shown = fmt.holds(lambda a, b: a / (1 - b), [lr, mu], eff)
        a, b = shown.operands
        return {
            "value": eff,
            "text": fmt.text(eff, shown.sig),
            "tex": rf"\frac{{\eta}}{{1-\mu}} = \frac{{{a}}}{{1-{b}}} {shown.relation} {shown.result}",
            "why": "PyTorch's b = μb + g grows to g/(1−μ) on a steady gradient, so the step is η/(1−μ)",
        }
    if opt.name in ("sgd", "momentum"):
        why = (
            "the notes' v = βv + (1−β)g is an average: it settles at g, so the step stays η·g"
            if opt.name == "momentum"
            else "θ moves η·g"
        )
        return {"value": lr, "text": fmt.text(lr), "tex": rf"\eta = {fmt.tex(lr)}", "why": why}
    return {
        "value": lr,
        "text": "≈ " + fmt.text(lr) + " per weight",
        "tex": rf"\approx \eta = {fmt.tex(lr)}\ \text{{per weight}}",
        "why": "the step is divided by the root of the mean squared gradient, so each weight moves about η",
    }


def card(spec: Experiment, k: int) -> dict:
    """Everything a contestant's card shows."""
    opt = spec.optimizers[k]
    optimizer = OPTIMIZERS[opt.name]
    hyper = dict(opt.hyper)
    equations = list(optimizer.equations)
    form = FORMS.get(opt.name, (opt.name, ""))[1]
    if opt.name == "sgd" and hyper.get("momentum"):
        equations = [r"b_t = \mu b_{t-1} + g_t", r"\theta_t = \theta_{t-1} - \eta\, b_t"]
        form = "PyTorch's form: b = μb + g (SGD with momentum μ)"
    shown = [(key, value) for key, value in hyper.items() if key == "lr" or value != optimizer.defaults.get(key)]
    names = {"lr": "η", "momentum": "μ", "beta": "β", "beta1": "β₁", "beta2": "β₂", "eps": "ε", "weight_decay": "λ"}
    settings = ", ".join(f"{names.get(key, key)} = {fmt.text(value)}" for key, value in shown)
    if opt.batch_size is not None:
        settings += f", batch {opt.batch_size}"
    if opt.schedule.name != "constant":
        settings += f", {opt.schedule.name} schedule"
    title = contestant_title(opt)
    return {
        "k": k,
        "title": title,
        "short": SHORT.get(title, title),
        # the standings' label: a GD-against-SGD race differs in the batch, not the rule
        "lr": "η " + fmt.text(hyper["lr"]) + ("" if opt.batch_size is None else f" · batch {opt.batch_size}"),
        "form": form,
        "settings": settings,
        "equations": equations,
        "effective": effective_step(opt),
        "colour": colors.PALETTE[k % len(colors.PALETTE)],
        "dash": DASHES[k % len(DASHES)],
    }


SHORT = {"SGD + momentum (PyTorch's form)": "SGD + μ (PyTorch)", "Momentum (notes' form)": "Momentum (notes)"}
DASHES = ["solid", "dot", "dash", "dashdot", "longdash", "longdashdot", "solid", "dot"]


def cards(spec: Experiment) -> list[dict]:
    return [card(spec, k) for k in range(len(spec.optimizers))]


RESOLUTION = 29  # landscape grid points per axis (the contour interpolates between them)
DIVERGENCE_TEXT = (
    f"A run has diverged when its loss is not finite or exceeds {DIVERGENCE_FACTOR:g}× its starting loss "
    "(engine/divergence.py); it is drawn up to that step."
)


# ---- the race, computed for playback ----------------------------------------------------------------------------

MAX_FRAMES = 300  # playback frames: a race plays in ~10 s at 30 redraws per second
PATH_FLOATS = 2_000_000  # theta values kept for the landscape's paths (thinned in time to fit)
STATE_FLOATS = 600_000  # optimizer-state values kept for "inside the optimizer" (every weight, thinned frames)
CHUNKS = 20  # progress reports per race


def frame_steps(steps: int, count: int = MAX_FRAMES, every: int = 1) -> np.ndarray:
    """The steps playback shows: 0..steps, at most count+1 of them, evenly spaced, the last one always; with
    `every` > 1 (see evaluation_stride) the multiples of it, where every contestant's loss was evaluated."""
    if every > 1:
        return np.unique(np.append(np.arange(0, steps + 1, every), steps))
    return np.unique(np.rint(np.linspace(0, steps, min(steps, count) + 1)).astype(int))


def evaluation_stride(spec: Experiment, steps: int) -> int:
    """How often a race evaluates the whole-set losses of its mini-batch (or dropout) contestants: at the playback
    frames only (engine StackedTrainer.run's evaluate_every), not at every step, where that forward pass over every
    row would cost more than the small batch's step; 1 when every contestant trains on the full batch."""
    m = experiment.prepare(spec).X.shape[0]
    thinned = spec.dropout or any(b is not None and b < m for b in experiment.groups(spec))
    return max(1, math.ceil(steps / MAX_FRAMES)) if thinned else 1


def evaluation_note(every: int) -> str:
    """What the loss chart plots when a race evaluates every `every` steps ('' when every step)."""
    if every <= 1:
        return ""
    return f"mini-batch runs: the loss on every training row, evaluated every {every} steps, joined by lines"


@dataclass
class RaceResult:
    """A race's numbers: per-step losses for every contestant, thinned paths, state at frames, landscape."""

    spec: Experiment
    steps: int
    loss: np.ndarray  # (K, steps+1)
    test_loss: np.ndarray | None
    accuracy: np.ndarray | None
    test_accuracy: np.ndarray | None
    learning_rate: np.ndarray  # (K, steps)
    diverged_at: list[int | None]
    path_steps: np.ndarray  # steps whose theta is kept
    paths: np.ndarray  # (K, len(path_steps), P)
    state_steps: np.ndarray  # steps t >= 1 whose update (step t) is recorded
    states: list[dict[str, np.ndarray]]  # per contestant: name -> (len(state_steps), P) float32
    final_theta: np.ndarray  # (K, P)
    extra: dict = field(default_factory=dict)


def _recorder(optimizer: Optimizer, wanted: dict[int, int], sink: dict) -> Optimizer:
    """The same optimizer; after update t (t = 1, 2, ...) listed in `wanted` (t -> row) it copies the gradient,
    the update and every state vector into row `wanted[t]` of sink's arrays: the state the race really used."""
    inner = optimizer.update

    def update(theta, g, state, lr, t, hp):
        row = wanted.get(t)
        if row is None:
            inner(theta, g, state, lr, t, hp)
            return
        before, grad = theta.copy(), g.copy()
        inner(theta, g, state, lr, t, hp)
        sink["g"][row] = grad
        sink["update"][row] = theta - before
        for name, value in state.items():
            sink[name][row] = value

    return replace(optimizer, update=update)


def state_plan(spec: Experiment, steps: int) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """What "inside the optimizer" records: the quantities of each contestant (g, the update, its state vectors),
    for every weight, at the steps t >= 1 listed (as many of the playback frames as STATE_FLOATS allows, >= 20)."""
    P = experiment.prepare(spec).net.n_params
    names = [("g", "update", *OPTIMIZERS[o.name].state_names) for o in spec.optimizers]
    per_frame = sum(len(n) for n in names) * P
    n_state = int(np.clip(STATE_FLOATS // max(per_frame, 1), 20, len(frame_steps(steps))))
    state_steps = np.unique(np.rint(np.linspace(0, steps, n_state + 1)).astype(int))
    return names, state_steps[state_steps >= 1]


def state_floats(spec: Experiment, steps: int) -> int:
    """How many float32 values state_plan records (for the cost model)."""
    names, state_steps = state_plan(spec, steps)
    return sum(len(n) for n in names) * experiment.prepare(spec).net.n_params * len(state_steps)


def run_race(spec: Experiment, steps: int):
    """Train every contestant `steps` steps (each batch-size group one stacked trainer), in chunks.

    A generator: yields (steps done, the standings at that step) after each chunk, and returns the RaceResult.
    """
    prep = experiment.prepare(spec)
    K, P = len(spec.optimizers), prep.net.n_params
    every = evaluation_stride(spec, steps)
    stride = max(1, math.ceil((steps + 1) * K * P / PATH_FLOATS))
    path_steps = np.unique(np.append(np.arange(0, steps + 1, stride), steps))
    names, state_steps = state_plan(spec, steps)
    wanted = {int(t): r for r, t in enumerate(state_steps)}
    states = [{name: np.full((len(state_steps), P), np.nan, dtype=np.float32) for name in n} for n in names]
    contestants = []
    for k, o in enumerate(spec.optimizers):
        c = experiment.contestant(o, steps)
        c.optimizer = _recorder(c.optimizer, wanted, states[k])
        contestants.append(c)
    trainers = experiment.stacked_trainers(prep, contestants)
    has_test = prep.X_test is not None and len(prep.X_test) > 0
    loss = np.full((K, steps + 1), np.nan)
    test_loss = np.full((K, steps + 1), np.nan) if has_test else None
    acc = np.full((K, steps + 1), np.nan) if prep.classify else None
    test_acc = np.full((K, steps + 1), np.nan) if has_test and prep.classify else None
    lr = np.full((K, steps), np.nan)
    paths = np.full((K, len(path_steps), P), np.nan)
    diverged: list[int | None] = [None] * K
    path_row = {int(t): r for r, t in enumerate(path_steps)}
    # chunks for progress reports, small enough that the path each chunk keeps stays under 2e6 values
    # (at least 50 steps a chunk: each chunk is a trainer call, and a short race needs no progress bar)
    chunk = min(max(50, math.ceil(steps / CHUNKS)), max(1, 2_000_000 // (K * P)))
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        for members, trainer in trainers:
            if done and all(diverged[k] is not None for k in members):
                continue
            for k, h in zip(members, trainer.run(n, keep_path=True, evaluate_every=every)):
                rows = slice(done, done + n + 1)
                loss[k, rows] = h.loss
                if test_loss is not None:
                    test_loss[k, rows] = h.test_loss
                if acc is not None:
                    acc[k, rows] = h.accuracy
                if test_acc is not None:
                    test_acc[k, rows] = h.test_accuracy
                lr[k, done : done + n] = h.learning_rate
                if h.diverged_at is not None and diverged[k] is None:
                    diverged[k] = done + h.diverged_at
                for t in range(done, done + n + 1):
                    r = path_row.get(t)
                    if r is not None:
                        paths[k, r] = h.path[t - done]
        done += n
        yield done, standings(loss, test_loss, acc, diverged, done)
    final = np.full((K, P), np.nan)
    for members, trainer in trainers:
        for i, k in enumerate(members):
            final[k] = trainer.theta[i]
    for k, d in enumerate(diverged):
        if d is not None:  # nothing after the step the rule flagged (engine.divergence)
            for a in (loss, test_loss, acc, test_acc):
                if a is not None:
                    a[k, d + 1 :] = np.nan
            lr[k, d:] = np.nan
            paths[k, path_steps > d] = np.nan
            for v in states[k].values():
                v[state_steps > d] = np.nan
    return RaceResult(
        spec, steps, loss, test_loss, acc, test_acc, lr, diverged, path_steps, paths, state_steps, states, final
    )


def race(spec: Experiment, steps: int) -> RaceResult:
    """run_race to the end, without progress."""
    gen = run_race(spec, steps)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# ---- landscape ----------------------------------------------------------------------------------------------------


def landscape(result: RaceResult, resolution: int = 41) -> dict:
    """The loss on the plane the paths live in, the paths on it, and a colour scale covering the losses along the
    paths. Two-parameter networks: the (w, b) plane itself, centred on theta_0 like /api/v1/surface."""
    spec, prep = result.spec, experiment.prepare(result.spec)
    net, K = prep.net, len(spec.optimizers)
    theta0 = prep.params0.flat()
    paths = [result.paths[k] for k in range(K)]
    alive = [k for k in range(K) if result.diverged_at[k] is None]
    fit = alive or list(range(K))
    if net.n_params == 2:
        names = ["w", "b"] if tuple(net.layers) == (1, 1) else parameter_names(net)[:2]
        points = np.vstack([paths[k] for k in fit])
        u = surfaces.covering_range(points[:, 0] - theta0[0], resolution=resolution) + theta0[0]
        v = surfaces.covering_range(points[:, 1] - theta0[1], resolution=resolution) + theta0[1]
        plane = surfaces.Plane(theta0, np.array([1.0, 0.0]), np.array([0.0, 1.0]), (1.0, 0.0))
        grid = surfaces.plane_grid(net, replace(plane, center=np.zeros(2)), prep.X, prep.Y, u, v, spec.l2, spec.l1)
        projected = paths
        axes = names
        caption = f"The loss over ({names[0]}, {names[1]}): the whole parameter space."
        short = f"Loss over ({names[0]}, {names[1]})"
        explained = None
    else:
        grid, plane, projected = surfaces.path_landscape(
            net, theta0, paths, prep.X, prep.Y, resolution, spec.l2, spec.l1, spec.seed, fit
        )
        share = plane.explained[0] + plane.explained[1]
        explained = [plane.explained[0], plane.explained[1]]
        axes = [
            f"PC 1 ({fmt.percent(plane.explained[0], 2)} of the paths)",
            f"PC 2 ({fmt.percent(plane.explained[1], 2)})",
        ]
        short = f"Loss on the paths' plane (PCA through θ₀, holds {fmt.percent(share, 3)})"
        caption = (
            f"The loss on the plane of the paths' first two principal directions through θ₀ (Li et al. 2018); "
            f"the plane holds {fmt.percent(share, 3)} of the paths' squared distance from θ₀."
        )
    frames = frame_steps(result.steps, every=evaluation_stride(result.spec, result.steps))
    rows = np.unique(np.clip(np.searchsorted(result.path_steps, frames, side="right") - 1, 0, None))
    # the colour scale covers the grid's values and the true losses along the paths (log when they span decades)
    path_losses = result.loss[:, result.path_steps]
    finite = np.concatenate([grid.loss[np.isfinite(grid.loss)], path_losses[np.isfinite(path_losses)]])
    lo = float(finite.min()) if finite.size else 0.0
    start = float(result.loss[0, 0])
    hi = float(max(start, np.nanmax(path_losses[:, 0]) if path_losses.size else start))
    grid_hi = float(np.nanpercentile(grid.loss, 95)) if np.isfinite(grid.loss).any() else hi
    hi = max(hi, min(grid_hi, 10 * max(start, 1e-12)))
    use_log = lo > 0 and hi / lo > 20
    z = np.log10(np.clip(grid.loss, lo, None)) if use_log else grid.loss
    zmin, zmax = (math.log10(lo), math.log10(hi)) if use_log else (lo, hi)
    ticks = _colour_ticks(lo, hi, use_log)
    return {
        "u": grid.u,
        "v": grid.v,
        "z": z,
        "zmin": zmin,
        "zmax": zmax,
        "log": use_log,
        "tickvals": [math.log10(t) if use_log else t for t in ticks],
        "ticktext": [fmt.text(t, 2) for t in ticks],
        "axes": axes,
        "caption": caption,
        "caption_short": short,
        "explained": explained,
        "range_text": f"colours from {fmt.text(lo)} to {fmt.text(hi)}"
        + (" (log scale)" if use_log else "")
        + f"; the paths' losses run from {fmt.text(float(np.nanmin(path_losses)))} to {fmt.text(start)}",
        # drawn at the playback frames (the plane and the grid used every kept step)
        "paths": [p[rows] for p in projected],
        "path_steps": result.path_steps[rows],
    }


def _colour_ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        every = max(1, math.ceil((last - first) / 7))  # at most about 8 labels on the colour bar
        marks = (1, 3) if every == 1 and last - first <= 4 else (1,)
        ticks = [10.0**e * m for e in range(first, last + 1, every) for m in marks]
        ticks = [t for t in ticks if lo <= t <= hi]
        return ticks if len(ticks) >= 2 else [lo, hi]
    return list(np.linspace(lo, hi, 5))


# ---- decision boundaries (two-input binary classifiers) ----------------------------------------------------------

BOUNDARY_RESOLUTION = 40
BOUNDARY_SNAPSHOTS = 21


def has_boundary(spec: Experiment) -> bool:
    prep = experiment.prepare(spec)
    return prep.net.layers[0] == 2 and not spec.data.features and prep.data.info.task == "binary"


def boundary(result: RaceResult) -> dict | None:
    """P(class 1) in whole percent on a grid over the data, for each contestant at evenly spaced steps (the paths'
    kept theta), as uint8 in base64 (255 = no value: the run had diverged); None unless a two-input binary task."""
    spec = result.spec
    if not has_boundary(spec):
        return None
    prep = experiment.prepare(spec)
    R, K = BOUNDARY_RESOLUTION, len(spec.optimizers)
    wanted = np.unique(np.rint(np.linspace(0, result.steps, BOUNDARY_SNAPSHOTS)).astype(int))
    rows = np.unique(np.clip(np.searchsorted(result.path_steps, wanted, side="right") - 1, 0, None))
    lo, hi = prep.X.min(axis=0), prep.X.max(axis=0)
    pad = 0.1 * (hi - lo) + 1e-9
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], R)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], R)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # row r of the picture is ys[r]
    thetas = result.paths[:, rows].reshape(-1, prep.net.n_params)  # contestant-major: (K * len(rows), P)
    p = surfaces.predictions(prep.net, thetas, grid)[:, :, 0]
    p[~np.all(np.isfinite(thetas), axis=1)] = np.nan  # a diverged run has no picture
    with np.errstate(invalid="ignore"):
        z = np.where(np.isfinite(p), np.rint(100 * np.clip(p, 0, 1)), 255).astype(np.uint8).reshape(K, len(rows), -1)
    return {
        "x": [float(xs[0]), float(xs[-1])],
        "y": [float(ys[0]), float(ys[-1])],
        "resolution": R,
        "steps": result.path_steps[rows],
        "step_text": [f"at step {int(t)}" for t in result.path_steps[rows]],
        "z": base64.b64encode(z.tobytes()).decode(),
        "points": prep.X,
        "labels": prep.Y[:, 0].astype(int),
    }


# ---- standings and the page's data -----------------------------------------------------------------------------------


def standings_at(result: RaceResult, t: int) -> list[dict]:
    """Each contestant at step t: losses, accuracy, rank by training loss (diverged runs last), status."""
    return standings(result.loss, result.test_loss, result.accuracy, result.diverged_at, t)


def empty_standings(spec: Experiment) -> list[dict]:
    """The table before the first step: the rows, no numbers yet."""
    return [{"k": k, "loss": "", "test": "", "acc": "", "status": "", "rank": ""} for k in range(len(spec.optimizers))]


def standings(loss, test_loss, accuracy, diverged_at, t: int) -> list[dict]:
    """Each contestant at step t of (K, steps+1) tables: rank by training loss, diverged runs last."""
    K = loss.shape[0]
    rows = []
    for k in range(K):
        d = diverged_at[k]
        gone = d is not None and t >= d
        i = min(t, d) if gone else t
        value = loss[k, i]
        rows.append(
            {
                "k": k,
                "loss": fmt.text(value),
                "test": fmt.text(test_loss[k, i]) if test_loss is not None else "",
                "acc": fmt.percent(accuracy[k, i]) if accuracy is not None else "",
                "status": f"diverged at step {d}" if gone else "",
                "key": (1, -(d or 0), 0.0) if gone else (0, 0, float(value) if np.isfinite(value) else math.inf),
            }
        )
    order = sorted(range(K), key=lambda k: rows[k]["key"])
    for rank, k in enumerate(order, 1):
        rows[k]["rank"] = rank
        del rows[k]["key"]
    return rows


def page_data(result: RaceResult, land: dict | None = None) -> dict:
    """What the page script draws and animates, all numbers a person reads already text."""
    spec = result.spec
    prep = experiment.prepare(spec)
    every = evaluation_stride(spec, result.steps)
    frames = frame_steps(result.steps, every=every)
    names = ["w", "b"] if tuple(prep.net.layers) == (1, 1) else parameter_names(prep.net)
    cards = [card(spec, k) for k in range(len(spec.optimizers))]
    return {
        "steps": result.steps,
        "spec_token": spec.to_token(),
        "spec_id": spec.id,
        "labels": [c["title"] for c in cards],
        "colours": [c["colour"] for c in cards],
        "dashes": [c["dash"] for c in cards],
        "loss": result.loss,
        "test_loss": result.test_loss,
        "learning_rate": result.learning_rate,
        "diverged_at": result.diverged_at,
        "divergence_rule": f"loss not finite or above {DIVERGENCE_FACTOR:g}× its start",
        "frames": frames,
        "standings": [standings_at(result, int(t)) for t in frames],
        "step_text": [f"step {int(t)} of {result.steps}" for t in frames],
        **({"landscape": land} if land is not None else {}),  # the page gets it as a second event
        "parameter_names": names,
        "state_steps": result.state_steps,
        "state_names": [list(s) for s in result.states],
        "state": [{name: _b64(v) for name, v in s.items()} for s in result.states],
        "state_titles": STATE_TITLES,
        "loss_title": LOSS_TITLES.get(prep.net.loss, prep.net.loss),
        "loss_dtick": _log_dtick(result.loss, result.test_loss),
        "has_test": result.test_loss is not None,
        "evaluate_every": every,
    }


def _log_dtick(*tables) -> str | int:
    """Plotly's dtick for the loss chart's log axis: 2 and 5 between the powers of ten over a short span, only the
    powers of ten (every n-th) over a long one, so the labels never crowd."""
    values = np.concatenate([np.ravel(t) for t in tables if t is not None])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return "D2"
    decades = math.log10(values.max() / values.min())
    return "D2" if decades <= 2.5 else max(1, math.ceil(decades / 8))


STATE_TITLES = {
    "update": "update Δθ (what the weight moved)",
    "g": "gradient g",
    "velocity": "velocity (v, or PyTorch's b)",
    "s": "s (RMSprop's mean g²)",
    "m": "m (Adam's mean g)",
    "v": "v (Adam's mean g²)",
    "m_hat": "m̂ (bias-corrected m)",
    "v_hat": "v̂ (bias-corrected v)",
    "sum": "G (Adagrad's sum of g²)",
}


def _b64(a: np.ndarray) -> str:
    """A (steps, P) table as little-endian float32, weight by weight (each weight's series in one run) and
    byte-shuffled (the first byte of every value, then the second, ...), in base64. Neighbouring values of a series
    share their sign and exponent bytes, which gzip then finds as runs: on a race of 8 19% fewer bytes and 26%
    less compression time than the plain row-major floats. race.js `floats` undoes the shuffle."""
    by_weight = np.ascontiguousarray(np.asarray(a, dtype="<f4").T)
    return base64.b64encode(by_weight.view(np.uint8).reshape(-1, 4).T.tobytes()).decode()


# ---- CSV -----------------------------------------------------------------------------------------------------------


def csv_rows(result: RaceResult):
    """Tidy rows: contestant, optimizer, quantity, step, parameter, value; train and test loss, accuracy and lr
    at every step, then every final weight and bias."""
    spec = result.spec
    prep = experiment.prepare(spec)
    names = parameter_names(prep.net)
    yield ["contestant", "optimizer", "quantity", "step", "parameter", "value"]
    for k in range(len(spec.optimizers)):
        title = contestant_title(spec.optimizers[k]) + " " + card(spec, k)["settings"]
        series = [("train_loss", result.loss), ("test_loss", result.test_loss), ("accuracy", result.accuracy)]
        series += [("test_accuracy", result.test_accuracy), ("learning_rate", result.learning_rate)]
        for quantity, a in series:
            if a is None:
                continue
            for t, value in enumerate(a[k]):
                yield [k + 1, title, quantity, t, "", _csv_number(value)]
        for i, value in enumerate(result.final_theta[k]):
            yield [k + 1, title, "final_weight", result.steps, names[i], _csv_number(value)]


def _csv_number(x) -> str:
    x = float(x)
    return repr(x) if math.isfinite(x) else ""


# ---- 2-D test functions (engine.problems): the same page, the same playback, the function's contour ---------------

# each function's default number of steps: long enough for the slow to be seen, short enough that the fast do not
# spend most of the race below 1e-30
FUNCTION_STEPS = {"rosenbrock": 1000, "beale": 500, "saddle": 300, "ravine": 150}
# each function's default race (the old page's suggested learning rates); the order of the palette as on networks
FUNCTION_RACES = {
    "rosenbrock": [
        {"name": "sgd", "lr": 0.001},
        {"name": "sgd", "lr": 0.001, "momentum": 0.9},
        {"name": "rmsprop", "lr": 0.01},
        {"name": "adam", "lr": 0.05},
    ],
    "beale": [
        {"name": "sgd", "lr": 0.01},
        {"name": "momentum", "lr": 0.05, "beta": 0.9},
        {"name": "rmsprop", "lr": 0.01},
        {"name": "adam", "lr": 0.05},
    ],
    "saddle": [
        {"name": "sgd", "lr": 0.01},
        {"name": "momentum", "lr": 0.05, "beta": 0.9},
        {"name": "rmsprop", "lr": 0.01},
        {"name": "adam", "lr": 0.05},
    ],
    "ravine": [
        {"name": "sgd", "lr": 0.07},
        {"name": "sgd", "lr": 0.02, "momentum": 0.9},
        {"name": "rmsprop", "lr": 0.05},
        {"name": "adam", "lr": 0.1},
    ],
}
FUNCTION_RESOLUTION = 121  # contour grid points per axis
COLOUR_DECADES = 8  # the colour scale spans at most this many decades below its top (lower values: the lowest colour)


@dataclass(frozen=True)
class FunctionRace:
    """A race on a 2-D function: the problem's name and the contestants (engine OptimizerSpecs)."""

    problem: str
    optimizers: tuple

    @property
    def entry(self):
        return problems.PROBLEMS[self.problem]

    def optimizer_dicts(self) -> list[dict]:
        return [
            {"name": o.name, **dict(o.hyper), "schedule": {"name": o.schedule.name, **dict(o.schedule.params)}}
            for o in self.optimizers
        ]

    def to_token(self) -> str:
        """The contestants as the old page's ?c= (base64url of their JSON list): old and new links are one scheme."""
        raw = json.dumps(self.optimizer_dicts(), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.problem}:{self.to_token()}".encode()).hexdigest()


def function_race_spec(problem: str, optimizers: list[dict]) -> FunctionRace:
    """A function race from API-shaped optimizer dicts (a batch size is meaningless without data: dropped)."""
    problems.get_problem(problem)
    specs = []
    for k, o in enumerate(optimizers):
        d = {key: v for key, v in o.items() if key not in ("batch_size", "label")}
        try:
            specs.append(optimizer_from_dict(d))
        except ValueError as exc:
            raise ValueError(f"contestant {k + 1}: {exc}") from None
    return FunctionRace(problem, tuple(specs))


def function_cards(fr: FunctionRace) -> list[dict]:
    return [card(fr, k) for k in range(len(fr.optimizers))]


@dataclass
class FunctionResult:
    """A function race's numbers, in the shapes of RaceResult where the page reads the same thing."""

    spec: FunctionRace
    steps: int
    loss: np.ndarray  # (K, steps+1) f(theta_t)
    learning_rate: np.ndarray  # (K, steps)
    diverged_at: list[int | None]
    paths: np.ndarray  # (K, steps+1, 2)
    runs: list


def run_function_race(fr: FunctionRace, steps: int) -> FunctionResult:
    """Every contestant from the problem's start on the exact gradient (engine.problems.FunctionTrainer)."""
    contestants = [experiment.contestant(o, steps) for o in fr.optimizers]
    runs = problems.FunctionTrainer(fr.entry, contestants).run(steps)
    return FunctionResult(
        fr,
        steps,
        np.stack([r.loss for r in runs]),
        np.stack([r.learning_rate for r in runs]),
        [r.diverged_at for r in runs],
        np.stack([r.path for r in runs]),
        runs,
    )


def function_standings(result: FunctionResult, t: int) -> list[dict]:
    rows = standings(result.loss, None, None, result.diverged_at, t)
    for row in rows:
        k = row["k"]
        d = result.diverged_at[k]
        x, y = result.paths[k, t if d is None or t < d else d]
        row["where"] = f"({fmt.text(x, 3)}, {fmt.text(y, 3)})" if np.isfinite(x) and np.isfinite(y) else ""
    return rows


def function_page_data(result: FunctionResult) -> dict:
    """What the page script draws for a function race: the keys of page_data (x and y are the two 'weights')."""
    fr = result.spec
    frames = frame_steps(result.steps)
    cs = function_cards(fr)
    state_names = [("g", "update", *OPTIMIZERS[o.name].state_names) for o in fr.optimizers]
    state = []
    for run, names in zip(result.runs, state_names):
        arrays = {"g": run.grad, "update": run.update, **run.states}
        state.append({name: _b64(arrays[name]) for name in names})
    return {
        "steps": result.steps,
        "spec_token": fr.to_token(),
        "spec_id": fr.id,
        "problem": fr.problem,
        "labels": [c["title"] for c in cs],
        "colours": [c["colour"] for c in cs],
        "dashes": [c["dash"] for c in cs],
        "loss": result.loss,
        "test_loss": None,
        "learning_rate": result.learning_rate,
        "diverged_at": result.diverged_at,
        "divergence_rule": f"f not finite or above {DIVERGENCE_FACTOR:g}× its start",
        "frames": frames,
        "standings": [function_standings(result, int(t)) for t in frames],
        "step_text": [f"step {int(t)} of {result.steps}" for t in frames],
        "parameter_names": ["x", "y"],
        "state_steps": np.arange(1, result.steps + 1),
        "state_names": [list(n) for n in state_names],
        "state": state,
        "state_titles": STATE_TITLES,
        "loss_title": "f(θₜ)",
        "loss_axis": "f(θₜ)",
        "loss_dtick": _log_dtick(result.loss),
        "has_test": False,
    }


def function_landscape(result: FunctionResult, resolution: int = FUNCTION_RESOLUTION) -> dict:
    """f on the problem's window (widened to hold the paths, at most twice its size), log-spaced contours, a colour
    scale from the paths' lowest value (at most COLOUR_DECADES below the top) to the start, the minima, saddles
    and start marked."""
    p = result.spec.entry
    finite = result.paths[np.all(np.isfinite(result.paths), axis=-1)]
    window = []
    for axis, (a, b) in enumerate((p.x_range, p.y_range)):
        span = b - a
        lo = max(a - span / 2, min(a, float(finite[:, axis].min()) if finite.size else a))
        hi = min(b + span / 2, max(b, float(finite[:, axis].max()) if finite.size else b))
        window.append((lo, hi))
    u = np.linspace(*window[0], resolution)
    v = np.linspace(*window[1], resolution)
    with np.errstate(all="ignore"):
        f = p.f(np.stack(np.meshgrid(u, v), axis=-1))  # rows = y, as Plotly's contour z expects
    path_values = result.loss[np.isfinite(result.loss)]
    start = float(result.loss[0, 0])
    top = max(start, float(np.nanpercentile(f, 90)))
    low_path = float(path_values.min()) if path_values.size else start
    low_grid = float(np.nanmin(f))
    lo = max(min(low_path, low_grid), top * 10.0**-COLOUR_DECADES, 1e-300)
    z = np.log10(np.clip(f, lo, None))
    zmin, zmax = math.log10(lo), math.log10(top)
    size = 0.25 if zmax - zmin <= 4 else 0.5  # contour lines every quarter or half decade
    ticks = _colour_ticks(lo, top, True)
    marks = [
        {"x": m[0], "y": m[1], "kind": "minimum", "text": f"minimum f = 0 at ({fmt.text(m[0])}, {fmt.text(m[1])})"}
        for m in p.minima
    ]
    marks += [
        {"x": s[0], "y": s[1], "kind": "saddle", "text": f"saddle point at ({fmt.text(s[0])}, {fmt.text(s[1])})"}
        for s in p.saddles
    ]
    marks.append(
        {
            "x": p.start[0],
            "y": p.start[1],
            "kind": "start",
            "text": f"start θ₀ = ({fmt.text(p.start[0])}, {fmt.text(p.start[1])}), f = {fmt.text(start)}",
        }
    )
    below = " (lower values share the lowest colour)" if low_path < lo else ""
    return {
        "u": u,
        "v": v,
        "z": z,
        "zmin": zmin,
        "zmax": zmax,
        "log": True,
        "contours": {"start": math.floor(zmin / size) * size, "end": zmax, "size": size},
        "tickvals": [math.log10(t) for t in ticks],
        "ticktext": [fmt.text(t, 2) for t in ticks],
        "colorbar_title": "f",
        "axes": ["x", "y"],
        "caption": f"{p.title}: each contestant's path θₜ = (xₜ, yₜ) on the contours of f (log-spaced, "
        f"{'a quarter' if size == 0.25 else 'half'} a decade apart); ★ the minimum"
        + (", ✕ the saddle" if p.saddles else "")
        + ", ○ the start",
        "caption_short": f"{p.title}: paths on log-spaced contours of f",
        "explained": None,
        "range_text": f"colours from {fmt.text(lo)} to {fmt.text(top)} (log scale){below}; the paths' f runs from "
        f"{fmt.text(low_path)} to {fmt.text(start)}",
        "marks": marks,
        "paths": result.paths,  # every step: the canvas draws each zig-zag
        "path_steps": np.arange(result.steps + 1),
        "boundary": None,
    }


def function_csv_rows(result: FunctionResult):
    """Tidy rows like csv_rows: f, lr, x and y at every step, then the final (x, y)."""
    fr = result.spec
    yield ["contestant", "optimizer", "quantity", "step", "parameter", "value"]
    for k in range(len(fr.optimizers)):
        c = card(fr, k)
        title = c["title"] + " " + c["settings"]
        for t, value in enumerate(result.loss[k]):
            yield [k + 1, title, "f", t, "", _csv_number(value)]
        for t, value in enumerate(result.learning_rate[k]):
            yield [k + 1, title, "learning_rate", t, "", _csv_number(value)]
        for i, name in enumerate("xy"):
            for t, value in enumerate(result.paths[k, :, i]):
                yield [k + 1, title, "theta", t, name, _csv_number(value)]
        last = result.steps if result.diverged_at[k] is None else result.diverged_at[k]
        for i, name in enumerate("xy"):
            yield [k + 1, title, "final_weight", last, name, _csv_number(result.paths[k, last, i])]
