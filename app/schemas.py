"""Pydantic models of the JSON API v1: the HTTP boundary only (the engine never sees them)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.activations import ACTIVATIONS
from engine.datasets import DATASETS, FEATURES
from engine.initializers import INITIALIZERS
from engine.losses import LOSSES
from engine.optimizers import OPTIMIZERS
from engine.schedules import SCHEDULES

from .settings import get_settings

S = get_settings()

ActivationName = Literal[tuple(ACTIVATIONS)]
LossName = Literal[tuple(LOSSES)]
InitName = Literal[tuple(INITIALIZERS)]
OptimizerName = Literal[tuple(OPTIMIZERS)]
ScheduleName = Literal[tuple(SCHEDULES)]
DatasetName = Literal[tuple(DATASETS)]
FeatureName = Literal[tuple(FEATURES)]

Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Width = Annotated[int, Field(ge=1, le=S.max_layer_width)]
Row = Annotated[list[float], Field(min_length=1, max_length=S.max_layer_width)]
Matrix = Annotated[list[Row], Field(min_length=1, max_length=S.max_layer_width)]
DataRows = Annotated[
    list[Annotated[list[float], Field(min_length=1, max_length=S.max_features)]],
    Field(min_length=1, max_length=S.max_rows),
]


class Strict(BaseModel):
    """Strict JSON: no bools as numbers, no strings as numbers, no NaN/Inf, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class NetworkIn(Strict):
    """Sizes [n_0..n_L], an activation per layer 1..L, the loss, and initial weights (initialiser or explicit)."""

    layers: Annotated[list[Width], Field(min_length=2, max_length=S.max_hidden_layers + 2)]
    activations: list[ActivationName] | None = Field(
        None, description="One per layer after the input; default sigmoid."
    )
    loss: LossName = "half_mse"
    init: InitName = "xavier"
    seed: Seed = 0
    weights: Annotated[list[Matrix], Field(max_length=S.max_hidden_layers + 1)] | None = Field(
        None, description="W^l for l = 1..L, each n_l rows of n_{l-1} numbers."
    )
    biases: Annotated[list[Row], Field(max_length=S.max_hidden_layers + 1)] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "layers": [2, 2, 1],
                    "activations": ["sigmoid", "sigmoid"],
                    "loss": "half_mse",
                    "init": "xavier",
                    "seed": 0,
                }
            ]
        }
    )


class DataIn(Strict):
    """A named seeded dataset, or explicit X and Y (samples are rows)."""

    dataset: DatasetName | None = None
    n: Annotated[int, Field(ge=1, le=S.max_rows)] | None = None
    noise: Annotated[float, Field(ge=0, le=1)] = 0.1
    seed: Seed = 0
    test_fraction: Annotated[float, Field(ge=0, lt=0.9)] = 0.0
    features: Annotated[list[FeatureName], Field(min_length=1, max_length=len(FEATURES))] | None = None
    X: DataRows | None = None
    Y: DataRows | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"dataset": "spiral", "n": 200, "noise": 0.1, "seed": 0, "test_fraction": 0.2},
                {"X": [[0.5, 0.8]], "Y": [[1.0]]},
            ]
        }
    )

    @model_validator(mode="after")
    def one_source(self):
        explicit = self.X is not None or self.Y is not None
        if explicit and self.dataset is not None:
            raise ValueError("data: give either a dataset name or X and Y, not both")
        if explicit and (self.X is None or self.Y is None):
            raise ValueError("data: X and Y go together")
        if not explicit and self.dataset is None:
            raise ValueError("data: give a dataset name or X and Y")
        return self


class ScheduleIn(Strict):
    """A learning-rate schedule; t counts optimizer steps from 0."""

    name: ScheduleName = "constant"
    gamma: Annotated[float, Field(gt=0, le=1)] | None = Field(None, description="step: lr * gamma^floor(t/step_size)")
    step_size: Annotated[int, Field(ge=1, le=100_000)] | None = None
    decay: Annotated[float, Field(ge=0, le=100)] | None = Field(None, description="exponential: lr * exp(-decay t)")
    lr_min: Annotated[float, Field(ge=0, le=100)] | None = Field(None, description="cosine: the floor")
    T: Annotated[int, Field(ge=1, le=100_000)] | None = Field(None, description="cosine: steps to reach lr_min")


