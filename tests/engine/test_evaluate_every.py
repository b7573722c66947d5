"""Sparse evaluation of mini-batch runs (StackedTrainer.run's evaluate_every): the same training, fewer losses."""

import numpy as np
import pytest

from engine import experiment as ex
from engine.spec import experiment_from_dict

MINI_BATCH = {
    "network": {"layers": [2, 6, 1], "activations": ["tanh", "sigmoid"], "loss": "bce", "seed": 4},
    "data": {"dataset": "moons", "n": 40, "seed": 2, "test_fraction": 0.25},
    "optimizers": [{"name": "adam", "lr": 0.05}, {"name": "sgd", "lr": 0.5}],
    "batch_size": 7,
}
FULL_BATCH = {**MINI_BATCH, "batch_size": None}
STEPS = 23


def run(raw, steps=STEPS, every=1, chunks=None):
    spec = experiment_from_dict(raw)
    prep = ex.prepare(spec)
    trainer = ex.trainer_for(prep, [0, 1], spec.optimizers[0].batch_size, steps, ex.start(prep, 2))
    if chunks is None:
        return trainer.run(steps, evaluate_every=every), trainer
    parts = [trainer.run(n, evaluate_every=every) for n in chunks]
    return parts, trainer


def test_evaluated_steps_hold_the_dense_runs_numbers_and_the_rest_is_nan():
    dense, dense_trainer = run(MINI_BATCH)
    sparse, sparse_trainer = run(MINI_BATCH, every=5)
    expected = np.zeros(STEPS + 1, dtype=bool)
    expected[::5] = True
    expected[STEPS] = True  # the last theta is always evaluated
    np.testing.assert_array_equal(sparse_trainer.theta, dense_trainer.theta)  # the same training
    for d, s in zip(dense, sparse):
        assert d.evaluated is None
        np.testing.assert_array_equal(s.evaluated, expected)
        for name in ("loss", "test_loss", "accuracy", "test_accuracy"):
            ours, full = getattr(s, name), getattr(d, name)
            np.testing.assert_array_equal(ours[expected], full[expected], err_msg=name)
            assert np.all(np.isnan(ours[~expected])), name
        for name in ("learning_rate", "delta_norm", "grad_norm"):  # per step, whatever k is
            np.testing.assert_array_equal(getattr(s, name), getattr(d, name), err_msg=name)


def test_a_full_batch_is_evaluated_every_step_whatever_k_is():
    dense, _ = run(FULL_BATCH)
    sparse, _ = run(FULL_BATCH, every=5)
    for d, s in zip(dense, sparse):
        assert s.evaluated is None
        np.testing.assert_array_equal(s.loss, d.loss)


def test_chunks_evaluate_the_same_multiples_of_k_and_each_chunks_end():
    parts, _ = run(MINI_BATCH, every=4, chunks=[6, 10, 7])
    starts = [0, 6, 16]
    for begin, n, part in zip(starts, [6, 10, 7], parts):
        t = np.arange(begin, begin + n + 1)
        np.testing.assert_array_equal(part[0].evaluated, (t % 4 == 0) | (t == begin + n))


BLOWN = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["relu", "relu", "linear"], "loss": "mse"},
    "data": {"dataset": "spiral"},
    "optimizers": [{"name": "sgd", "lr": 100}, {"name": "sgd", "lr": 0.05}],
    "batch_size": 20,
}


def test_the_100x_rule_is_applied_at_the_evaluated_steps():
    dense, _ = run(BLOWN, steps=60)
    sparse, _ = run(BLOWN, steps=60, every=4)
    d = dense[0].diverged_at
    assert d is not None and d < 60
    assert sparse[0].diverged_at == -(-d // 4) * 4  # the first evaluated step at or after the dense run's
    assert sparse[1].diverged_at is None and np.isfinite(sparse[1].loss[60])


def test_a_non_finite_gradient_between_evaluations_is_divergence_at_once():
    sparse, _ = run(BLOWN, steps=300, every=1000)  # only theta_0 and theta_300 are evaluated
    d = sparse[0].diverged_at
    assert d is not None and 0 < d < 300  # found by the gradient, not by the last evaluation
    assert np.all(np.isfinite(sparse[0].grad_norm[:d])) and np.all(np.isnan(sparse[0].grad_norm[d:]))
    assert sparse[1].diverged_at is None


def test_evaluate_every_must_be_positive():
    with pytest.raises(ValueError, match="evaluate_every"):
        run(MINI_BATCH, every=0)
