"""The fast training loop: K contestants that share a batch size trained as one stacked tensor program.

Teaching-size networks are bound by the number of NumPy calls, not by arithmetic (../shared/RECIPES.md), so:
  * every contestant's parameters are one row of theta (K, P); W^l and b^l are views of it, the bias fused as
    the last column of [W^l | b^l] and the inputs carry a column of ones, so z = [a 1] @ [W b]^T is one call;
  * the K contestants go through `np.matmul` together on a leading axis (a race costs little more than a run);
  * buffers are allocated once and written with `out=`; the update is a few calls on the whole of theta.
`engine.backprop` is the readable reference; tests hold this loop to it.
"""
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from .activations import ACTIVATIONS, apply_grad
from .losses import output_delta
from .network import Network, Params
from .optimizers import Optimizer
from .regularization import batch_indices, dropout_masks


@dataclass
class Contestant:
    """One optimizer with its resolved hyperparameters and learning rate per step."""

    optimizer: Optimizer
    hyper: dict
    learning_rates: np.ndarray   # lr_t for t = 0 .. steps-1


@dataclass(frozen=True)
class Regularization:
    """Penalties and tricks shared by every contestant of an experiment."""

    l2: float = 0.0
    l1: float = 0.0
    dropout: tuple[float, ...] = ()   # drop probability per layer 1..L (output always 0)
    clip_norm: float | None = None


@dataclass
class History:
    """Per-step summaries of one contestant; index t is theta_t (losses) or step t (the rest); NaN after divergence."""

    loss: np.ndarray                 # (steps+1,) training objective on the whole training set, evaluation mode
    test_loss: np.ndarray | None     # (steps+1,)
    accuracy: np.ndarray | None      # (steps+1,) classification only
    test_accuracy: np.ndarray | None
    learning_rate: np.ndarray        # (steps,)
    delta_norm: np.ndarray           # (steps, L) sqrt(mean_i ||delta^l_i||^2)
    grad_norm: np.ndarray            # (steps, L) ||dW^l||_F of the data gradient
    clip_before: np.ndarray | None   # (steps,) global gradient norm before / after clipping
    clip_after: np.ndarray | None
    diverged_at: int | None
    path: np.ndarray | None = None   # (steps+1, P) theta_t when asked for


@dataclass
class Checkpoint:
    """Everything needed to continue training from step t: theta and each optimizer's state."""

    t: int
    theta: np.ndarray                          # (K, P)
    states: list[dict[str, np.ndarray]] = field(default_factory=list)

    def copy(self) -> "Checkpoint":
        return Checkpoint(self.t, self.theta.copy(), [{k: v.copy() for k, v in s.items()} for s in self.states])


_FORWARD_OUT = {
    "sigmoid": lambda z, out: expit(z, out=out),
    "tanh": lambda z, out: np.tanh(z, out=out),
    "relu": lambda z, out: np.maximum(z, 0.0, out=out),
}


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


