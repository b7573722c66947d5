"""The fast stacked trainer against the readable reference, note 000's run, XOR, races, divergence, determinism."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from engine import experiment as ex
from engine.activations import ACTIVATIONS
from engine.backprop import objective
from engine.network import Params
from engine.optimizers import OPTIMIZERS
from engine.regularization import batch_indices
from engine.spec import Experiment, experiment_from_dict

TOL = 1e-12
MOONS = {"dataset": "moons", "n": 30, "seed": 1}
SMALL = {"layers": [2, 5, 1], "activations": ["tanh", "sigmoid"], "loss": "bce", "seed": 2}
DEEP_RELU = {"layers": [2, 6, 6, 1], "activations": ["relu", "relu", "sigmoid"], "loss": "bce", "init": "he"}
HIDDEN = [name for name, act in ACTIVATIONS.items() if not act.output_only]

SPECS = {
    "full_batch": {
        "network": {"layers": [2, 4, 1], "activations": ["sigmoid", "sigmoid"], "loss": "bce", "seed": 3},
        "data": {"dataset": "xor"},
        "optimizer": {"name": "sgd", "lr": 0.5},
    },
    "half_mse_note_002": {
        "network": {"layers": [2, 2, 1], "activations": ["sigmoid", "sigmoid"], "loss": "half_mse"},
        "data": {"dataset": "xor"},
        "optimizer": {"name": "sgd", "lr": 1.0},
    },
    "mini_batch": {"network": SMALL, "data": MOONS, "optimizer": {"name": "momentum", "lr": 0.3}, "batch_size": 7},
    "sgd_batch_1": {
        "network": SMALL,
        "data": {**MOONS, "n": 12},
        "optimizer": {"name": "sgd", "lr": 0.2},
        "batch_size": 1,
    },
    "dropout_full_batch": {
        "network": DEEP_RELU,
        "data": MOONS,
        "optimizer": {"name": "adam", "lr": 0.02},
        "dropout": 0.3,
        "seed": 5,
    },
    "dropout_mini_batch": {
        "network": DEEP_RELU,
        "data": MOONS,
        "optimizer": {"name": "sgd", "lr": 0.3},
        "dropout": [0.2, 0.5],
        "batch_size": 8,
        "seed": 6,
    },
    "l2": {
        "network": SMALL,
        "data": MOONS,
        "optimizer": {"name": "nesterov", "lr": 0.1, "weight_decay": 0.01},
        "l2": 0.1,
    },
    "l1": {"network": SMALL, "data": MOONS, "optimizer": {"name": "rmsprop", "lr": 0.01}, "l1": 0.05, "batch_size": 10},
    "clip_norm": {
        "network": {**SMALL, "init": "large"},
        "data": MOONS,
        "optimizer": {"name": "sgd", "lr": 1.0},
        "clip_norm": 0.05,
    },
    "every_optimizer": {
        "network": SMALL,
        "data": MOONS,
        "batch_size": 10,
        "optimizers": [{"name": name} for name in OPTIMIZERS],
    },
    "softmax_cross_entropy": {
        "network": {"layers": [64, 8, 10], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
        "data": {"dataset": "digits", "n": 40},
        "optimizer": {"name": "adam"},
        "batch_size": 16,
    },
    # 10 sigmoid outputs on 120 rows: the BCE summary takes softplus from the output's e^-z (trainer.softplus_from_exp)
    "bce_ten_outputs": {
        "network": {"layers": [64, 6, 10], "activations": ["tanh", "sigmoid"], "loss": "bce"},
        "data": {"dataset": "digits", "n": 120, "test_fraction": 0.2},
        "optimizer": {"name": "adam", "lr": 0.05},
    },
    "bce_ten_outputs_mini_batch": {
        "network": {"layers": [64, 6, 10], "activations": ["tanh", "sigmoid"], "loss": "bce"},
        "data": {"dataset": "digits", "n": 120},
        "optimizer": {"name": "sgd", "lr": 0.5},
        "batch_size": 16,
    },
    "mse_regression": {
        "network": {"layers": [1, 6, 1], "activations": ["tanh", "linear"], "loss": "mse"},
        "data": {"dataset": "sine", "n": 30},
        "optimizer": {"name": "adagrad"},
        "l2": 0.01,
    },
    "half_mse_softmax": {
        "network": {"layers": [2, 5, 3], "activations": ["leaky_relu", "softmax"], "loss": "half_mse"},
        "data": {
            "X": [[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.2]],
            "Y": [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]],
        },
        "optimizer": {"name": "adamw", "lr": 0.05},
        "batch_size": 2,
    },
    "schedule": {
        "network": SMALL,
        "data": MOONS,
        "optimizer": {"name": "sgd", "lr": 0.5, "schedule": {"name": "cosine", "T": 5}},
    },
    **{
        f"hidden_{name}": {
            "network": {"layers": [2, 5, 4, 1], "activations": [name, name, "sigmoid"], "loss": "bce"},
            "data": MOONS,
            "optimizer": {"name": "sgd", "lr": 0.5},
            "batch_size": 12,
            "l2": 0.01,
        }
        for name in HIDDEN
    },
}
STEPS = (0, 1, 4, 9)
HORIZON = 10


def spec_of(name) -> Experiment:
    return experiment_from_dict(SPECS[name])


def contestants(spec):
    return range(len(spec.optimizers))


# ---- (a) the fast loop agrees with the reference, step by step -----------------------------------------------


@pytest.mark.parametrize("name", SPECS)
def test_fast_trainer_step_equals_the_reference_step(name):
    spec = spec_of(name)
    for k in contestants(spec):
        for t in STEPS:
            record = ex.step_record(spec, t, k)
            fast = ex.state_at(spec, t + 1, k)
            np.testing.assert_allclose(
                record.params_after.flat(), fast.theta[0], rtol=TOL, atol=TOL, err_msg=f"contestant {k}, step {t}"
            )
            for key, value in record.state_after.items():  # the optimizer state too
                np.testing.assert_allclose(value, fast.states[0][key], rtol=TOL, atol=TOL, err_msg=f"{key} at {t}")


@pytest.mark.parametrize("name", SPECS)
def test_history_loss_is_the_objective_on_the_training_set(name):
    spec = spec_of(name)
    prep = ex.prepare(spec)
    histories = ex.train(spec, HORIZON)
    for k, history in zip(contestants(spec), histories):
        assert history.loss.shape == (HORIZON + 1,) and history.diverged_at is None
        for t in STEPS + (HORIZON,):
            params = Params.from_flat(prep.net, ex.state_at(spec, t, k).theta[0])
            expected = objective(prep.net, params, prep.X, prep.Y, spec.l2, spec.l1)
            assert history.loss[t] == pytest.approx(expected, rel=TOL, abs=TOL), f"contestant {k}, t = {t}"


@pytest.mark.parametrize("name", SPECS)
def test_history_summaries_equal_the_step_records(name):
    """learning rate, ||delta^l||, ||dW^l|| and the clipping norms of the fast loop are the reference's."""
    spec = spec_of(name)
    histories = ex.train(spec, HORIZON)
    for k, history in zip(contestants(spec), histories):
        for t in STEPS:
            record = ex.step_record(spec, t, k)
            assert history.learning_rate[t] == record.learning_rate
            for l, layer in enumerate(record.backprop.layers):
                delta_norm = np.sqrt(np.mean(np.sum(layer.delta**2, axis=1)))
                assert history.delta_norm[t, l] == pytest.approx(delta_norm, rel=TOL, abs=TOL)
                assert history.grad_norm[t, l] == pytest.approx(np.linalg.norm(layer.dW), rel=TOL, abs=TOL)
            if spec.clip_norm:
                assert history.clip_before[t] == pytest.approx(record.clip_before, rel=TOL)
                assert history.clip_after[t] == pytest.approx(record.clip_after, rel=TOL)
            assert record.full_loss == pytest.approx(history.loss[t], rel=TOL, abs=TOL)


