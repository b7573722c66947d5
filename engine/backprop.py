"""The four steps of note 001 on a batch, written as the notes write them, keeping every intermediate value.

Samples are rows, so the column-vector equations of the notes become, for a batch:
    z^l = W^l a^{l-1} + b^l                   ->  Z = A_prev @ W.T + b
    delta^l = (W^{l+1}.T delta^{l+1}) (.) sigma'(z^l)  ->  D = (D_next @ W_next) * sigma'(Z)
    dW^l = mean_i delta^l_i (a^{l-1}_i)^T     ->  D.T @ A_prev / m
This module is the reference the fast trainer (`engine.trainer`) is tested against.
"""

from dataclasses import dataclass

import numpy as np

from .activations import apply_grad
from .losses import output_delta
from .network import Network, Params


@dataclass(frozen=True)
class LayerRecord:
    """Everything layer l computed for a batch: one row per sample for z, a, delta."""

    z: np.ndarray  # (m, n_l) weighted input
    a: np.ndarray  # (m, n_l) activation after dropout, as the next layer sees it
    sigma_prime: np.ndarray  # (m, n_l) sigma'(z) (for softmax: the diagonal a(1-a), display only)
    delta: np.ndarray  # (m, n_l) dl_i/dz^l per sample
    dW: np.ndarray  # (n_l, n_{l-1}) mean over the batch of delta_i a_{i}^{l-1 T}
    db: np.ndarray  # (n_l,) mean over the batch of delta_i
    mask: np.ndarray | None  # (m, n_l) dropout keep-mask (1 kept, 0 dropped) or None
    upstream: np.ndarray | None = None  # (m, n_l) (W^{l+1})^T delta^{l+1} (masked) for l < L; None at the output


@dataclass(frozen=True)
class Backprop:
    """A forward and backward pass over one batch."""

    X: np.ndarray
    Y: np.ndarray
    layers: tuple[LayerRecord, ...]
    per_sample_loss: np.ndarray  # l_i
    data_loss: float  # mean_i l_i
    penalty: float  # l2/2 sum ||W||^2 + l1 sum |W|
    grad_W: tuple[np.ndarray, ...]  # dW^l plus the penalty's gradient: what the optimizer receives before clipping
    grad_b: tuple[np.ndarray, ...]

    @property
    def loss(self) -> float:
        """The training objective on this batch: data loss plus the penalty."""
        return self.data_loss + self.penalty


def forward(net: Network, params: Params, X: np.ndarray, masks=None, keep_prob=None):
    """Layer by layer z^l = W^l a^{l-1} + b^l, a^l = sigma(z^l) (times mask/keep_prob on hidden layers with dropout)."""
    zs, activations, a = [], [], X
    for l, (W, b, act) in enumerate(zip(params.W, params.b, net.acts)):
        z = a @ W.T + b
        a = act.f(z)
        if masks is not None and masks[l] is not None:
            a = a * masks[l] / keep_prob[l]
        zs.append(z)
        activations.append(a)
    return zs, activations


def predict(net: Network, params: Params, X: np.ndarray) -> np.ndarray:
    """a^L in evaluation mode (no dropout)."""
    return forward(net, params, X)[1][-1]


def objective(net, params, X, Y, l2=0.0, l1=0.0, masks=None, keep_prob=None) -> float:
    """Mean per-sample loss plus the penalty: the quantity gradients are taken of."""
    zs, acts = forward(net, params, X, masks, keep_prob)
    data = float(np.mean(net.loss_fn.per_sample(zs[-1], acts[-1], Y)))
    return data + penalty(params, l2, l1)


def penalty(params: Params, l2: float, l1: float) -> float:
    """lambda/2 sum_l ||W^l||_F^2 + lambda_1 sum_l |W^l|_1 (weights only, never biases)."""
    total = 0.0
    if l2:
        total += 0.5 * l2 * sum(float(np.sum(W * W)) for W in params.W)
    if l1:
        total += l1 * sum(float(np.sum(np.abs(W))) for W in params.W)
    return total


def backprop(net: Network, params: Params, X, Y, l2=0.0, l1=0.0, masks=None, keep_prob=None) -> Backprop:
    """Forward, loss, delta^L, delta^l for l = L-1..1, and the batch-averaged gradients."""
    m = X.shape[0]
    zs, acts = forward(net, params, X, masks, keep_prob)
    per_sample = net.loss_fn.per_sample(zs[-1], acts[-1], Y)
    L = net.depth
    inputs = [X] + acts[:-1]
    deltas, upstreams = [None] * L, [None] * L
    deltas[-1] = output_delta(net.loss_fn, net.activations[-1], zs[-1], acts[-1], Y)
    for l in range(L - 2, -1, -1):
        upstream = deltas[l + 1] @ params.W[l + 1]  # (W^{l+1})^T delta^{l+1}, one row per sample
        if masks is not None and masks[l] is not None:
            upstream = upstream * masks[l] / keep_prob[l]  # dropped units pass no gradient back
        a_before_dropout = net.acts[l].f(zs[l])
        deltas[l] = apply_grad(net.acts[l], zs[l], a_before_dropout, upstream)
        upstreams[l] = upstream
    layers, grad_W, grad_b = [], [], []
    for l in range(L):
        dW = deltas[l].T @ inputs[l] / m
        db = deltas[l].mean(axis=0)
        a_clean = net.acts[l].f(zs[l])
        sp = a_clean * (1 - a_clean) if net.activations[l] == "softmax" else net.acts[l].grad(zs[l], a_clean)
        mask = None if masks is None else masks[l]
        layers.append(LayerRecord(zs[l], acts[l], sp, deltas[l], dW, db, mask, upstreams[l]))
        extra = 0.0
        if l2:
            extra = extra + l2 * params.W[l]
        if l1:
            extra = extra + l1 * np.sign(params.W[l])
        grad_W.append(dW + extra)
        grad_b.append(db)
    data_loss = float(np.mean(per_sample))
    return Backprop(X, Y, tuple(layers), per_sample, data_loss, penalty(params, l2, l1), tuple(grad_W), tuple(grad_b))
