"""Every optimizer against its formula, written out plainly here, over several steps; and hyperparameter checks."""

import numpy as np
import pytest

from engine.optimizers import OPTIMIZERS
from engine.spec import optimizer_from_dict

STEPS = 8


# ---- the formulas, one plain function each: (theta, g, state, lr, t, hp) -> (new theta, new state) ------------


def ref_sgd(theta, g, state, lr, t, hp):
    """PyTorch SGD: g += wd theta; b = g at t = 1, else b = mu b + g (dampening 0); theta -= lr b (or lr g if mu = 0)."""
    g = g + hp["weight_decay"] * theta
    velocity = state["velocity"]
    if hp["momentum"] != 0:
        velocity = g.copy() if t == 1 else hp["momentum"] * velocity + g
        g = velocity
    return theta - lr * g, {"velocity": velocity}


def ref_momentum(theta, g, state, lr, t, hp):
    """Notes 000/003: v = beta v + (1 - beta) g; theta -= lr v."""
    g = g + hp["weight_decay"] * theta
    v = hp["beta"] * state["velocity"] + (1 - hp["beta"]) * g
    return theta - lr * v, {"velocity": v}


def ref_nesterov(theta, g, state, lr, t, hp):
    """PyTorch SGD(nesterov=True): b as in SGD; theta -= lr (g + mu b)."""
    g = g + hp["weight_decay"] * theta
    b = g.copy() if t == 1 else hp["momentum"] * state["velocity"] + g
    return theta - lr * (g + hp["momentum"] * b), {"velocity": b}


def ref_rmsprop(theta, g, state, lr, t, hp):
    """Notes' RMSprop = PyTorch RMSprop(alpha=beta): s = beta s + (1 - beta) g^2; theta -= lr g / (sqrt(s) + eps)."""
    g = g + hp["weight_decay"] * theta
    s = hp["beta"] * state["s"] + (1 - hp["beta"]) * g**2
    return theta - lr * g / (np.sqrt(s) + hp["eps"]), {"s": s}


def _adam(theta, g, state, lr, t, hp):
    m = hp["beta1"] * state["m"] + (1 - hp["beta1"]) * g
    v = hp["beta2"] * state["v"] + (1 - hp["beta2"]) * g**2
    m_hat = m / (1 - hp["beta1"] ** t)
    v_hat = v / (1 - hp["beta2"] ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + hp["eps"]), {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat}


def ref_adam(theta, g, state, lr, t, hp):
    """Note 003 / PyTorch Adam: m, v, bias-corrected m_hat, v_hat; L2 weight_decay added to g first."""
    return _adam(theta, g + hp["weight_decay"] * theta, state, lr, t, hp)


def ref_adamw(theta, g, state, lr, t, hp):
    """PyTorch AdamW: theta *= 1 - lr wd (decoupled), then Adam on the raw gradient."""
    return _adam(theta * (1 - lr * hp["weight_decay"]), g, state, lr, t, hp)


def ref_adagrad(theta, g, state, lr, t, hp):
    """PyTorch Adagrad: clr = lr / (1 + (t - 1) lr_decay); G += g^2; theta -= clr g / (sqrt(G) + eps)."""
    g = g + hp["weight_decay"] * theta
    clr = lr / (1 + (t - 1) * hp["lr_decay"])
    G = state["sum"] + g**2
    return theta - clr * g / (np.sqrt(G) + hp["eps"]), {"sum": G}


REFERENCE = {
    "sgd": ref_sgd,
    "momentum": ref_momentum,
    "nesterov": ref_nesterov,
    "rmsprop": ref_rmsprop,
    "adam": ref_adam,
    "adamw": ref_adamw,
    "adagrad": ref_adagrad,
}

SETTINGS = {
    "sgd": [
        {},
        {"lr": 0.05, "momentum": 0.9},
        {"lr": 0.3, "momentum": 0.5, "weight_decay": 0.1},
        {"lr": 0.02, "weight_decay": 0.5},
    ],
    "momentum": [{}, {"lr": 0.05, "beta": 0.5}, {"lr": 0.2, "beta": 0.99, "weight_decay": 0.01}, {"beta": 0.0}],
    "nesterov": [{}, {"lr": 0.05, "momentum": 0.5}, {"lr": 0.01, "momentum": 0.99, "weight_decay": 0.2}],
    "rmsprop": [{}, {"lr": 0.001, "beta": 0.9}, {"lr": 0.05, "beta": 0.5, "eps": 1e-3, "weight_decay": 0.1}],
    "adam": [
        {},
        {"lr": 0.1, "beta1": 0.5, "beta2": 0.9},
        {"lr": 0.001, "eps": 1e-4, "weight_decay": 0.1},
        {"beta1": 0.0, "beta2": 0.0},
    ],
    "adamw": [{}, {"lr": 0.1, "weight_decay": 0.5, "beta1": 0.8}, {"lr": 0.003, "weight_decay": 0.0, "eps": 1e-3}],
    "adagrad": [{}, {"lr": 0.5, "lr_decay": 0.1}, {"lr": 0.05, "eps": 1e-3, "weight_decay": 0.2, "lr_decay": 2.0}],
}
CASES = [(name, given) for name in OPTIMIZERS for given in SETTINGS[name]]


