"""Per-sample losses l_i and their gradient with respect to the output z^L (delta^L)."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from .activations import ACTIVATIONS, apply_grad


@dataclass(frozen=True)
class Loss:
    """A loss: per-sample value l_i(z^L, a^L, y) and dl_i/da^L; `requires` names the output activation it needs."""

    name: str
    per_sample: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    grad_a: Callable[[np.ndarray, np.ndarray], np.ndarray]
    latex: str
    latex_delta: str
    requires: str | None = None


def mse(z, a, y):
    """(1/n_L) sum_k (a_k - y_k)^2; its batch mean is torch.nn.MSELoss()."""
    return np.mean((a - y) ** 2, axis=-1)


def mse_grad(a, y):
    """dl/da = (2/n_L) (a - y)."""
    return (2.0 / a.shape[-1]) * (a - y)


def half_mse(z, a, y):
    """1/2 sum_k (a_k - y_k)^2: the notes' form, whose gradient is plainly (a - y)."""
    return 0.5 * np.sum((a - y) ** 2, axis=-1)


def half_mse_grad(a, y):
    """dl/da = a - y."""
    return a - y


def bce(z, a, y):
    """-sum_k [y log a + (1-y) log(1-a)] with a = sigma(z), written as softplus(z) - y z so log(0) never happens."""
    return np.sum(np.logaddexp(0.0, z) - y * z, axis=-1)


def bce_grad(a, y):
    """dl/da = -y/a + (1-y)/(1-a) (note 003); only used for display, delta^L takes the stable a - y."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -y / a + (1.0 - y) / (1.0 - a)


def cross_entropy(z, a, y):
    """-sum_k y_k log a_k with a = softmax(z), via log-softmax so no log(0); torch.nn.CrossEntropyLoss."""
    return -np.sum(y * log_softmax(z, axis=-1), axis=-1)


def cross_entropy_grad(a, y):
    """dl/da = -y / a (display only; delta^L = a - y)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -y / a


LOSSES: dict[str, Loss] = {
    l.name: l
    for l in (
        Loss("mse", mse, mse_grad, r"\frac{1}{n_L}\sum_k (a_k - y_k)^2", r"\frac{2}{n_L}(a^L - y) \odot \sigma'(z^L)"),
        Loss("half_mse", half_mse, half_mse_grad, r"\frac{1}{2}\sum_k (a_k - y_k)^2", r"(a^L - y) \odot \sigma'(z^L)"),
        Loss(
            "bce",
            bce,
            bce_grad,
            r"-\sum_k \left[y_k \log a_k + (1-y_k)\log(1-a_k)\right]",
            r"a^L - y",
            requires="sigmoid",
        ),
        Loss(
            "cross_entropy", cross_entropy, cross_entropy_grad, r"-\sum_k y_k \log a_k", r"a^L - y", requires="softmax"
        ),
    )
}


def output_delta(loss: Loss, activation_name: str, z, a, y):
    """delta^L = dl_i/dz^L per sample: grad_a l (.) sigma'(z^L), or a - y where sigmoid+BCE / softmax+CE cancel."""
    if loss.requires is not None:
        return a - y
    return apply_grad(ACTIVATIONS[activation_name], z, a, loss.grad_a(a, y))
