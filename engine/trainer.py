"""The fast training loop: K contestants that share a batch size trained as one stacked tensor program.

Teaching-size networks are bound by the number of NumPy calls, not by arithmetic (../shared/RECIPES.md), so:
  * every contestant's parameters are one row of theta (K, P); W^l and b^l are views of it, the bias fused as
    the last column of [W^l | b^l] and every layer input carries a row of ones, so z = [W b] [a; 1] is one call;
  * samples run along the last axis (the notes' column vectors side by side): per contestant a^l is one
    contiguous (n_l, mb) block. With samples as rows the ones column sits inside every row, each a^l is a
    strided view, and an elementwise call on it is 4-5x slower (sigma' alone takes three per layer);
  * the K contestants go through `np.matmul` together on a leading axis, so a race pays the per-call overhead
    once, not K times (its arithmetic, mostly exp, still grows with K); one contestant drops that axis and uses
    np.dot, about 1 us less per call on tiny matrices and bit for bit the same result;
  * buffers are allocated once and written with `out=`; the update is a few calls on the whole of theta;
  * the per-step summaries are sums written straight into the history arrays, one or two calls each (the bce
    loss is one dot product [softplus(z^L) | z^L] . [1 | -y], the accuracy another); the divisions by the number
    of samples happen once per run, not once per step;
  * features that are off (dropout, penalties, clipping, a test set, mini-batches) cost nothing.
`engine.backprop` is the readable reference; tests hold this loop to it.
"""

from dataclasses import dataclass, field
from math import isfinite

import numpy as np
from scipy.special import expit

from . import divergence
from .activations import ACTIVATIONS, apply_grad
from .cancel import checker
from .losses import output_delta
from .network import Network, Params
from .optimizers import OPTIMIZERS, Optimizer
from .regularization import batch_position, dropout_masks, epoch_order


@dataclass
class Contestant:
    """One optimizer with its resolved hyperparameters and learning rate per step."""

    optimizer: Optimizer
    hyper: dict
    learning_rates: np.ndarray  # lr_t for t = 0 .. steps-1


@dataclass(frozen=True)
class Regularization:
    """Penalties and tricks shared by every contestant of an experiment."""

    l2: float = 0.0
    l1: float = 0.0
    dropout: tuple[float, ...] = ()  # drop probability per layer 1..L (output always 0)
    clip_norm: float | None = None


@dataclass
class History:
    """Per-step summaries of one contestant; index t is theta_t (losses) or step t (the rest); NaN after divergence."""

    loss: np.ndarray  # (steps+1,) training objective on the whole training set, evaluation mode
    test_loss: np.ndarray | None  # (steps+1,)
    accuracy: np.ndarray | None  # (steps+1,) classification only
    test_accuracy: np.ndarray | None
    learning_rate: np.ndarray  # (steps,)
    delta_norm: np.ndarray  # (steps, L) sqrt(mean_i ||delta^l_i||^2)
    grad_norm: np.ndarray  # (steps, L) ||dW^l||_F of the data gradient
    clip_before: np.ndarray | None  # (steps,) global gradient norm before / after clipping
    clip_after: np.ndarray | None
    diverged_at: int | None
    path: np.ndarray | None = None  # (steps+1, P) theta_t when asked for
    evaluated: np.ndarray | None = None  # (steps+1,) bool: where loss and the metrics were evaluated; None = all


@dataclass
class Checkpoint:
    """Everything needed to continue training from step t: theta and each optimizer's state."""

    t: int
    theta: np.ndarray  # (K, P)
    states: list[dict[str, np.ndarray]] = field(default_factory=list)
    start_loss: np.ndarray | None = None  # (K,) L(theta_0), for the divergence rule of a resumed run

    def copy(self) -> "Checkpoint":
        states = [{k: v.copy() for k, v in s.items()} for s in self.states]
        return Checkpoint(
            self.t, self.theta.copy(), states, None if self.start_loss is None else self.start_loss.copy()
        )


def _relu(z, out):
    return np.maximum(z, 0.0, out=out)


# Past ~4000 values four SIMD ufunc calls compute 1 / (1 + e^-z) faster than scipy's expit (a scalar C loop, 15-20%
# slower there); below it the three extra calls cost more than they save (measured in benchmarks/engine.py's digits
# case). Both round the same formula; on this machine they agree to the bit (20M random z from N(0, 300^2)).
_SIGMOID_SIMD_FROM = 4096


def _sigmoid(z, out):
    """sigma(z) = 1 / (1 + e^-z) into `out`: expit on small arrays, else _sigmoid_via_exp with `out` as its scratch."""
    if z.size < _SIGMOID_SIMD_FROM:
        return expit(z, out=out)
    return _sigmoid_via_exp(z, out, out)


# A sigmoid output with the BCE loss, from this many values: the output keeps e^-z, and the loss summary takes
# softplus(z) = max(z, 0) + log1p(e^-|z|) from it (e^-|z| = min(e^-z, 1/e^-z)), five cheap calls and one log1p instead
# of np.logaddexp's exp and log1p per value: 38 against 53 us on the digits net's 10 x 256 outputs. Within one ulp of
# logaddexp (engine.losses.bce). Below it the extra calls cost more than the exp they save.
_BCE_SHARED_EXP_FROM = 1024


