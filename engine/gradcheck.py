"""Gradient checking by central differences (note 003, finished).

For each checked entry i of theta (the flat vector of `Params.flat`, the rows of [W^l | b^l] layer by layer):

    numeric_i = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)
    difference = ||numeric - analytic|| / (||numeric|| + ||analytic||)      (0 when both norms are 0)
    passed = difference < threshold                                          (1e-7, as the note)

J is `backprop.objective`, the training objective (mean loss plus the L2/L1 penalty), and the analytic gradient
is what `backprop.backprop` hands the optimizer (`grad_W`, `grad_b`), so the check covers the penalty too.

Where note 003's `gradient_check` slips, and what this module does instead:
  * it calls `compute_loss_with_params`, which the notes never define ("Simplified - need to reshape and set
    parameters"); here `Params.from_flat` reshapes theta and `objective` evaluates it, so the check runs;
  * it flattens all of W^l then all of b^l, an order that must match nothing else; here theta is `Params.flat`,
    the same vector the trainer and the optimizers use, so an index means the same parameter everywhere;
  * it prints its verdict; here the verdict is data (`GradCheck`) a page can render, with a per-parameter
    relative error that shows *which* W^l[j, k] is wrong, not only that something is.

One refinement the note omits: the denominator is the step actually taken, (theta_i + eps) - (theta_i - eps) in
floating point, rather than 2 eps; with eps = 1e-7 the two differ by up to ~1e-9 relative, enough to matter
against a 1e-7 threshold.
"""

from dataclasses import dataclass

import numpy as np

from .backprop import backprop, objective
from .network import Network, Params

THRESHOLD = 1e-7  # the note's "difference < 1e-7"
EPSILON_RANGE = (1e-10, 1e-2)


@dataclass(frozen=True)
class GradCheck:
    """Analytic against numeric gradient for the checked entries of theta."""

    index: np.ndarray  # (n,) flat-theta indices checked, ascending
    names: tuple[str, ...]  # "W1[0,1]", "b2[0]": layer numbers from 1 as the notes write W^1
    analytic: np.ndarray  # (n,) dJ/dtheta_i from backprop (penalty included)
    numeric: np.ndarray  # (n,) central differences of J
    relative_error: np.ndarray  # (n,) |a - n| / (|a| + |n|), 0 where both are 0; in [0, 1]
    difference: float  # ||n - a|| / (||n|| + ||a||), 0 when both norms are 0
    passed: bool  # difference < threshold
    epsilon: float
    threshold: float

    @property
    def worst(self) -> str | None:
        """The name of the parameter whose gradients disagree most (None when nothing was checked)."""
        if self.index.size == 0 or not np.any(np.isfinite(self.relative_error)):
            return None
        return self.names[int(np.nanargmax(self.relative_error))]


def parameter_names(net: Network) -> list[str]:
    """A name for every entry of theta, in `Params.flat` order: W^l[j, k] then b^l[j] for each row j."""
    names = []
    for l, (n_in, n_out) in enumerate(zip(net.layers[:-1], net.layers[1:]), start=1):
        for j in range(n_out):
            names.extend(f"W{l}[{j},{k}]" for k in range(n_in))
            names.append(f"b{l}[{j}]")
    return names


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """|a - n| / (|a| + |n|) per entry: 0 when both are 0, 1 when they have opposite signs or one is 0."""
    scale = np.abs(analytic) + np.abs(numeric)
    gap = np.abs(analytic - numeric)
    return np.divide(gap, scale, out=np.zeros_like(gap), where=scale > 0)


def difference(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """The note's ||n - a|| / (||n|| + ||a||), defined as 0 when both gradients are exactly 0."""
    scale = float(np.linalg.norm(numeric) + np.linalg.norm(analytic))
    gap = float(np.linalg.norm(numeric - analytic))
    if scale == 0.0:
        return 0.0 if gap == 0.0 else float("nan")
    return gap / scale


def gradient_check(
    net: Network,
    params: Params,
    X,
    Y,
    l2: float = 0.0,
    l1: float = 0.0,
    epsilon: float = 1e-7,
    max_params: int | None = None,
    seed: int = 0,
    threshold: float = THRESHOLD,
) -> GradCheck:
    """Central differences of `objective` against `backprop`'s gradient, on every parameter or a seeded sample.

    With `max_params` below the number of parameters, a sample of that many indices is drawn without
    replacement by np.random.default_rng(seed) and sorted, so the same seed checks the same parameters.
    """
    _check_epsilon(epsilon)
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ValueError("threshold: must be a number between 0 and 1")
    P = net.n_params
    if max_params is not None:
        if isinstance(max_params, bool) or int(max_params) != max_params or max_params < 1:
            raise ValueError("max_params: must be a whole number >= 1 (or None to check every parameter)")
        max_params = int(max_params)
    if max_params is None or max_params >= P:
        index = np.arange(P)
    else:
        index = np.sort(np.random.default_rng(seed).choice(P, size=max_params, replace=False))

    theta = params.flat()
    names = parameter_names(net)
    with np.errstate(all="ignore"):
        bp = backprop(net, params, X, Y, l2, l1)
        analytic = Params(bp.grad_W, bp.grad_b).flat()[index]
        numeric = np.empty(index.size)
        for n, i in enumerate(index):
            theta_plus, theta_minus = theta.copy(), theta.copy()
            theta_plus[i] += epsilon
            theta_minus[i] -= epsilon
            loss_plus = objective(net, Params.from_flat(net, theta_plus), X, Y, l2, l1)
            loss_minus = objective(net, Params.from_flat(net, theta_minus), X, Y, l2, l1)
            numeric[n] = (loss_plus - loss_minus) / (theta_plus[i] - theta_minus[i])  # the step really taken
        diff = difference(analytic, numeric)
        rel = relative_error(analytic, numeric)
    return GradCheck(
        index,
        tuple(names[i] for i in index),
        analytic,
        numeric,
        rel,
        diff,
        bool(diff < threshold),
        float(epsilon),
        float(threshold),
    )


def check_experiment(
    spec,
    t: int = 0,
    k: int = 0,
    epsilon: float = 1e-7,
    max_params: int | None = None,
    seed: int = 0,
    threshold: float = THRESHOLD,
) -> GradCheck:
    """Gradient check of contestant k at theta_t on the whole training set, with the spec's L2/L1, no dropout."""
    from .experiment import prepare, state_at  # imported here: experiment pulls in the trainer and optimizers

    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError("t: must be a whole number >= 0")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < len(spec.optimizers):
        raise ValueError(f"k: must be a contestant index from 0 to {len(spec.optimizers) - 1}")
    _check_epsilon(epsilon)
    prep = prepare(spec)
    theta_t = state_at(spec, int(t), int(k)).theta[0]
    params = Params.from_flat(prep.net, theta_t)
    return gradient_check(prep.net, params, prep.X, prep.Y, spec.l2, spec.l1, epsilon, max_params, seed, threshold)


def _check_epsilon(epsilon):
    low, high = EPSILON_RANGE
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not low <= epsilon <= high:
        raise ValueError(f"epsilon: must be a number between {low:g} and {high:g}")
