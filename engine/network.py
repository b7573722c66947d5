"""The network: its shape, activations, loss, and parameters (W^l, b^l) as plain arrays."""

from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATIONS, Activation
from .initializers import INITIALIZERS
from .losses import LOSSES, Loss

MAX_HIDDEN_LAYERS = 8


@dataclass(frozen=True)
class Network:
    """Sizes [n_0, ..., n_L], one activation per layer 1..L, a loss. Parameters live outside, in `Params`."""

    layers: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str

    def __post_init__(self):
        validate_network(self.layers, self.activations, self.loss)

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.layers) - 1

    @property
    def acts(self) -> list[Activation]:
        return [ACTIVATIONS[name] for name in self.activations]

    @property
    def loss_fn(self) -> Loss:
        return LOSSES[self.loss]

    @property
    def n_params(self) -> int:
        return sum(n_out * (n_in + 1) for n_in, n_out in zip(self.layers[:-1], self.layers[1:]))


def validate_network(layers, activations, loss):
    """Raise ValueError naming the field when the network cannot be built."""
    if len(layers) < 2:
        raise ValueError("layers: need at least an input and an output size")
    if len(layers) - 2 > MAX_HIDDEN_LAYERS:
        raise ValueError(f"layers: at most {MAX_HIDDEN_LAYERS} hidden layers")
    if any(int(n) != n or n < 1 for n in layers):
        raise ValueError("layers: every size must be a positive integer")
    if len(activations) != len(layers) - 1:
        raise ValueError(f"activations: need {len(layers) - 1} (one per layer after the input), got {len(activations)}")
    for i, name in enumerate(activations):
        if name not in ACTIVATIONS:
            raise ValueError(f"activations[{i}]: unknown '{name}' (choose from {', '.join(ACTIVATIONS)})")
        if ACTIVATIONS[name].output_only and i != len(activations) - 1:
            raise ValueError(f"activations[{i}]: {name} is allowed on the output layer only")
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown '{loss}' (choose from {', '.join(LOSSES)})")
    required = LOSSES[loss].requires
    if required and activations[-1] != required:
        raise ValueError(f"loss: {loss} needs a {required} output layer, not {activations[-1]}")
    if activations[-1] == "softmax" and layers[-1] < 2:
        raise ValueError("activations: a softmax output needs at least 2 units")


@dataclass(frozen=True)
class Params:
    """W^l (n_l, n_{l-1}) and b^l (n_l,) for l = 1..L, as lists indexed from 0."""

    W: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]

    def flat(self) -> np.ndarray:
        """theta as one vector, layer by layer: the rows of [W^l | b^l] in order."""
        return np.concatenate([np.column_stack([W, b]).ravel() for W, b in zip(self.W, self.b)])

    @staticmethod
    def from_flat(net: Network, theta: np.ndarray) -> "Params":
        """The inverse of `flat`."""
        Ws, bs, offset = [], [], 0
        for n_in, n_out in zip(net.layers[:-1], net.layers[1:]):
            block = theta[offset : offset + n_out * (n_in + 1)].reshape(n_out, n_in + 1)
            Ws.append(block[:, :n_in].copy())
            bs.append(block[:, n_in].copy())
            offset += n_out * (n_in + 1)
        return Params(tuple(Ws), tuple(bs))


def init_params(net: Network, init: str = "xavier", seed: int = 0) -> Params:
    """Draw W^l with the named initialiser from one seeded generator; biases are zero."""
    if init not in INITIALIZERS:
        raise ValueError(f"init: unknown '{init}' (choose from {', '.join(INITIALIZERS)})")
    rng = np.random.default_rng(seed)
    pairs = zip(net.layers[:-1], net.layers[1:])
    return Params(
        tuple(INITIALIZERS[init](rng, n_out, n_in) for n_in, n_out in pairs), tuple(np.zeros(n) for n in net.layers[1:])
    )


def params_from_lists(net: Network, weights, biases) -> Params:
    """Explicit W^l (n_l rows of n_{l-1}) and b^l; biases default to zero when omitted."""
    if len(weights) != net.depth:
        raise ValueError(f"network.weights: need {net.depth} matrices, got {len(weights)}")
    if biases is not None and len(biases) != net.depth:
        raise ValueError(f"network.biases: need {net.depth} vectors, got {len(biases)}")
    Ws, bs = [], []
    for l, (n_in, n_out) in enumerate(zip(net.layers[:-1], net.layers[1:])):
        W = _as_array(weights[l], f"network.weights[{l}]")
        if W.shape != (n_out, n_in):
            raise ValueError(f"network.weights[{l}]: W^{l + 1} must be {n_out} rows of {n_in}, got shape {W.shape}")
        b = np.zeros(n_out) if biases is None else _as_array(biases[l], f"network.biases[{l}]").reshape(-1)
        if b.shape != (n_out,):
            raise ValueError(f"network.biases[{l}]: b^{l + 1} must have {n_out} values, got {b.size}")
        Ws.append(W)
        bs.append(b)
    return Params(tuple(Ws), tuple(bs))


def _as_array(value, field):
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: must be numbers (a matrix as a list of rows)") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{field}: must be finite numbers")
    return array