def test_every_optimizer_has_a_reference_and_settings():
    assert set(REFERENCE) == set(OPTIMIZERS) == set(SETTINGS)


def gradient(theta, t):
    """A non-trivial gradient: depends on theta (so the trajectory matters), of mixed signs and scales, with noise."""
    noise = np.random.default_rng(t).normal(0.0, 0.3, theta.size)
    scales = np.array([1.0, 3.0, 0.1, 10.0, 0.5, 2.0])
    return scales * (theta - 0.5) + np.sin(3 * theta) + noise


def assert_close(actual, expected, what):
    """1e-14 relative to the vector's size (elementwise relative error means nothing where a value crosses 0)."""
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=1e-14, atol=1e-14 * scale, err_msg=what)


@pytest.mark.parametrize("name,given", CASES)
def test_optimizer_follows_its_formula_step_by_step(name, given):
    optimizer = OPTIMIZERS[name]
    hp = optimizer.hyper(given)
    theta = np.array([0.8, -1.2, 2.0, 0.3, -0.4, 1.5])
    state = optimizer.init_state(theta.size)
    ref_theta, ref_state = theta.copy(), {key: np.zeros(theta.size) for key in optimizer.state_names}
    lrs = hp["lr"] * np.array([1.0, 1.0, 0.5, 0.5, 0.9, 0.3, 1.0, 0.7])  # a schedule changes lr between steps
    for t in range(1, STEPS + 1):
        g = gradient(theta, t)
        ref_theta, ref_state = REFERENCE[name](ref_theta, g.copy(), ref_state, lrs[t - 1], t, hp)
        optimizer.update(theta, g.copy(), state, lrs[t - 1], t, hp)
        assert_close(theta, ref_theta, f"theta after step {t}")
        assert set(state) == set(ref_state)
        for key in ref_state:  # the state a page shows is what the formula says
            assert_close(state[key], ref_state[key], f"{key} after step {t}")
    assert np.max(np.abs(theta - np.array([0.8, -1.2, 2.0, 0.3, -0.4, 1.5]))) > 1e-3  # it did move


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_names_are_the_notes_names(name):
    expected = {
        "sgd": ("velocity",),
        "momentum": ("velocity",),
        "nesterov": ("velocity",),
        "rmsprop": ("s",),
        "adam": ("m", "v", "m_hat", "v_hat"),
        "adamw": ("m", "v", "m_hat", "v_hat"),
        "adagrad": ("sum",),
    }
    assert OPTIMIZERS[name].state_names == expected[name]
    state = OPTIMIZERS[name].init_state(4)
    assert all(np.array_equal(v, np.zeros(4)) for v in state.values())


def test_adam_first_step_is_lr_times_sign_of_g():
    """With bias correction the first Adam step is lr g / (|g| + eps): the point of m_hat, v_hat."""
    theta, g = np.array([1.0, 1.0, 1.0]), np.array([0.001, -50.0, 3.0])
    state = OPTIMIZERS["adam"].init_state(3)
    OPTIMIZERS["adam"].update(theta, g.copy(), state, 0.1, 1, OPTIMIZERS["adam"].hyper({"lr": 0.1, "eps": 1e-12}))
    np.testing.assert_allclose(theta, 1.0 - 0.1 * np.sign(g), rtol=1e-9)
    np.testing.assert_allclose(state["m_hat"], g, rtol=1e-15)
    np.testing.assert_allclose(state["v_hat"], g**2, rtol=1e-15)


