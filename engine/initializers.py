"""Weight initialisers: W^l of shape (n_l, n_{l-1}), biases start at 0."""

import numpy as np


def zeros(rng, n_out, n_in):
    """All zeros: every hidden unit computes the same thing forever (the symmetry problem)."""
    return np.zeros((n_out, n_in))


def small(rng, n_out, n_in):
    """0.01 N(0, 1), as note 003's BackpropNetwork: fine for shallow nets, vanishing for deep ones."""
    return 0.01 * rng.standard_normal((n_out, n_in))


def xavier(rng, n_out, n_in):
    """Glorot uniform, U(-a, a) with a = sqrt(6 / (n_in + n_out)): keeps variance through tanh/sigmoid layers."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_out, n_in))


def he(rng, n_out, n_in):
    """He normal, N(0, 2 / n_in): keeps variance through ReLU layers."""
    return rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)


def large(rng, n_out, n_in):
    """N(0, 1) * 3: activations saturate or explode, to show why initialisation matters."""
    return 3.0 * rng.standard_normal((n_out, n_in))


INITIALIZERS = {f.__name__: f for f in (zeros, small, xavier, he, large)}
