"""Tests for engine.surfaces: grids hold the objective exactly, directions are filter-normalised, projection
recovers coefficients, the y = 2x surface bottoms out at w = 2, b = 0, and divergence gives NaN, not errors."""

import numpy as np
import pytest

from engine import surfaces
from engine.backprop import objective
from engine.network import Network, Params, init_params, params_from_lists
from engine.surfaces import Surface, objective_batch, parameter_grid, project, random_directions, slice_grid

NETS = [
    pytest.param(("tanh", "tanh", "sigmoid"), "bce", 1, id="tanh-sigmoid-bce"),
    pytest.param(("relu", "sigmoid", "softmax"), "cross_entropy", 3, id="relu-softmax-ce"),
    pytest.param(("leaky_relu", "linear", "linear"), "mse", 2, id="leaky-linear-mse"),
    pytest.param(("sigmoid", "relu", "tanh"), "half_mse", 2, id="sigmoid-tanh-half_mse"),
]
REGULARISATION = [pytest.param(0.0, 0.0, id="plain"), pytest.param(0.02, 0.005, id="l2+l1")]


def _problem(acts, loss, n_out, seed=0, m=60):
    """A seeded 2-5-4-n_out network with nonzero biases, and data to match its loss."""
    net = Network((2, 5, 4, n_out), acts, loss)
    rng = np.random.default_rng(seed + 500)
    base = init_params(net, "xavier", seed)
    params = Params(base.W, tuple(0.2 * rng.standard_normal(n) for n in net.layers[1:]))
    X = rng.standard_normal((m, 2))
    if acts[-1] == "softmax" or loss == "bce":
        Y = np.eye(n_out)[rng.integers(0, n_out, m)] if n_out > 1 else rng.integers(0, 2, (m, 1)).astype(float)
    else:
        Y = rng.uniform(-1.0, 1.0, (m, n_out))
    return net, params, X, Y


@pytest.mark.parametrize("l2, l1", REGULARISATION)
@pytest.mark.parametrize("acts, loss, n_out", NETS)
def test_the_centre_of_each_grid_is_the_objective_exactly(acts, loss, n_out, l2, l1):
    net, params, X, Y = _problem(acts, loss, n_out)
    J = objective(net, params, X, Y, l2, l1)
    grid = parameter_grid(net, params, X, Y, 1, 7, 0.5, 0.8, resolution=21, l2=l2, l1=l1)
    d1, d2 = random_directions(net, params, seed=1)
    plane = slice_grid(net, params.flat(), d1, d2, X, Y, span=0.7, resolution=21, l2=l2, l1=l1)
    assert grid.loss[10, 10] == J and grid.center_loss == J
    assert plane.loss[10, 10] == J and plane.center_loss == J
    assert grid.center == (params.flat()[1], params.flat()[7])
    assert grid.u[10] == params.flat()[1] and grid.v[10] == params.flat()[7]
    assert plane.center == (0.0, 0.0) and plane.u[10] == 0.0 == plane.v[10]


@pytest.mark.parametrize("l2, l1", REGULARISATION)
@pytest.mark.parametrize("acts, loss, n_out", NETS)
def test_a_grid_point_is_the_objective_with_two_parameters_changed(acts, loss, n_out, l2, l1):
    net, params, X, Y = _problem(acts, loss, n_out)
    theta = params.flat()
    i, j, r, c = 3, 12, 2, 15  # r != c so a transposed grid would fail
    grid = parameter_grid(net, params, X, Y, i, j, 1.5, 0.5, resolution=17, l2=l2, l1=l1)
    moved = theta.copy()
    moved[i], moved[j] = grid.u[c], grid.v[r]
    assert grid.loss.shape == (17, 17)
    assert grid.u[c] != theta[i] and grid.v[r] != theta[j]
    expected = objective(net, Params.from_flat(net, moved), X, Y, l2, l1)
    assert grid.loss[r, c] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert grid.u_label == "W1[1,0]" and grid.indices == (i, j)


