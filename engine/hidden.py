"""What a hidden layer sees: the data points and the input plane's grid lines mapped into its activation space.

A layer of 2 units is drawn directly (a_1, a_2); a wider one on the first two principal components of its
activations on the data points, with the fraction of their variance each component captures; a single unit is
drawn along one axis. As training goes the picture shows the network untangling the data (ConvNetJS's view).
"""

from dataclasses import dataclass

import numpy as np

from .backprop import forward
from .datasets import add_features
from .network import Network, Params


@dataclass(frozen=True)
class HiddenView:
    """Points (m, 2) and grid lines (n_lines, n_points, 2) in the layer's 2-D picture, and how it was drawn."""

    layer: int  # l, 1-based: the l-th hidden layer (z^l = W^l a^{l-1} + b^l)
    width: int  # n_l, units in the layer
    points: np.ndarray
    lines: np.ndarray
    axes: tuple[str, str]  # ("a1", "a2"), ("PC1", "PC2") or ("a1", "")
    variance: tuple[float, float] | None  # fraction of the variance on PC1 and PC2 (wide layers only)


def grid_lines(extent: float, n_inputs: int = 2, n_lines: int = 11, n_points: int = 41) -> np.ndarray:
    """Raw input points along the grid lines of [-extent, extent]^2: n_lines vertical then n_lines horizontal
    lines of n_points each, shape (2 n_lines, n_points, 2); for 1-D inputs the one line of the x axis (1, n, 1)."""
    u = np.linspace(-extent, extent, n_points)
    if n_inputs == 1:
        return u[None, :, None]
    ticks = np.linspace(-extent, extent, n_lines)
    lines = np.empty((2 * n_lines, n_points, 2))
    lines[:n_lines, :, 0], lines[:n_lines, :, 1] = ticks[:, None], u[None, :]  # vertical: x fixed
    lines[n_lines:, :, 0], lines[n_lines:, :, 1] = u[None, :], ticks[:, None]  # horizontal: y fixed
    return lines


def activations(net: Network, params: Params, X: np.ndarray, layer: int) -> np.ndarray:
    """a^l for the rows of X (the network's inputs, features applied), l = 1..L-1, evaluation mode."""
    if not 1 <= layer < net.depth:
        raise ValueError(f"layer: choose a hidden layer 1 to {net.depth - 1}")
    with np.errstate(all="ignore"):
        return forward(net, params, X)[1][layer - 1]


def principal_axes(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the first two principal directions (2, n) of the rows of A, and the fraction of variance on each.

    Each direction's sign is fixed (its largest |entry| positive), so the picture does not flip between frames.
    """
    mean = A.mean(axis=0)
    _, s, Vt = np.linalg.svd(A - mean, full_matrices=False)
    total = float(np.sum(s * s))
    directions = Vt[:2]
    signs = np.sign(directions[np.arange(len(directions)), np.argmax(np.abs(directions), axis=1)])
    directions = directions * np.where(signs == 0, 1.0, signs)[:, None]
    fractions = (s[:2] ** 2) / total if total > 0 else np.zeros(len(directions))
    if len(directions) < 2:  # fewer samples than 2: pad with a zero direction
        directions = np.vstack([directions, np.zeros((2 - len(directions), A.shape[1]))])
        fractions = np.concatenate([fractions, np.zeros(2 - len(fractions))])
    return mean, directions, fractions


def hidden_view(
    net: Network, params: Params, raw_points: np.ndarray, layer: int, features=None, lines: np.ndarray | None = None
) -> HiddenView:
    """Layer `layer`'s picture of the raw data points and (optionally) raw grid lines (see grid_lines).

    The principal axes are fitted on the data points' activations; the grid lines are projected on the same axes.
    """

    def inputs(raw):
        return add_features(raw, features) if features else raw

    A = activations(net, params, inputs(np.asarray(raw_points, dtype=np.float64)), layer)
    width = A.shape[1]
    L = None
    if lines is not None:
        n_lines, n_points, n_raw = lines.shape
        L = activations(net, params, inputs(lines.reshape(-1, n_raw)), layer)
    if width == 1:
        pad = np.zeros((len(A), 1))
        return HiddenView(
            layer,
            1,
            np.hstack([A, pad]),
            np.zeros((0, 0, 2)) if L is None else np.hstack([L, np.zeros((len(L), 1))]).reshape(n_lines, n_points, 2),
            ("a1", ""),
            None,
        )
    if width == 2:
        return HiddenView(
            layer, 2, A, np.zeros((0, 0, 2)) if L is None else L.reshape(n_lines, n_points, 2), ("a1", "a2"), None
        )
    finite = np.all(np.isfinite(A), axis=1)
    mean, directions, fractions = (
        principal_axes(A[finite]) if finite.sum() >= 1 else (0.0, np.zeros((2, width)), (0, 0))
    )
    points = (A - mean) @ directions.T
    projected = np.zeros((0, 0, 2)) if L is None else ((L - mean) @ directions.T).reshape(n_lines, n_points, 2)
    return HiddenView(layer, width, points, projected, ("PC1", "PC2"), (float(fractions[0]), float(fractions[1])))
