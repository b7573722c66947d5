"""engine.backprop against central differences, note 002's worked example, and saturated outputs.

The finite differences are taken here, by a plain loop over every parameter, of `backprop.objective`; nothing
from engine.gradcheck is used, so these tests hold whichever gradient checker the product ships.
"""

import warnings

import numpy as np
import pytest

from engine.activations import ACTIVATIONS, sigmoid
from engine.backprop import backprop, forward, objective
from engine.losses import LOSSES
from engine.network import Network, Params

EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-9

HIDDEN = [name for name, act in ACTIVATIONS.items() if not act.output_only]
OUTPUT_LOSS = [("sigmoid", "bce"), ("softmax", "cross_entropy")] + [
    (out, loss) for out in ("sigmoid", "tanh", "linear", "softmax") for loss in ("mse", "half_mse")
]


def test_the_registries_are_what_the_pairs_above_cover():
    assert set(HIDDEN) == {"sigmoid", "tanh", "relu", "leaky_relu", "linear"}
    assert set(LOSSES) == {loss for _, loss in OUTPUT_LOSS}
    assert {out for out, _ in OUTPUT_LOSS} | set(HIDDEN) == set(ACTIVATIONS)


# ---- helpers -------------------------------------------------------------------------------------------------


def random_network(hidden, output, loss, seed, sizes=(3, 5, 4, 3)):
    """A 3-layer network, weights of both signs bounded away from 0 (so l1's |W| is differentiable there)."""
    net = Network(sizes, (hidden, hidden, output), loss)
    rng = np.random.default_rng(seed)
    Ws = tuple(
        rng.choice([-1.0, 1.0], (n_out, n_in)) * rng.uniform(0.2, 0.9, (n_out, n_in))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    bs = tuple(rng.uniform(-0.5, 0.5, n_out) for n_out in sizes[1:])
    return net, Params(Ws, bs)


def random_batch(loss, seed, m=6, n_in=3, n_out=3):
    """Inputs and targets of the kind each loss takes: 0/1 for bce, one-hot for cross-entropy, reals otherwise."""
    rng = np.random.default_rng(seed + 1000)
    X = rng.normal(0.0, 1.0, (m, n_in))
    if loss == "bce":
        Y = rng.integers(0, 2, (m, n_out)).astype(float)
    elif loss == "cross_entropy":
        Y = np.eye(n_out)[rng.integers(0, n_out, m)]
    else:
        Y = rng.uniform(-1.0, 1.0, (m, n_out))
    return X, Y


def numeric_gradient(fn, params):
    """Central differences (f(p + eps) - f(p - eps)) / 2 eps for every entry of every W^l and b^l."""
    dW = [np.zeros_like(W) for W in params.W]
    db = [np.zeros_like(b) for b in params.b]
    for kind, grads in (("W", dW), ("b", db)):
        for l, grad in enumerate(grads):
            for index in np.ndindex(grad.shape):
                values = []
                for sign in (+1.0, -1.0):
                    Ws, bs = [W.copy() for W in params.W], [b.copy() for b in params.b]
                    (Ws if kind == "W" else bs)[l][index] += sign * EPS
                    values.append(fn(Params(tuple(Ws), tuple(bs))))
                grad[index] = (values[0] - values[1]) / (2 * EPS)
    return dW, db


def assert_gradients_match(bp, dW_num, db_num):
    for l, (analytic, numeric) in enumerate(zip(bp.grad_W, dW_num)):
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=f"dW^{l + 1}")
    for l, (analytic, numeric) in enumerate(zip(bp.grad_b, db_num)):
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=f"db^{l + 1}")


def assert_no_kinks(net, params, X, masks=None, keep_prob=None):
    """relu/leaky_relu are not differentiable at z = 0: make sure no z sits within reach of eps."""
    zs, _ = forward(net, params, X, masks, keep_prob)
    assert min(float(np.min(np.abs(z))) for z in zs) > 1e-4


# ---- (a) dW, db against central differences ------------------------------------------------------------------


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_match_central_differences(hidden, output, loss):
    seed = HIDDEN.index(hidden) * 100 + OUTPUT_LOSS.index((output, loss))
    net, params = random_network(hidden, output, loss, seed)
    X, Y = random_batch(loss, seed)
    assert_no_kinks(net, params, X)
    bp = backprop(net, params, X, Y)
    assert bp.loss == pytest.approx(objective(net, params, X, Y), rel=1e-15)
    dW_num, db_num = numeric_gradient(lambda p: objective(net, p, X, Y), params)
    assert_gradients_match(bp, dW_num, db_num)