@pytest.mark.parametrize("acts, loss, n_out", NETS)
def test_a_slice_point_is_the_objective_along_the_directions(acts, loss, n_out):
    net, params, X, Y = _problem(acts, loss, n_out)
    d1, d2 = random_directions(net, params, seed=2)
    plane = slice_grid(net, params.flat(), d1, d2, X, Y, span=2.0, resolution=11, l2=0.01)
    r, c = 1, 8
    theta = params.flat() + plane.u[c] * d1 + plane.v[r] * d2
    expected = objective(net, Params.from_flat(net, theta), X, Y, 0.01)
    assert plane.loss[r, c] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_chunking_does_not_change_a_value(monkeypatch):
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    d1, d2 = random_directions(net, params, seed=0)
    whole = slice_grid(net, params.flat(), d1, d2, X, Y, resolution=15, l2=0.1)
    monkeypatch.setattr(surfaces, "MAX_FLOATS", 1000)  # 1 grid point per chunk
    chunked = slice_grid(net, params.flat(), d1, d2, X, Y, resolution=15, l2=0.1)
    np.testing.assert_array_equal(whole.loss, chunked.loss)


def test_objective_batch_matches_objective_row_by_row():
    net, params, X, Y = _problem(("relu", "sigmoid", "softmax"), "cross_entropy", 3)
    rng = np.random.default_rng(9)
    thetas = params.flat() + 0.3 * rng.standard_normal((6, net.n_params))
    batch = objective_batch(net, thetas, X, Y, 0.05, 0.01)
    direct = [objective(net, Params.from_flat(net, theta), X, Y, 0.05, 0.01) for theta in thetas]
    np.testing.assert_allclose(batch, direct, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_directions_are_filter_normalised(seed):
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    d1, d2 = random_directions(net, params, seed)
    for d in (d1, d2):
        dirs = Params.from_flat(net, d)
        for W, dW, db in zip(params.W, dirs.W, dirs.b):
            np.testing.assert_allclose(np.linalg.norm(dW, axis=1), np.linalg.norm(W, axis=1), rtol=1e-12)
            np.testing.assert_array_equal(db, 0.0)
    assert not np.allclose(d1, d2)
    again = random_directions(net, params, seed)
    np.testing.assert_array_equal(again[0], d1)
    np.testing.assert_array_equal(again[1], d2)
    other = random_directions(net, params, seed + 100)
    assert not np.allclose(other[0], d1)


def test_a_zero_row_gives_a_zero_direction_row():
    net = Network((2, 2, 1), ("tanh", "sigmoid"), "bce")
    params = params_from_lists(net, [[[0.0, 0.0], [1.0, 2.0]], [[3.0, 4.0]]], None)
    d1, _ = random_directions(net, params, 0)
    dirs = Params.from_flat(net, d1)
    np.testing.assert_array_equal(dirs.W[0][0], 0.0)
    assert np.linalg.norm(dirs.W[0][1]) == pytest.approx(np.sqrt(5.0))
    assert np.all(np.isfinite(d1))


def test_project_recovers_known_coefficients():
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    d1, d2 = random_directions(net, params, 3)
    assert abs(d1 @ d2) > 1e-3 * np.linalg.norm(d1) * np.linalg.norm(d2)  # not orthogonal: least squares needed
    center = params.flat()
    coefficients = np.array([[0.0, 0.0], [1.0, -2.0], [0.25, 0.5], [-3.0, 0.1]])
    path = center + coefficients[:, :1] * d1 + coefficients[:, 1:] * d2
    np.testing.assert_allclose(project(path, center, d1, d2), coefficients, atol=1e-10)
    # a component orthogonal to the plane does not move the projection
    D = np.column_stack([d1, d2])
    off = np.random.default_rng(0).standard_normal(center.size)
    off -= D @ np.linalg.lstsq(D, off, rcond=None)[0]
    np.testing.assert_allclose(project(path + off, center, d1, d2), coefficients, atol=1e-10)
    # a diverged step gives NaN coordinates, the others stay
    path[2] = np.nan
    coords = project(path, center, d1, d2)
    assert np.all(np.isnan(coords[2])) and np.allclose(coords[[0, 1, 3]], coefficients[[0, 1, 3]])
    assert project(center, center, d1, d2).shape == (1, 2)


def test_the_y_equals_2x_surface_bottoms_out_at_w2_b0():
    net = Network((1, 1), ("linear",), "mse")
    params = params_from_lists(net, [[[1.0]]], [[0.0]])  # theta = (w, b) = (1, 0)
    X, Y = np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [4.0], [6.0]])
    grid = parameter_grid(net, params, X, Y, 0, 1, span_i=2.0, span_j=2.0, resolution=41)
    assert (grid.u_label, grid.v_label) == ("W1[0,0]", "b1[0]")
    w, b = grid.argmin
    assert w == pytest.approx(2.0, abs=1e-12) and b == pytest.approx(0.0, abs=1e-12)
    assert np.nanmin(grid.loss) < 1e-20
    # from a random start the minimum sits within one grid step of (2, 0)
    start = init_params(net, "xavier", 0)
    coarse = parameter_grid(net, start, X, Y, 0, 1, span_i=3.0, span_j=3.0, resolution=61)
    w, b = coarse.argmin
    assert abs(w - 2.0) <= 0.1 and abs(b) <= 0.1


