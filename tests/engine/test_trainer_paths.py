"""The trainer's faster paths against the readable reference: softmax in the column layout and the cross-entropy
summary from its max and sum (one-hot and soft targets, with a test set), per-layer ||dW|| by vecdot on nets over
50,000 parameters, delta carried back through the whole transposed [W b] (relu, dropout), races of these, and the
one update call of neighbouring contestants that share a rule (a learning-rate sweep)."""

import numpy as np
import pytest

from engine import experiment as ex
from engine.backprop import objective
from engine.network import Params
from engine.spec import experiment_from_dict

TOL = 1e-12
RNG = np.random.default_rng(11)
SOFT_Y = RNG.dirichlet(np.ones(4), size=24)  # rows are distributions, not one-hot
SOFT_X = RNG.normal(size=(24, 3))

SPECS = {
    # 64-800-10: 60,010 parameters, past the 50,000 where ||dW^l|| goes layer by layer; full batch with a test set
    "relu_softmax_big": {
        "network": {"layers": [64, 800, 10], "activations": ["relu", "softmax"], "loss": "cross_entropy", "init": "he"},
        "data": {"dataset": "digits", "n": 60, "test_fraction": 0.25},
        "optimizer": {"name": "sgd", "lr": 0.3},
    },
    "soft_targets": {
        "network": {"layers": [3, 6, 5, 4], "activations": ["relu", "tanh", "softmax"], "loss": "cross_entropy"},
        "data": {"X": SOFT_X.tolist(), "Y": SOFT_Y.tolist()},
        "optimizer": {"name": "adam", "lr": 0.05},
    },
    "relu_dropout_softmax": {
        "network": {"layers": [2, 7, 7, 3], "activations": ["relu", "relu", "softmax"], "loss": "cross_entropy"},
        "data": {"dataset": "spiral3", "n": 30},
        "optimizer": {"name": "momentum", "lr": 0.5},
        "dropout": [0.3, 0.2],
        "batch_size": 9,
        "seed": 4,
    },
    "race_softmax": {
        "network": {"layers": [64, 80, 10], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
        "data": {"dataset": "digits", "n": 40},
        "optimizers": [{"name": "sgd", "lr": 0.5}, {"name": "adam", "lr": 0.01}, {"name": "rmsprop", "lr": 0.01}],
    },
    # neighbours sharing a rule are updated in one call: an Adam sweep (lr and beta2 differ), SGD with the same
    # momentum, two AdamW whose weight decay differs (a branching hyperparameter: two calls), Adagrad's lr_decay
    "race_sweep": {
        "network": {"layers": [2, 6, 1], "activations": ["tanh", "sigmoid"], "loss": "bce"},
        "data": {"dataset": "moons", "n": 30},
        "optimizers": [
            {"name": "adam", "lr": 0.01},
            {"name": "adam", "lr": 0.05, "beta2": 0.99},
            {"name": "adam", "lr": 0.2},
            {"name": "sgd", "lr": 0.1, "momentum": 0.9},
            {"name": "sgd", "lr": 0.5, "momentum": 0.9},
            {"name": "adamw", "lr": 0.02, "weight_decay": 0.01},
            {"name": "adamw", "lr": 0.02, "weight_decay": 0.1},
            {"name": "adagrad", "lr": 0.1, "lr_decay": 0.01},
        ],
    },
}
STEPS = (0, 1, 5)
HORIZON = 6


@pytest.mark.parametrize("name", SPECS)
def test_loss_and_norms_are_the_reference(name):
    spec = experiment_from_dict(SPECS[name])
    prep = ex.prepare(spec)
    histories = ex.train(spec, HORIZON)
    for k, history in enumerate(histories):
        assert history.diverged_at is None
        for t in STEPS + (HORIZON,):
            params = Params.from_flat(prep.net, ex.state_at(spec, t, k).theta[0])
            expected = objective(prep.net, params, prep.X, prep.Y, spec.l2, spec.l1)
            assert history.loss[t] == pytest.approx(expected, rel=TOL, abs=TOL), f"contestant {k}, t = {t}"
            if history.test_loss is not None:
                test = objective(prep.net, params, prep.X_test, prep.Y_test, spec.l2, spec.l1)
                assert history.test_loss[t] == pytest.approx(test, rel=TOL, abs=TOL)
        for t in STEPS:
            record = ex.step_record(spec, t, k)
            fast = ex.state_at(spec, t + 1, k)
            np.testing.assert_allclose(record.params_after.flat(), fast.theta[0], rtol=TOL, atol=TOL)
            for l, layer in enumerate(record.backprop.layers):
                delta_norm = np.sqrt(np.mean(np.sum(layer.delta**2, axis=1)))
                assert history.delta_norm[t, l] == pytest.approx(delta_norm, rel=TOL, abs=TOL)
                assert history.grad_norm[t, l] == pytest.approx(np.linalg.norm(layer.dW), rel=TOL, abs=TOL)


def test_the_specs_take_the_paths_they_are_named_for():
    assert ex.prepare(experiment_from_dict(SPECS["relu_softmax_big"])).net.n_params > 50_000
    prep = ex.prepare(experiment_from_dict(SPECS["race_sweep"]))
    trainer = ex.trainer_for(prep, list(range(8)), None, 5, ex.start(prep, 8))
    assert [(a, b) for a, b, *_ in trainer._update_calls] == [(0, 3), (3, 5), (5, 6), (6, 7), (7, 8)]
    assert ex.prepare(experiment_from_dict(SPECS["relu_softmax_big"])).X_test.shape[0] > 0
    Y = ex.prepare(experiment_from_dict(SPECS["soft_targets"])).Y
    assert np.all(Y.max(axis=1) < 1) and np.allclose(Y.sum(axis=1), 1)


@pytest.mark.parametrize("name", ["race_softmax", "race_sweep"])
def test_a_contestant_in_a_race_is_its_run_alone_bit_for_bit(name):
    race = SPECS[name]
    runs = ex.train_runs(experiment_from_dict(race), HORIZON)
    together = [run.history for run in runs]
    for k, optimizer in enumerate(race["optimizers"]):
        solo = ex.train_runs(experiment_from_dict({**race, "optimizers": [optimizer]}), HORIZON)[0]
        alone = solo.history
        np.testing.assert_array_equal(runs[k].theta, solo.theta)
        np.testing.assert_array_equal(together[k].loss, alone.loss)
        np.testing.assert_array_equal(together[k].grad_norm, alone.grad_norm)
        np.testing.assert_array_equal(together[k].delta_norm, alone.delta_norm)