def test_clipping_and_dropout_specs_really_clip_and_drop():
    """Guards the specs above: a spec that never clips or drops would test nothing."""
    record = ex.step_record(spec_of("clip_norm"), 0)
    assert record.clip_before > 4 * record.clip_after and record.clip_after == pytest.approx(0.05, rel=1e-4)
    record = ex.step_record(spec_of("dropout_mini_batch"), 3)
    assert 0 < record.backprop.layers[1].mask.mean() < 1 and record.backprop.layers[2].mask is None
    assert len(ex.step_record(spec_of("mini_batch"), 4).rows) == 2  # the last batch of an epoch: 30 = 4*7 + 2


# ---- (b) note 000's y = 2x run -------------------------------------------------------------------------------

NOTE_000 = {
    "network": {"layers": [1, 1], "activations": ["linear"], "loss": "mse", "weights": [[[0.0]]], "biases": [[0.0]]},
    "data": {"dataset": "linear"},
    "optimizer": {"name": "sgd", "lr": 0.01},
}


def test_note_000_linear_regression_trajectory(capsys):
    history = ex.train(experiment_from_dict(NOTE_000), 1000, keep_path=True)[0]

    # note 000's loop, verbatim but for the three lists that record it
    ws, bs, losses = [], [], []
    x = np.array([1.0, 2.0, 3.0])
    y_true = np.array([2.0, 4.0, 6.0])

    w = 0.0
    b = 0.0
    lr = 0.01

    for epoch in range(1000):
        y_pred = w * x + b
        loss = np.mean((y_true - y_pred) ** 2)
        losses.append(loss)
        # Gradients
        dw = -2 * np.mean((y_true - y_pred) * x)
        db = -2 * np.mean(y_true - y_pred)
        # Update
        w -= lr * dw
        b -= lr * db
        ws.append(w)
        bs.append(b)
        if epoch % 200 == 0:
            print(f"Epoch {epoch}: loss={loss:.4f}, w={w:.4f}, b={b:.4f}")

    print(f"Trained weights: w={w:.4f}, b={b:.4f}")
    printed = capsys.readouterr().out.splitlines()

    np.testing.assert_allclose(history.path[0], [0.0, 0.0], atol=0)
    np.testing.assert_allclose(history.path[1:, 0], ws, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(history.path[1:, 1], bs, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(history.loss[:1000], losses, rtol=TOL, atol=TOL)
    w_end, b_end = history.path[-1]
    assert printed[-1] == "Trained weights: w=1.9708, b=0.0664"
    assert f"Trained weights: w={w_end:.4f}, b={b_end:.4f}" == printed[-1]
    engine_lines = [
        f"Epoch {e}: loss={history.loss[e]:.4f}, w={history.path[e + 1, 0]:.4f}, b={history.path[e + 1, 1]:.4f}"
        for e in range(0, 1000, 200)
    ]
    assert engine_lines == printed[:-1]
    assert history.loss[0] == pytest.approx(56 / 3, rel=1e-15)  # mean of 4, 16, 36


# ---- (c) XOR 2-4-1 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer,steps", [({"name": "adam", "lr": 0.05}, 1000), ({"name": "sgd", "lr": 2.0}, 3000)])
def test_xor_2_4_1_learns(optimizer, steps):
    spec = experiment_from_dict(
        {
            "network": {
                "layers": [2, 4, 1],
                "activations": ["sigmoid", "sigmoid"],
                "loss": "bce",
                "init": "xavier",
                "seed": 1,
            },
            "data": {"dataset": "xor"},
            "optimizer": optimizer,
        }
    )
    history = ex.train(spec, steps)[0]
    assert history.loss[0] > 0.6
    assert history.loss[-1] < 0.01
    assert history.accuracy[-1] == 1.0
    np.testing.assert_array_equal(ex.train(spec, steps)[0].loss, history.loss)


# ---- (d) a race ----------------------------------------------------------------------------------------------

RACE = {
    "network": {**SMALL, "layers": [2, 4, 1]},
    "data": {"dataset": "moons", "n": 50, "seed": 4},
    "seed": 9,
    "optimizers": [
        {"name": "sgd"},
        {"name": "adam"},
        {"name": "sgd", "batch_size": 8},
        {"name": "momentum", "batch_size": 8},
        {"name": "adam", "batch_size": 5},
        {"name": "sgd", "batch_size": 1},
    ],
}


def test_race_contestants_start_together():
    spec = experiment_from_dict(RACE)
    histories = ex.train(spec, 6, keep_path=True)
    theta0 = ex.prepare(spec).params0.flat()
    for history in histories:
        np.testing.assert_array_equal(history.path[0], theta0)
        assert history.loss[0] == histories[0].loss[0]
        assert history.accuracy[0] == histories[0].accuracy[0]
    # and they then part ways
    assert len({float(h.loss[6]) for h in histories}) == len(histories)


def test_race_contestants_sharing_a_batch_size_see_the_same_batches():
    spec = experiment_from_dict(RACE)
    m = ex.prepare(spec).X.shape[0]
    by_size = {}
    for k, opt in enumerate(spec.optimizers):
        by_size.setdefault(opt.batch_size, []).append(k)
    assert sorted(len(v) for v in by_size.values()) == [1, 1, 2, 2]
    for size, members in by_size.items():
        for t in (0, 3, 6, 7, 13):
            expected = batch_indices(spec.seed, t, m, m if size is None else size)
            for k in members:
                np.testing.assert_array_equal(ex.step_record(spec, t, k).rows, expected)


@pytest.mark.parametrize("m", [50, 7])
def test_batch_order_is_one_permutation_per_epoch_whatever_the_batch_size(m):
    """Each epoch is the same permutation of the rows for every batch size: it depends on (seed, epoch) only."""

    def epoch_order(seed, epoch, size):
        per_epoch = -(-m // size)
        return np.concatenate([batch_indices(seed, epoch * per_epoch + k, m, size) for k in range(per_epoch)])

    for epoch in range(4):
        orders = [epoch_order(9, epoch, size) for size in (1, 2, 5, 8, m - 1) if size < m]
        np.testing.assert_array_equal(np.sort(orders[0]), np.arange(m))
        for order in orders[1:]:
            np.testing.assert_array_equal(order, orders[0])
        assert not np.array_equal(orders[0], epoch_order(10, epoch, 1))  # the seed matters
        assert not np.array_equal(orders[0], epoch_order(9, epoch + 1, 1))  # a new shuffle each epoch
    for size in (m, m + 1):  # full batch: every row, in order
        np.testing.assert_array_equal(batch_indices(9, 5, m, size), np.arange(m))


# ---- (e) divergence ------------------------------------------------------------------------------------------

DIVERGE = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["relu", "relu", "linear"], "loss": "mse"},
    "data": {"dataset": "spiral"},
    "optimizers": [
        {"name": "sgd", "lr": 100},
        {"name": "sgd", "lr": 0.05},
        {"name": "adam", "lr": 0.01},
        {"name": "sgd", "lr": 0.05, "batch_size": 20},
    ],
}
DIVERGE_STEPS = 120


def test_divergence_is_recorded_and_spares_the_other_contestants():
    spec = experiment_from_dict(DIVERGE)
    histories = ex.train(spec, DIVERGE_STEPS)
    blown = histories[0]
    d = blown.diverged_at
    assert isinstance(d, int) and 0 < d < DIVERGE_STEPS
    assert np.all(np.isfinite(blown.loss[:d])) and not blown.loss[d] <= 100 * blown.loss[0]  # engine.divergence
    assert np.all(np.isnan(blown.loss[d + 1 :]))
    for series in (blown.accuracy, blown.learning_rate, blown.delta_norm, blown.grad_norm):
        assert np.all(np.isnan(series[d + 1 :]))
    for k in range(1, len(spec.optimizers)):
        assert histories[k].diverged_at is None
        solo = ex.train(dataclasses.replace(spec, optimizers=(spec.optimizers[k],)), DIVERGE_STEPS)[0]
        for field in dataclasses.fields(solo):
            ours, alone = getattr(histories[k], field.name), getattr(solo, field.name)
            if isinstance(alone, np.ndarray):
                np.testing.assert_allclose(ours, alone, rtol=TOL, atol=TOL, err_msg=f"contestant {k}: {field.name}")
            else:
                assert ours == alone


# ---- (f) determinism and the spec round trip -----------------------------------------------------------------


def test_training_twice_gives_identical_arrays():
    spec = experiment_from_dict(SPECS["dropout_mini_batch"])
    first = ex.train(spec, 30, keep_path=True)
    ex.prepare.cache_clear()
    second = ex.train(experiment_from_dict(SPECS["dropout_mini_batch"]), 30, keep_path=True)
    for a, b in zip(first, second):
        for field in dataclasses.fields(a):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            else:
                assert x == y


ROUND_TRIP = [
    SPECS[name]
    for name in (
        "full_batch",
        "dropout_mini_batch",
        "every_optimizer",
        "half_mse_softmax",
        "schedule",
        "clip_norm",
        "l1",
    )
] + [
    NOTE_000,
    RACE,
    DIVERGE,
    {
        "data": {
            "dataset": "circles",
            "n": 100,
            "noise": 0.2,
            "seed": 3,
            "test_fraction": 0.25,
            "features": ["x1", "x2", "x1x2"],
        },
        "network": {"layers": [3, 4, 1], "activations": ["relu", "sigmoid"], "loss": "bce"},
    },
    {},
]


@pytest.mark.parametrize("raw", ROUND_TRIP)
def test_spec_round_trips_and_its_id_is_stable(raw):
    spec = experiment_from_dict(raw)
    assert experiment_from_dict(spec.to_dict()) == spec
    assert Experiment.from_token(spec.to_token()) == spec
    assert experiment_from_dict(raw).id == spec.id == experiment_from_dict(spec.to_dict()).id
    assert len(spec.id) == 16


def test_spec_id_is_the_same_in_another_process():
    """The id must not depend on Python's per-process hash seed (it keys caches and URLs across machines)."""
    specs = [experiment_from_dict(raw) for raw in ROUND_TRIP]
    code = (
        "import sys; from engine.spec import Experiment; "
        "print(' '.join(Experiment.from_token(t).id for t in sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-c", code, *[s.to_token() for s in specs]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert out == [s.id for s in specs]
    assert len(set(out)) == len(out)  # different specs, different ids


def test_softplus_from_exp_equals_logaddexp_at_any_z():
    """The BCE summary's softplus, from the output's e^-z, within an ulp of np.logaddexp(0, z), tails included."""
    from engine.trainer import softplus_from_exp

    z = np.array([-800.0, -700.0, -40.0, -1e-9, 0.0, 1e-9, 0.7, 40.0, 700.0, 800.0, np.inf, -np.inf, np.nan])
    with np.errstate(all="ignore"):  # as inside StackedTrainer.run: e^800 is inf, 1/0 is inf
        got = softplus_from_exp(z, np.exp(-z), np.empty_like(z))
        want = np.logaddexp(0.0, z)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=2.3e-16, atol=0)
    assert got[z == np.inf] == np.inf and got[z == -np.inf] == 0.0
