"""The 2-D test functions and their race: analytic gradients against central differences, minima where the
formulas put them, the optimizers' own update rules, divergence, and a fair race (same start, same gradients)."""

import numpy as np
import pytest

from engine import problems
from engine.experiment import contestant
from engine.problems import PROBLEMS, FunctionTrainer, contour_grid, function_race, get_problem
from engine.schedules import learning_rates
from engine.spec import optimizer_from_dict

NAMES = list(PROBLEMS)
EVERY_OPTIMIZER = [
    {"name": "sgd", "lr": 0.001},
    {"name": "momentum", "lr": 0.01},
    {"name": "nesterov", "lr": 0.001},
    {"name": "rmsprop", "lr": 0.01},
    {"name": "adam", "lr": 0.05},
    {"name": "adamw", "lr": 0.05},
    {"name": "adagrad", "lr": 0.5},
]


def numeric_grad(f, theta, h=1e-6):
    """Central differences (f(theta + h e_i) - f(theta - h e_i)) / 2h for each coordinate, on a stack of points."""
    out = np.empty_like(theta)
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        out[..., i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return out


def points(problem, n=50, seed=0):
    """Seeded random points inside the problem's plot window."""
    rng = np.random.default_rng(seed)
    lo = np.array([problem.x_range[0], problem.y_range[0]])
    hi = np.array([problem.x_range[1], problem.y_range[1]])
    return lo + (hi - lo) * rng.random((n, 2))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name):
    p = PROBLEMS[name]
    theta = points(p)
    analytic = p.grad(theta)
    numeric = numeric_grad(p.f, theta)
    scale = np.maximum(1.0, np.abs(analytic))
    assert np.max(np.abs(analytic - numeric) / scale) < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_vectorised_over_any_leading_axes(name):
    p = PROBLEMS[name]
    theta = points(p, 12).reshape(3, 4, 2)
    assert p.f(theta).shape == (3, 4)
    assert p.grad(theta).shape == (3, 4, 2)
    one_by_one = np.array([[p.f(theta[i, j]) for j in range(4)] for i in range(3)])
    np.testing.assert_array_equal(p.f(theta), one_by_one)
    with pytest.raises(ValueError, match="theta"):
        p.f(np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_minima_are_zero_with_zero_gradient_and_lowest_on_the_grid(name):
    p = PROBLEMS[name]
    for m in p.minima:
        assert p.f(np.array(m)) == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(p.grad(np.array(m)), 0.0, atol=1e-12)
    x, y, f = contour_grid(p, 201)
    r, c = np.unravel_index(np.argmin(f), f.shape)
    nearest = min(np.hypot(x[c] - m[0], y[r] - m[1]) for m in p.minima)
    assert nearest <= 2 * max(x[1] - x[0], y[1] - y[0])
    assert f.min() >= 0.0


def test_the_saddle_is_a_saddle():
    p = PROBLEMS["saddle"]
    origin = np.zeros(2)
    np.testing.assert_array_equal(p.grad(origin), 0.0)
    h = 1e-3
    assert p.f(np.array([h, 0.0])) > p.f(origin) > p.f(np.array([0.0, h]))  # up along x, down along y
    assert p.f(origin) == 0.25


def test_ravine_is_ill_conditioned_as_documented():
    p = PROBLEMS["ravine"]
    H = np.column_stack([numeric_grad(lambda th, i=i: p.grad(th)[..., i], np.zeros((1, 2)), 1e-4)[0] for i in range(2)])
    np.testing.assert_allclose(np.linalg.eigvalsh(H), [1.0, problems.KAPPA], rtol=1e-6)


def test_gradient_descent_on_the_ravine_is_the_closed_form():
    """theta_t = (I - lr H)^t theta_0 for f = 1/2 theta^T H theta: the race uses the real SGD update."""
    lr, steps = 0.03, 40
    run = function_race("ravine", [{"name": "sgd", "lr": lr}], steps)[0]
    x0, y0 = PROBLEMS["ravine"].start
    t = np.arange(steps + 1)
    np.testing.assert_allclose(run.path[:, 0], x0 * (1 - lr) ** t, rtol=1e-12)
    np.testing.assert_allclose(run.path[:, 1], y0 * (1 - lr * problems.KAPPA) ** t, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(run.loss, PROBLEMS["ravine"].f(run.path))
    np.testing.assert_allclose(run.update, np.diff(run.path, axis=0))


def test_adam_state_is_recorded_as_the_optimizer_keeps_it():
    run = function_race("beale", [{"name": "adam", "lr": 0.05}], 3)[0]
    g0 = PROBLEMS["beale"].grad(np.array(PROBLEMS["beale"].start))
    np.testing.assert_allclose(run.grad[0], g0)
    np.testing.assert_allclose(run.states["m_hat"][0], g0)  # bias correction undoes (1 - beta1) at t = 1
    np.testing.assert_allclose(run.states["v_hat"][0], g0**2)
    np.testing.assert_allclose(run.update[0], -0.05 * g0 / (np.abs(g0) + 1e-8))  # so the first step is lr sign(g)


@pytest.mark.parametrize("name", NAMES)
def test_a_race_is_fair(name):
    """Every contestant starts at the same theta_0 with the same f(theta_0); an identical contestant in another
    position of the race traces exactly the same path, and so does each contestant racing alone."""
    opts = EVERY_OPTIMIZER + [EVERY_OPTIMIZER[4]]
    runs = function_race(name, opts, 150)
    start = np.array(PROBLEMS[name].start)
    for run in runs:
        np.testing.assert_array_equal(run.path[0], start)
        assert run.loss[0] == runs[0].loss[0] == PROBLEMS[name].f(start)
        np.testing.assert_array_equal(run.grad[0], runs[0].grad[0])
    np.testing.assert_array_equal(runs[4].path, runs[-1].path)
    for opt, run in zip(opts, runs):
        alone = function_race(name, [opt], 150)[0]
        np.testing.assert_array_equal(alone.path, run.path)
        np.testing.assert_array_equal(alone.loss, run.loss)


def test_a_diverging_contestant_is_marked_and_the_others_race_on():
    runs = function_race("ravine", [{"name": "sgd", "lr": 0.1}, {"name": "adam", "lr": 0.1}], 300)
    sgd, adam = runs
    # |1 - 0.1 * 25| = 1.5 per step across the ravine: x_t = x0 0.9^t, y_t = y0 (-1.5)^t, and the divergence rule
    # (engine.divergence) flags the first t with f(theta_t) > 100 f(theta_0)
    t = np.arange(301)
    f = 0.5 * ((-4.5 * 0.9**t) ** 2 + 25 * (1.0 * (-1.5) ** t) ** 2)
    assert sgd.diverged_at == int(np.flatnonzero(f > 100 * f[0])[0]) == 7
    d = sgd.diverged_at
    assert np.all(np.isfinite(sgd.path[: d + 1])) and np.all(np.isnan(sgd.path[d + 1 :]))
    assert np.all(np.isnan(sgd.loss[d + 1 :])) and np.all(np.isnan(sgd.learning_rate[d:]))
    assert adam.diverged_at is None
    assert np.all(np.isfinite(adam.loss)) and adam.loss[-1] < 1e-3


def test_overflow_is_divergence_too():
    run = function_race("rosenbrock", [{"name": "sgd", "lr": 0.5}], 50)[0]
    assert run.diverged_at is not None and run.diverged_at <= 5
    assert np.isnan(run.loss[run.diverged_at + 1 :]).all()


def test_schedules_set_the_learning_rate_of_each_step():
    opts = [
        {"name": "sgd", "lr": 0.001, "schedule": {"name": "cosine", "T": 50}},
        {"name": "momentum", "lr": 0.01, "schedule": {"name": "step", "gamma": 0.5, "step_size": 10}},
    ]
    runs = function_race("rosenbrock", opts, 60)
    np.testing.assert_allclose(runs[0].learning_rate, learning_rates("cosine", {"T": 50}, 0.001, 60))
    np.testing.assert_allclose(runs[1].learning_rate, learning_rates("step", {"gamma": 0.5, "step_size": 10}, 0.01, 60))


def test_a_custom_start_and_no_steps():
    run = function_race("saddle", [{"name": "adam"}], 0, start=(0.5, -0.5))[0]
    np.testing.assert_array_equal(run.path, [[0.5, -0.5]])
    assert run.loss.shape == (1,) and run.learning_rate.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"problem": "himmelblau"}, "problem: unknown"),
        ({"start": (1.0, 2.0, 3.0)}, "start"),
        ({"start": (np.nan, 0.0)}, "start"),
        ({"optimizers": []}, "optimizers"),
        ({"optimizers": [{"name": "lbfgs"}]}, "optimizer.name"),
        ({"optimizers": [{"name": "adam", "lr": -1}]}, "optimizer.lr"),
        ({"steps": -1}, "steps"),
    ],
)
def test_bad_input_raises_value_error_naming_the_field(kwargs, message):
    args = {"problem": "beale", "optimizers": [{"name": "sgd"}], "steps": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        function_race(**args)


def test_trainer_refuses_too_many_contestants_and_short_schedules():
    c = contestant(optimizer_from_dict({"name": "sgd"}), 3)
    with pytest.raises(ValueError, match="optimizers"):
        FunctionTrainer(get_problem("beale"), [c] * 9)
    with pytest.raises(ValueError, match="steps"):
        FunctionTrainer(get_problem("beale"), [c]).run(4)
    with pytest.raises(ValueError, match="resolution"):
        contour_grid(get_problem("beale"), 3)
