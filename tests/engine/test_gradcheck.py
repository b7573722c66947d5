"""Tests for engine.gradcheck: backprop agrees with central differences on every allowed activation/loss pair,
a wrong gradient is caught, sampling is seeded, and the experiment helper checks theta_t."""

import dataclasses

import numpy as np
import pytest

from engine import gradcheck
from engine.activations import ACTIVATIONS
from engine.backprop import backprop
from engine.experiment import prepare, state_at
from engine.gradcheck import GradCheck, check_experiment, difference, gradient_check, parameter_names, relative_error
from engine.losses import LOSSES
from engine.network import Network, Params, init_params, validate_network
from engine.spec import experiment_from_dict

HIDDEN = [name for name, act in ACTIVATIONS.items() if not act.output_only]


def _allowed(output, loss):
    """True when the network validator accepts this output activation with this loss."""
    try:
        validate_network((3, 3), (output,), loss)
    except ValueError:
        return False
    return True


OUTPUT_LOSS = [(out, loss) for out in ACTIVATIONS for loss in LOSSES if _allowed(out, loss)]
REGULARISATION = [pytest.param(0.0, 0.0, id="plain"), pytest.param(0.1, 0.05, id="l2+l1")]


def _problem(hidden, output, loss, seed=0, m=16):
    """A seeded 3-4-3-3 network with nonzero biases, weights at least 0.2 from 0 (a stable sign for L1), and data."""
    net = Network((3, 4, 3, 3), (hidden, hidden, output), loss)
    rng = np.random.default_rng(seed + 1000)
    base = init_params(net, "xavier", seed)
    W = tuple(np.sign(W) * (np.abs(W) + 0.2) for W in base.W)
    b = tuple(0.3 * rng.standard_normal(n) for n in net.layers[1:])
    X = rng.standard_normal((m, 3))
    if output == "softmax" or loss == "cross_entropy":
        Y = np.eye(3)[rng.integers(0, 3, m)]
    elif loss == "bce":
        Y = rng.integers(0, 2, (m, 3)).astype(float)
    else:
        Y = rng.uniform(-1.0, 1.0, (m, 3))
    return net, Params(W, b), X, Y


def test_the_pairs_cover_the_brief():
    expected = {("sigmoid", "bce"), ("softmax", "cross_entropy"), ("softmax", "mse"), ("softmax", "half_mse")}
    expected |= {(out, loss) for out in ("sigmoid", "linear", "tanh") for loss in ("mse", "half_mse")}
    assert expected <= set(OUTPUT_LOSS)
    assert ("softmax", "bce") not in OUTPUT_LOSS and ("tanh", "cross_entropy") not in OUTPUT_LOSS
    assert set(HIDDEN) == {"sigmoid", "tanh", "relu", "leaky_relu", "linear"}


@pytest.mark.parametrize("l2, l1", REGULARISATION)
@pytest.mark.parametrize("output, loss", OUTPUT_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backprop_passes_the_check(hidden, output, loss, l2, l1):
    net, params, X, Y = _problem(hidden, output, loss)
    result = gradient_check(net, params, X, Y, l2=l2, l1=l1)
    assert result.difference < 1e-7, f"difference {result.difference:.3g}, worst {result.worst}"
    assert result.passed and result.threshold == 1e-7 and result.epsilon == 1e-7
    assert np.linalg.norm(result.analytic) > 1e-3  # a real gradient, not 0 == 0
    np.testing.assert_array_equal(result.index, np.arange(net.n_params))
    assert list(result.names) == parameter_names(net)


@pytest.mark.parametrize("bug", ["W1 off by 1%", "penalty forgotten", "b3 sign flipped"])
def test_a_wrong_gradient_fails(monkeypatch, bug):
    net, params, X, Y = _problem("tanh", "sigmoid", "bce")

    def wrong_backprop(net, params, X, Y, l2=0.0, l1=0.0, *args):
        if bug == "penalty forgotten":
            return backprop(net, params, X, Y)
        bp = backprop(net, params, X, Y, l2, l1, *args)
        if bug == "W1 off by 1%":
            return dataclasses.replace(bp, grad_W=(bp.grad_W[0] * 1.01,) + bp.grad_W[1:])
        return dataclasses.replace(bp, grad_b=bp.grad_b[:2] + (-bp.grad_b[2],))

    monkeypatch.setattr(gradcheck, "backprop", wrong_backprop)
    result = gradient_check(net, params, X, Y, l2=0.1, l1=0.05)
    assert not result.passed
    assert result.difference > 1e-4
    expected_layer = {"W1 off by 1%": "W1", "penalty forgotten": "W", "b3 sign flipped": "b3"}[bug]
    assert result.worst.startswith(expected_layer)


def test_sampled_check_is_seeded():
    net, params, X, Y = _problem("sigmoid", "linear", "mse")
    full = gradient_check(net, params, X, Y)
    a = gradient_check(net, params, X, Y, max_params=7, seed=3)
    b = gradient_check(net, params, X, Y, max_params=7, seed=3)
    c = gradient_check(net, params, X, Y, max_params=7, seed=4)
    assert a.index.size == len(a.names) == a.analytic.size == a.numeric.size == a.relative_error.size == 7
    assert np.all(np.diff(a.index) > 0)  # sorted, no repeats
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.numeric, b.numeric)
    assert not np.array_equal(a.index, c.index)
    np.testing.assert_array_equal(a.analytic, full.analytic[a.index])
    np.testing.assert_array_equal(a.numeric, full.numeric[a.index])
    assert list(a.names) == [parameter_names(net)[i] for i in a.index]
    assert a.passed


