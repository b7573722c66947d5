"""engine.hidden: a hidden layer's picture of the data and the input grid lines, direct or on principal axes."""

import numpy as np
import pytest

from engine.backprop import forward
from engine.hidden import grid_lines, hidden_view, principal_axes
from engine.network import Network, init_params


def _net(hidden=(3,), act="tanh"):
    net = Network((2, *hidden, 1), (act,) * len(hidden) + ("sigmoid",), "bce")
    return net, init_params(net, "xavier", 0)


def test_grid_lines_cover_the_square():
    lines = grid_lines(1.5, n_lines=5, n_points=7)
    assert lines.shape == (10, 7, 2)
    assert np.allclose(lines[0, :, 0], -1.5) and np.allclose(lines[0, :, 1], np.linspace(-1.5, 1.5, 7))
    assert np.allclose(lines[5 + 4, :, 1], 1.5)
    assert grid_lines(2.0, n_inputs=1, n_points=9).shape == (1, 9, 1)


def test_two_units_are_drawn_directly():
    net, params = _net((2, 2))
    X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    view = hidden_view(net, params, X, 2, lines=grid_lines(1.0, n_lines=3, n_points=4))
    want = forward(net, params, X)[1][1]
    assert view.axes == ("a1", "a2") and view.variance is None and np.array_equal(view.points, want)
    assert view.lines.shape == (6, 4, 2)
    assert np.allclose(view.lines[0], forward(net, params, grid_lines(1.0, n_lines=3, n_points=4)[0])[1][1])


def test_wide_layer_on_principal_axes_with_variance_captured():
    net, params = _net((5,))
    X = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    view = hidden_view(net, params, X, 1, lines=grid_lines(1.0))
    A = forward(net, params, X)[1][0]
    centred = A - A.mean(axis=0)
    # the projection keeps the distances a rank-2 PCA keeps: total variance on the plane = captured fraction
    captured = np.sum(view.points**2) / np.sum(centred**2)
    assert view.axes == ("PC1", "PC2")
    assert captured == pytest.approx(sum(view.variance), rel=1e-10)
    assert 0 < view.variance[1] <= view.variance[0] <= 1
    # a 2-input tanh layer's activations lie near a 2-D sheet: two components hold nearly all of it
    assert sum(view.variance) > 0.9
    assert np.allclose(view.points.mean(axis=0), 0, atol=1e-12)


def test_principal_axes_sign_is_fixed_and_matches_numpy_covariance():
    A = np.random.default_rng(2).normal(size=(40, 4)) @ np.diag([3, 2, 1, 0.5])
    mean, directions, fractions = principal_axes(A)
    w, V = np.linalg.eigh(np.cov(A.T))
    top = V[:, np.argsort(w)[::-1][:2]].T
    assert np.allclose(np.abs(directions @ top.T), np.eye(2), atol=1e-10)
    assert np.all(directions[np.arange(2), np.argmax(np.abs(directions), axis=1)] > 0)
    assert np.allclose(fractions, np.sort(w)[::-1][:2] / w.sum())
    _, flipped, _ = principal_axes(-A)
    assert np.allclose(flipped, directions)


def test_features_and_one_unit_and_bad_layer():
    net = Network((3, 1, 1), ("relu", "sigmoid"), "bce")
    params = init_params(net, "he", 0)
    X = np.random.default_rng(3).uniform(-1, 1, (10, 2))
    view = hidden_view(net, params, X, 1, features=("x1", "x2", "x1x2"), lines=grid_lines(1.0, n_lines=2, n_points=3))
    assert view.points.shape == (10, 2) and np.all(view.points[:, 1] == 0) and view.axes == ("a1", "")
    assert view.lines.shape == (4, 3, 2)
    with pytest.raises(ValueError, match="layer"):
        hidden_view(net, params, X, 2, features=("x1", "x2", "x1x2"))
