"""Loss surfaces: the loss over a 2-D grid of two parameters, or over a filter-normalised 2-D slice (Li et al. 2018).

Two views of the objective J(theta) near a point theta_c:
  * `parameter_grid`: J with two entries theta_i, theta_j swept over a grid and every other entry held fixed;
  * `slice_grid`: J(theta_c + alpha d1 + beta d2) over (alpha, beta) for two directions of the whole of theta,
    drawn by `random_directions` and filter-normalised as in Li, Xu, Taylor, Studer & Goldstein, "Visualizing
    the Loss Landscape of Neural Nets" (NeurIPS 2018), so the plot's scale follows the scale of the weights.
`project` maps a training path theta_0..theta_T onto the slice's plane to draw it over the contours.
  * `path_landscape`: J on the plane of the first two principal directions of the paths themselves (`pca_plane`),
    anchored at theta_0, over a grid that covers every path: the plane the paths actually live in, with the
    share of their squared distance from theta_0 it holds (Li et al. 2018, section 7).

Every grid point is a row of a stacked (G, P) theta, and the forward pass runs on all of them at once with
`np.matmul` over the leading axis (the trainer's trick, ../shared/RECIPES.md): a 41 x 41 grid is a few dozen
NumPy calls, not 1,681 forward passes. Points where the loss is not finite (overflow far from theta_c) are NaN,
which Plotly's contour leaves blank; nothing here raises on divergence.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .activations import ACTIVATIONS
from .gradcheck import parameter_names
from .network import Network, Params
from .trainer import layer_offsets

MAX_FLOATS = 4_000_000  # the largest array one chunk of the batched forward allocates (32 MB); far from
# the 20M-float ceiling because larger chunks were no faster, only heavier
MAX_RESOLUTION = 201

# hidden activations computed into z's own buffer (the same functions as ACTIVATIONS, so the same values);
# the others fall back to ACTIVATIONS[name].f
_IN_PLACE = {
    "sigmoid": lambda z: expit(z, out=z),
    "tanh": lambda z: np.tanh(z, out=z),
    "relu": lambda z: np.maximum(z, 0.0, out=z),
}


@dataclass(frozen=True)
class Surface:
    """J over a grid: `loss[r, c]` is the loss at (u[c], v[r]), rows = v as Plotly's contour z expects."""

    u: np.ndarray  # (resolution,) horizontal coordinate: theta_i itself, or alpha along d1
    v: np.ndarray  # (resolution,) vertical coordinate: theta_j itself, or beta along d2
    loss: np.ndarray  # (resolution, resolution) the objective; NaN where it is not finite
    center: tuple[float, float]  # (u, v) of theta_c, the point the grid is centred on
    center_loss: float  # J(theta_c)
    theta: np.ndarray  # (P,) theta_c
    u_label: str  # "W1[0,0]" or "alpha (d1)"
    v_label: str
    indices: tuple[int, int] | None = None  # (i, j) for a parameter grid, None for a slice

    @property
    def argmin(self) -> tuple[float, float] | None:
        """(u, v) of the lowest finite loss on the grid, or None when no point is finite."""
        if not np.any(np.isfinite(self.loss)):
            return None
        r, c = np.unravel_index(np.nanargmin(self.loss), self.loss.shape)
        return float(self.u[c]), float(self.v[r])


def objective_batch(net: Network, thetas: np.ndarray, X, Y, l2: float = 0.0, l1: float = 0.0) -> np.ndarray:
    """J(theta_g) for every row of thetas (G, P): `backprop.objective` evaluated on a stack; NaN if not finite."""
    thetas = np.asarray(thetas, dtype=np.float64)
    if thetas.ndim != 2 or thetas.shape[1] != net.n_params:
        raise ValueError(f"thetas: must have shape (G, {net.n_params}), got {thetas.shape}")
    return _losses(net, X, Y, l2, l1, thetas.shape[0], lambda rows: thetas[rows])