def _sigmoid_via_exp(z, out, e):
    """sigma(z) = 1 / (1 + e^-z) into `out` in four SIMD calls, e^-z computed in `e` (`out` itself, or a buffer the
    BCE summary reads it from); e^-z may overflow to inf, which gives 0 as it should (errstate is off)."""
    np.negative(z, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=out)
    return np.divide(1.0, out, out=out)


def softplus_from_exp(z, e, out):
    """softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|) into `out`, given e = e^-z (which it overwrites):
    e^-|z| is min(e, 1/e), so no exp is taken again. Stable for any z, like np.logaddexp(0, z)."""
    np.reciprocal(e, out=out)
    np.minimum(e, out, out=out)
    np.log1p(out, out=out)
    np.maximum(z, 0.0, out=e)
    out += e
    return out


def _softmax_columns(z, out, top, total):
    """softmax over the units of each sample, which run along axis -2 here, computed as scipy's softmax does it
    (shift by the max, exp, divide by the sum). `top` and `total` (shaped (..., 1, mb)) keep each sample's max and
    sum of exp(z - max): the cross-entropy summary reuses them, log sum_k exp(z_k) = top + log(total)."""
    np.max(z, axis=-2, out=top, keepdims=True)
    np.subtract(z, top, out=out)
    np.exp(out, out=out)
    np.sum(out, axis=-2, out=total, keepdims=True)
    np.divide(out, total, out=out)


# sigma(z) written into a buffer; the formulas engine.activations applies, so equal to it (to the bit, bar
# _sigmoid's note above; np.positive is an exact copy, the identity). Softmax works on the pass's buffers (see
# StackedTrainer._plan). The others go through engine.activations.
_FORWARD_OUT = {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": _relu, "linear": np.positive, "softmax": _softmax_columns}
# losses whose sum over the samples the summaries take as one dot product (see StackedTrainer._summarize)
_DOT_LOSSES = ("bce", "half_mse", "mse", "cross_entropy")


def weight_mask(net: Network) -> np.ndarray:
    """1 where theta holds a weight, 0 where it holds a bias (penalties touch weights only)."""
    parts = []
    for n_in, n_out in zip(net.layers[:-1], net.layers[1:]):
        block = np.ones((n_out, n_in + 1))
        block[:, n_in] = 0.0
        parts.append(block.ravel())
    return np.concatenate(parts)


def layer_offsets(net: Network) -> np.ndarray:
    """Where each layer's [W^l | b^l] block starts in theta."""
    sizes = [n_out * (n_in + 1) for n_in, n_out in zip(net.layers[:-1], net.layers[1:])]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)


