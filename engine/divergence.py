"""THE divergence rule, one definition for every run (train, race, step, playground).

A run has diverged at the first t whose training objective L(theta_t) is not finite (NaN, inf) or exceeds
FACTOR times the run's starting loss L(theta_0). FACTOR is 100: a loss a hundred times where it began is not a
slow start but a run that has left the region where the gradient describes the loss (y = 2x with SGD lr 1 goes from
18.7 to 1,894 in one step). Callers may pass another factor; `math.inf` turns the ratio test off, leaving
only the non-finite test. A starting loss of zero (or a non-finite one) gives no ratio to compare with, so then
only a non-finite loss counts.
"""

import math

import numpy as np

FACTOR = 100.0  # documented in README (the API's `diverged`, `diverged_at`)


def limit(start_loss, factor: float = FACTOR):
    """The loss above which a run counts as diverged: factor * L(theta_0), inf where that gives no ratio."""
    start = np.asarray(start_loss, dtype=float)
    with np.errstate(all="ignore"):
        bound = factor * start
    return np.where(np.isfinite(start) & (start > 0) & ~np.isnan(bound), bound, np.inf)


def is_diverged(loss, start_loss, factor: float = FACTOR):
    """True where the loss breaks the rule: not finite, or above factor times the starting loss."""
    loss = np.asarray(loss, dtype=float)
    return ~np.isfinite(loss) | (loss > limit(start_loss, factor))


def diverged_at(loss, start_loss: float | None = None, factor: float = FACTOR) -> int | None:
    """The first index t of a loss series (index 0 = theta_0 unless start_loss is given) that breaks the rule."""
    loss = np.asarray(loss, dtype=float)
    if loss.size == 0:
        return None
    start = loss[0] if start_loss is None else start_loss
    bad = np.flatnonzero(is_diverged(loss, start, factor))
    return int(bad[0]) if bad.size else None


def first_divergence(loss: np.ndarray, start_loss, already=None, factor: float = FACTOR) -> np.ndarray:
    """Per column k of a (steps+1, K) loss table: the first row breaking the rule, -1 if none.

    `already` (K,) holds steps found by an earlier test (-1 for none); the earlier of the two is kept.
    """
    bad = is_diverged(loss, start_loss, factor)
    found = np.where(bad.any(axis=0), bad.argmax(axis=0), -1)
    if already is None:
        return found
    already = np.asarray(already)
    both = (found >= 0) & (already >= 0)
    return np.where(both, np.minimum(found, already), np.maximum(found, already))


def describe(factor: float = FACTOR) -> str:
    """The rule in one sentence, for pages and docs."""
    if math.isinf(factor):
        return "a run has diverged when its loss is no longer a finite number"
    return f"a run has diverged when its loss is not finite or exceeds {factor:g}× its starting loss"