class StackedTrainer:
    """Trains K contestants from one checkpoint on the same batches; `run(steps)` returns a History each."""

    def __init__(self, net: Network, X, Y, contestants: list[Contestant], start: Checkpoint,
                 batch_size: int | None, reg: Regularization = Regularization(), seed: int = 0,
                 X_test=None, Y_test=None, classify: bool = False):
        self.net, self.X, self.Y = net, X, Y
        self.X_test, self.Y_test = X_test, Y_test
        self.contestants, self.reg, self.seed, self.classify = contestants, reg, seed, classify
        self.m = X.shape[0]
        self.batch_size = self.m if batch_size is None else min(batch_size, self.m)
        self.K = len(contestants)
        self.t = start.t
        self.theta = start.theta.copy()
        self.states = [{k: v.copy() for k, v in s.items()} for s in start.states] or \
            [c.optimizer.init_state(net.n_params) for c in contestants]
        self.grad = np.zeros_like(self.theta)
        offsets = layer_offsets(net)
        self.offsets = offsets
        shapes = [(n_out, n_in + 1) for n_in, n_out in zip(net.layers[:-1], net.layers[1:])]
        self.W = [self.theta[:, o:o + r * c].reshape(self.K, r, c) for o, (r, c) in zip(offsets, shapes)]
        self.gW = [self.grad[:, o:o + r * c].reshape(self.K, r, c) for o, (r, c) in zip(offsets, shapes)]
        self.wmask = weight_mask(net)
        self.dropout = tuple(reg.dropout) or (0.0,) * net.depth
        self._buffers = {}
        self._inputs = {}

    # ---- buffers -------------------------------------------------------------------------------------------
    def _buffers_for(self, mb: int):
        """Preallocated arrays for a batch of mb rows (the last batch of an epoch may be smaller)."""
        if mb not in self._buffers:
            K, sizes = self.K, self.net.layers
            A = [np.ones((mb, sizes[0] + 1))]                       # inputs with the ones column
            A += [np.ones((K, mb, n + 1)) for n in sizes[1:-1]]     # hidden activations with ones column
            A += [np.empty((K, mb, sizes[-1]))]
            Z = [np.empty((K, mb, n)) for n in sizes[1:]]
            D = [np.empty((K, mb, n)) for n in sizes[1:]]
            U = [np.empty((K, mb, n)) for n in sizes[1:]]
            self._buffers[mb] = (A, Z, D, U)
        return self._buffers[mb]

    def _load_batch(self, rows, A0):
        """Copy the batch's inputs into the ones-augmented input buffer; return the batch targets."""
        if rows is None:
            if self._inputs.get(id(A0)) is not True:                # the full batch is loaded once
                A0[:, :-1] = self.X
                self._inputs[id(A0)] = True
            return self.Y
        self._inputs[id(A0)] = False
        np.take(self.X, rows, axis=0, out=A0[:, :-1])
        return self.Y[rows]

    # ---- the three passes ----------------------------------------------------------------------------------
    def _forward(self, A, Z, masks):
        """z^l = [a^{l-1} 1] [W^l b^l]^T and a^l = sigma(z^l) for every contestant at once."""
        L, acts = self.net.depth, self.net.activations
        pre_dropout = [None] * L
        for l in range(L):
            np.matmul(A[l], self.W[l].transpose(0, 2, 1), out=Z[l])
            a = A[l + 1][..., :-1] if l < L - 1 else A[l + 1]
            fast = _FORWARD_OUT.get(acts[l])
            if fast is not None:
                fast(Z[l], a)
            else:
                a[...] = ACTIVATIONS[acts[l]].f(Z[l])
            if masks[l] is not None:
                pre_dropout[l] = a.copy()
                a *= masks[l] / (1.0 - self.dropout[l])
        return pre_dropout

    def _backward(self, A, Z, D, U, Y, masks, pre_dropout):
        """delta^L, then delta^l = (W^{l+1}^T delta^{l+1}) (.) sigma'(z^l), and the summed gradients into self.grad."""
        net, L = self.net, self.net.depth
        loss = net.loss_fn
        if loss.requires is not None:
            np.subtract(A[L], Y, out=D[L - 1])
        else:
            D[L - 1][...] = output_delta(loss, net.activations[-1], Z[L - 1], A[L], Y)
        for l in range(L - 1, -1, -1):
            np.matmul(D[l].transpose(0, 2, 1), A[l], out=self.gW[l])
            if l == 0:
                break
            np.matmul(D[l], self.W[l][..., :-1], out=U[l - 1])
            up, d, name = U[l - 1], D[l - 1], net.activations[l - 1]
            a = A[l][..., :-1] if pre_dropout[l - 1] is None else pre_dropout[l - 1]
            if masks[l - 1] is not None:
                up *= masks[l - 1] / (1.0 - self.dropout[l - 1])
            if name == "sigmoid":
                np.subtract(1.0, a, out=d)
                d *= a
                d *= up
            elif name == "tanh":
                np.multiply(a, a, out=d)
                np.subtract(1.0, d, out=d)
                d *= up
            elif name == "relu":
                np.greater(Z[l - 1], 0.0, out=d)
                d *= up
            else:
                d[...] = apply_grad(ACTIVATIONS[name], Z[l - 1], a, up)

    def _evaluate(self, X, Y):
        """Data loss and accuracy of every contestant on (X, Y) in evaluation mode (no dropout)."""
        a = X
        for l, W in enumerate(self.W):
            z = np.matmul(a, W[..., :-1].transpose(0, 2, 1)) + W[:, None, :, -1]
            a = ACTIVATIONS[self.net.activations[l]].f(z)
        loss = self.net.loss_fn.per_sample(z, a, Y).mean(axis=-1)
        return loss, self._accuracy(a, Y)

    def _accuracy(self, a, Y):
        if not self.classify:
            return None
        if Y.shape[-1] == 1:
            return ((a > 0.5) == (Y > 0.5)).mean(axis=(-2, -1))
        return (a.argmax(axis=-1) == Y.argmax(axis=-1)).mean(axis=-1)

    def _penalty(self):
        """lambda/2 ||W||^2 + lambda_1 |W|_1 per contestant."""
        total = 0.0
        if self.reg.l2:
            total = total + 0.5 * self.reg.l2 * np.einsum("kp,kp,p->k", self.theta, self.theta, self.wmask)
        if self.reg.l1:
            total = total + self.reg.l1 * (np.abs(self.theta) @ self.wmask)
        return total

    # ---- the loop ------------------------------------------------------------------------------------------
    def run(self, steps: int, keep_path: bool = False) -> list[History]:
        """Take `steps` optimizer steps from the current checkpoint, recording the per-step summaries."""
        K, L, net, reg = self.K, self.net.depth, self.net, self.reg
        full_batch = self.batch_size >= self.m
        shares_forward = full_batch and not any(self.dropout)   # the step's forward is the loss at theta_t
        has_test = self.X_test is not None and len(self.X_test) > 0
        loss = np.full((steps + 1, K), np.nan)
        acc = np.full((steps + 1, K), np.nan) if self.classify else None
        test_loss = np.full((steps + 1, K), np.nan) if has_test else None
        test_acc = np.full((steps + 1, K), np.nan) if has_test and self.classify else None
        delta_sq = np.zeros((steps, K, L))
        grad_sq = np.zeros((steps, K, L))
        clip = np.full((steps, 2, K), np.nan) if reg.clip_norm else None
        path = np.full((steps + 1, K, net.n_params), np.nan) if keep_path else None
        lrs = np.stack([c.learning_rates[self.t:self.t + steps] for c in self.contestants], axis=1)
        if lrs.shape[0] < steps:
            raise ValueError("steps: more steps than learning rates were scheduled")
        diverged = np.full(K, -1)
        alive = np.ones(K, dtype=bool)
        penalty_fn, wmask, offsets = self._penalty, self.wmask, self.offsets
        updates = [(c.optimizer.update, c.hyper, self.theta[k], self.grad[k], self.states[k])
                   for k, c in enumerate(self.contestants)]
        with np.errstate(all="ignore"):
            for i in range(steps):
                t = self.t
                if path is not None:
                    path[i] = self.theta
                rows = None if full_batch else batch_indices(self.seed, t, self.m, self.batch_size)
                mb = self.m if rows is None else len(rows)
                A, Z, D, U = self._buffers_for(mb)
                Y = self._load_batch(rows, A[0])
                masks = dropout_masks(self.seed, t, mb, net.layers[1:], self.dropout)
                pre_dropout = self._forward(A, Z, masks)
                if shares_forward:
                    loss[i] = net.loss_fn.per_sample(Z[L - 1], A[L], Y).mean(axis=-1) + penalty_fn()
                    if acc is not None:
                        acc[i] = self._accuracy(A[L], Y)
                else:
                    data_loss, accuracy = self._evaluate(self.X, self.Y)
                    loss[i] = data_loss + penalty_fn()
                    if acc is not None:
                        acc[i] = accuracy
                if has_test:
                    test_loss[i], test_accuracy = self._evaluate(self.X_test, self.Y_test)
                    if test_acc is not None:
                        test_acc[i] = test_accuracy
                self._backward(A, Z, D, U, Y, masks, pre_dropout)
                g = self.grad
                g *= 1.0 / mb
                for l in range(L):
                    delta_sq[i, :, l] = np.einsum("kij,kij->k", D[l], D[l])
                delta_sq[i] *= 1.0 / mb
                grad_sq[i] = np.add.reduceat(g * g * wmask, offsets, axis=1)
                if reg.l2:
                    g += reg.l2 * self.theta * wmask
                if reg.l1:
                    g += reg.l1 * np.sign(self.theta) * wmask
                if clip is not None:
                    norms = np.sqrt(np.einsum("kp,kp->k", g, g))
                    scale = np.minimum(1.0, reg.clip_norm / (norms + 1e-6))
                    g *= scale[:, None]
                    clip[i, 0], clip[i, 1] = norms, norms * scale
                self.t = t + 1
                for k, (update, hyper, theta_k, g_k, state_k) in enumerate(updates):
                    update(theta_k, g_k, state_k, lrs[i, k], t + 1, hyper)
                finite = np.isfinite(loss[i])
                if not finite.all():
                    newly = alive & ~finite
                    diverged[newly] = i
                    alive &= finite
                    if not alive.any():
                        steps_done = i + 1
                        break
            else:
                steps_done = steps
                if path is not None:
                    path[steps] = self.theta
                data_loss, accuracy = self._evaluate(self.X, self.Y)
                loss[steps] = data_loss + penalty_fn()
                if acc is not None:
                    acc[steps] = accuracy
                if has_test:
                    test_loss[steps], test_accuracy = self._evaluate(self.X_test, self.Y_test)
                    if test_acc is not None:
                        test_acc[steps] = test_accuracy
                newly = alive & ~np.isfinite(loss[steps])
                diverged[newly] = steps
        return [self._history(k, diverged[k], loss, test_loss, acc, test_acc, lrs, delta_sq, grad_sq, clip, path,
                              steps_done) for k in range(K)]

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
            loss=series(loss, last), test_loss=series(test_loss, last),
            accuracy=series(acc, last), test_accuracy=series(test_acc, last),
            learning_rate=series(lrs, stop), delta_norm=np.sqrt(series(delta_sq, stop)),
            grad_norm=np.sqrt(series(grad_sq, stop)),
            clip_before=None if clip is None else series(clip[:, 0], stop),
            clip_after=None if clip is None else series(clip[:, 1], stop),
            diverged_at=None if diverged_at < 0 else int(diverged_at),
            path=None if path is None else series(path, last))
        return history

    def checkpoint(self) -> Checkpoint:
        """A copy of where training stands now."""
        return Checkpoint(self.t, self.theta.copy(), [{k: v.copy() for k, v in s.items()} for s in self.states])

    def params(self, k: int = 0) -> Params:
        """Contestant k's current W^l, b^l."""
        return Params.from_flat(self.net, self.theta[k])
