"""An experiment's spec: frozen, validated, with defaults in one place; round-trips to canonical JSON and a URL token.

The state at step t is a pure function of (spec, t), so the spec's hash is the experiment's id.
"""

import base64
import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field
from functools import cached_property

from .datasets import DATASETS, FEATURES
from .initializers import INITIALIZERS
from .network import validate_network
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES

MAX_CONTESTANTS = 8
MAX_LAYER_WIDTH = 4096  # the engine's own sanity bound; the server's limits are tighter
MAX_DEPTH = 12  # nesting of a spec's JSON (the deepest real one, network.weights, is 5 levels down)
MAX_WHOLE = 10**15  # no field takes a whole number beyond this (seeds stop at 2^32)
TARGET_TOLERANCE = 1e-6  # how far a cross-entropy row may sum from 1


@dataclass(frozen=True)
class NetworkSpec:
    """Sizes, activations, loss, and how the weights start (an initialiser and seed, or explicit values)."""

    layers: tuple[int, ...] = (2, 2, 1)
    activations: tuple[str, ...] = ("sigmoid", "sigmoid")
    loss: str = "half_mse"
    init: str = "xavier"
    seed: int = 0
    weights: tuple | None = None  # W^l as tuples of rows
    biases: tuple | None = None


@dataclass(frozen=True)
class DataSpec:
    """A named seeded dataset, or explicit X, Y (samples are rows)."""

    dataset: str | None = "xor"
    n: int | None = None
    noise: float = 0.1
    seed: int = 0
    test_fraction: float = 0.0
    features: tuple[str, ...] | None = None  # playground input features, e.g. ("x1", "x2", "x1x2")
    X: tuple | None = None
    Y: tuple | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule by name with its parameters (lr comes from the optimizer)."""

    name: str = "constant"
    params: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class OptimizerSpec:
    """One contestant: optimizer name, every hyperparameter resolved, batch size (None = full batch), schedule."""

    name: str = "sgd"
    hyper: tuple[tuple[str, float], ...] = ()
    batch_size: int | None = None
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)

    @property
    def lr(self) -> float:
        return dict(self.hyper)["lr"]


@dataclass(frozen=True)
class Experiment:
    """Network, data, contestants, regularisation and the seed that orders batches and draws dropout masks."""

    network: NetworkSpec = field(default_factory=NetworkSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optimizers: tuple[OptimizerSpec, ...] = (
        OptimizerSpec(hyper=(("lr", 0.1), ("momentum", 0.0), ("weight_decay", 0.0))),
    )
    l2: float = 0.0
    l1: float = 0.0
    dropout: tuple[float, ...] = ()
    clip_norm: float | None = None
    seed: int = 0

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (tuples become lists, hyperparameters and schedule params become objects)."""
        d = asdict(self)
        d["optimizers"] = [
            {
                "name": o.name,
                **dict(o.hyper),
                "batch_size": o.batch_size,
                "schedule": {"name": o.schedule.name, **dict(o.schedule.params)},
            }
            for o in self.optimizers
        ]
        return _lists(d)

    def canonical_json(self) -> str:
        return self._canonical

    # The spec is frozen, so its canonical JSON, id and token are computed once (a request asks for them often).
    @cached_property
    def _canonical(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @cached_property
    def id(self) -> str:
        """A short hash of the canonical spec: equal specs, equal ids, on any machine."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @cached_property
    def _token(self) -> str:
        packed = zlib.compress(self.canonical_json().encode(), 9)
        return base64.urlsafe_b64encode(packed).decode().rstrip("=")

    def to_token(self) -> str:
        """The spec compressed into a URL-safe token for the query string."""
        return self._token

    @staticmethod
    def from_token(token: str) -> "Experiment":
        """The spec a token carries; a token that does not decode raises ValueError('spec_token: ...')."""
        try:
            raw = zlib.decompressobj().decompress(
                base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), 1 << 20
            )  # at most 1 MB of JSON: no zip bombs
            data = json.loads(raw)
        except Exception:
            raise ValueError("spec_token: not a valid spec token") from None
        return experiment_from_dict(data)


def _lists(value):
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _tuples(value):
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def _number(value, field_name, low=None, high=None, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field_name}: must be a number")
    if isinstance(value, int) and abs(value) > MAX_WHOLE:  # float(10**400) would overflow
        raise ValueError(
            f"{field_name}: must be between {low} and {high}"
            if low is not None
            else f"{field_name}: {'a whole number' if integer else 'a number'} too large"
        )
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{field_name}: must be finite")
    if integer and int(value) != value:
        raise ValueError(f"{field_name}: must be a whole number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{field_name}: must be between {low} and {high}")
    return int(value) if integer else float(value)


def _object(value, field_name) -> dict:
    """A JSON object, or ValueError naming the field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{field_name}: must be an object")
    return dict(value)


def _name(value, field_name, choices) -> str:
    """One of the registry's names, or ValueError naming the field and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{field_name}: unknown {value!r} (choose from {', '.join(choices)})")
    return value


def _sequence(value, field_name) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{field_name}: must be a list")
    return tuple(value)


def schedule_from_dict(d: dict | None) -> ScheduleSpec:
    """{"name": "cosine", "lr_min": 0.001, "T": 100} -> ScheduleSpec with every parameter resolved."""
    d = _object(d, "schedule")
    name = _name(d.pop("name", "constant"), "schedule.name", SCHEDULES)
    return ScheduleSpec(name, tuple(sorted(SCHEDULES[name].params(d).items())))


def optimizer_from_dict(d: dict, default_batch=None, default_schedule=None) -> OptimizerSpec:
    """{"name": "adam", "lr": 0.01, ..., "batch_size": 16, "schedule": {...}} with defaults filled in.

    A `batch_size` key (even null, meaning the full batch) overrides the experiment's; a missing one inherits it.
    """
    d = _object(d, "optimizer")
    check_json(d, "optimizer")
    name = _name(d.pop("name", "sgd"), "optimizer.name", OPTIMIZERS)
    batch = d.pop("batch_size") if "batch_size" in d else default_batch
    if batch is not None:
        batch = _number(batch, "optimizer.batch_size", 1, 100_000, integer=True)
    schedule = (
        schedule_from_dict(d.pop("schedule")) if d.get("schedule") is not None else (default_schedule or ScheduleSpec())
    )
    d.pop("schedule", None)
    d.pop("label", None)
    hyper = OPTIMIZERS[name].hyper(d)
    return OptimizerSpec(name, tuple(sorted(hyper.items())), batch, schedule)


def _positive(value, field_name, high):
    value = _number(value, field_name, 0, high)
    if value <= 0:
        raise ValueError(f"{field_name}: must be greater than 0")
    return value


def _matrix(value, field_name):
    """Rows of finite numbers, as nested tuples (the spec must be hashable)."""
    rows = _sequence(value, field_name)
    out = []
    for i, r in enumerate(rows):
        out.append(tuple(_number(v, f"{field_name}[{i}]") for v in _sequence(r, f"{field_name}[{i}]")))
        if len(out[-1]) != len(out[0]):
            raise ValueError(f"{field_name}[{i}]: has {len(out[-1])} values; every row needs {len(out[0])}")
    if not out or not out[0]:
        raise ValueError(f"{field_name}: needs at least one row of values")
    return tuple(out)


def _features(value):
    if value is None:
        return None
    names = _sequence(value, "data.features")
    for name in names:
        _name(name, "data.features", FEATURES)
    return names


def check_json(value, field_name: str = "spec") -> None:
    """Reject what no spec contains, before anything reads it: nesting deeper than MAX_DEPTH and whole numbers
    beyond MAX_WHOLE (a 400-digit integer in a URL token would overflow a float); ValueError names the field."""
    stack = [(value, field_name, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{where}: nested deeper than any spec ({MAX_DEPTH} levels)")
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}" if where != "spec" else str(k), depth + 1) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_WHOLE:
            raise ValueError(f"{where}: whole number too large (at most {MAX_WHOLE:.0e} in size)")


def check_targets(loss: str, Y, field_name: str = "data.Y") -> None:
    """Targets the loss can use: bce needs 0 <= y <= 1; cross_entropy needs every row to be a distribution
    (non-negative, summing to 1). ValueError names the field and the first offending row."""
    import numpy as np

    Y = np.asarray(Y, dtype=float)
    if Y.size == 0:
        return
    if loss == "bce":
        bad = np.flatnonzero(np.any((Y < 0) | (Y > 1), axis=1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{field_name}: bce needs targets between 0 and 1 (row {i} is {Y[i].tolist()}); use mse for "
                "other targets"
            )
    elif loss == "cross_entropy":
        sums = Y.sum(axis=1)
        bad = np.flatnonzero(np.any(Y < 0, axis=1) | (np.abs(sums - 1) > TARGET_TOLERANCE))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{field_name}: cross_entropy needs each row of targets to be a probability distribution "
                f"(non-negative, summing to 1); row {i} is {Y[i].tolist()[:10]}"
            )


def experiment_from_dict(d: dict) -> Experiment:
    """Build and validate an Experiment from plain JSON data (as the API and the URL carry it)."""
    if not isinstance(d, dict):
        raise ValueError("spec: must be an object")
    check_json(d)
    net = _object(d.get("network"), "network")
    layers = tuple(
        _number(n, "layers", 1, MAX_LAYER_WIDTH, integer=True)
        for n in _sequence(net.get("layers", NetworkSpec.layers), "layers")
    )
    activations = _sequence(net.get("activations", ("sigmoid",) * (len(layers) - 1)), "activations")
    if not all(isinstance(a, str) for a in activations):
        raise ValueError("activations: must be names")
    loss = net.get("loss", "half_mse")
    if not isinstance(loss, str):
        raise ValueError("loss: must be a name")
    validate_network(layers, activations, loss)
    init = _name(net.get("init", "xavier"), "network.init", INITIALIZERS)
    weights, biases = net.get("weights"), net.get("biases")
    if weights is not None or biases is not None:
        # Shapes and finiteness are checked now, so a spec that cannot run never gets an id or a token.
        from .network import Network, params_from_lists

        if weights is None:
            raise ValueError("network.biases: give weights too, or neither")
        params = params_from_lists(
            Network(layers, activations, loss),
            _sequence(weights, "network.weights"),
            None if biases is None else _sequence(biases, "network.biases"),
        )
        weights = tuple(tuple(tuple(float(v) for v in r) for r in W) for W in params.W)
        biases = tuple(tuple(float(v) for v in b) for b in params.b)
    network = NetworkSpec(
        layers,
        activations,
        loss,
        init,
        _number(net.get("seed", 0), "network.seed", 0, 2**32 - 1, integer=True),
        weights,
        biases,
    )
    data = _object(d.get("data"), "data")
    if data.get("X") is not None or data.get("Y") is not None:
        data_spec = DataSpec(
            dataset=None,
            X=_matrix(data.get("X"), "data.X"),
            Y=_matrix(data.get("Y"), "data.Y"),
            features=_features(data.get("features")),
            seed=_number(data.get("seed", 0), "data.seed", 0, 2**32 - 1, integer=True),
            test_fraction=_number(data.get("test_fraction", 0.0), "data.test_fraction", 0, 0.9),
        )
    else:
        name = _name(data.get("dataset", "xor"), "data.dataset", DATASETS)
        info = DATASETS[name]
        data_spec = DataSpec(
            dataset=name,
            n=None
            if data.get("n") is None or info.fixed
            else _number(data["n"], "data.n", 4, info.max_n, integer=True),
            noise=_number(data.get("noise", 0.1), "data.noise", 0, 10),
            seed=_number(data.get("seed", 0), "data.seed", 0, 2**32 - 1, integer=True),
            test_fraction=_number(data.get("test_fraction", 0.0), "data.test_fraction", 0, 0.9),
            features=_features(data.get("features")),
        )
    if data_spec.Y is not None:
        check_targets(loss, data_spec.Y)
    batch = d.get("batch_size")
    if batch is not None:
        batch = _number(batch, "batch_size", 1, 100_000, integer=True)
    schedule = schedule_from_dict(d.get("schedule")) if d.get("schedule") is not None else ScheduleSpec()
    raw_opts = d.get("optimizers")
    if raw_opts is None:
        raw_opts = [d.get("optimizer") or {"name": "sgd"}]
    elif not isinstance(raw_opts, (list, tuple)):
        raise ValueError("optimizers: must be a list of optimizer objects")
    if not isinstance(raw_opts, (list, tuple)) or not 1 <= len(raw_opts) <= MAX_CONTESTANTS:
        raise ValueError(f"optimizers: need 1 to {MAX_CONTESTANTS} optimizer objects")
    optimizers = tuple(optimizer_from_dict(o, batch, schedule) for o in raw_opts)
    dropout = d.get("dropout") or ()
    depth = len(layers) - 1
    if isinstance(dropout, (int, float)) and not isinstance(dropout, bool):
        dropout = _number(dropout, "dropout", 0, 0.95)
        dropout = (float(dropout),) * (depth - 1) + (0.0,) if dropout else ()
    dropout = tuple(_number(p, "dropout", 0, 0.95) for p in _sequence(dropout, "dropout"))
    if dropout and len(dropout) not in (depth - 1, depth):
        raise ValueError(f"dropout: one probability per hidden layer ({depth - 1})")
    if dropout and len(dropout) == depth - 1:
        dropout = dropout + (0.0,)
    if dropout and dropout[-1] != 0:
        raise ValueError("dropout: the output layer cannot drop units")
    if not any(dropout):
        dropout = ()
    clip = d.get("clip_norm")
    return Experiment(
        network=network,
        data=data_spec,
        optimizers=optimizers,
        l2=_number(d.get("l2", 0.0) or 0.0, "l2", 0, 10),
        l1=_number(d.get("l1", 0.0) or 0.0, "l1", 0, 10),
        dropout=dropout,
        clip_norm=None if clip is None else _positive(clip, "clip_norm", 1e6),
        seed=_number(d.get("seed", 0), "seed", 0, 2**32 - 1, integer=True),
    )
