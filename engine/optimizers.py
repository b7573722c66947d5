"""Optimizers as in-place updates of one flat parameter vector theta, each matching the formula it is named after.

`t` is the 1-based count of updates (PyTorch's `state["step"]` after incrementing); `g` is the gradient
dL/dtheta, which an update may overwrite. State vectors are named as the notes name them.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Optimizer:
    """An update rule, its defaults, the state it keeps, and its equations in LaTeX."""

    name: str
    update: Callable
    defaults: dict = field(default_factory=dict)
    state_names: tuple[str, ...] = ()
    equations: tuple[str, ...] = ()
    matches: str = ""

    def init_state(self, size: int) -> dict[str, np.ndarray]:
        """Zeros for every state vector (velocity, s, m, v, ...)."""
        return {name: np.zeros(size) for name in self.state_names}

    def hyper(self, given: dict) -> dict:
        """The defaults overridden by `given`; unknown names and out-of-range values raise ValueError."""
        unknown = set(given) - set(self.defaults)
        if unknown:
            name = sorted(unknown)[0]
            raise ValueError(
                f"optimizer.{name}: not a hyperparameter of {self.name} (it takes {', '.join(self.defaults)})"
            )
        merged = {**self.defaults, **given}
        for key, value in merged.items():
            check_hyper(key, value)
        return merged


def check_hyper(key: str, value) -> None:
    """Bounds shared by every optimizer's hyperparameters."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"optimizer.{key}: must be a finite number")
    if key == "lr" and not 0 < value <= 100:
        raise ValueError("optimizer.lr: must be in (0, 100]")
    if key in ("beta", "beta1", "beta2", "momentum") and not 0 <= value < 1:
        raise ValueError(f"optimizer.{key}: must be in [0, 1)")
    if key == "eps" and not 0 < value <= 1:
        raise ValueError("optimizer.eps: must be in (0, 1]")
    if key in ("weight_decay", "lr_decay") and not 0 <= value <= 10:
        raise ValueError(f"optimizer.{key}: must be in [0, 10]")


# The bounds check_hyper enforces, as data for forms (min, max, whether each end is included).
HYPER_BOUNDS: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0.0, 100.0, False, True),
    "beta": (0.0, 1.0, True, False),
    "beta1": (0.0, 1.0, True, False),
    "beta2": (0.0, 1.0, True, False),
    "momentum": (0.0, 1.0, True, False),
    "eps": (0.0, 1.0, False, True),
    "weight_decay": (0.0, 10.0, True, True),
    "lr_decay": (0.0, 10.0, True, True),
}


def _weight_decay(theta, g, hp):
    """PyTorch's coupled weight decay: g <- g + weight_decay * theta (all parameters, as PyTorch does)."""
    if hp["weight_decay"]:
        g += hp["weight_decay"] * theta


def _descend(theta, lr, direction, spent):
    """theta -= lr * direction, with lr * direction written into `spent` (a gradient buffer the update is done
    with) instead of a new array: on a large net the temporary costs more than the arithmetic (3% of a step of
    784-256-128-10, benchmarks/engine.py)."""
    np.multiply(direction, lr, out=spent)
    theta -= spent


def sgd(theta, g, state, lr, t, hp):
    """torch.optim.SGD: b = mu b + g (when momentum mu > 0); theta -= lr b."""
    _weight_decay(theta, g, hp)
    b = g
    if hp["momentum"]:
        b = state["velocity"]
        b *= hp["momentum"]
        b += g
    _descend(theta, lr, b, g)


def momentum(theta, g, state, lr, t, hp):
    """The notes' momentum (note 003): v = beta v + (1 - beta) g; theta -= lr v."""
    _weight_decay(theta, g, hp)
    v = state["velocity"]
    v *= hp["beta"]
    g *= 1.0 - hp["beta"]
    v += g
    _descend(theta, lr, v, g)


def nesterov(theta, g, state, lr, t, hp):
    """torch.optim.SGD(momentum=mu, nesterov=True): b = mu b + g; theta -= lr (g + mu b)."""
    _weight_decay(theta, g, hp)
    b = state["velocity"]
    b *= hp["momentum"]
    b += g
    g += hp["momentum"] * b
    _descend(theta, lr, g, g)


def rmsprop(theta, g, state, lr, t, hp):
    """The notes' RMSprop = torch.optim.RMSprop(alpha=beta): s = beta s + (1-beta) g^2; theta -= lr g/(sqrt(s)+eps)."""
    _weight_decay(theta, g, hp)
    s = state["s"]
    s *= hp["beta"]
    s += (1.0 - hp["beta"]) * (g * g)
    theta -= lr * g / (np.sqrt(s) + hp["eps"])