def test_momentum_is_not_pytorch_sgd_momentum():
    """The notes' v = beta v + (1 - beta) g is a damped average: its first step is (1 - beta) lr g, not lr g."""
    theta, g = np.zeros(2), np.array([1.0, -2.0])
    state = OPTIMIZERS["momentum"].init_state(2)
    OPTIMIZERS["momentum"].update(theta, g.copy(), state, 0.1, 1, OPTIMIZERS["momentum"].hyper({"beta": 0.9}))
    np.testing.assert_allclose(theta, -0.1 * 0.1 * g, rtol=1e-15)


# ---- against torch.optim, when it happens to be installed (never a dependency) -------------------------------

TORCH = {
    "sgd": lambda torch, p, hp: torch.optim.SGD(
        [p], lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"]
    ),
    "nesterov": lambda torch, p, hp: torch.optim.SGD(
        [p], lr=hp["lr"], momentum=hp["momentum"], nesterov=True, weight_decay=hp["weight_decay"]
    ),
    "rmsprop": lambda torch, p, hp: torch.optim.RMSprop(
        [p], lr=hp["lr"], alpha=hp["beta"], eps=hp["eps"], weight_decay=hp["weight_decay"]
    ),
    "adam": lambda torch, p, hp: torch.optim.Adam(
        [p], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], weight_decay=hp["weight_decay"]
    ),
    "adamw": lambda torch, p, hp: torch.optim.AdamW(
        [p], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], weight_decay=hp["weight_decay"]
    ),
    "adagrad": lambda torch, p, hp: torch.optim.Adagrad(
        [p], lr=hp["lr"], lr_decay=hp["lr_decay"], eps=hp["eps"], weight_decay=hp["weight_decay"]
    ),
}


@pytest.mark.parametrize("name,given", [case for case in CASES if case[0] in TORCH])
def test_optimizer_matches_torch_optim(name, given):
    torch = pytest.importorskip("torch")
    optimizer = OPTIMIZERS[name]
    hp = optimizer.hyper(given)
    theta = np.array([0.8, -1.2, 2.0, 0.3, -0.4, 1.5])
    param = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    torch_opt = TORCH[name](torch, param, hp)
    state = optimizer.init_state(theta.size)
    for t in range(1, STEPS + 1):
        g = gradient(theta, t)
        param.grad = torch.tensor(g, dtype=torch.float64)
        torch_opt.step()
        optimizer.update(theta, g.copy(), state, hp["lr"], t, hp)
        np.testing.assert_allclose(theta, param.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"step {t}")


# ---- hyperparameter validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_unknown_hyperparameter_is_named(name):
    with pytest.raises(ValueError, match=r"^optimizer\.betta:"):
        OPTIMIZERS[name].hyper({"betta": 0.9})
    with pytest.raises(ValueError, match=r"^optimizer\.betta:"):
        optimizer_from_dict({"name": name, "betta": 0.9})


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr", [0.0, -0.1, 100.5, float("nan"), float("inf"), "0.1", True])
def test_out_of_range_lr_is_named(name, lr):
    with pytest.raises(ValueError, match=r"^optimizer\.lr:"):
        OPTIMIZERS[name].hyper({"lr": lr})
    with pytest.raises(ValueError, match=r"^optimizer\.lr:"):
        optimizer_from_dict({"name": name, "lr": lr})


BETAS = [
    (name, key)
    for name, opt in OPTIMIZERS.items()
    for key in ("beta", "beta1", "beta2", "momentum")
    if key in opt.defaults
]


@pytest.mark.parametrize("name,key", BETAS)
@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan")])
def test_out_of_range_beta_is_named(name, key, value):
    with pytest.raises(ValueError, match=rf"^optimizer\.{key}:"):
        OPTIMIZERS[name].hyper({key: value})


@pytest.mark.parametrize(
    "name,key,value",
    [
        (name, key, value)
        for name, opt in OPTIMIZERS.items()
        for key, bad in (("eps", (0.0, -1e-8, 2.0)), ("weight_decay", (-0.1, 11.0)), ("lr_decay", (-1.0,)))
        if key in opt.defaults
        for value in bad
    ],
)
def test_out_of_range_other_hyperparameters_are_named(name, key, value):
    with pytest.raises(ValueError, match=rf"^optimizer\.{key}:"):
        OPTIMIZERS[name].hyper({key: value})


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_edge_values_are_accepted(name):
    """The ends of each range that are allowed (lr 100 is the divergence demo)."""
    defaults = OPTIMIZERS[name].defaults
    given = {
        "lr": 100.0,
        **{k: 0.0 for k in ("beta", "beta1", "beta2", "momentum", "weight_decay", "lr_decay") if k in defaults},
    }
    assert OPTIMIZERS[name].hyper(given)["lr"] == 100.0
