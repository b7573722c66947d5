"""Engine records to the JSON shapes of API v1 (plain dicts; `serialize.clean` turns NaN into null)."""

import numpy as np

from engine import divergence
from engine.backprop import backprop, objective
from engine.experiment import Prepared, StepRecord
from engine.network import Params
from engine.optimizers import OPTIMIZERS
from engine.spec import Experiment
from engine.trainer import History


def params_dict(params: Params) -> dict:
    """{"weights": [W^1 rows, ...], "biases": [b^1, ...]}."""
    return {"weights": list(params.W), "biases": list(params.b)}


def flat_to_layers(prep: Prepared, flat: np.ndarray) -> dict:
    """A flat theta-shaped vector (gradient, state, update) as weights/biases per layer."""
    return params_dict(Params.from_flat(prep.net, flat))


def trace_payload(prep: Prepared) -> dict:
    """One forward/backward pass at theta_0 over the training data."""
    with np.errstate(all="ignore"):
        bp = backprop(prep.net, prep.params0, prep.X, prep.Y)
    return {
        "loss": bp.loss,
        "per_sample_loss": bp.per_sample_loss,
        "layers": [
            {"z": r.z, "a": r.a, "delta": r.delta, "dW": r.dW, "db": r.db, "sigma_prime": r.sigma_prime}
            for r in bp.layers
        ],
        "X": prep.X,
        "Y": prep.Y,
        "weights": list(prep.params0.W),
        "biases": list(prep.params0.b),
    }


def history_payload(
    spec: Experiment, prep: Prepared, k: int, history: History, theta: np.ndarray, evaluate_every: int = 1
) -> dict:
    """One contestant's run: losses at theta_0..theta_steps, metrics, final weights, divergence."""
    opt = spec.optimizers[k]
    params = Params.from_flat(prep.net, theta)
    return {
        "optimizer": {
            "name": opt.name,
            **dict(opt.hyper),
            "batch_size": opt.batch_size,
            "schedule": {"name": opt.schedule.name, **dict(opt.schedule.params)},
        },
        "loss": history.loss,
        "test_loss": history.test_loss,
        "accuracy": history.accuracy,
        "test_accuracy": history.test_accuracy,
        "learning_rate": history.learning_rate,
        "delta_norm": history.delta_norm,
        "grad_norm": history.grad_norm,
        "clip_norm_before": history.clip_before,
        "clip_norm_after": history.clip_after,
        "weights": list(params.W),
        "biases": list(params.b),
        "diverged": history.diverged_at is not None,
        "diverged_at": history.diverged_at,
        # the whole-set metrics were evaluated at multiples of this and at the last step (1: every step)
        "evaluate_every": 1 if history.evaluated is None else evaluate_every,
    }


def start_loss(spec: Experiment, prep: Prepared) -> float:
    """L(theta_0), the training objective the divergence rule compares with."""
    with np.errstate(all="ignore"):
        return float(objective(prep.net, prep.params0, prep.X, prep.Y, spec.l2, spec.l1))


def step_payload(spec: Experiment, prep: Prepared, k: int, record: StepRecord) -> dict:
    """The full record of step t, per layer, with the optimizer's state before and after."""
    bp, opt = record.backprop, spec.optimizers[k]
    optimizer = OPTIMIZERS[opt.name]
    return {
        "t": record.t,
        "contestant": k,
        "network": {"layers": list(prep.net.layers), "activations": list(prep.net.activations), "loss": prep.net.loss},
        "rows": record.rows,
        "X": bp.X,
        "Y": bp.Y,
        "layers": [
            {"z": r.z, "a": r.a, "sigma_prime": r.sigma_prime, "delta": r.delta, "dW": r.dW, "db": r.db, "mask": r.mask}
            for r in bp.layers
        ],
        "per_sample_loss": bp.per_sample_loss,
        "data_loss": bp.data_loss,
        "penalty": bp.penalty,
        "loss": bp.loss,
        "full_loss": record.full_loss,
        "learning_rate": record.learning_rate,
        "clip": None
        if spec.clip_norm is None
        else {"max_norm": spec.clip_norm, "before": record.clip_before, "after": record.clip_after},
        "grad": flat_to_layers(prep, record.grad),
        "params_before": params_dict(record.params_before),
        "params_after": params_dict(record.params_after),
        "update": params_dict(record.update),
        "optimizer": {
            "name": opt.name,
            "hyper": dict(opt.hyper),
            "batch_size": opt.batch_size,
            "schedule": {"name": opt.schedule.name, **dict(opt.schedule.params)},
            "equations": list(optimizer.equations),
            "matches": optimizer.matches,
            "step": record.t + 1,
            "state_before": {name: flat_to_layers(prep, v) for name, v in record.state_before.items()},
            "state_after": {name: flat_to_layers(prep, v) for name, v in record.state_after.items()},
        },
        # engine.divergence's rule on L(theta_t), or an update that left theta_{t+1} non-finite
        "diverged": bool(divergence.is_diverged(record.full_loss, start_loss(spec, prep)))
        or not bool(np.all(np.isfinite(record.params_after.flat()))),
    }


# step_payload's arrays by the `parts` of /api/v1/step that select them (app.schemas.StepRequest)
STEP_PARTS = {
    "data": ("X", "Y", "rows", "per_sample_loss"),
    "forward": ("layers.z", "layers.a", "layers.sigma_prime", "layers.mask"),
    "backward": ("layers.delta",),
    "gradients": ("layers.dW", "layers.db", "grad"),
    "params": ("params_before", "params_after", "update"),
    "state": ("optimizer.state_before", "optimizer.state_after"),
}
PER_SAMPLE = ("X", "Y", "rows", "per_sample_loss")
PER_SAMPLE_LAYER = ("z", "a", "sigma_prime", "delta", "mask")


def select_step(payload: dict, samples: list[int] | None = None, parts: list[str] | None = None) -> dict:
    """A step record cut down to the chosen batch positions and groups of arrays (the default: all of it).

    Only the keys of the unchosen groups go; nothing is renamed or reshaped, so a client reads what it asked for as
    it reads the full record. With `samples`, the answer carries them (positions in this step's batch)."""
    if samples is not None:
        batch = len(payload["rows"])
        bad = [i for i in samples if i >= batch]
        if bad:
            raise ValueError(f"samples: position {bad[0]} is outside this step's batch of {batch} rows")
        pick = np.asarray(samples, dtype=np.intp)
        payload = {**payload, "samples": list(samples)}
        for key in PER_SAMPLE:
            payload[key] = np.asarray(payload[key])[pick]
        payload["layers"] = [
            {k: (v[pick] if k in PER_SAMPLE_LAYER and v is not None else v) for k, v in layer.items()}
            for layer in payload["layers"]
        ]
    if parts is not None:
        dropped = [key for part, keys in STEP_PARTS.items() if part not in parts for key in keys]
        top = {key for key in dropped if "." not in key}
        payload = {k: v for k, v in payload.items() if k not in top}
        per_layer = {key.split(".")[1] for key in dropped if key.startswith("layers.")}
        payload["layers"] = [{k: v for k, v in layer.items() if k not in per_layer} for layer in payload["layers"]]
        state = {key.split(".")[1] for key in dropped if key.startswith("optimizer.")}
        payload["optimizer"] = {k: v for k, v in payload["optimizer"].items() if k not in state}
    return payload