@pytest.mark.parametrize("max_params", [None, 43, 1000])
def test_max_params_at_or_above_the_count_checks_everything(max_params):
    net, params, X, Y = _problem("relu", "softmax", "cross_entropy")
    assert net.n_params == 43
    result = gradient_check(net, params, X, Y, max_params=max_params)
    np.testing.assert_array_equal(result.index, np.arange(43))


def test_parameter_names_follow_the_flat_order():
    net = Network((2, 3, 2), ("tanh", "linear"), "mse")
    names = parameter_names(net)
    assert names[:4] == ["W1[0,0]", "W1[0,1]", "b1[0]", "W1[1,0]"]
    assert names[-3:] == ["W2[1,1]", "W2[1,2]", "b2[1]"]
    assert len(names) == len(set(names)) == net.n_params
    params = init_params(net, "he", 5)
    params = Params(params.W, tuple(np.arange(n) + 0.5 for n in net.layers[1:]))
    theta = params.flat()
    for index, name in enumerate(names):
        kind, layer, rest = name[0], int(name[1]), name[3:-1]
        value = params.W[layer - 1][tuple(map(int, rest.split(",")))] if kind == "W" else params.b[layer - 1][int(rest)]
        assert theta[index] == value, name


def test_relative_error_and_difference_definitions():
    a = np.array([0.0, 1.0, 1.0, 2.0])
    n = np.array([0.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(relative_error(a, n), [0.0, 0.0, 1.0, 1.0])
    assert relative_error(np.array([3.0]), np.array([1.0]))[0] == 0.5
    assert difference(np.zeros(3), np.zeros(3)) == 0.0
    assert difference(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(np.sqrt(2) / 2)


def test_a_record_is_frozen():
    net, params, X, Y = _problem("tanh", "tanh", "half_mse")
    result = gradient_check(net, params, X, Y, max_params=3)
    assert isinstance(result, GradCheck)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.passed = False


@pytest.mark.parametrize("epsilon", [0, -1e-7, 1e-11, 0.1, float("nan"), "1e-7", True])
def test_bad_epsilon(epsilon):
    net, params, X, Y = _problem("tanh", "sigmoid", "bce")
    with pytest.raises(ValueError, match="epsilon"):
        gradient_check(net, params, X, Y, epsilon=epsilon)


@pytest.mark.parametrize("max_params", [0, -3, 2.5, True])
def test_bad_max_params(max_params):
    net, params, X, Y = _problem("tanh", "sigmoid", "bce")
    with pytest.raises(ValueError, match="max_params"):
        gradient_check(net, params, X, Y, max_params=max_params)


@pytest.mark.parametrize("epsilon", [1e-10, 1e-2])
def test_epsilon_range_is_inclusive(epsilon):
    net, params, X, Y = _problem("tanh", "sigmoid", "bce")
    assert gradient_check(net, params, X, Y, epsilon=epsilon, max_params=2).epsilon == epsilon


SPEC = {
    "network": {"layers": [2, 4, 1], "activations": ["tanh", "sigmoid"], "loss": "bce"},
    "data": {"dataset": "moons", "n": 40},
    "l2": 0.01,
    "l1": 0.001,
    "dropout": [0.5],
    "optimizer": {"name": "sgd", "lr": 0.5},
}


@pytest.mark.parametrize("t", [0, 7])
def test_check_experiment_uses_theta_t_and_the_full_training_set(t):
    spec = experiment_from_dict(SPEC)
    result = check_experiment(spec, t=t)
    assert result.passed, f"difference {result.difference:.3g}"
    prep = prepare(spec)
    params = Params.from_flat(prep.net, state_at(spec, t).theta[0])
    bp = backprop(prep.net, params, prep.X, prep.Y, spec.l2, spec.l1)  # no dropout masks
    np.testing.assert_array_equal(result.analytic, Params(bp.grad_W, bp.grad_b).flat())


def test_check_experiment_moves_with_t():
    spec = experiment_from_dict(SPEC)
    assert not np.array_equal(check_experiment(spec, t=0).analytic, check_experiment(spec, t=7).analytic)


@pytest.mark.parametrize(
    "field, kwargs",
    [("t", {"t": -1}), ("k", {"k": 1}), ("epsilon", {"epsilon": 1.0}), ("max_params", {"max_params": 0})],
)
def test_check_experiment_validation(field, kwargs):
    with pytest.raises(ValueError, match=field):
        check_experiment(experiment_from_dict(SPEC), **kwargs)
