"""Spec validation: every bad field raises ValueError whose message starts with the field's name."""

import base64
import json
import math
import zlib

import pytest

from engine import experiment as ex
from engine.activations import ACTIVATIONS
from engine.network import MAX_HIDDEN_LAYERS, Network
from engine.optimizers import OPTIMIZERS
from engine.schedules import SCHEDULES
from engine.spec import MAX_CONTESTANTS, Experiment, experiment_from_dict

NET = {"layers": [2, 3, 1], "activations": ["sigmoid", "sigmoid"], "loss": "bce"}


def with_(**overrides):
    """A valid spec with some top-level entries replaced."""
    return {"network": dict(NET), "data": {"dataset": "xor"}, "optimizer": {"name": "sgd"}, **overrides}


def net(**overrides):
    return with_(network={**NET, **overrides})


def test_the_base_spec_is_valid():
    spec = experiment_from_dict(with_())
    assert ex.prepare(spec).params0.W[0].shape == (3, 2)


BAD = {
    # network
    "too few layers": (net(layers=[2], activations=[]), "layers"),
    "too many hidden layers": (
        net(
            layers=[2] + [3] * (MAX_HIDDEN_LAYERS + 1) + [1],
            activations=["tanh"] * (MAX_HIDDEN_LAYERS + 1) + ["sigmoid"],
        ),
        "layers",
    ),
    "zero units": (net(layers=[2, 0, 1]), "layers"),
    "fractional units": (net(layers=[2, 2.5, 1]), "layers"),
    "negative units": (net(layers=[2, -3, 1]), "layers"),
    "activation count": (net(activations=["sigmoid"]), "activations"),
    "unknown activation": (net(activations=["sigmoid", "swish"]), r"activations\[1\]"),
    "unknown hidden activation": (net(activations=["gelu", "sigmoid"]), r"activations\[0\]"),
    "softmax on a hidden layer": (
        net(layers=[2, 3, 2], activations=["softmax", "softmax"], loss="cross_entropy"),
        r"activations\[0\]",
    ),
    "softmax with one unit": (net(activations=["tanh", "softmax"], loss="mse"), "activations"),
    "unknown loss": (net(loss="hinge"), "loss"),
    "bce without sigmoid output": (net(activations=["sigmoid", "linear"], loss="bce"), "loss"),
    "bce with softmax output": (net(layers=[2, 3, 2], activations=["sigmoid", "softmax"], loss="bce"), "loss"),
    "cross_entropy without softmax": (net(loss="cross_entropy"), "loss"),
    "unknown init": (net(init="glorot"), r"network\.init"),
    "negative network seed": (net(seed=-1), r"network\.seed"),
    "fractional network seed": (net(seed=1.5), r"network\.seed"),
    # data
    "zero n": (with_(data={"dataset": "moons", "n": 0}), r"data\.n"),
    "fractional n": (with_(data={"dataset": "moons", "n": 10.5}), r"data\.n"),
    "text n": (with_(data={"dataset": "moons", "n": "100"}), r"data\.n"),
    "huge n": (with_(data={"dataset": "moons", "n": 10**6}), r"data\.n"),
    "negative noise": (with_(data={"dataset": "moons", "noise": -0.1}), r"data\.noise"),
    "nan noise": (with_(data={"dataset": "moons", "noise": math.nan}), r"data\.noise"),
    "negative data seed": (with_(data={"dataset": "moons", "seed": -2}), r"data\.seed"),
    "test fraction": (with_(data={"dataset": "moons", "test_fraction": 0.95}), r"data\.test_fraction"),
    # optimizers
    "unknown optimizer": (with_(optimizer={"name": "lbfgs"}), r"optimizer\.name"),
    "unknown hyperparameter": (with_(optimizer={"name": "adam", "momentum": 0.9}), r"optimizer\.momentum"),
    "misspelt hyperparameter": (with_(optimizer={"name": "sgd", "learning_rate": 0.1}), r"optimizer\.learning_rate"),
    "zero lr": (with_(optimizer={"name": "sgd", "lr": 0}), r"optimizer\.lr"),
    "infinite lr": (with_(optimizer={"name": "sgd", "lr": math.inf}), r"optimizer\.lr"),
    "beta 1": (with_(optimizer={"name": "momentum", "beta": 1.0}), r"optimizer\.beta"),
    "beta2 negative": (with_(optimizer={"name": "adam", "beta2": -0.5}), r"optimizer\.beta2"),
    "eps zero": (with_(optimizer={"name": "rmsprop", "eps": 0}), r"optimizer\.eps"),
    "zero optimizer batch": (with_(optimizer={"name": "sgd", "batch_size": 0}), r"optimizer\.batch_size"),
    "fractional optimizer batch": (with_(optimizer={"name": "sgd", "batch_size": 2.5}), r"optimizer\.batch_size"),
    "zero batch": (with_(batch_size=0), "batch_size"),
    "no optimizers": (with_(optimizers=[]), "optimizers"),
    "too many optimizers": (with_(optimizers=[{"name": "sgd"}] * (MAX_CONTESTANTS + 1)), "optimizers"),
    "optimizers not a list": (with_(optimizers={"name": "sgd"}), "optimizers"),
    # schedules
    "unknown schedule": (with_(schedule={"name": "warmup"}), r"schedule\.name"),
    "unknown contestant schedule": (
        with_(optimizer={"name": "sgd", "schedule": {"name": "cyclic"}}),
        r"schedule\.name",
    ),
    "schedule gamma": (with_(schedule={"name": "step", "gamma": 2}), r"schedule\.gamma"),
    "schedule T": (with_(optimizer={"name": "sgd", "schedule": {"name": "cosine", "T": 0}}), r"schedule\.T"),
    "schedule unknown parameter": (with_(schedule={"name": "exponential", "gamma": 0.5}), r"schedule\.gamma"),
    # regularisation
    "dropout 1": (with_(dropout=1.0), "dropout"),
    "dropout negative": (with_(dropout=[-0.1]), "dropout"),
    "dropout count": (
        net(layers=[2, 3, 3, 1], activations=["relu", "relu", "sigmoid"]) | {"dropout": [0.1]},
        "dropout",
    ),
    "dropout on the output": (with_(dropout=[0.2, 0.3]), "dropout"),
    "dropout text": (with_(dropout=["0.2"]), "dropout"),
    "clip_norm zero": (with_(clip_norm=0), "clip_norm"),
    "clip_norm negative": (with_(clip_norm=-1.0), "clip_norm"),
    "clip_norm text": (with_(clip_norm="1"), "clip_norm"),
    "clip_norm nan": (with_(clip_norm=math.nan), "clip_norm"),
    "negative l2": (with_(l2=-0.1), "l2"),
    "huge l2": (with_(l2=11), "l2"),
    "negative l1": (with_(l1=-1e-3), "l1"),
    "text l1": (with_(l1="0.1"), "l1"),
    "negative seed": (with_(seed=-1), "seed"),
    "fractional seed": (with_(seed=0.5), "seed"),
    "bool seed": (with_(seed=True), "seed"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_spec_names_the_field(case):
    raw, field = BAD[case]
    with pytest.raises(ValueError, match=rf"^{field}:"):
        experiment_from_dict(raw)


@pytest.mark.parametrize("raw", [None, [], "spec", 3])
def test_spec_must_be_an_object(raw):
    with pytest.raises(ValueError, match=r"^spec(_token)?:"):
        experiment_from_dict(raw)


def token_of(payload: bytes) -> str:
    """What to_token does, for arbitrary bytes."""
    return base64.urlsafe_b64encode(zlib.compress(payload)).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "%%%",
        "not-a-token",
        pytest.param("A", id="bad-base64-length"),  # binascii.Error, a ValueError subclass
        pytest.param("AAAAA", id="bad-base64-length-5"),
        pytest.param(token_of(b"not json"), id="not-json"),  # json.JSONDecodeError, a ValueError subclass
        pytest.param(token_of(b"\xff\xfe\x00 not utf-8"), id="not-utf8"),
        pytest.param(token_of(b"[1, 2]"), id="json-list"),
    ],
)
def test_bad_token_names_the_spec(token):
    with pytest.raises(ValueError, match=r"^spec(_token)?:"):
        Experiment.from_token(token)


