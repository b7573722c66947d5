"""Engine speed against the bare textbook NumPy loop (note 002), and PyTorch if it happens to be installed.

    python benchmarks/engine.py            # the table in the README
    python benchmarks/engine.py --quick    # a few steps, for CI smoke

For each case the engine trains through `StackedTrainer.run(steps)` (what `experiment.train` calls), recording the
per-step summaries (loss, per-layer ||delta|| and ||dW||, accuracy); the textbook loop records nothing. Both do the
same arithmetic, full batch, plain gradient descent from the same initial weights: either sigmoid hidden layers and
a sigmoid output with dz = a - y (the engine's loss "bce"), or relu hidden layers and a softmax output with dz = a -
y (loss "cross_entropy"; the textbook softmax subtracts the row max, as scipy does). The 784-input case is the
digits scaled up to 28x28 (each pixel a 3x3 block, 2 pixels of border), MNIST's shape. One-time setup (building the
trainer, its buffers) is timed separately. Timings are per step, best of several interleaved blocks, all in one run
on one BLAS thread (../shared/RECIPES.md: "NumPy speed on these machines"). The clock is this process's CPU time,
which other processes on a busy machine do not inflate (with one BLAS thread it is the wall time of a quiet
machine); --wall uses the wall clock instead. Last, two mini-batch runs with the whole-set metrics evaluated every
step against every 10th step (`evaluate_every`, the API's field for long mini-batch runs).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS; an explicit setting wins

import argparse
import gc
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from engine import experiment  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

LR = 0.5
CASES = [
    # name, layers, dataset, n, steps per timed block (blocks of ~20-70 ms: short enough that the best of them
    # misses the other processes of a busy machine), kind: "sigmoid" (sigmoid + bce) or "relu" (relu + softmax/CE)
    ("xor 2-4-1", [2, 4, 1], "xor", None, 500, "sigmoid"),
    ("spiral 2-8-8-1", [2, 8, 8, 1], "spiral", 500, 200, "sigmoid"),
    ("deep 2-8x6-1", [2] + [8] * 6 + [1], "spiral", 200, 200, "sigmoid"),
    ("digits 64-128-64-10", [64, 128, 64, 10], "digits", 256, 50, "sigmoid"),
    ("spiral3 relu 2-16-16-3", [2, 16, 16, 3], "spiral3", 300, 200, "relu"),
    ("digits relu 64-128-64-10", [64, 128, 64, 10], "digits", 256, 50, "relu"),
    ("mnist-shape relu 784-256-128-10", [784, 256, 128, 10], "digits28", 256, 10, "relu"),
]
RACE = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"]


def digits28(n):
    """The first n digits (the engine's seeded draw) as 28x28 images: each pixel a 3x3 block, a 2-pixel border."""
    digits = experiment.prepare(spec_for([64, 10], "digits", n))
    images = np.kron(digits.X.reshape(n, 8, 8), np.ones((3, 3)))
    return np.pad(images, ((0, 0), (2, 2), (2, 2))).reshape(n, 784), digits.Y


def spec_for(layers, dataset, n, optimizers=("sgd",), kind="sigmoid"):
    if kind == "sigmoid":
        network = {"activations": ["sigmoid"] * (len(layers) - 1), "loss": "bce", "init": "xavier"}
    else:
        network = {"activations": ["relu"] * (len(layers) - 2) + ["softmax"], "loss": "cross_entropy", "init": "he"}
    if dataset == "digits28":
        X, Y = digits28(n)
        data = {"X": X.tolist(), "Y": Y.tolist(), "test_fraction": 0}
    else:
        data = {"dataset": dataset, "n": n}
    return experiment_from_dict(
        {
            "network": {"layers": layers, **network, "seed": 0},
            "data": data,
            "optimizers": [{"name": name, "lr": LR if name in ("sgd", "momentum") else 0.01} for name in optimizers],
        }
    )


# ---- the textbook loop: note 002's code with L layers, samples as rows, W^l stored as (n_{l-1}, n_l) ------------
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(x):
    return x * (1 - x)


def textbook_relu_softmax(X, y, Ws, bs, learning_rate, epochs):
    """The same loop with relu hidden layers and a softmax output (dz = a - y for cross-entropy)."""
    lr = learning_rate / X.shape[0]
    L = len(Ws)
    for _epoch in range(epochs):
        a = [X]
        for l in range(L - 1):
            a.append(np.maximum(np.dot(a[l], Ws[l]) + bs[l], 0))
        z = np.dot(a[L - 1], Ws[L - 1]) + bs[L - 1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        a.append(e / e.sum(axis=1, keepdims=True))
        dz = a[L] - y
        for l in range(L - 1, -1, -1):
            dW = np.dot(a[l].T, dz)
            db = np.sum(dz, axis=0, keepdims=True)
            if l > 0:
                dz = np.dot(dz, Ws[l].T) * (a[l] > 0)
            Ws[l] -= lr * dW
            bs[l] -= lr * db
    return Ws, bs


def textbook(X, y, Ws, bs, learning_rate, epochs):
    """Note 002's loop for any depth; dividing the learning rate by m makes it the engine's mean gradient."""
    lr = learning_rate / X.shape[0]
    L = len(Ws)
    for _epoch in range(epochs):
        # Forward pass
        a = [X]
        for l in range(L):
            a.append(sigmoid(np.dot(a[l], Ws[l]) + bs[l]))
        # Backward pass
        dz = a[L] - y
        for l in range(L - 1, -1, -1):
            dW = np.dot(a[l].T, dz)
            db = np.sum(dz, axis=0, keepdims=True)
            if l > 0:
                dz = np.dot(dz, Ws[l].T) * sigmoid_derivative(a[l])
            # Update weights
            Ws[l] -= lr * dW
            bs[l] -= lr * db
    return Ws, bs


def textbook_start(params0):
    """The engine's theta_0 in the notes' layout: W (n_in, n_out), b (1, n_out)."""
    return [W.T.copy() for W in params0.W], [b[None, :].copy() for b in params0.b]


def bce_loss(X, Y, Ws, bs):
    """The engine's bce objective (mean over samples, sum over outputs), stably from z."""
    a = X
    for W, b in zip(Ws, bs):
        z = a @ W + b
        a = sigmoid(z)
    return float(np.mean(np.sum(np.logaddexp(0.0, z) - Y * z, axis=1)))


def ce_loss(X, Y, Ws, bs):
    """Cross-entropy of the relu/softmax net: mean over samples of logsumexp(z) - y.z."""
    a = X
    for W, b in zip(Ws[:-1], bs[:-1]):
        a = np.maximum(a @ W + b, 0)
    z = a @ Ws[-1] + bs[-1]
    top = z.max(axis=1, keepdims=True)
    return float(np.mean(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)) - np.sum(Y * z, axis=1)))