def _adam_moments(g, state, t, hp):
    """m, v and their bias-corrected m-hat, v-hat (note 003), stored in `state` so a page can show them."""
    m, v = state["m"], state["v"]
    m *= hp["beta1"]
    m += (1.0 - hp["beta1"]) * g
    v *= hp["beta2"]
    v += (1.0 - hp["beta2"]) * (g * g)
    np.divide(m, 1.0 - hp["beta1"] ** t, out=state["m_hat"])
    np.divide(v, 1.0 - hp["beta2"] ** t, out=state["v_hat"])
    return state["m_hat"], state["v_hat"]


def adam(theta, g, state, lr, t, hp):
    """torch.optim.Adam (the notes' Adam with bias correction): theta -= lr m_hat / (sqrt(v_hat) + eps)."""
    _weight_decay(theta, g, hp)
    m_hat, v_hat = _adam_moments(g, state, t, hp)
    theta -= lr * m_hat / (np.sqrt(v_hat) + hp["eps"])


def adamw(theta, g, state, lr, t, hp):
    """torch.optim.AdamW: decoupled decay theta *= (1 - lr weight_decay), then Adam's step without L2 in g."""
    theta *= 1.0 - lr * hp["weight_decay"]
    m_hat, v_hat = _adam_moments(g, state, t, hp)
    theta -= lr * m_hat / (np.sqrt(v_hat) + hp["eps"])


def adagrad(theta, g, state, lr, t, hp):
    """torch.optim.Adagrad: sum += g^2; theta -= lr_t g / (sqrt(sum) + eps), lr_t = lr / (1 + (t-1) lr_decay)."""
    _weight_decay(theta, g, hp)
    acc = state["sum"]
    acc += g * g
    theta -= (lr / (1.0 + (t - 1) * hp["lr_decay"])) * g / (np.sqrt(acc) + hp["eps"])


_ADAM_EQ = (
    r"m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t",
    r"v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2",
    r"\hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t}",
)

OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer(
            "sgd",
            sgd,
            {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
            ("velocity",),
            (r"\theta \leftarrow \theta - \eta\, g",),
            "torch.optim.SGD",
        ),
        Optimizer(
            "momentum",
            momentum,
            {"lr": 0.1, "beta": 0.9, "weight_decay": 0.0},
            ("velocity",),
            (r"v_t = \beta v_{t-1} + (1-\beta)\, g_t", r"\theta_t = \theta_{t-1} - \eta\, v_t"),
            "the notes' momentum (note 003)",
        ),
        Optimizer(
            "nesterov",
            nesterov,
            {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0},
            ("velocity",),
            (r"b_t = \mu b_{t-1} + g_t", r"\theta_t = \theta_{t-1} - \eta\,(g_t + \mu b_t)"),
            "torch.optim.SGD(nesterov=True)",
        ),
        Optimizer(
            "rmsprop",
            rmsprop,
            {"lr": 0.01, "beta": 0.99, "eps": 1e-8, "weight_decay": 0.0},
            ("s",),
            (
                r"s_t = \beta s_{t-1} + (1-\beta)\, g_t^2",
                r"\theta_t = \theta_{t-1} - \frac{\eta}{\sqrt{s_t} + \epsilon}\, g_t",
            ),
            "the notes' RMSprop = torch.optim.RMSprop(alpha=beta)",
        ),
        Optimizer(
            "adam",
            adam,
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
            ("m", "v", "m_hat", "v_hat"),
            _ADAM_EQ + (r"\theta_t = \theta_{t-1} - \frac{\eta}{\sqrt{\hat v_t} + \epsilon}\, \hat m_t",),
            "torch.optim.Adam",
        ),
        Optimizer(
            "adamw",
            adamw,
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
            ("m", "v", "m_hat", "v_hat"),
            (r"\theta \leftarrow \theta\,(1 - \eta\lambda)",)
            + _ADAM_EQ
            + (r"\theta_t = \theta - \frac{\eta}{\sqrt{\hat v_t} + \epsilon}\, \hat m_t",),
            "torch.optim.AdamW",
        ),
        Optimizer(
            "adagrad",
            adagrad,
            {"lr": 0.1, "lr_decay": 0.0, "eps": 1e-10, "weight_decay": 0.0},
            ("sum",),
            (r"G_t = G_{t-1} + g_t^2", r"\theta_t = \theta_{t-1} - \frac{\eta}{\sqrt{G_t} + \epsilon}\, g_t"),
            "torch.optim.Adagrad",
        ),
    )
}