def parameter_grid(
    net: Network,
    params: Params,
    X,
    Y,
    i: int,
    j: int,
    span_i: float,
    span_j: float,
    resolution: int = 41,
    l2: float = 0.0,
    l1: float = 0.0,
) -> Surface:
    """J over [theta_i - span_i, theta_i + span_i] x [theta_j - span_j, theta_j + span_j], the rest of theta fixed."""
    theta = _theta(net, params)
    P = net.n_params
    for name, value in (("i", i), ("j", j)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < P:
            raise ValueError(f"{name}: must be a parameter index from 0 to {P - 1}")
    if i == j:
        raise ValueError("j: must differ from i (two different parameters)")
    _check_span(span_i, "span_i")
    _check_span(span_j, "span_j")
    _check_resolution(resolution)
    u = theta[i] + span_i * _steps(resolution)
    v = theta[j] + span_j * _steps(resolution)

    def thetas_for(rows):
        """Rows of the flattened grid (v-major, like `loss`): theta_c with entries i and j replaced."""
        flat = np.arange(resolution * resolution)[rows]
        block = np.tile(theta, (flat.size, 1))
        block[:, i] = u[flat % resolution]
        block[:, j] = v[flat // resolution]
        return block

    loss = _losses(net, X, Y, l2, l1, resolution * resolution, thetas_for).reshape(resolution, resolution)
    names = parameter_names(net)
    center_loss = float(objective_batch(net, theta[None], X, Y, l2, l1)[0])
    return Surface(
        u, v, loss, (float(theta[i]), float(theta[j])), center_loss, theta, names[i], names[j], (int(i), int(j))
    )


def random_directions(net: Network, params: Params, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian directions in theta space, filter-normalised (Li et al. 2018, section 4).

    For every layer, row k of W^l (the incoming weights of unit k: a "filter") is rescaled in each direction
    to the norm of that row of W^l:  d^l_k <- d^l_k / ||d^l_k|| * ||W^l_k||.  Bias entries are set to 0, as
    Li et al. leave biases out. A zero row of W^l gives a zero row of the direction.
    """
    theta = _theta(net, params)
    rng = np.random.default_rng(seed)
    directions = []
    for _ in range(2):
        d = rng.standard_normal(net.n_params)
        for offset, (n_in, n_out) in zip(layer_offsets(net), zip(net.layers[:-1], net.layers[1:])):
            size = n_out * (n_in + 1)
            block = d[offset : offset + size].reshape(n_out, n_in + 1)  # a view: [d_W | d_b] of layer l
            W = theta[offset : offset + size].reshape(n_out, n_in + 1)[:, :n_in]
            d_norm = np.linalg.norm(block[:, :n_in], axis=1, keepdims=True)
            w_norm = np.linalg.norm(W, axis=1, keepdims=True)
            block[:, :n_in] *= np.divide(w_norm, d_norm, out=np.zeros_like(w_norm), where=d_norm > 0)
            block[:, n_in] = 0.0
        directions.append(d)
    return directions[0], directions[1]


def slice_grid(
    net: Network, center_theta, d1, d2, X, Y, span: float = 1.0, resolution: int = 41, l2: float = 0.0, l1: float = 0.0
) -> Surface:
    """J(theta_c + alpha d1 + beta d2) for alpha (u) and beta (v) in [-span, span]."""
    theta = _theta(net, center_theta)
    d1, d2 = (np.asarray(d, dtype=np.float64).reshape(-1) for d in (d1, d2))
    for name, d in (("d1", d1), ("d2", d2)):
        if d.shape != theta.shape:
            raise ValueError(f"{name}: must have {net.n_params} entries like theta, got {d.size}")
    _check_span(span, "span")
    _check_resolution(resolution)
    alpha = span * _steps(resolution)
    beta = span * _steps(resolution)
    a_flat = np.tile(alpha, resolution)  # v-major order: row r of `loss` is beta[r]
    b_flat = np.repeat(beta, resolution)

    def thetas_for(rows):
        return theta + a_flat[rows, None] * d1 + b_flat[rows, None] * d2

    loss = _losses(net, X, Y, l2, l1, resolution * resolution, thetas_for).reshape(resolution, resolution)
    center_loss = float(objective_batch(net, theta[None], X, Y, l2, l1)[0])
    return Surface(alpha, beta, loss, (0.0, 0.0), center_loss, theta, "alpha (d1)", "beta (d2)", None)


def project(path_thetas, center, d1, d2) -> np.ndarray:
    """(alpha_t, beta_t) minimising ||theta_t - center - alpha d1 - beta d2||: least squares, d1, d2 not orthogonal.

    Uses the pseudo-inverse of [d1 d2] (P, 2), so a NaN row of the path (a diverged step) gives a NaN row back
    instead of an error.
    """
    path = np.asarray(path_thetas, dtype=np.float64)
    path = path[None, :] if path.ndim == 1 else path
    D = np.column_stack([np.asarray(d1, dtype=np.float64).reshape(-1), np.asarray(d2, dtype=np.float64).reshape(-1)])
    if path.shape[1] != D.shape[0] or np.asarray(center).size != D.shape[0]:
        raise ValueError(f"path_thetas: rows must have {D.shape[0]} entries like center, d1 and d2")
    if not np.all(np.isfinite(D)):
        return np.full((path.shape[0], 2), np.nan)  # directions drawn at a diverged theta: no plane
    with np.errstate(all="ignore"):
        return (path - np.asarray(center, dtype=np.float64).reshape(-1)) @ np.linalg.pinv(D).T


# ---- the plane the paths live in (PCA of the stacked trajectories) ---------------------------------------------
@dataclass(frozen=True)
class Plane:
    """A 2-D plane through `center` spanned by orthonormal d1, d2, and how much of the paths it holds."""

    center: np.ndarray  # (P,) theta_0: every contestant starts there, so every path starts at (0, 0)
    d1: np.ndarray  # (P,) unit vector, the first principal direction
    d2: np.ndarray  # (P,) unit vector orthogonal to d1
    explained: tuple[float, float]  # share of sum_t ||theta_t - center||^2 along d1 and along d2


def pca_plane(center, paths, seed: int = 0) -> Plane:
    """The first two principal directions of the stacked trajectories (Li et al. 2018, section 7, for paths).

    Every finite theta_t of every path, minus `center`, is a row of M; the right singular vectors of M with
    the two largest singular values span the plane that holds the most of the paths' squared distance from
    the centre, and sigma_i^2 / sum_j sigma_j^2 is the share each holds. Li et al. anchor the plane at the
    final weights of their one run; a race has one common point, theta_0, so the plane is anchored there and
    holds every start exactly. When the paths span fewer than two directions, the missing ones are seeded
    random unit vectors orthogonal to the others (and hold 0 of the paths).
    """
    center = np.asarray(center, dtype=np.float64).reshape(-1)
    P = center.size
    rows = [np.asarray(p, dtype=np.float64).reshape(-1, P) for p in paths if p is not None and len(p)]
    M = np.vstack(rows) - center if rows else np.zeros((0, P))
    M = M[np.all(np.isfinite(M), axis=1)]
    directions, shares = [], []
    if len(M):
        # the eigenvectors of the smaller Gram matrix (M^T M or M M^T) give M's singular vectors at a fraction of
        # an SVD's cost for a tall or a wide M; sigma_i^2 are its eigenvalues
        total = float(np.sum(M * M))
        if M.shape[0] >= P:
            eigval, eigvec = np.linalg.eigh(M.T @ M)
            top = [(float(eigval[i]), eigvec[:, i]) for i in np.argsort(eigval)[::-1][:2]]
        else:
            eigval, eigvec = np.linalg.eigh(M @ M.T)
            top = []
            for i in np.argsort(eigval)[::-1][:2]:
                v = M.T @ eigvec[:, i]
                norm = float(np.linalg.norm(v))
                top.append((float(eigval[i]), v / norm if norm > 0 else v))
        for sigma_sq, v in top:
            if total > 0 and sigma_sq > 1e-24 * total:
                directions.append(v)
                shares.append(min(1.0, max(0.0, sigma_sq / total)))
    rng = np.random.default_rng(seed)
    while len(directions) < 2:
        d = rng.standard_normal(P) if P > 1 else np.ones(P)
        for e in directions:
            d -= (d @ e) * e
        directions.append(d / np.linalg.norm(d))
        shares.append(0.0)
    d1, d2 = directions
    if d1[np.argmax(np.abs(d1))] < 0:  # a sign fixed by the data, not by LAPACK: the largest entry positive
        d1 = -d1
    if d2[np.argmax(np.abs(d2))] < 0:
        d2 = -d2
    return Plane(center, d1, d2, (shares[0], shares[1]))


def plane_grid(net: Network, plane: Plane, X, Y, u, v, l2: float = 0.0, l1: float = 0.0) -> Surface:
    """J(center + u_c d1 + v_r d2) on the grid u x v (rows = v), for any two ranges of the plane's coordinates."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    theta, d1, d2 = plane.center, plane.d1, plane.d2
    a_flat = np.tile(u, v.size)
    b_flat = np.repeat(v, u.size)

    def thetas_for(rows):
        return theta + a_flat[rows, None] * d1 + b_flat[rows, None] * d2

    loss = _losses(net, X, Y, l2, l1, u.size * v.size, thetas_for).reshape(v.size, u.size)
    center_loss = float(objective_batch(net, theta[None], X, Y, l2, l1)[0])
    return Surface(u, v, loss, (0.0, 0.0), center_loss, theta.copy(), "PC 1", "PC 2", None)


def covering_range(values, margin: float = 0.15, minimum: float = 1e-3, resolution: int = 41) -> np.ndarray:
    """`resolution` evenly spaced coordinates covering the finite `values` and 0 (the centre), with a margin."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = np.append(values[np.isfinite(values)], 0.0)
    lo, hi = float(values.min()), float(values.max())
    pad = max(margin * (hi - lo), minimum)
    return np.linspace(lo - pad, hi + pad, resolution)


def path_landscape(
    net: Network,
    center,
    paths,
    X,
    Y,
    resolution: int = 41,
    l2: float = 0.0,
    l1: float = 0.0,
    seed: int = 0,
    fit: list[int] | None = None,
) -> tuple[Surface, Plane, list[np.ndarray]]:
    """The loss on the PCA plane of the paths, anchored at `center` (theta_0), over a grid covering the paths,
    and each path's coordinates (alpha_t, beta_t) on it. The one definition /race and /api/v1/surface share.

    `fit` names the paths the plane and the grid are fitted to (default all): a diverged run's last steps are
    far away and would take the plane and the grid with them, so callers leave diverged runs out when others
    remain; those are still projected and drawn until they leave the grid."""
    chosen = [paths[k] for k in (range(len(paths)) if fit is None else fit)]
    plane = pca_plane(center, chosen, seed)
    D = np.column_stack([plane.d1, plane.d2])
    with np.errstate(all="ignore"):
        projected = [(np.asarray(p, dtype=np.float64) - plane.center) @ D for p in paths]
    fitted = [projected[k] for k in (range(len(paths)) if fit is None else fit)]
    stacked = np.vstack(fitted) if fitted else np.zeros((0, 2))
    u = covering_range(stacked[:, 0], resolution=resolution)
    v = covering_range(stacked[:, 1], resolution=resolution)
    return plane_grid(net, plane, X, Y, u, v, l2, l1), plane, projected


# ---- the batched forward ---------------------------------------------------------------------------------------
def _losses(net: Network, X, Y, l2, l1, G: int, thetas_for) -> np.ndarray:
    """J for G thetas built chunk by chunk by `thetas_for(slice)`, so no array exceeds MAX_FLOATS."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    m = X.shape[0]
    widest = max(net.layers) + 1
    chunk = max(1, MAX_FLOATS // max(m * widest, net.n_params))
    out = np.empty(G)
    offsets = layer_offsets(net)
    with np.errstate(all="ignore"):
        for start in range(0, G, chunk):
            rows = slice(start, min(start + chunk, G))
            out[rows] = _objective_stack(net, thetas_for(rows), X, Y, l2, l1, offsets)
        out[~np.isfinite(out)] = np.nan
    return out


def predictions(net: Network, thetas: np.ndarray, X) -> np.ndarray:
    """a^L (G, m, n_L) for every row of thetas (G, P) on the rows of X: `backprop.predict` on a stack, one matmul
    per layer for all of them (a race's decision-boundary frames: a few dozen thetas on a grid of points)."""
    thetas = np.asarray(thetas, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    G, m = thetas.shape[0], X.shape[0]
    out = np.empty((G, m, net.layers[-1]))
    chunk = max(1, MAX_FLOATS // max(m * (max(net.layers) + 1), net.n_params))
    offsets = layer_offsets(net)
    with np.errstate(all="ignore"):
        for start in range(0, G, chunk):
            rows = slice(start, min(start + chunk, G))
            out[rows] = _forward_stack(net, thetas[rows], X, offsets)[1]
    return out


def _forward_stack(net: Network, thetas: np.ndarray, X, offsets):
    """z^L, a^L and the weights W^l for each row of thetas (g, P), computed as `backprop.forward` does.

    z^l = a^{l-1} W^l.T + b^l with W^l (g, n_l, n_{l-1}) stacked: np.matmul broadcasts the shared X over g.
    """
    g = thetas.shape[0]
    a = X
    Ws = []
    for l, (n_in, n_out) in enumerate(zip(net.layers[:-1], net.layers[1:])):
        block = thetas[:, offsets[l] : offsets[l] + n_out * (n_in + 1)].reshape(g, n_out, n_in + 1)
        W = np.ascontiguousarray(block[..., :n_in])  # like Params.from_flat's copy, so matmul sees one layout
        Ws.append(W)
        z = np.matmul(a, W.transpose(0, 2, 1))
        z += block[:, None, :, n_in]
        in_place = _IN_PLACE.get(net.activations[l]) if l < net.depth - 1 else None
        # a hidden z^l is not needed again: overwrite it with a^l
        a = in_place(z) if in_place is not None else ACTIVATIONS[net.activations[l]].f(z)
    return z, a, Ws


def _objective_stack(net: Network, thetas: np.ndarray, X, Y, l2, l1, offsets) -> np.ndarray:
    """`backprop.objective` for each row of thetas (g, P), computed the same way so theta_c gives the same bits."""
    z, a, Ws = _forward_stack(net, thetas, X, offsets)
    loss = net.loss_fn.per_sample(z, a, Y).mean(axis=-1)
    # the penalty summed in the order `backprop.penalty` sums it: layer by layer, L2 then L1
    penalty = 0.0
    if l2:
        penalty = penalty + 0.5 * l2 * _layer_sum(W_l * W_l for W_l in Ws)
    if l1:
        penalty = penalty + l1 * _layer_sum(np.abs(W_l) for W_l in Ws)
    return loss + penalty


def _layer_sum(per_layer) -> np.ndarray:
    """sum_l of each stacked layer's total, one total per theta, starting from 0 like Python's sum()."""
    total = 0
    for values in per_layer:
        total = total + values.reshape(values.shape[0], -1).sum(axis=-1)
    return total


# ---- helpers ---------------------------------------------------------------------------------------------------
def _theta(net: Network, params) -> np.ndarray:
    """theta_c as a flat float vector from Params or an array (a diverged, non-finite theta gives NaN losses)."""
    theta = params.flat() if isinstance(params, Params) else np.asarray(params, dtype=np.float64).reshape(-1)
    if theta.size != net.n_params:
        raise ValueError(f"params: theta must have {net.n_params} entries, got {theta.size}")
    return theta.astype(np.float64, copy=True)


def _steps(resolution: int) -> np.ndarray:
    """resolution points in [-1, 1]; the middle one exactly 0 when resolution is odd, so the grid holds theta_c."""
    steps = np.linspace(-1.0, 1.0, resolution)
    if resolution % 2:
        steps[resolution // 2] = 0.0
    return steps


def _check_span(span, field):
    if isinstance(span, bool) or not isinstance(span, (int, float)) or not np.isfinite(span) or span <= 0:
        raise ValueError(f"{field}: must be a positive finite number")


def _check_resolution(resolution):
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or not 2 <= resolution <= MAX_RESOLUTION
    ):
        raise ValueError(f"resolution: must be a whole number from 2 to {MAX_RESOLUTION}")
