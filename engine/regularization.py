"""Inverted dropout masks, gradient clipping by global norm, and the mini-batch order."""

import math

import numpy as np


def dropout_masks(seed: int, t: int, m: int, sizes, drop) -> list:
    """Keep-masks (1 kept, 0 dropped) for each layer at step t; None where the drop probability is 0.

    Drawn from a generator seeded by (seed, t) alone, so every race contestant and every worker draws the same ones.
    """
    if not any(drop):
        return [None] * len(sizes)
    rng = np.random.default_rng([seed, t, 0xD0])
    return [None if p == 0 else (rng.random((m, n)) >= p).astype(np.float64) for n, p in zip(sizes, drop)]


def clip_by_global_norm(g: np.ndarray, max_norm: float) -> tuple[float, float]:
    """torch.nn.utils.clip_grad_norm_: scale g in place by min(1, max_norm / (||g|| + 1e-6)).

    Returns the norms before and after.
    """
    norm = math.sqrt(float(np.dot(g, g)))
    scale = min(1.0, max_norm / (norm + 1e-6))
    if scale < 1.0:
        g *= scale
    return norm, norm * scale


def epoch_order(seed: int, epoch: int, m: int) -> np.ndarray:
    """The order of the m training rows in one epoch: a permutation depending on (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(m)


def batch_position(t: int, m: int, batch_size: int) -> tuple[int, int]:
    """(epoch, index of the batch within it) of step t."""
    return divmod(t, -(-m // batch_size))


def batch_indices(seed: int, t: int, m: int, batch_size: int) -> np.ndarray:
    """Rows of the training set used at step t: epoch e = t // batches_per_epoch is one seeded permutation of
    the m rows, depending on (seed, e) only, so contestants with different batch sizes see the same order.
    The last batch of an epoch may be smaller (PyTorch's DataLoader with drop_last=False)."""
    if batch_size >= m:
        return np.arange(m)
    epoch, k = batch_position(t, m, batch_size)
    return epoch_order(seed, epoch, m)[k * batch_size : (k + 1) * batch_size]