class OptimizerIn(Strict):
    """An optimizer by name; omitted hyperparameters take the engine's defaults (see GET /api/v1/optimizers)."""

    name: OptimizerName = "sgd"
    lr: Annotated[float, Field(gt=0, le=100)] | None = None
    beta: Annotated[float, Field(ge=0, lt=1)] | None = None
    momentum: Annotated[float, Field(ge=0, lt=1)] | None = None
    beta1: Annotated[float, Field(ge=0, lt=1)] | None = None
    beta2: Annotated[float, Field(ge=0, lt=1)] | None = None
    eps: Annotated[float, Field(gt=0, le=1)] | None = None
    weight_decay: Annotated[float, Field(ge=0, le=10)] | None = None
    lr_decay: Annotated[float, Field(ge=0, le=10)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=S.max_rows)] | None = Field(
        None, description="Overrides the request's batch_size; null means the full batch."
    )
    schedule: ScheduleIn | None = None
    label: Annotated[str, Field(max_length=40)] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "batch_size": None}]
        }
    )


class ExperimentIn(Strict):
    """Everything that defines an experiment except the number of steps."""

    network: NetworkIn
    data: DataIn
    optimizer: OptimizerIn | None = None
    optimizers: Annotated[list[OptimizerIn], Field(min_length=1, max_length=S.max_contestants)] | None = None
    schedule: ScheduleIn | None = None
    l2: Annotated[float, Field(ge=0, le=10)] = 0.0
    l1: Annotated[float, Field(ge=0, le=10)] = 0.0
    dropout: (
        Annotated[float, Field(ge=0, le=0.95)]
        | Annotated[list[Annotated[float, Field(ge=0, le=0.95)]], Field(max_length=S.max_hidden_layers + 1)]
        | None
    ) = None
    clip_norm: Annotated[float, Field(gt=0, le=1e6)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=S.max_rows)] | None = None
    seed: Seed = 0

    def engine_dict(self) -> dict[str, Any]:
        """The plain dict the engine's `experiment_from_dict` reads (only what the client set, so the
        engine's defaults apply, and an explicit optimizer batch_size of null stays distinguishable)."""
        d = self.model_dump(exclude_unset=True)
        for o in ([d.get("optimizer")] if d.get("optimizer") else []) + list(d.get("optimizers") or []):
            for key in [k for k, v in o.items() if v is None and k != "batch_size"]:
                del o[key]
            if o.get("schedule"):
                o["schedule"] = {k: v for k, v in o["schedule"].items() if v is not None}
        if d.get("schedule"):
            d["schedule"] = {k: v for k, v in d["schedule"].items() if v is not None}
        for section in ("network", "data"):
            d[section] = {k: v for k, v in d[section].items() if v is not None}
        return d


Steps = Annotated[int, Field(ge=0, le=S.max_steps, description="Optimizer steps to take.")]
EvaluateEvery = Annotated[
    int,
    Field(
        ge=1,
        le=S.max_steps,
        description="Mini-batch (or dropout) runs: evaluate the loss, accuracy and test metrics on the whole sets "
        "only at theta_t with t a multiple of this and at the last step (null in between); a run's "
        "`evaluate_every` says what it got (1 for a full batch, whose loss comes with every step). The 100x "
        "divergence test is applied at the evaluated steps; a non-finite gradient is divergence at any step.",
    ),
]


class TraceRequest(Strict):
    """One forward and backward pass at theta_0 over the whole (training) data."""

    network: NetworkIn
    data: DataIn
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "network": {
                        "layers": [2, 2, 1],
                        "activations": ["sigmoid", "sigmoid"],
                        "loss": "half_mse",
                        "weights": [[[0.1, 0.0625], [0.2, 0.25]], [[0.4, 0.6]]],
                        "biases": [[0, 0], [-0.3546572]],
                    },
                    "data": {"X": [[0.5, 0.8]], "Y": [[1.0]]},
                }
            ]
        }
    )


# the network and data of the /train and /race examples in the OpenAPI docs
SPIRAL_EXAMPLE = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["tanh", "tanh", "sigmoid"], "loss": "bce", "init": "he"},
    "data": {"dataset": "spiral", "n": 200, "noise": 0.05},
}