# ---- an optional PyTorch loop (autograd, float64, one thread); torch is never a dependency --------------------
def torch_runner(X, Y, params0, kind):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    Xt, Yt = torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.ascontiguousarray(Y))
    m = X.shape[0]

    def loss_of(Ws, bs):
        a = Xt
        for W, b in zip(Ws, bs):
            z = torch.nn.functional.linear(a, W, b)
            a = torch.sigmoid(z) if kind == "sigmoid" else torch.relu(z)
        if kind != "sigmoid":  # our cross_entropy: softmax output, one-hot targets
            return torch.nn.functional.cross_entropy(z, Yt.argmax(dim=1), reduction="sum") / m
        return torch.nn.functional.binary_cross_entropy_with_logits(z, Yt, reduction="sum") / m  # our bce

    def run(steps):
        """Train `steps` steps from theta_0; returns the seconds taken and the loss after them."""
        Ws = [torch.tensor(W, requires_grad=True) for W in params0.W]
        bs = [torch.tensor(b, requires_grad=True) for b in params0.b]
        opt = torch.optim.SGD(Ws + bs, lr=LR)
        gc.disable()
        start = CLOCK()
        for _ in range(steps):
            opt.zero_grad()
            loss_of(Ws, bs).backward()
            opt.step()
        seconds = CLOCK() - start
        gc.enable()
        with torch.no_grad():
            return seconds, float(loss_of(Ws, bs))

    return run


# ---- measuring ---------------------------------------------------------------------------------------------------
CLOCK = time.process_time  # --wall: time.perf_counter


def timed(fn):
    gc.disable()
    try:
        start = CLOCK()
        fn()
        return CLOCK() - start
    finally:
        gc.enable()