class _Pass:
    """Preallocated arrays for a forward (and backward) pass of K contestants over mb samples, column layout.

    Layer l multiplies [W^l b^l] by `inputs[l]` = [a^{l-1}; 1] (a last row of ones), writes z^l into `z[l]` and
    sigma(z^l) into `a[l]`, which for a hidden layer is the top of the next layer's input buffer. The arrays used
    for computing drop the contestant axis when K == 1; the summaries reduce over the `*_flat` (K, ...) views.
    """

    def __init__(self, net: Network, K: int, mb: int, backward: bool, dropout: bool):
        sizes, n_L = net.layers, net.layers[-1]
        one = (lambda x: x[0]) if K == 1 else (lambda x: x)
        self.K, self.mb = K, mb
        self.plan = None  # StackedTrainer._plan fills it in
        shared_exp = net.loss == "bce" and net.activations[-1] == "sigmoid" and n_L * mb >= _BCE_SHARED_EXP_FROM
        # e^-z^L, see _sigmoid_via_exp: (K, n_L, mb) for the summary, `exp_neg_z_out` the forward's view of it
        self.exp_neg_z = np.empty((K, n_L, mb)) if shared_exp else None
        self.exp_neg_z_out = one(self.exp_neg_z) if shared_exp else None
        self.x = np.ones((sizes[0] + 1, mb))  # [x; 1], shared by every contestant
        hidden = [np.ones((K, n + 1, mb)) for n in sizes[1:-1]]  # [a^l; 1]
        self.head = np.zeros((K, 2, n_L * mb))  # [terms | z^L], see _summarize
        self.terms = self.head[:, 0].reshape(K, n_L, mb)  # softplus(z^L) for bce, a^L - y for mse
        # cross-entropy: the first mb terms hold top + log(total) per sample, the rest stay 0
        self.top, self.total = one(np.empty((K, 1, mb))), one(np.empty((K, 1, mb)))  # a softmax output's
        self.ce_terms = one(self.head[:, 0, :mb].reshape(K, 1, mb))
        self.z_out = self.head[:, 1].reshape(K, n_L, mb)  # z^L is written here by the forward pass
        self.a_out = np.empty((K, n_L, mb))
        self.head_flat = self.head.reshape(K, 2 * n_L * mb)
        self.terms_flat = self.head[:, 0]
        self.a_out_flat = self.a_out.reshape(K, n_L * mb)
        self.inputs = [self.x] + [one(h) for h in hidden]
        self.inputs_T = [a.swapaxes(-1, -2) for a in self.inputs]  # for dW^l = delta^l [a^{l-1}; 1]^T
        self.a = [one(h)[..., :-1, :] for h in hidden] + [one(self.a_out)]
        self.z = [one(np.empty((K, n, mb))) for n in sizes[1:-1]] + [one(self.z_out)]
        # the activation before dropout (sigma' needs it); the dropped one goes into `a`, as the next layer sees it
        self.clean = [np.empty_like(a) for a in self.a] if dropout else None
        if backward:
            # every delta^l in one (K, sum_l n_l mb) block, so the squared norms of all layers can be two calls
            counts = [n * mb for n in sizes[1:]]
            self.delta_all = np.empty((K, sum(counts)))
            self.delta_starts = np.cumsum([0] + counts[:-1])
            deltas = [
                self.delta_all[:, o : o + c].reshape(K, n, mb) for o, c, n in zip(self.delta_starts, counts, sizes[1:])
            ]
            self.delta = [one(d) for d in deltas]
            self.delta_flat = [d.reshape(K, -1) for d in deltas]
            # ||delta^l||^2 of every layer: square the block and np.add.reduceat it (2 calls), or one vecdot per
            # layer, which streams large blocks 3-4x faster (measured: the former wins below ~2000 values a layer)
            self.delta_sq = np.empty_like(self.delta_all) if sum(counts) < 2000 * len(counts) else None
            # sigma'(z^l); relu's is [z > 0], kept as booleans: an eighth of the memory traffic, the same products
            self.scratch = [
                one(np.empty((K, n, mb), dtype=bool if name == "relu" else float))
                for n, name in zip(sizes[1:], net.activations)
            ]
            # [W^l b^l]^T delta^l, for l >= 2 (0-based index l >= 1): the gradient w.r.t. [a^{l-1}; 1]. Its top rows
            # are the upstream gradient of a^{l-1}; the last row (w.r.t. the constant 1) is computed and unused. One
            # product with the whole transposed [W b] (a plain transposed operand for BLAS) instead of the strided
            # W^T without its bias column, which NumPy multiplies 1.3-2x slower at 128-256 units (measured)
            upstream = [None] + [one(np.empty((K, n + 1, mb))) for n in sizes[1:-1]]
            self.upstream = upstream
            self.upstream_top = [None] + [u[..., :-1, :] for u in upstream[1:]]
            self.y = np.empty((n_L, mb))  # the batch's targets, column layout

    def load(self, X, Y, classify: bool):
        """Fix this pass to one data set: its inputs, targets and the vectors the summaries are dot products with."""
        self.x[:-1] = X.T
        self.y_rows = Y
        self.y = np.ascontiguousarray(Y.T)
        self.loss_coef = np.concatenate([np.ones(Y.size), -self.y.ravel()])  # bce: sum_i l_i = head . this
        if not classify:
            return
        if Y.shape[1] == 1:
            # correct_i = [p_i == y_i] = (1 - y_i) + p_i (2 y_i - 1), for p = [a > 0.5], y = [y > 0.5]
            positive = (self.y > 0.5).ravel()
            self.sign = np.where(positive, 1.0, -1.0)
            self.n_negative = float(np.count_nonzero(~positive))
            self.predicted = np.empty((self.K, Y.size))
        else:
            self.labels = Y.argmax(axis=1)
            self.n_negative = 0.0
            self.argmax = np.empty((self.K, self.mb), dtype=np.intp)
            self.hits = np.empty((self.K, self.mb))
            self.ones = np.ones(self.mb)
        self.n_accuracy = float(self.mb)


# hyperparameters an update rule branches on (`if hp[...]`): contestants stack only when these are equal
_BRANCHING = ("momentum", "weight_decay", "nesterov", "dampening")


def _stack_key(c: Contestant):
    """What contestants must share to be updated in one call: the rule itself (not a wrapper around it) and the
    values of its branching hyperparameters; None for a rule that is not one of engine.optimizers'."""
    fn = c.optimizer.update
    known = OPTIMIZERS.get(c.optimizer.name)
    if known is None or known.update is not fn:
        return None
    return fn, tuple((name, c.hyper[name]) for name in _BRANCHING if name in c.hyper)