def test_divergence_gives_nan_not_an_error():
    net = Network((1, 3, 1), ("relu", "linear"), "mse")
    params = params_from_lists(net, [[[1.0], [2.0], [3.0]], [[1.0, 1.0, 1.0]]], None)
    X, Y = np.array([[1.0], [2.0]]), np.array([[0.0], [1.0]])
    grid = parameter_grid(net, params, X, Y, 0, 2, span_i=1e200, span_j=1e200, resolution=5)
    assert np.isnan(grid.loss).any() and np.isfinite(grid.loss[2, 2])
    assert not np.isinf(grid.loss).any()
    broken = params.flat()
    broken[0] = np.nan
    d1, d2 = random_directions(net, broken, 0)
    plane = slice_grid(net, broken, d1, d2, X, Y, resolution=5)
    assert np.isnan(plane.loss).all() and plane.argmin is None and np.isnan(plane.center_loss)
    assert np.isnan(project(broken[None], broken, d1, d2)).all()


def test_a_surface_is_a_frozen_record():
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    grid = parameter_grid(net, params, X, Y, 0, 1, 1.0, 1.0, resolution=3)
    assert isinstance(grid, Surface) and grid.u.shape == grid.v.shape == (3,)
    with pytest.raises(AttributeError):
        grid.loss = None


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("resolution", {"resolution": 1}),
        ("resolution", {"resolution": 2.5}),
        ("resolution", {"resolution": 10_000}),
        ("span_i", {"span_i": 0.0}),
        ("span_j", {"span_j": float("inf")}),
        ("i", {"i": -1}),
        ("j", {"j": 10_000}),
        ("j", {"i": 4, "j": 4}),
    ],
)
def test_parameter_grid_validation(field, kwargs):
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    args = {"i": 0, "j": 1, "span_i": 1.0, "span_j": 1.0, **kwargs}
    with pytest.raises(ValueError, match=field):
        parameter_grid(net, params, X, Y, **args)


@pytest.mark.parametrize(
    "field, kwargs", [("span", {"span": -1.0}), ("resolution", {"resolution": 0}), ("d1", {"d1": np.zeros(3)})]
)
def test_slice_grid_validation(field, kwargs):
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    d1, d2 = random_directions(net, params, 0)
    args = {"d1": d1, "d2": d2, **kwargs}
    with pytest.raises(ValueError, match=field):
        slice_grid(net, params.flat(), args.pop("d1"), args.pop("d2"), X, Y, **args)