class Case:
    def __init__(self, name, layers, dataset, n, steps, kind):
        self.name, self.steps, self.kind = name, steps, kind
        self.loop = textbook if kind == "sigmoid" else textbook_relu_softmax
        self.loss = bce_loss if kind == "sigmoid" else ce_loss
        self.spec = spec_for(layers, dataset, n, kind=kind)
        self.prep = experiment.prepare(self.spec)
        self.X, self.Y = self.prep.X, self.prep.Y
        self.n_params = self.prep.net.n_params
        self.torch = torch_runner(self.X, self.Y, self.prep.params0, kind)

    def trainer(self, steps):
        """A trainer at theta_0, set up: run(0) allocates its buffers and records the loss at theta_0."""
        trainer = experiment.trainer_for(self.prep, [0], None, steps, experiment.start(self.prep, 1))
        trainer.run(0)
        return trainer

    def engine_block(self, steps):
        trainer = self.trainer(steps)  # setup, not timed
        return timed(lambda: trainer.run(steps))

    def textbook_block(self, steps):
        Ws, bs = textbook_start(self.prep.params0)
        return timed(lambda: self.loop(self.X, self.Y, Ws, bs, LR, steps))

    def torch_block(self, steps):
        return self.torch(steps)[0]

    def setup_seconds(self):
        """The one-time cost the per-step figures leave out: building a trainer and its buffers."""
        return min(timed(lambda: self.trainer(1)) for _ in range(5))

    def agreement(self, steps):
        """Loss after `steps` steps from the same theta_0: engine history vs textbook loop; max |theta| difference."""
        trainer = self.trainer(steps)
        engine_loss = trainer.run(steps)[0].loss[steps]
        Ws, bs = self.loop(self.X, self.Y, *textbook_start(self.prep.params0), LR, steps)
        engine_params = trainer.params(0)
        dtheta = max(
            max(np.abs(W.T - We).max() for W, We in zip(Ws, engine_params.W)),
            max(np.abs(b[0] - be).max() for b, be in zip(bs, engine_params.b)),
        )
        torch_loss = self.torch(steps)[1] if self.torch else None
        return engine_loss, self.loss(self.X, self.Y, Ws, bs), dtheta, torch_loss


def race_ratio(layers, dataset, n, steps, blocks):
    """A 6-contestant race (full batch) against one contestant, seconds per step, best of blocks."""
    one, six = spec_for(layers, dataset, n), spec_for(layers, dataset, n, RACE)
    preps = {1: experiment.prepare(one), 6: experiment.prepare(six)}

    def block(K):
        prep = preps[K]
        trainer = experiment.trainer_for(prep, list(range(K)), None, steps, experiment.start(prep, K))
        trainer.run(0)  # setup, not timed
        return timed(lambda: trainer.run(steps))

    best = {1: float("inf"), 6: float("inf")}
    for _ in range(blocks):
        for K in (1, 6):
            best[K] = min(best[K], block(K))
    return best[1] / steps, best[6] / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps per case (CI smoke), not a measurement")
    parser.add_argument("--blocks", type=int, default=None, help="timed blocks per case (best is kept)")
    parser.add_argument("--wall", action="store_true", help="time with the wall clock, not this process's CPU time")
    parser.add_argument("--only", default="", help="only the cases whose name contains this text (and no races)")
    args = parser.parse_args(argv)
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    blocks = args.blocks or (2 if args.quick else 15)
    cases = [Case(*c) for c in CASES if args.only in c[0]]
    has_torch = any(c.torch for c in cases)
    steps = {c.name: (5 if args.quick else c.steps) for c in cases}

    for c in cases:  # warm up: buffers, caches, BLAS
        c.engine_block(3)
        c.textbook_block(3)
        if c.torch:
            c.torch_block(3)
    best = {(c.name, what): float("inf") for c in cases for what in ("textbook", "engine", "torch")}
    for b in range(blocks):  # interleaved: every case and loop in every block
        for c in cases:
            order = [("textbook", c.textbook_block), ("engine", c.engine_block)]
            if b % 2:
                order.reverse()
            if c.torch:
                order.append(("torch", c.torch_block))
            for what, fn in order:
                best[c.name, what] = min(best[c.name, what], fn(steps[c.name]) / steps[c.name])

    print(
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, NumPy {np.__version__}, "
        f"{'wall clock' if args.wall else 'CPU time'}, best of {blocks} blocks"
        f"{' (--quick: not a measurement)' if args.quick else ''}\n"
    )
    head = "| case | params | textbook us/step | engine us/step | ratio |"
    rule = "|---|---:|---:|---:|---:|"
    if has_torch:
        head += " torch us/step | torch ratio |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for c in cases:
        tb, en = best[c.name, "textbook"] * 1e6, best[c.name, "engine"] * 1e6
        row = f"| {c.name} | {c.n_params} | {tb:.1f} | {en:.1f} | {en / tb:.2f}x |"
        if has_torch:
            tt = best[c.name, "torch"] * 1e6
            row += f" {tt:.1f} | {tt / tb:.2f}x |" if c.torch else " n/a | n/a |"
        print(row)
    print(
        "\nratio = engine / textbook per step; the engine records loss, ||delta^l||, ||dW^l|| and accuracy every "
        "step, the textbook loop nothing."
    )

    n_check = 5 if args.quick else 100
    print(f"\nsanity: loss after {n_check} steps from the same theta_0 (engine History vs textbook loop):")
    for c in cases:
        engine_loss, textbook_loss, dtheta, torch_loss = c.agreement(n_check)
        extra = "" if torch_loss is None else f", torch {torch_loss:.12f}"
        print(
            f"  {c.name}: engine {engine_loss:.12f}, textbook {textbook_loss:.12f}, "
            f"|diff| {abs(engine_loss - textbook_loss):.1e}, max |theta diff| {dtheta:.1e}{extra}"
        )
    print(
        "\nsetup, once per trainer (not in the figures above): "
        + ", ".join(f"{c.name} {c.setup_seconds() * 1e6:.0f} us" for c in cases)
    )

    if args.only:
        return
    race_steps = 20 if args.quick else 1000
    print(f"\nrace of 6 ({'/'.join(RACE)}) against 1 contestant, full batch, {race_steps} steps:")
    for name, layers, dataset, n in [
        ("spiral 2-8-8-1, 500 samples", [2, 8, 8, 1], "spiral", 500),
        ("spiral 2-8-8-1, 200 samples", [2, 8, 8, 1], "spiral", 200),
        ("xor 2-4-1, 4 samples", [2, 4, 1], "xor", None),
    ]:
        one, six = race_ratio(layers, dataset, n, race_steps, 2 if args.quick else 5)
        print(
            f"  {name}: 1 contestant {one * 1e6:.1f} us/step, 6 contestants {six * 1e6:.1f} us/step, "
            f"ratio {six / one:.2f}x"
        )

    sweep = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 1.0]
    print(f"\nAdam learning-rate sweep of {len(sweep)}, spiral 2-8-8-1, 200 samples, {race_steps} steps:")
    one_call, per_contestant = sweep_ratio(sweep, race_steps, 2 if args.quick else 5)
    print(
        f"  one update call for the eight {one_call * 1e6:.1f} us/step, one call per contestant "
        f"{per_contestant * 1e6:.1f} us/step: {per_contestant / one_call:.2f}x"
    )

    mini_steps = 20 if args.quick else 400
    print(f"\nmini-batch runs, {mini_steps} steps: whole-set metrics every step against evaluate_every=10:")
    for name, layers, dataset, n, kind, batch in [
        ("digits relu 64-128-64-10, 1024 rows, batch 32", [64, 128, 64, 10], "digits", 1024, "relu", 32),
        ("spiral 2-8-8-1, 500 rows, batch 16", [2, 8, 8, 1], "spiral", 500, "sigmoid", 16),
    ]:
        dense, sparse = sparse_ratio(layers, dataset, n, kind, batch, mini_steps, 2 if args.quick else 5)
        print(
            f"  {name}: every step {dense * 1e6:.1f} us/step, every 10th {sparse * 1e6:.1f} us/step, "
            f"{dense / sparse:.2f}x faster"
        )