@pytest.mark.parametrize("l2,l1", [(0.3, 0.0), (0.0, 0.2), (0.1, 0.05)])
@pytest.mark.parametrize(
    "hidden,output,loss",
    [("tanh", "sigmoid", "bce"), ("relu", "softmax", "cross_entropy"), ("leaky_relu", "linear", "mse")],
)
def test_gradients_with_l2_and_l1_penalties(hidden, output, loss, l2, l1):
    net, params = random_network(hidden, output, loss, seed=7)
    X, Y = random_batch(loss, seed=7)
    assert min(float(np.min(np.abs(W))) for W in params.W) >= 0.2  # |W| is smooth away from 0
    assert_no_kinks(net, params, X)
    bp = backprop(net, params, X, Y, l2=l2, l1=l1)
    expected_penalty = 0.5 * l2 * sum(np.sum(W**2) for W in params.W) + l1 * sum(np.sum(np.abs(W)) for W in params.W)
    assert bp.penalty == pytest.approx(expected_penalty, rel=1e-14)
    dW_num, db_num = numeric_gradient(lambda p: objective(net, p, X, Y, l2=l2, l1=l1), params)
    assert_gradients_match(bp, dW_num, db_num)
    # the penalty never touches the biases
    unpenalised = backprop(net, params, X, Y)
    for with_penalty, without in zip(bp.grad_b, unpenalised.grad_b):
        np.testing.assert_array_equal(with_penalty, without)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("keep", [(0.5, 0.8), (0.7, 1.0)])
def test_gradients_with_fixed_dropout_masks(hidden, keep):
    net, params = random_network(hidden, "sigmoid", "bce", seed=11)
    X, Y = random_batch("bce", seed=11, m=8)
    rng = np.random.default_rng(3)
    masks = [(rng.random((8, n)) < p).astype(float) if p < 1 else None for n, p in zip(net.layers[1:3], keep)]
    masks.append(None)  # the output layer never drops
    keep_prob = [keep[0], keep[1], 1.0]
    assert masks[0].min() == 0.0 and masks[0].max() == 1.0  # some units really are dropped
    assert_no_kinks(net, params, X, masks, keep_prob)
    bp = backprop(net, params, X, Y, l2=0.05, masks=masks, keep_prob=keep_prob)
    dW_num, db_num = numeric_gradient(lambda p: objective(net, p, X, Y, 0.05, 0.0, masks, keep_prob), params)
    assert_gradients_match(bp, dW_num, db_num)
    # inverted dropout: the recorded a^1 is sigma(z^1) * mask / keep_prob, and the mask is recorded
    layer = bp.layers[0]
    np.testing.assert_array_equal(layer.mask, masks[0])
    np.testing.assert_allclose(layer.a, ACTIVATIONS[hidden].f(layer.z) * masks[0] / keep[0], rtol=1e-15)
    # a dropped unit has no delta
    assert np.all(layer.delta[masks[0] == 0] == 0)


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
def test_objective_is_the_losses_formula(output, loss):
    """The quantity differentiated above is the loss the issue defines, computed here from scratch."""
    net, params = random_network("tanh", output, loss, seed=5)
    X, Y = random_batch(loss, seed=5)
    a = X
    for W, b, name in zip(params.W, params.b, net.activations):
        z = W @ a.T + b[:, None]  # column vectors, as the notes write them
        if name == "sigmoid":
            a = (1 / (1 + np.exp(-z))).T
        elif name == "softmax":
            a = (np.exp(z) / np.exp(z).sum(axis=0)).T
        elif name == "tanh":
            a = np.tanh(z).T
        else:
            a = z.T
    per_sample = {
        "mse": lambda: np.mean((a - Y) ** 2, axis=1),
        "half_mse": lambda: 0.5 * np.sum((a - Y) ** 2, axis=1),
        "bce": lambda: -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a), axis=1),
        "cross_entropy": lambda: -np.sum(Y * np.log(a), axis=1),
    }[loss]()
    assert objective(net, params, X, Y) == pytest.approx(np.mean(per_sample), rel=1e-13)
    np.testing.assert_allclose(backprop(net, params, X, Y).per_sample_loss, per_sample, rtol=1e-13)