class TrainRequest(ExperimentIn):
    """Train one optimizer for `steps` steps."""

    optimizer: OptimizerIn
    steps: Steps
    evaluate_every: EvaluateEvery = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **SPIRAL_EXAMPLE,
                    "optimizer": {"name": "adam", "lr": 0.01},
                    "steps": 500,
                    "seed": 0,
                }
            ]
        }
    )


class RaceRequest(ExperimentIn):
    """2 to 8 contestants from the same theta_0 on the same batch order."""

    optimizers: Annotated[list[OptimizerIn], Field(min_length=2, max_length=S.max_contestants)]
    steps: Steps
    evaluate_every: EvaluateEvery = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **SPIRAL_EXAMPLE,
                    "optimizers": [
                        {"name": "sgd", "lr": 1.0},
                        {"name": "momentum", "lr": 1.0},
                        {"name": "rmsprop", "lr": 0.01},
                        {"name": "adam", "lr": 0.01},
                    ],
                    "steps": 300,
                }
            ]
        }
    )


class SpecRef(Strict):
    """An experiment given inline (`spec`) or as the compact token from a URL (`spec_token`)."""

    spec: ExperimentIn | None = None
    spec_token: Annotated[str, Field(min_length=8, max_length=20_000, pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    contestant: Annotated[int, Field(ge=0, lt=S.max_contestants)] = 0

    @model_validator(mode="after")
    def one_spec(self):
        if (self.spec is None) == (self.spec_token is None):
            raise ValueError("spec: give exactly one of spec or spec_token")
        return self


StepPart = Literal["data", "forward", "backward", "gradients", "params", "state"]


class StepRequest(SpecRef):
    """The full record of step t (theta_t -> theta_{t+1}); `samples` and `parts` ask for less of it."""

    t: Annotated[int, Field(ge=0, le=S.max_steps)] = 0
    samples: (
        Annotated[
            list[Annotated[int, Field(ge=0, le=S.max_rows)]],
            Field(
                min_length=1,
                max_length=64,
                description="Positions in the step's batch (0-based) whose per-sample values (X, Y, rows, "
                "per_sample_loss, layers[].z/a/sigma_prime/delta/mask) are returned; default: every sample. "
                "The answer then carries `samples`, these positions.",
            ),
        ]
        | None
    ) = None
    parts: (
        Annotated[
            list[StepPart],
            Field(
                min_length=1,
                max_length=6,
                description="Which groups of arrays to return; default: all. data = X, Y, rows, per_sample_loss; "
                "forward = layers[].z, a, sigma_prime, mask; backward = layers[].delta; gradients = layers[].dW, "
                "db and grad; params = params_before, params_after, update; state = optimizer.state_before, "
                "state_after. The scalars (losses, learning rate, clip, optimizer name and equations) always come.",
            ),
        ]
        | None
    ) = None
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "spec": {
                        "network": {"layers": [2, 2, 1], "activations": ["sigmoid", "sigmoid"], "loss": "half_mse"},
                        "data": {"dataset": "xor"},
                        "optimizer": {"name": "sgd", "lr": 0.5},
                    },
                    "t": 3,
                }
            ]
        }
    )


class GradcheckRequest(SpecRef):
    """Analytic vs central-difference gradients at theta_t on the whole training set."""

    t: Annotated[int, Field(ge=0, le=S.max_steps)] = 0
    epsilon: Annotated[float, Field(ge=1e-10, le=1e-2)] = 1e-7
    max_params: Annotated[int, Field(ge=1, le=S.max_gradcheck_params)] | None = None
    seed: Seed = 0


class SurfaceRequest(SpecRef):
    """Loss over two parameters (`kind: parameters`), a filter-normalised random slice (`kind: slice`) or the plane of
    the paths' first two principal directions (`kind: pca`, what /race draws), with paths; every plane through θ₀."""

    kind: Literal["parameters", "slice", "pca"] = "parameters"
    i: Annotated[int, Field(ge=0)] = 0
    j: Annotated[int, Field(ge=0)] = 1
    span: Annotated[float, Field(gt=0, le=1000)] | None = None
    resolution: Annotated[int, Field(ge=5, le=S.max_surface_resolution)] = 41
    steps: Annotated[int, Field(ge=0, le=S.max_steps)] = 0
    seed: Seed = 0


class ErrorOut(BaseModel):
    """FastAPI's error shape: detail[].loc names the field, detail[].msg says what is wrong."""

    detail: list[dict[str, Any]]