class StackedTrainer:
    """Trains K contestants from one checkpoint on the same batches; `run(steps)` returns a History each."""

    def __init__(
        self,
        net: Network,
        X,
        Y,
        contestants: list[Contestant],
        start: Checkpoint,
        batch_size: int | None,
        reg: Regularization = Regularization(),
        seed: int = 0,
        X_test=None,
        Y_test=None,
        classify: bool = False,
    ):
        self.net, self.X, self.Y = net, X, Y
        self.X_test, self.Y_test = X_test, Y_test
        self.contestants, self.reg, self.seed, self.classify = contestants, reg, seed, classify
        self.m = X.shape[0]
        self.batch_size = self.m if batch_size is None else min(batch_size, self.m)
        self.K = K = len(contestants)
        self.t = start.t
        self.start_loss = start.start_loss  # L(theta_0) per contestant once known (engine.divergence)
        self.divergence_factor = divergence.FACTOR
        self.theta = start.theta.copy()
        self.states = [{k: v.copy() for k, v in s.items()} for s in start.states] or [
            c.optimizer.init_state(net.n_params) for c in contestants
        ]
        self.grad = np.zeros_like(self.theta)
        self._update_calls = self._stack_updates()
        offsets = layer_offsets(net)
        self.offsets = offsets
        shapes = [(n_out, n_in + 1) for n_in, n_out in zip(net.layers[:-1], net.layers[1:])]
        self.W = [self.theta[:, o : o + r * c].reshape(K, r, c) for o, (r, c) in zip(offsets, shapes)]
        self.gW = [self.grad[:, o : o + r * c].reshape(K, r, c) for o, (r, c) in zip(offsets, shapes)]
        # What the passes compute with. One contestant: 2-D arrays and np.dot, which costs ~1 us less per call than
        # np.matmul on tiny matrices and gives the same bits as each matrix of a stacked np.matmul (a contestant's
        # numbers must not depend on how many others race with it). [W^l b^l]^T carries delta back (see _Pass).
        self._mm = np.dot if K == 1 else np.matmul
        self._W = [w[0] if K == 1 else w for w in self.W]
        self._gW = [g[0] if K == 1 else g for g in self.gW]
        self._W_T = [w.swapaxes(-1, -2) for w in self._W]
        self.wmask = weight_mask(net)
        self._grad_sq = np.empty_like(self.grad)
        # ||dW^l||^2 per layer: up to ~50,000 parameters three calls on the whole gradient (square, mask the biases,
        # sum per layer), ~0.9 ns a parameter; past it a vecdot of each layer's weights (the bias column left out by
        # the view) and a sum, reading the gradient once but paying ~0.1 us a row (measured: 21 vs 32 us on the
        # digits net's 17,226 parameters, 217 vs 83 us on 784-256-128-10)
        self._weight_sq = [(g[..., :-1], np.empty(g.shape[:-1])) for g in self.gW] if net.n_params > 50_000 else None
        self.dropout = tuple(reg.dropout) or (0.0,) * net.depth
        self._keep = [1.0 - p for p in self.dropout]
        acts = net.activations
        self._forward_out = [_FORWARD_OUT.get(name) for name in acts]
        # sigmoid + bce and softmax + cross-entropy: delta^L = a^L - y (note 003); (half_)mse: the error times
        # sigma'(z^L), computed here for the activations _times_sigma_prime knows (softmax: engine.losses)
        self._delta_is_error = net.loss_fn.requires is not None
        self._delta_of_error = net.loss in ("half_mse", "mse") and acts[-1] in ("sigmoid", "tanh", "relu", "linear")
        self._loss = net.loss if net.loss in _DOT_LOSSES else None
        self._train_passes: dict[int, _Pass] = {}
        self._eval_passes: dict[str, _Pass] = {}
        self._epoch, self._order = None, None
        self._XT = self._YT = None

    # ---- the update ----------------------------------------------------------------------------------------
    def _stack_updates(self) -> list[tuple]:
        """The update calls of a step: one per run of neighbouring contestants with the same rule and the same
        branching hyperparameters (a learning-rate sweep, say), on their stacked rows of theta, g and the state,
        with the hyperparameters that differ as (n, 1) columns; one per contestant otherwise. The rules of
        engine.optimizers are elementwise, so a row gets the bits it would get alone; a wrapped rule (the /race
        page's recorder) is called per contestant, as it expects."""
        calls, k, K = [], 0, self.K
        keys = [_stack_key(c) for c in self.contestants]
        while k < K:
            j = k + 1
            while keys[k] is not None and j < K and keys[j] == keys[k]:
                j += 1
            c = self.contestants[k]
            if j - k == 1:
                calls.append((k, j, c.optimizer.update, c.hyper, self.theta[k], self.grad[k], self.states[k]))
            else:
                hypers = [self.contestants[i].hyper for i in range(k, j)]
                hyper = {
                    name: value if all(h[name] == value for h in hypers) else np.array([[h[name]] for h in hypers])
                    for name, value in hypers[0].items()
                }
                stacked = {name: np.stack([self.states[i][name] for i in range(k, j)]) for name in self.states[k]}
                for i in range(k, j):  # each contestant's state is its row of the stack (checkpoints copy it)
                    self.states[i] = {name: rows[i - k] for name, rows in stacked.items()}
                calls.append((k, j, c.optimizer.update, hyper, self.theta[k:j], self.grad[k:j], stacked))
            k = j
        return calls

    # ---- buffers and batches -------------------------------------------------------------------------------
    def _train_pass(self, mb: int) -> _Pass:
        """The training pass for batches of mb rows (the last batch of an epoch may be smaller)."""
        p = self._train_passes.get(mb)
        if p is None:
            p = self._train_passes[mb] = _Pass(self.net, self.K, mb, True, any(self.dropout))
            if mb == self.m and self.batch_size >= self.m:  # the full batch: loaded once
                self._load(p, self.X, self.Y)
        return p

    def _load(self, p: _Pass, X, Y):
        """p.load, and for cross-entropy the weights of its per-sample terms: l_i = (top_i + log total_i) sum_k y_ik
        - y_i . z_i, which is -sum_k y_ik log a_ik (engine.losses.cross_entropy) for any targets, one-hot or not."""
        p.load(X, Y, self.classify)
        if self._loss == "cross_entropy":
            p.loss_coef[: Y.size] = 0.0
            p.loss_coef[: p.mb] = Y.sum(axis=1)

    def _eval_pass(self, which: str) -> _Pass:
        """Evaluation mode (no dropout) on the whole training set or the test set, loaded once."""
        p = self._eval_passes.get(which)
        if p is None:
            X, Y = (self.X, self.Y) if which == "train" else (self.X_test, self.Y_test)
            p = self._eval_passes[which] = _Pass(self.net, self.K, X.shape[0], False, False)
            self._load(p, X, Y)
        return p

    def _rows(self, t: int) -> np.ndarray:
        """regularization.batch_indices(seed, t, m, batch_size), drawing each epoch's permutation once, not per step.

        Tests hold the two equal (every step record's rows come from batch_indices)."""
        size = self.batch_size
        epoch, k = batch_position(t, self.m, size)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, epoch_order(self.seed, epoch, self.m)
        return self._order[k * size : (k + 1) * size]

    def _load_batch(self, p: _Pass, rows):
        """Copy the batch's inputs and targets into the pass's column-layout buffers."""
        if self._XT is None:
            self._XT, self._YT = np.ascontiguousarray(self.X.T), np.ascontiguousarray(self.Y.T)
        np.take(self._XT, rows, axis=1, out=p.x[:-1])
        np.take(self._YT, rows, axis=1, out=p.y)

    def _masks(self, t: int, mb: int):
        """Step t's keep-masks (those of engine.regularization), transposed to the column layout."""
        masks = dropout_masks(self.seed, t, mb, self.net.layers[1:], self.dropout)
        return [None if mask is None else mask.T for mask in masks]

    # ---- the three passes ----------------------------------------------------------------------------------
    def _plan(self, p: _Pass):
        """Per-layer tuples of the arrays each pass touches, built once per buffer set: the loops below then do
        no indexing of their own (at teaching sizes Python overhead is a good part of a step)."""
        if p.plan is None:
            L, acts = self.net.depth, self.net.activations
            forward = [
                (l, W, p.inputs[l], p.z[l], f, p.a[l]) for l, (W, f) in enumerate(zip(self._W, self._forward_out))
            ]
            if acts[-1] == "softmax":  # into this pass's own max and sum buffers
                l, W, x, z, _, a = forward[-1]
                forward[-1] = (l, W, x, z, lambda z, out, p=p: _softmax_columns(z, out, p.top, p.total), a)
            elif p.exp_neg_z is not None:  # a sigmoid output keeping e^-z for the BCE summary
                l, W, x, z, _, a = forward[-1]
                forward[-1] = (l, W, x, z, lambda z, out, p=p: _sigmoid_via_exp(z, out, p.exp_neg_z_out), a)
            backward = None
            if hasattr(p, "delta"):
                backward = [
                    (l, p.delta[l], p.inputs_T[l], self._gW[l])
                    + (
                        (None,) * 7
                        if l == 0
                        else (
                            self._W_T[l],
                            p.upstream[l],
                            p.upstream_top[l],
                            p.delta[l - 1],
                            p.a[l - 1],
                            p.scratch[l - 1],
                            acts[l - 1],
                        )
                    )
                    for l in range(L - 1, -1, -1)
                ]
            p.plan = (forward, backward)
        return p.plan

    def _forward(self, p: _Pass, masks=None):
        """z^l = [W^l b^l] [a^{l-1}; 1] and a^l = sigma(z^l) for every contestant at once."""
        mm = self._mm
        for l, W, x, z, f, a in self._plan(p)[0]:
            mm(W, x, out=z)
            mask = None if masks is None else masks[l]
            if mask is None and f is not None:
                f(z, out=a)
                continue
            clean = a if mask is None else p.clean[l]
            if f is not None:
                f(z, out=clean)
            else:  # engine.activations works on rows of samples: hand it the transposed views
                clean.swapaxes(-1, -2)[...] = ACTIVATIONS[self.net.activations[l]].f(z.swapaxes(-1, -2))
            if mask is not None:  # inverted dropout as engine.backprop writes it: a * mask / keep
                np.multiply(clean, mask, out=a)
                np.divide(a, self._keep[l], out=a)

    def _backward(self, p: _Pass, masks=None):
        """delta^L / mb, then delta^l / mb = (W^{l+1}^T delta^{l+1} / mb) (.) sigma'(z^l), and dW, db into self.grad.

        Dividing delta^L by the batch size (a small array) makes every delta^l the batch mean's share, by linearity,
        so delta^l [a^{l-1}; 1]^T is the mean gradient itself: no pass over the whole gradient to divide it."""
        net, L, mm = self.net, self.net.depth, self._mm
        D_L = p.delta[L - 1]
        if self._delta_is_error:
            np.subtract(p.a[L - 1], p.y, out=D_L)
        elif self._delta_of_error:  # as engine.losses: dl/da = (a - y), times 2/n_L for mse
            np.subtract(p.a[L - 1], p.y, out=D_L)
            if net.loss == "mse":
                D_L *= 2.0 / net.layers[-1]
            self._times_sigma_prime(D_L, p.a[L - 1], p.z[L - 1], p.scratch[L - 1], net.activations[-1])
        else:
            D_L.swapaxes(-1, -2)[...] = output_delta(
                net.loss_fn, net.activations[-1], p.z[L - 1].swapaxes(-1, -2), p.a[L - 1].swapaxes(-1, -2), p.y.T
            )
        D_L *= 1.0 / p.mb
        for l, D, x_T, gW, W_T, up, up_top, d, a, s, name in self._plan(p)[1]:
            mm(D, x_T, out=gW)
            if W_T is None:
                break
            mm(W_T, D, out=up)  # the upstream gradient (its top rows), turned into delta^{l-1}
            src = up_top
            mask = None if masks is None else masks[l - 1]
            if mask is not None:  # dropped units pass no gradient back; sigma' of the clean a
                np.multiply(src, mask, out=d)
                d /= self._keep[l - 1]
                a, src = p.clean[l - 1], d
            self._times_sigma_prime(d, a, p.z[l - 1], s, name, src)

    @staticmethod
    def _times_sigma_prime(d, a, z, s, name, src=None):
        """d = src (.) sigma'(z) (src defaults to d: in place; s is scratch), computed as engine.activations does,
        so to the same bits."""
        if src is None:
            src = d
        if name == "sigmoid":  # (1 - a) a
            np.subtract(1.0, a, out=s)
            s *= a
            np.multiply(src, s, out=d)
        elif name == "tanh":  # 1 - a^2
            np.multiply(a, a, out=s)
            np.subtract(1.0, s, out=s)
            np.multiply(src, s, out=d)
        elif name == "relu":  # [z > 0]
            np.greater(z, 0.0, out=s)
            np.multiply(src, s, out=d)
        elif name == "linear":  # times 1
            if src is not d:
                np.copyto(d, src)
        else:
            d.swapaxes(-1, -2)[...] = apply_grad(
                ACTIVATIONS[name], z.swapaxes(-1, -2), a.swapaxes(-1, -2), src.swapaxes(-1, -2)
            )

    def _summarize(self, p: _Pass, loss_sum, correct):
        """sum_i l_i and the number of correct predictions of every contestant, after a forward pass over p's data.

        np.vecdot reduces each contestant's row by itself, so a contestant's sums do not depend on how many others
        race with it. `run` turns the sums into means (and halves half_mse, divides mse by n_L) once at the end."""
        if self._loss == "bce":  # l_i = sum_k softplus(z_k) - y_k z_k, stable for any z (engine.losses.bce)
            e = p.exp_neg_z
            if e is None:
                np.logaddexp(0.0, p.z_out, out=p.terms)
            else:
                softplus_from_exp(p.z_out, e, p.terms)
            np.vecdot(p.head_flat, p.loss_coef, out=loss_sum)
        elif self._loss == "cross_entropy":  # l_i = log sum_k exp(z_k) - y . z, from the forward's softmax buffers
            np.log(p.total, out=p.ce_terms)
            p.ce_terms += p.top
            np.vecdot(p.head_flat, p.loss_coef, out=loss_sum)
        elif self._loss is not None:  # half_mse, mse: sum of (a - y)^2
            np.subtract(p.a_out, p.y, out=p.terms)
            np.vecdot(p.terms_flat, p.terms_flat, out=loss_sum)
        else:
            per_sample = self.net.loss_fn.per_sample(p.z_out.swapaxes(-1, -2), p.a_out.swapaxes(-1, -2), p.y_rows)
            np.sum(per_sample, axis=-1, out=loss_sum)
        if correct is None:
            return
        if p.a_out.shape[1] == 1:
            np.greater(p.a_out_flat, 0.5, out=p.predicted)
            np.vecdot(p.predicted, p.sign, out=correct)
        else:
            np.argmax(p.a_out, axis=1, out=p.argmax)
            np.equal(p.argmax, p.labels, out=p.hits)
            np.vecdot(p.hits, p.ones, out=correct)

    def _mean_loss(self, loss_sums, m: int):
        """Turn the per-step loss sums of _summarize into the mean loss over m samples, in place."""
        loss_sums /= m
        if self._loss == "half_mse":
            loss_sums *= 0.5
        elif self._loss == "mse":
            loss_sums /= self.net.layers[-1]

    def _penalty(self):
        """lambda/2 ||W||^2 + lambda_1 |W|_1 per contestant."""
        total = 0.0
        if self.reg.l2:
            total = total + 0.5 * self.reg.l2 * ((self.theta * self.theta) @ self.wmask)
        if self.reg.l1:
            total = total + self.reg.l1 * (np.abs(self.theta) @ self.wmask)
        return total

    # ---- the loop ------------------------------------------------------------------------------------------
    def run(self, steps: int, keep_path: bool = False, evaluate_every: int = 1) -> list[History]:
        """Take `steps` optimizer steps from the current checkpoint, recording the per-step summaries.

        evaluate_every = k > 1: with mini-batches (or dropout) the loss, accuracy and test metrics on the whole sets
        cost a forward pass over every row, often more than the step itself, so they are evaluated only at theta_t
        with t a multiple of k and at the run's last theta, and are NaN in between (History.evaluated says where).
        A full batch without dropout evaluates every step whatever k is: its loss is the step's own forward pass.
        Between evaluations a non-finite gradient counts as divergence at once; the 100x rule is applied at the
        evaluated steps."""
        K, L, net, reg = self.K, self.net.depth, self.net, self.reg
        every = int(evaluate_every)
        if every < 1:
            raise ValueError("evaluate_every: must be at least 1")
        begin = self.t
        full_batch = self.batch_size >= self.m
        dropout = any(self.dropout)
        shares_forward = full_batch and not dropout  # the step's forward is the loss at theta_t
        has_test = self.X_test is not None and len(self.X_test) > 0
        penalized = bool(reg.l2 or reg.l1)
        lrs = np.stack([c.learning_rates[self.t : self.t + steps] for c in self.contestants], axis=1)
        if lrs.shape[0] < steps:
            raise ValueError("steps: more steps than learning rates were scheduled")
        # loss and accuracy hold sums over the samples until the end of the run, then are divided once
        loss = np.full((steps + 1, K), np.nan)
        evaluated = np.ones(steps + 1, dtype=bool) if every == 1 or shares_forward else np.zeros(steps + 1, dtype=bool)
        acc = np.full((steps + 1, K), np.nan) if self.classify else None
        test_loss = np.full((steps + 1, K), np.nan) if has_test else None
        test_acc = np.full((steps + 1, K), np.nan) if has_test and self.classify else None
        penalty = np.zeros((steps + 1, K)) if penalized else None
        delta_sq = np.zeros((steps, K, L))
        grad_sq = np.zeros((steps, K, L))
        batch_sizes = np.full(steps, float(self.m)) if full_batch else np.zeros(steps)
        clip = np.full((steps, 2, K), np.nan) if reg.clip_norm else None
        path = np.full((steps + 1, K, net.n_params), np.nan) if keep_path else None
        diverged = np.full(K, -1)
        alive = np.ones(K, dtype=bool)

        train = self._train_pass(self.m) if full_batch else None
        evaluate = train if shares_forward else self._eval_pass("train")
        test = self._eval_pass("test") if has_test else None
        theta, g, g_sq, wmask, offsets = self.theta, self.grad, self._grad_sq, self.wmask, self.offsets
        weight_sq = self._weight_sq
        forward, backward, summarize, vecdot = self._forward, self._backward, self._summarize, np.vecdot
        updates = self._update_calls
        lr_flat = lrs.ravel().tolist()  # Python floats (a list of lists would feed the GC)
        masks = None
        stop_if_over = checker()  # the request's deadline / disconnect flag, None outside a request

        def record_metrics(i: int, already_forward: bool):
            """Loss, accuracy, penalty and test metrics at theta_i (evaluation mode, whole training set)."""
            if not already_forward:
                forward(evaluate)
            summarize(evaluate, loss[i], None if acc is None else acc[i])
            if penalized:
                penalty[i] = self._penalty()
            if has_test:
                forward(test)
                summarize(test, test_loss[i], None if test_acc is None else test_acc[i])

        with np.errstate(all="ignore"):
            for i in range(steps):
                if stop_if_over is not None:
                    stop_if_over()
                t = self.t
                if path is not None:
                    path[i] = theta
                p = train
                if not full_batch:
                    rows = self._rows(t)
                    p = self._train_pass(len(rows))
                    self._load_batch(p, rows)
                    batch_sizes[i] = len(rows)
                if dropout:
                    masks = self._masks(t, p.mb)
                forward(p, masks)
                measured = evaluated[i] = evaluated[i] or t % every == 0
                if measured:
                    record_metrics(i, shares_forward)
                backward(p, masks)
                if p.delta_sq is not None:
                    np.add.reduceat(
                        np.multiply(p.delta_all, p.delta_all, out=p.delta_sq), p.delta_starts, axis=1, out=delta_sq[i]
                    )
                else:
                    rows_sq = delta_sq[i].T
                    for l, d in enumerate(p.delta_flat):
                        vecdot(d, d, out=rows_sq[l])
                if weight_sq is None:
                    np.multiply(g, g, out=g_sq)  # ||dW^l||^2: weights only, summed per layer
                    g_sq *= wmask
                    np.add.reduceat(g_sq, offsets, axis=1, out=grad_sq[i])
                else:
                    layers_sq = grad_sq[i].T
                    for l, (w, row_sq) in enumerate(weight_sq):
                        np.sum(vecdot(w, w, out=row_sq), axis=-1, out=layers_sq[l])
                if penalized:
                    if reg.l2:
                        g += reg.l2 * theta * self.wmask
                    if reg.l1:
                        g += reg.l1 * np.sign(theta) * self.wmask
                if clip is not None:
                    norms = np.sqrt(vecdot(g, g))
                    scale = np.minimum(1.0, reg.clip_norm / (norms + 1e-6))
                    g *= scale[:, None]
                    clip[i, 0], clip[i, 1] = norms, norms * scale
                self.t = t + 1
                for a, b, update, hyper, theta_k, g_k, state_k in updates:
                    lr = lr_flat[i * K + a] if b - a == 1 else lrs[i, a:b, None]
                    update(theta_k, g_k, state_k, lr, t + 1, hyper)
                # a NaN or inf anywhere makes the sum non-finite; only then look at each contestant. Unevaluated
                # steps look at ||dW^l||^2 instead: a non-finite theta_t or loss makes the gradient non-finite too
                total = (
                    grad_sq[i].sum(axis=-1) if not measured else loss[i] if penalty is None else loss[i] + penalty[i]
                )
                if not isfinite(total[0] if K == 1 else np.add.reduce(total)):
                    finite = np.isfinite(total)
                    newly = alive & ~finite
                    diverged[newly] = i
                    alive &= finite
                    if not alive.any():
                        steps_done = i + 1
                        break
            else:
                steps_done = steps
                if path is not None:
                    path[steps] = theta
                record_metrics(steps, False)
                evaluated[steps] = True
                total = loss[steps] if penalty is None else loss[steps] + penalty[steps]
                newly = alive & ~np.isfinite(total)
                diverged[newly] = steps
            # the sums become means, once for the whole run
            self._mean_loss(loss, evaluate.mb)
            if penalty is not None:
                loss += penalty
            if acc is not None:
                acc += evaluate.n_negative
                acc /= evaluate.n_accuracy
            if has_test:
                self._mean_loss(test_loss, test.mb)
                if test_acc is not None:
                    test_acc += test.n_negative
                    test_acc /= test.n_accuracy
            delta_sq *= batch_sizes[:, None, None]  # sum_i ||delta_i / mb||^2 * mb = mean_i ||delta_i||^2
            # THE divergence rule (engine.divergence): non-finite, or above 100x L(theta_0) of the whole run
            if begin == 0 and self.start_loss is None:
                self.start_loss = loss[0].copy()
            if self.start_loss is not None:
                rows = np.flatnonzero(evaluated[: steps_done + 1])
                found = divergence.first_divergence(loss[rows], self.start_loss, None, self.divergence_factor)
                found = np.where(found >= 0, rows[np.maximum(found, 0)], -1)  # back to step indices
                both = (found >= 0) & (diverged >= 0)
                diverged = np.where(both, np.minimum(found, diverged), np.maximum(found, diverged))
        histories = [
            self._history(
                k, diverged[k], loss, test_loss, acc, test_acc, lrs, delta_sq, grad_sq, clip, path, steps_done
            )
            for k in range(K)
        ]
        if not evaluated.all():
            for h in histories:
                h.evaluated = evaluated.copy()
        return histories

    def _history(self, k, diverged_at, loss, test_loss, acc, test_acc, lrs, delta_sq, grad_sq, clip, path, done):
        """Slice contestant k out of the stacked records; after divergence every value is NaN."""
        stop = done if diverged_at < 0 else diverged_at

        def series(a, upto):
            if a is None:
                return None
            out = a[:, k].copy()
            out[upto:] = np.nan
            return out

        last = stop + 1 if diverged_at >= 0 else len(loss)
        history = History(
            loss=series(loss, last),
            test_loss=series(test_loss, last),
            accuracy=series(acc, last),
            test_accuracy=series(test_acc, last),
            learning_rate=series(lrs, stop),
            delta_norm=np.sqrt(series(delta_sq, stop)),
            grad_norm=np.sqrt(series(grad_sq, stop)),
            clip_before=None if clip is None else series(clip[:, 0], stop),
            clip_after=None if clip is None else series(clip[:, 1], stop),
            diverged_at=None if diverged_at < 0 else int(diverged_at),
            path=None if path is None else series(path, last),
        )
        return history

    def checkpoint(self) -> Checkpoint:
        """A copy of where training stands now."""
        states = [{k: v.copy() for k, v in s.items()} for s in self.states]
        return Checkpoint(
            self.t, self.theta.copy(), states, None if self.start_loss is None else self.start_loss.copy()
        )

    def params(self, k: int = 0) -> Params:
        """Contestant k's current W^l, b^l."""
        return Params.from_flat(self.net, self.theta[k])