# ---- (b) delta^l is dl_i/dz^l for one sample -----------------------------------------------------------------


def loss_from_layer(net, params, l, z, y):
    """l_i as a function of z^l alone: carry on the forward pass from layer l, then the per-sample loss."""
    a = ACTIVATIONS[net.activations[l]].f(z[None, :])[0]
    for k in range(l + 1, net.depth):
        z = params.W[k] @ a + params.b[k]
        a = ACTIVATIONS[net.activations[k]].f(z[None, :])[0]
    return float(net.loss_fn.per_sample(z[None, :], a[None, :], y[None, :])[0])


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_delta_is_the_per_sample_derivative_with_respect_to_z(hidden, output, loss):
    net, params = random_network(hidden, output, loss, seed=21)
    X, Y = random_batch(loss, seed=21, m=5)
    assert_no_kinks(net, params, X)
    bp = backprop(net, params, X, Y)
    i = 3  # one sample of the batch; delta is not divided by m
    for l, layer in enumerate(bp.layers):
        z = layer.z[i].copy()
        numeric = np.zeros_like(z)
        for k in range(z.size):
            up, down = z.copy(), z.copy()
            up[k] += EPS
            down[k] -= EPS
            numeric[k] = (loss_from_layer(net, params, l, up, Y[i]) - loss_from_layer(net, params, l, down, Y[i])) / (
                2 * EPS
            )
        np.testing.assert_allclose(layer.delta[i], numeric, rtol=RTOL, atol=ATOL, err_msg=f"delta^{l + 1}")
        # and dW^l, db^l are the batch means of delta_i a_i^T, delta_i
        a_prev = X if l == 0 else bp.layers[l - 1].a
        np.testing.assert_allclose(
            layer.dW, np.mean([np.outer(d, a) for d, a in zip(layer.delta, a_prev)], axis=0), rtol=1e-13, atol=1e-16
        )
        np.testing.assert_allclose(layer.db, layer.delta.mean(axis=0), rtol=1e-13, atol=1e-16)


# ---- (c) note 002's worked example ---------------------------------------------------------------------------


def worked_example():
    """x = [0.5, 0.8], y = 1; weights chosen so z_h = [0.1, 0.3], w_o = [0.4, 0.6] and z_o = 0.2."""
    net = Network((2, 2, 1), ("sigmoid", "sigmoid"), "half_mse")
    b_o = 0.2 - 0.4 * sigmoid(0.1) - 0.6 * sigmoid(0.3)
    params = Params(
        (np.array([[0.1, 0.0625], [0.2, 0.25]]), np.array([[0.4, 0.6]])), (np.array([0.0, 0.0]), np.array([b_o]))
    )
    return net, params, backprop(net, params, np.array([[0.5, 0.8]]), np.array([[1.0]]))


