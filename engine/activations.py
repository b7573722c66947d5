"""Activation functions, each paired with its derivative sigma'(z)."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.special import softmax as _softmax


@dataclass(frozen=True)
class Activation:
    """sigma and sigma'; `grad(z, a)` receives a = sigma(z) too, so sigmoid'/tanh' reuse it."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    latex: str  # sigma(z) as the page writes it
    latex_grad: str  # sigma'(z)
    output_only: bool = False


LEAKY_SLOPE = 0.01  # PyTorch's nn.LeakyReLU default negative_slope


def sigmoid(z):
    """sigma(z) = 1 / (1 + e^-z), via scipy's expit: no overflow for large |z|."""
    return expit(z)


def sigmoid_grad(z, a):
    """sigma'(z) = sigma(z) (1 - sigma(z))."""
    return a * (1.0 - a)


def tanh_grad(z, a):
    """tanh'(z) = 1 - tanh(z)^2."""
    return 1.0 - a * a


def relu(z):
    """max(0, z)."""
    return np.maximum(z, 0.0)


def relu_grad(z, a):
    """1 where z > 0, else 0 (PyTorch's choice at z = 0)."""
    return (z > 0).astype(np.float64)


def leaky_relu(z):
    """z where z > 0, else 0.01 z."""
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_grad(z, a):
    """1 where z > 0, else 0.01."""
    return np.where(z > 0, 1.0, LEAKY_SLOPE)


def linear_grad(z, a):
    """The identity's derivative is 1."""
    return np.ones_like(z)


def softmax(z):
    """softmax over the units of each sample (rows are samples); shifted by max, so exp never overflows."""
    return _softmax(z, axis=-1)


def softmax_grad(z, a):
    """Softmax has a Jacobian, not an elementwise derivative: see `apply_grad`."""
    raise TypeError("softmax's derivative is a Jacobian; use apply_grad")


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_grad, r"\frac{1}{1+e^{-z}}", r"\sigma(z)(1-\sigma(z))"),
        Activation("tanh", np.tanh, tanh_grad, r"\tanh z", r"1-\tanh^2 z"),
        Activation("relu", relu, relu_grad, r"\max(0, z)", r"[z>0]"),
        Activation("leaky_relu", leaky_relu, leaky_relu_grad, r"\max(0.01z, z)", r"[z>0] + 0.01[z\le 0]"),
        Activation("linear", lambda z: z.copy(), linear_grad, r"z", r"1"),
        Activation(
            "softmax",
            softmax,
            softmax_grad,
            r"\frac{e^{z_k}}{\sum_j e^{z_j}}",
            r"\operatorname{diag}(a) - a a^T",
            output_only=True,
        ),
    )
}


def apply_grad(act: Activation, z: np.ndarray, a: np.ndarray, upstream: np.ndarray) -> np.ndarray:
    """dL/dz from dL/da: upstream (.) sigma'(z), or the softmax Jacobian-vector product a (.) (g - <g, a>)."""
    if act.name == "softmax":
        return a * (upstream - np.sum(upstream * a, axis=-1, keepdims=True))
    return upstream * act.grad(z, a)