def sweep_ratio(lrs, steps, blocks):
    """Neighbouring contestants with one rule updated in one call (StackedTrainer._stack_updates) against one call
    each (what a rule the trainer does not know gets), seconds per step."""
    from engine import trainer as trainer_module

    spec = experiment_from_dict(
        {
            "network": {"layers": [2, 8, 8, 1], "activations": ["tanh", "tanh", "sigmoid"], "loss": "bce"},
            "data": {"dataset": "spiral", "n": 200},
            "optimizers": [{"name": "adam", "lr": lr} for lr in lrs],
        }
    )
    prep = experiment.prepare(spec)
    stack_key = trainer_module._stack_key

    def block(stacked):
        trainer_module._stack_key = stack_key if stacked else (lambda c: None)
        try:
            trainer = experiment.trainer_for(prep, list(range(len(lrs))), None, steps, experiment.start(prep, len(lrs)))
        finally:
            trainer_module._stack_key = stack_key
        trainer.run(0)  # setup, not timed
        return timed(lambda: trainer.run(steps))

    best = {True: float("inf"), False: float("inf")}
    for _ in range(blocks):
        for stacked in best:
            best[stacked] = min(best[stacked], block(stacked))
    return best[True] / steps, best[False] / steps


def sparse_ratio(layers, dataset, n, kind, batch, steps, blocks):
    """A mini-batch run evaluating the whole-set metrics every step against every 10th, seconds per step."""
    prep = experiment.prepare(spec_for(layers, dataset, n, kind=kind))

    def block(every):
        trainer = experiment.trainer_for(prep, [0], batch, steps, experiment.start(prep, 1))
        trainer.run(0)  # setup, not timed
        return timed(lambda: trainer.run(steps, evaluate_every=every))

    best = {1: float("inf"), 10: float("inf")}
    for _ in range(blocks):
        for every in best:
            best[every] = min(best[every], block(every))
    return best[1] / steps, best[10] / steps


if __name__ == "__main__":
    main()