def r3(values):
    return np.round(np.asarray(values, dtype=float), 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def test_worked_example_forward_pass():
    _, _, bp = worked_example()
    hidden, out = bp.layers
    np.testing.assert_allclose(hidden.z[0], [0.1, 0.3], atol=1e-15)
    np.testing.assert_allclose(out.z[0], [0.2], atol=1e-15)
    np.testing.assert_array_equal(r3(hidden.a[0]), [0.525, 0.574])
    # a_o: the notes print 0.549, which is 0.54983 truncated; rounded it is 0.550
    a_o = float(out.a[0, 0])
    assert a_o == pytest.approx(1 / (1 + np.exp(-0.2)), rel=1e-15)
    assert round(a_o, 4) == 0.5498 and np.floor(a_o * 1000) / 1000 == 0.549
    assert abs(a_o - 0.549) < 1e-3
    # loss: the notes print 0.102 = 0.5 (1 - 0.549)^2, computed from the truncated a_o; exactly it is 0.1013
    assert bp.loss == pytest.approx(0.5 * (1 - a_o) ** 2, rel=1e-15)
    assert round(bp.loss, 4) == 0.1013
    assert round(0.5 * (1.0 - 0.549) ** 2, 3) == 0.102
    assert abs(bp.loss - 0.102) < 1e-3


def test_worked_example_backward_pass():
    _, params, bp = worked_example()
    hidden, out = bp.layers
    # sigma'(0.2): printed 0.247, exactly 0.24752 (0.248 rounded)
    assert round(float(out.sigma_prime[0, 0]), 4) == 0.2475
    assert abs(float(out.sigma_prime[0, 0]) - 0.247) < 1e-3
    np.testing.assert_array_equal(r3(out.delta[0]), [-0.111])
    # w_o^T delta_o: printed [-0.044, -0.067]; exactly [-0.04457, -0.06685] (-0.044 is 0.4 x the rounded -0.111)
    upstream = out.delta[0] @ params.W[1]
    np.testing.assert_array_equal(np.round(upstream, 4), [-0.0446, -0.0669])
    assert np.all(np.abs(upstream - [-0.044, -0.067]) < 1e-3)
    # sigma'(z_h): the notes' known slip prints [0.247, 0.241]; they are [0.2494, 0.2445], off by 0.0024, 0.0035
    sigma_prime_h = hidden.sigma_prime[0]
    np.testing.assert_array_equal(np.round(sigma_prime_h, 4), [0.2494, 0.2445])
    np.testing.assert_array_equal(np.round(sigma_prime_h - [0.247, 0.241], 4), [0.0024, 0.0035])
    np.testing.assert_array_equal(r3(hidden.delta[0]), [-0.011, -0.016])
    # gradients: dL/dw_o = delta_o a_h^T, dL/dw_h = delta_h x^T (one sample, so the batch mean is the sample)
    np.testing.assert_array_equal(r3(out.dW), [[-0.058, -0.064]])
    np.testing.assert_array_equal(r3(hidden.dW), [[-0.006, -0.009], [-0.008, -0.013]])
    np.testing.assert_array_equal(r3(out.db), [-0.111])
    np.testing.assert_array_equal(r3(hidden.db), [-0.011, -0.016])


def test_worked_example_delta_follows_the_notes_formulas_exactly():
    _, params, bp = worked_example()
    hidden, out = bp.layers
    a_o, a_h = out.a[0, 0], hidden.a[0]
    delta_o = (a_o - 1.0) * a_o * (1 - a_o)  # (a_L - y) (.) sigma'(z_L)
    assert out.delta[0, 0] == pytest.approx(delta_o, rel=1e-15)
    np.testing.assert_allclose(hidden.delta[0], np.array([0.4, 0.6]) * delta_o * a_h * (1 - a_h), rtol=1e-15)
    np.testing.assert_allclose(out.dW[0], delta_o * a_h, rtol=1e-15)
    np.testing.assert_allclose(hidden.dW, np.outer(hidden.delta[0], [0.5, 0.8]), rtol=1e-15)


# ---- (d) saturated outputs -----------------------------------------------------------------------------------

SATURATED = {
    # one layer; rows of W pick z = +-800 for the two samples x = [1, 0], [-1, 0]
    "bce": (
        Network((2, 2), ("sigmoid",), "bce"),
        np.array([[800.0, 0.0], [-800.0, 0.0]]),
        np.array([[0.0, 1.0], [1.0, 0.0]]),
        np.array([[1.0, 0.0], [0.0, 1.0]]),
    ),
    "cross_entropy": (
        Network((2, 3), ("softmax",), "cross_entropy"),
        np.array([[800.0, 0.0], [-800.0, 0.0], [0.0, 0.0]]),
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
        np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    ),
}


@pytest.mark.parametrize("loss", SATURATED)
def test_saturated_outputs_stay_finite_without_warnings(loss):
    net, W, Y_wrong, Y_right = SATURATED[loss]
    params = Params((W,), (np.zeros(W.shape[0]),))
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with warnings.catch_warnings(), np.errstate(divide="raise", over="raise", invalid="raise"):
        warnings.simplefilter("error")
        wrong = backprop(net, params, X, Y_wrong)
        right = backprop(net, params, X, Y_right)
        wrong_objective = objective(net, params, X, Y_wrong)
    for bp in (wrong, right):
        for array in (bp.per_sample_loss, bp.layers[0].z, bp.layers[0].a, bp.layers[0].delta, *bp.grad_W, *bp.grad_b):
            assert np.all(np.isfinite(array))
    # confidently wrong: bce pays 800 on each of the two outputs, cross-entropy 800 - (-800) on the one target
    expected = 1600.0
    np.testing.assert_allclose(wrong.per_sample_loss, [expected, expected], rtol=1e-12)
    assert wrong_objective == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(right.per_sample_loss, [0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(wrong.layers[0].delta, wrong.layers[0].a - Y_wrong, atol=0)
