"""The /playground's settings: one form built from the engine's registries, read back into the spec the API runs.

The page's whole experiment is a `settings` dict (dataset, network, optimizer, regularisation, your own points,
edited weights). `read_form` turns a submitted form (and the button pressed) into settings, `sanitize` keeps them
inside what the engine accepts, `spec_dict` turns them into the API's spec, `settings_from_spec` goes back (a
shared ?spec= link), `form` is what the template renders, and `summary` is the large settings list shown in
presentation mode. Names, bounds and defaults come from the engine's registries; the choices offered here are the
playground's (TensorFlow Playground's steps of the learning rate, of the batch size, ...).
"""

from __future__ import annotations

import json
import math

from engine.activations import ACTIVATIONS
from engine.datasets import DATASETS, FEATURES
from engine.initializers import INITIALIZERS
from engine.optimizers import OPTIMIZERS
from engine.schedules import SCHEDULES
from engine.spec import Experiment

from . import format as fmt

PLAYGROUND_DATASETS = (
    "circles",
    "xor_cloud",
    "gaussians",
    "spiral",
    "moons",
    "gaussians3",
    "spiral3",
    "digits",
    "plane",
    "sine",
)
DATASET_LABELS = {
    "circles": "Circles",
    "xor_cloud": "XOR",
    "gaussians": "Gaussians",
    "spiral": "Spiral",
    "moons": "Moons",
    "gaussians3": "3 Gaussians",
    "spiral3": "3-arm spiral",
    "digits": "Digits 8×8",
    "plane": "Plane",
    "sine": "Sine",
    "custom": "Your points",
}
FEATURE_LABELS = {
    "x1": "x₁",
    "x2": "x₂",
    "x1^2": "x₁²",
    "x2^2": "x₂²",
    "x1x2": "x₁x₂",
    "sin_x1": "sin x₁",
    "sin_x2": "sin x₂",
}
LOSS_LABELS = {
    "bce": "binary cross-entropy",
    "cross_entropy": "softmax + cross-entropy",
    "mse": "mean squared error",
    "half_mse": "½ squared error",
}
OPTIMIZER_LABELS = {
    "sgd": "SGD",
    "momentum": "momentum (notes)",
    "nesterov": "Nesterov",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
}
HIDDEN_ACTIVATIONS = tuple(name for name, a in ACTIVATIONS.items() if not a.output_only)
OUTPUT_ACTIVATION = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
LOSSES_FOR = {
    "binary": ("bce", "mse", "half_mse"),
    "multiclass": ("cross_entropy", "mse", "half_mse"),
    "regression": ("mse", "half_mse"),
}
CHOICES = {
    "n": (50, 100, 200, 300, 500, 1000),
    "noise": (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5),
    "test": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "lr": (0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
    "batch": (1, 2, 5, 10, 20, 50, 0),  # 0 = the full batch
    "l2": (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    "l1": (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    "dropout": (0.0, 0.1, 0.2, 0.3, 0.5),
    "clip": (0.0, 0.1, 0.5, 1.0, 5.0, 10.0),  # 0 = off; else max ||g|| (torch clip_grad_norm_)
    "chunk": (1, 2, 5, 10, 20, 50),
}
MAX_HIDDEN_LAYERS = 6
MAX_NEURONS = 8
MAX_POINTS = 1000
POINT_LIMIT = 10.0  # |x| of a point you add or upload
MAX_CLASSES = 10

DEFAULTS = {
    "dataset": "circles",
    "n": 200,
    "noise": 0.1,
    "test": 0.3,
    "dseed": 0,
    "features": ["x1", "x2"],
    "hidden": [4, 2],
    "acts": ["tanh", "tanh"],
    "loss": "bce",
    "init": "xavier",
    "wseed": 0,
    "opt": "adam",
    "lr": 0.03,
    "batch": 10,
    "sched": "constant",
    "l2": 0.0,
    "l1": 0.0,
    "dropout": 0.0,
    "clip": 0.0,
    "seed": 0,
    "pts": None,  # your own points: [[x1, x2, label], ...]
    "w": None,  # edited weights: {"W": [...], "b": [...]}
}


def base_task(s: dict) -> str:
    """binary, multiclass or regression: of the named dataset, or of your points (classes = labels seen)."""
    task = DATASETS[s["dataset"]].task
    if s.get("pts") and task != "regression":
        return "multiclass" if max(p[2] for p in s["pts"]) >= 2 else "binary"
    return task


def n_classes(s: dict) -> int:
    """Classes of a classification task (2 for binary), 0 for regression."""
    task = base_task(s)
    if task == "regression":
        return 0
    if s.get("pts"):
        return max(2, int(max(p[2] for p in s["pts"])) + 1)
    return 2 if task == "binary" else DATASETS[s["dataset"]].n_outputs


def raw_inputs(s: dict) -> int:
    return DATASETS[s["dataset"]].n_inputs


def layer_sizes(s: dict) -> list[int]:
    """[inputs, hidden..., outputs]: the input layer is the chosen features (digits: its 64 pixels)."""
    n_in = 64 if s["dataset"] == "digits" else len(s["features"])
    k = n_classes(s)
    return [n_in, *s["hidden"], k if k > 2 else 1]


def _number(value, choices, default):
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(x):
        return default
    return min(choices, key=lambda c: abs(c - x)) if choices else x


def _int(value, default, low, high):
    try:
        x = int(value)
    except (TypeError, ValueError):
        return default
    return min(high, max(low, x))


def _json_value(value):
    """A form field that holds JSON text (or the value itself): the parsed value, None for blank or bad text."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _points(value):
    """Your points from JSON text or a list: [[x1, x2, label], ...] within the limits, else None."""
    value = _json_value(value)
    if not isinstance(value, list) or not value:
        return None
    out = []
    for p in value[:MAX_POINTS]:
        if not (isinstance(p, list) and len(p) == 3 and all(isinstance(v, (int, float)) for v in p)):
            return None
        if not all(math.isfinite(v) for v in p) or abs(p[0]) > POINT_LIMIT or abs(p[1]) > POINT_LIMIT:
            return None
        out.append([float(p[0]), float(p[1]), float(p[2])])
    return out


def _weights(value):
    value = _json_value(value)
    if not isinstance(value, dict) or not isinstance(value.get("W"), list) or not isinstance(value.get("b"), list):
        return None
    return {"W": value["W"], "b": value["b"]}


def sanitize(s: dict) -> dict:
    """Settings kept inside what the page offers and the engine accepts (the server checks the spec again)."""
    out = {**DEFAULTS, **{k: v for k, v in s.items() if k in DEFAULTS}}
    if out["dataset"] not in PLAYGROUND_DATASETS:
        out["dataset"] = DEFAULTS["dataset"]
    info = DATASETS[out["dataset"]]
    out["n"] = int(_number(out["n"], CHOICES["n"], DEFAULTS["n"]))
    out["noise"] = _number(out["noise"], CHOICES["noise"], DEFAULTS["noise"])
    out["test"] = _number(out["test"], CHOICES["test"], DEFAULTS["test"])
    for key in ("dseed", "wseed", "seed"):
        out[key] = _int(out[key], 0, 0, 2**31 - 1)
    allowed = [f for f in FEATURES if info.n_inputs == 2 or "2" not in f]
    features = [f for f in allowed if f in (out["features"] or [])]
    out["features"] = features or allowed[:1] if out["dataset"] != "digits" else []
    hidden = [_int(n, 4, 1, MAX_NEURONS) for n in (out["hidden"] or [])][:MAX_HIDDEN_LAYERS]
    out["hidden"] = hidden
    acts = [a for a in (out["acts"] or []) if a in HIDDEN_ACTIVATIONS]
    out["acts"] = [acts[i] if i < len(acts) else (acts[-1] if acts else "tanh") for i in range(len(hidden))]
    out["pts"] = _points(out["pts"]) if info.n_inputs == 2 else None
    bad_label = any(p[2] != int(p[2]) or not 0 <= p[2] < MAX_CLASSES for p in out["pts"] or [])
    if out["pts"] and DATASETS[out["dataset"]].task != "regression" and bad_label:
        out["pts"] = None
    task = base_task(out)
    if out["loss"] not in LOSSES_FOR[task]:
        out["loss"] = LOSSES_FOR[task][0]
    if out["init"] not in INITIALIZERS:
        out["init"] = DEFAULTS["init"]
    if out["opt"] not in OPTIMIZERS:
        out["opt"] = DEFAULTS["opt"]
    if out["sched"] not in SCHEDULES:
        out["sched"] = "constant"
    for key in ("lr", "l2", "l1", "dropout", "clip"):
        out[key] = _number(out[key], CHOICES[key], DEFAULTS[key])
    out["batch"] = int(_number(out["batch"], CHOICES["batch"], DEFAULTS["batch"]))
    out["w"] = _weights(out["w"])
    if out["w"] is not None and not _weights_fit(out["w"], layer_sizes(out)):
        out["w"] = None
    return out


def _weights_fit(w, sizes) -> bool:
    W, b = w["W"], w["b"]
    if len(W) != len(sizes) - 1 or len(b) != len(sizes) - 1:
        return False
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if not (isinstance(W[l], list) and len(W[l]) == n_out and isinstance(b[l], list) and len(b[l]) == n_out):
            return False
        for row in W[l]:
            if not (isinstance(row, list) and len(row) == n_in):
                return False
            if not all(isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= 100 for v in row):
                return False
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= 100 for v in b[l]):
            return False
    return True


def read_form(form, action: str | None = None) -> dict:
    """Settings from a submitted form (a Starlette FormData or a dict of lists) and the button pressed.

    Hidden `*_was` fields carry the values the form was rendered with, so a change of the "every hidden layer"
    activation, of the optimizer or of the dataset is seen without any state on the server.
    """

    def get(key, default=None):
        values = form.getlist(key) if hasattr(form, "getlist") else form.get(key, [])
        values = values if isinstance(values, list) else [values]
        return values[0] if values else default

    def getlist(key):
        values = form.getlist(key) if hasattr(form, "getlist") else form.get(key, [])
        return values if isinstance(values, list) else [values]

    s = {key: get(key, DEFAULTS[key]) for key in DEFAULTS if key not in ("features", "hidden", "acts")}
    s["features"] = getlist("features")
    s["hidden"] = [int(x) for x in str(get("hidden", "")).split(",") if x.strip().lstrip("-").isdigit()]
    s["acts"] = [get(f"act{l + 1}", "tanh") for l in range(len(s["hidden"]))]
    act_all = get("act_all", "")
    if act_all and act_all != get("act_all_was", ""):
        s["acts"] = [act_all] * len(s["hidden"])
    if get("dataset") != get("dataset_was", get("dataset")):
        s["pts"], s["w"] = None, None  # another dataset: generated points again, fresh weights
    if get("opt") != get("opt_was", get("opt")) and s["opt"] in OPTIMIZERS:
        s["lr"] = OPTIMIZERS[s["opt"]].defaults["lr"]  # a new optimizer starts at its own default lr
    action = action or get("action", "")
    return apply_action(s, action)


def apply_action(s: dict, action: str) -> dict:
    """A button of the form: add or remove a layer or a unit, new weights, new data, back to generated data."""
    hidden, acts = list(s["hidden"]), list(s["acts"])
    if action == "add-layer" and len(hidden) < MAX_HIDDEN_LAYERS:
        hidden.append(hidden[-1] if hidden else 4)
        acts.append(acts[-1] if acts else "tanh")
    elif action == "remove-layer" and hidden:
        hidden.pop()
        acts.pop()
    elif action.startswith(("plus-", "minus-")):
        kind, _, layer = action.partition("-")
        if layer.isdigit() and 1 <= int(layer) <= len(hidden):
            l = int(layer) - 1
            hidden[l] = min(MAX_NEURONS, max(1, hidden[l] + (1 if kind == "plus" else -1)))
    elif action == "reseed":
        s["wseed"] = int(s["wseed"] or 0) + 1
        s["w"] = None
    elif action == "regenerate":
        s["dseed"] = int(s["dseed"] or 0) + 1
        s["pts"] = None
    elif action == "clear-points":
        s["pts"] = None
    elif action == "forget-weights":
        s["w"] = None
    if hidden != s["hidden"]:
        s["w"] = None  # another shape: the edited weights no longer fit
    s["hidden"], s["acts"] = hidden, acts
    return sanitize(s)


def spec_dict(s: dict) -> dict:
    """The API's spec of these settings (validated again by engine.spec)."""
    task = base_task(s)
    sizes = layer_sizes(s)
    network = {
        "layers": sizes,
        "activations": [*s["acts"], OUTPUT_ACTIVATION[task]],
        "loss": s["loss"],
        "init": s["init"],
        "seed": s["wseed"],
    }
    if s["w"] is not None:
        network["weights"], network["biases"] = s["w"]["W"], s["w"]["b"]
    if s["pts"]:
        from engine.csvdata import targets

        X, Y = targets(s["pts"], "regression" if task == "regression" else "classification")
        if task == "multiclass":  # every class the page offers gets an output, seen in the points or not
            k = sizes[-1]
            Y = [row + [0.0] * (k - len(row)) for row in Y]
        data = {"X": X, "Y": Y, "features": s["features"], "test_fraction": s["test"], "seed": s["dseed"]}
    else:
        data = {"dataset": s["dataset"], "noise": s["noise"], "seed": s["dseed"], "test_fraction": s["test"]}
        if not DATASETS[s["dataset"]].fixed:
            data["n"] = s["n"] if s["dataset"] != "digits" else max(s["n"], 200)
        if s["dataset"] != "digits":
            data["features"] = s["features"]
    optimizer = {"name": s["opt"], "lr": s["lr"], "batch_size": s["batch"] or None}
    if s["sched"] != "constant":
        optimizer["schedule"] = {"name": s["sched"]}
    spec = {"network": network, "data": data, "optimizer": optimizer, "seed": s["seed"]}
    if s["l2"]:
        spec["l2"] = s["l2"]
    if s["l1"]:
        spec["l1"] = s["l1"]
    if s["dropout"] and s["hidden"]:
        spec["dropout"] = s["dropout"]
    if s["clip"]:
        spec["clip_norm"] = s["clip"]
    return spec


def settings_from_spec(spec: Experiment) -> dict:
    """The settings a shared ?spec= link describes (what the page cannot show falls back to its defaults)."""
    net, data, opt = spec.network, spec.data, spec.optimizers[0]
    s = dict(DEFAULTS)
    if data.dataset is not None:
        s.update(dataset=data.dataset, n=data.n or DATASETS[data.dataset].default_n, noise=data.noise)
    elif data.X is not None and len(data.X[0]) == 2:
        labels = [row.index(max(row)) if len(row) > 1 else row[0] for row in data.Y]
        s["pts"] = [[x[0], x[1], float(y)] for x, y in zip(data.X, labels)]
        s["dataset"] = "plane" if (len(data.Y[0]) == 1 and any(y not in (0, 1) for y in labels)) else "circles"
    s.update(test=data.test_fraction, dseed=data.seed, features=list(data.features or ["x1", "x2"]))
    s.update(hidden=list(net.layers[1:-1]), acts=list(net.activations[:-1]), loss=net.loss, init=net.init)
    s.update(wseed=net.seed, opt=opt.name, lr=opt.lr, batch=opt.batch_size or 0, sched=opt.schedule.name)
    s.update(l2=spec.l2, l1=spec.l1, dropout=max(spec.dropout, default=0.0), clip=spec.clip_norm or 0.0)
    s["seed"] = spec.seed
    if net.weights is not None:
        s["w"] = {"W": [list(map(list, W)) for W in net.weights], "b": [list(b) for b in net.biases]}
    return sanitize(s)


LEGACY_FIELDS = ("dataset", "n", "noise", "test", "dseed", "features", "hidden", "acts", "loss", "init", "wseed")
LEGACY_FIELDS += ("opt", "lr", "batch", "l2", "l1", "dropout", "seed", "pts")


def settings_from_query(query) -> dict | None:
    """The settings of a link from before ?spec= (one query field per setting, e.g. ?dataset=spiral&hidden=8,8),
    so links teachers shared still open the same experiment; None when the query has none of those fields."""
    if not any(key in query for key in LEGACY_FIELDS):
        return None
    s = {key: query[key] for key in LEGACY_FIELDS if key in query and key not in ("features", "hidden", "acts", "pts")}
    if "features" in query:
        s["features"] = query["features"].split(",")
    if "hidden" in query:
        s["hidden"] = [int(x) for x in query["hidden"].split(",") if x.strip().isdigit()]
    if "acts" in query:  # the old list ended with the output's activation, which the task decides now
        s["acts"] = query["acts"].split(",")[: len(s.get("hidden", DEFAULTS["hidden"]))]
    if "pts" in query:
        try:
            s["pts"] = [[float(v) for v in p.split(",")] for p in query["pts"].split(";") if p]
        except ValueError:
            s["pts"] = None
    return sanitize(s)


def _options(values, chosen, label=str):
    return [{"value": _value(v), "label": label(v), "selected": _value(v) == _value(chosen)} for v in values]


def _value(v) -> str:
    if isinstance(v, float) and v == int(v) and abs(v) < 1e6:
        return str(int(v)) if v >= 1 or v == 0 else repr(v)
    return str(v)


def form(s: dict) -> dict:
    """What templates/playground.html renders for the controls: every select's options from the registries."""
    task = base_task(s)
    info = DATASETS[s["dataset"]]
    acts_same = len(set(s["acts"])) == 1
    return {
        "s": s,
        "task": task,
        "datasets": [
            {
                "name": name,
                "label": DATASET_LABELS[name],
                "task": DATASETS[name].task,
                "checked": name == s["dataset"],
                "title": DATASETS[name].description,
            }
            for name in PLAYGROUND_DATASETS
        ],
        "features": [
            {
                "name": f,
                "label": FEATURE_LABELS[f],
                "checked": f in s["features"],
                "disabled": s["dataset"] == "digits" or (info.n_inputs == 1 and "2" in f),
            }
            for f in FEATURES
        ],
        "n": _options(CHOICES["n"], s["n"]),
        "noise": _options(CHOICES["noise"], s["noise"]),
        "test": _options(CHOICES["test"], s["test"], lambda v: fmt.percent(v)),
        "hidden_acts": [
            {"layer": l + 1, "units": n, "options": _options(HIDDEN_ACTIVATIONS, a, _act_label)}
            for l, (n, a) in enumerate(zip(s["hidden"], s["acts"]))
        ],
        "act_all": _options(("", *HIDDEN_ACTIVATIONS), s["acts"][0] if acts_same and s["acts"] else "", _act_all_label),
        "act_all_value": s["acts"][0] if acts_same and s["acts"] else "",
        "output_activation": OUTPUT_ACTIVATION[task],
        "loss": _options(LOSSES_FOR[task], s["loss"], LOSS_LABELS.get),
        "init": _options(INITIALIZERS, s["init"]),
        "opt": _options(OPTIMIZERS, s["opt"], OPTIMIZER_LABELS.get),
        "sched": _options(SCHEDULES, s["sched"]),
        "lr": _options(CHOICES["lr"], s["lr"], fmt.text),
        "batch": _options(CHOICES["batch"], s["batch"], lambda v: "full" if v == 0 else str(v)),
        "l2": _options(CHOICES["l2"], s["l2"], fmt.text),
        "l1": _options(CHOICES["l1"], s["l1"], fmt.text),
        "dropout": _options(CHOICES["dropout"], s["dropout"], fmt.text),
        "clip": _options(CHOICES["clip"], s["clip"], lambda v: "off" if v == 0 else f"‖g‖ ≤ {fmt.text(v)}"),
        "chunk": _options(CHOICES["chunk"], 10),
        "max_layers": MAX_HIDDEN_LAYERS,
        "max_neurons": MAX_NEURONS,
        "can_add_points": info.n_inputs == 2,
        "classes": list(range(n_classes(s))) if task != "regression" else [],
        "add_classes": list(range(max(n_classes(s), 2) if task == "binary" else n_classes(s)))
        if task != "regression"
        else [],
        "pts_json": "" if s["pts"] is None else json.dumps(s["pts"], separators=(",", ":")),
        "w_json": "" if s["w"] is None else json.dumps(s["w"], separators=(",", ":")),
        "sizes": layer_sizes(s),
    }


def _act_label(name: str) -> str:
    return name.replace("_", " ")


def _act_all_label(name: str) -> str:
    return "(mixed)" if name == "" else _act_label(name)


def summary(s: dict) -> list[tuple[str, str]]:
    """The settings as (label, value) lines: what presentation mode shows the room in large type."""
    task = base_task(s)
    sizes = layer_sizes(s)
    if s["pts"]:
        data = f"your {len(s['pts'])} points"
    elif DATASETS[s["dataset"]].fixed:
        data = DATASET_LABELS[s["dataset"]]
    else:
        data = f"{DATASET_LABELS[s['dataset']]}, {s['n']} points, noise {fmt.text(s['noise'])}"
    data += f", {fmt.percent(s['test'])} test" if s["test"] else ", no test split"
    inputs = "64 pixels" if s["dataset"] == "digits" else ", ".join(FEATURE_LABELS[f] for f in s["features"])
    acts = sorted(set(s["acts"]), key=s["acts"].index)
    hidden = ", ".join(_act_label(a) for a in acts) if acts else "no hidden layer"
    reg = []
    if s["l2"]:
        reg.append(f"L2 λ = {fmt.text(s['l2'])}")
    if s["l1"]:
        reg.append(f"L1 λ₁ = {fmt.text(s['l1'])}")
    if s["dropout"] and s["hidden"]:
        reg.append(f"dropout p = {fmt.text(s['dropout'])}")
    return [
        ("Data", data),
        ("Network", " → ".join(str(n) for n in sizes) + f" (inputs {inputs})"),
        ("Activations", f"{hidden} (hidden), {OUTPUT_ACTIVATION[task]} (output)"),
        ("Loss", LOSS_LABELS[s["loss"]]),
        ("Optimizer", OPTIMIZER_LABELS[s["opt"]] + ("" if s["sched"] == "constant" else f", {s['sched']} schedule")),
        ("Learning rate η", fmt.text(s["lr"])),
        ("Batch", "full batch" if not s["batch"] else str(s["batch"])),
        ("Regularisation", ", ".join(reg) if reg else "none"),
        ("Gradient clipping", f"‖g‖ ≤ {fmt.text(s['clip'])}" if s["clip"] else "off"),
    ]


def meta(s: dict) -> dict:
    """What the page script needs to draw this experiment (it never derives it itself)."""
    task = base_task(s)
    return {
        "task": task,
        "digits": s["dataset"] == "digits",
        "n_inputs": raw_inputs(s),
        "classes": n_classes(s),
        "sizes": layer_sizes(s),
        "activations": [*s["acts"], OUTPUT_ACTIVATION[task]],
        "inputs": ["pixels"] if s["dataset"] == "digits" else [FEATURE_LABELS[f] for f in s["features"]],
        "features": s["features"],
        "can_add_points": raw_inputs(s) == 2,
        "max_points": MAX_POINTS,
        "point_limit": POINT_LIMIT,
    }