def test_a_token_carrying_a_bad_spec_names_the_field():
    token = token_of(json.dumps(with_(optimizer={"name": "adam", "lr": -1})).encode())
    with pytest.raises(ValueError, match=r"^optimizer\.lr:"):
        Experiment.from_token(token)


# JSON of the wrong type where an object, list or name belongs: the app turns ValueError into a 4xx, anything
# else into a 500, so these must be ValueErrors naming the field (at the latest when the experiment is built)
MALFORMED = {
    "network not an object": ({"network": 5}, "network"),
    "layers not a list": ({"network": {"layers": 5}}, r"(network\.)?layers"),
    "layers of text": ({"network": {"layers": ["a", "b"]}}, r"(network\.)?layers"),
    "NaN layer size": ({"network": {"layers": [2, math.nan, 1]}}, r"(network\.)?layers"),
    "loss a list": ({"network": {"loss": ["bce"]}}, r"(network\.)?loss"),
    "init a list": ({"network": {"init": ["xavier"]}}, r"network\.init"),
    "weights a number": (net(weights=5), r"(network\.)?weights"),
    "biases a number": (net(weights=[[[1, 2]] * 3, [[1, 2, 3]]], biases=7), r"(network\.)?biases"),
    "data not an object": ({"data": 5}, "data"),
    "optimizer not an object": ({"optimizer": 5}, "optimizer"),
    "optimizers of numbers": ({"optimizers": [5]}, r"optimizers?(\[0\])?"),
    "optimizer name a list": ({"optimizer": {"name": ["sgd"]}}, r"optimizer\.name"),
    "schedule not an object": ({"schedule": 5}, "schedule"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_wrongly_typed_json_raises_value_error_naming_the_field(case):
    raw, field = MALFORMED[case]
    with pytest.raises(ValueError, match=rf"^{field}:"):
        ex.prepare(experiment_from_dict(raw))


@pytest.mark.parametrize("size", [10**9, 1e300])
def test_absurd_layer_sizes_are_refused_by_the_spec(size):
    """Only the spec can refuse these: building the network would try to allocate the weights."""
    with pytest.raises(ValueError, match=r"^(network\.)?layers"):
        experiment_from_dict(net(layers=[2, size, 1]))


@pytest.mark.parametrize("name", [name for name, act in ACTIVATIONS.items() if act.output_only])
def test_output_only_activations_are_refused_on_every_hidden_layer(name):
    for position in range(3):
        activations = ["tanh"] * 3 + ["softmax"]
        activations[position] = name
        with pytest.raises(ValueError, match=rf"^activations\[{position}\]:"):
            Network((2, 3, 3, 3, 2), tuple(activations), "cross_entropy")


def test_eight_hidden_layers_are_allowed():
    layers = [2] + [3] * MAX_HIDDEN_LAYERS + [1]
    spec = experiment_from_dict(net(layers=layers, activations=["tanh"] * MAX_HIDDEN_LAYERS + ["sigmoid"]))
    assert len(spec.network.layers) == MAX_HIDDEN_LAYERS + 2


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_resolves_all_its_hyperparameters(name):
    spec = experiment_from_dict(with_(optimizer={"name": name}))
    assert dict(spec.optimizers[0].hyper) == OPTIMIZERS[name].defaults


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_is_accepted(name):
    spec = experiment_from_dict(with_(schedule={"name": name}))
    assert spec.optimizers[0].schedule.name == name


# ---- fields only a built experiment can check (they depend on the data or on each other) ----------------------

BAD_WHEN_BUILT = {
    "wrong weight shape": (net(weights=[[[1, 2, 3]] * 3, [[1, 2, 3]]]), r"(network\.)?weights\[0\]"),
    "wrong second weight shape": (net(weights=[[[1, 2]] * 3, [[1, 2]]]), r"(network\.)?weights\[1\]"),
    "wrong number of weight matrices": (net(weights=[[[1, 2]] * 3]), r"(network\.)?weights"),
    "NaN in weights": (net(weights=[[[1, math.nan]] * 3, [[1, 2, 3]]]), r"(network\.)?weights\[0\]"),
    "infinity in weights": (net(weights=[[[1, 2]] * 3, [[1, math.inf, 3]]]), r"(network\.)?weights\[1\]"),
    "text in weights": (net(weights=[[["a", 2]] * 3, [[1, 2, 3]]]), r"(network\.)?weights\[0\]"),
    "wrong bias length": (net(weights=[[[1, 2]] * 3, [[1, 2, 3]]], biases=[[0, 0], [0]]), r"(network\.)?biases\[0\]"),
    "NaN in biases": (
        net(weights=[[[1, 2]] * 3, [[1, 2, 3]]], biases=[[0, 0, 0], [math.nan]]),
        r"(network\.)?biases\[1\]",
    ),
    "biases without weights": (net(biases=[[0, 0, 0], [0]]), r"network\.biases"),
    "input size does not fit the data": (net(layers=[3, 3, 1]), r"network\.layers"),
    "output size does not fit the data": (
        net(layers=[2, 3, 2], activations=["tanh", "softmax"], loss="cross_entropy"),
        r"network\.layers",
    ),
}


@pytest.mark.parametrize("case", BAD_WHEN_BUILT)
def test_bad_spec_is_refused_naming_the_field_by_the_time_it_is_built(case):
    raw, field = BAD_WHEN_BUILT[case]
    with pytest.raises(ValueError, match=rf"^{field}:"):
        ex.prepare(experiment_from_dict(raw))


@pytest.mark.parametrize(
    "raw,field",
    [
        (with_(data={"dataset": "moons", "n": 5000}), r"data\.n"),  # over moons' own limit of 2000
        (with_(data={"dataset": "mnist"}), r"data\.dataset"),
    ],
)
def test_dataset_fields_are_named_with_their_spec_path(raw, field):
    """data.n and data.dataset are spec fields like data.noise: their errors should say so."""
    with pytest.raises(ValueError, match=rf"^{field}:"):
        ex.prepare(experiment_from_dict(raw))