# ---- the PCA plane of the paths (Li et al. 2018, section 7) --------------------------------------------------------
def test_pca_plane_holds_paths_that_live_in_a_plane():
    """Paths built inside a known plane: the plane found holds all of them (shares sum to 1), is orthonormal,
    and projecting gives back the coordinates exactly."""
    rng = np.random.default_rng(3)
    P = 30
    center = rng.standard_normal(P)
    e1, e2 = np.linalg.qr(rng.standard_normal((P, 2)))[0].T
    coords = [rng.standard_normal((50, 2)) * [3.0, 0.5] for _ in range(3)]
    paths = [center + c[:, :1] * e1 + c[:, 1:] * e2 for c in coords]
    plane = surfaces.pca_plane(center, paths)
    assert sum(plane.explained) == pytest.approx(1.0, abs=1e-12) and plane.explained[0] > plane.explained[1] > 0
    assert plane.d1 @ plane.d1 == pytest.approx(1) and plane.d2 @ plane.d2 == pytest.approx(1)
    assert abs(plane.d1 @ plane.d2) < 1e-12
    D = np.column_stack([plane.d1, plane.d2])
    for p in paths:
        np.testing.assert_allclose(center + (p - center) @ D @ D.T, p, atol=1e-10)  # nothing lost


def test_pca_plane_share_is_the_captured_squared_distance():
    rng = np.random.default_rng(4)
    center = np.zeros(5)
    path = rng.standard_normal((200, 5)) * [5, 3, 1, 0.5, 0.1]
    plane = surfaces.pca_plane(center, [path])
    D = np.column_stack([plane.d1, plane.d2])
    captured = np.sum((path @ D) ** 2) / np.sum(path**2)
    assert sum(plane.explained) == pytest.approx(captured, rel=1e-12)
    assert 0.8 < sum(plane.explained) < 1.0


def test_pca_plane_of_a_straight_path_completes_the_plane():
    center = np.ones(4)
    path = center + np.outer(np.linspace(0, 1, 10), [0.0, 2.0, 0.0, 0.0])
    plane = surfaces.pca_plane(center, [path, path[:, :]])
    np.testing.assert_allclose(plane.d1, [0, 1, 0, 0], atol=1e-12)
    assert plane.explained == (pytest.approx(1.0), 0.0) and abs(plane.d1 @ plane.d2) < 1e-12


def test_path_landscape_grid_is_the_objective_on_the_plane_and_covers_the_paths():
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    theta0 = params.flat()
    rng = np.random.default_rng(0)
    paths = [theta0 + np.cumsum(0.05 * rng.standard_normal((40, theta0.size)), axis=0) for _ in range(3)]
    paths = [np.vstack([theta0, p]) for p in paths]
    grid, plane, projected = surfaces.path_landscape(net, theta0, paths, X, Y, resolution=15)
    for p in projected:
        np.testing.assert_array_equal(p[0], [0.0, 0.0])  # every path starts at theta_0, the centre
        assert grid.u[0] < p[:, 0].min() and p[:, 0].max() < grid.u[-1]
        assert grid.v[0] < p[:, 1].min() and p[:, 1].max() < grid.v[-1]
    r, c = 4, 11
    theta = theta0 + grid.u[c] * plane.d1 + grid.v[r] * plane.d2
    assert grid.loss[r, c] == pytest.approx(objective(net, Params.from_flat(net, theta), X, Y), rel=1e-12)
    assert grid.center_loss == pytest.approx(objective(net, params, X, Y), rel=1e-15)


def test_path_landscape_fits_to_the_chosen_paths_only():
    net, params, X, Y = _problem(("tanh", "tanh", "sigmoid"), "bce", 1)
    theta0 = params.flat()
    rng = np.random.default_rng(1)
    calm = np.vstack([theta0, theta0 + np.cumsum(0.01 * rng.standard_normal((20, theta0.size)), axis=0)])
    wild = np.vstack([theta0, theta0 + 1e6 * rng.standard_normal((3, theta0.size))])
    grid, _, projected = surfaces.path_landscape(net, theta0, [calm, wild], X, Y, resolution=9, fit=[0])
    assert grid.u[-1] - grid.u[0] < 1.0 and np.abs(projected[1]).max() > 1e3
