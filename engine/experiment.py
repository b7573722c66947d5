"""Runs an Experiment: builds its network, data and theta_0, trains every contestant, records any step in full."""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .backprop import Backprop, backprop, objective
from .datasets import Dataset, add_features, make_custom, make_dataset
from .network import Network, Params, init_params, params_from_lists
from .optimizers import OPTIMIZERS
from .regularization import batch_indices, clip_by_global_norm, dropout_masks
from .schedules import learning_rates
from .spec import Experiment, OptimizerSpec, check_targets
from .trainer import Checkpoint, Contestant, History, Regularization, StackedTrainer


@dataclass(frozen=True)
class Prepared:
    """What a spec builds: the network, its data and the initial parameters theta_0."""

    spec: Experiment
    net: Network
    data: Dataset
    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    params0: Params

    @property
    def classify(self) -> bool:
        return self.data.info.task in ("binary", "multiclass")

    @property
    def regularization(self) -> Regularization:
        s = self.spec
        return Regularization(s.l2, s.l1, s.dropout, s.clip_norm)


def load_data(spec: Experiment) -> Dataset:
    """The spec's dataset (named and seeded, or explicit X, Y)."""
    d = spec.data
    if d.dataset is None:
        return make_custom(
            np.array(d.X, dtype=float) if d.X is not None else None,
            np.array(d.Y, dtype=float) if d.Y is not None else None,
            d.test_fraction,
            d.seed,
        )
    return make_dataset(d.dataset, n=d.n, noise=d.noise, seed=d.seed, test_fraction=d.test_fraction)


@lru_cache(maxsize=64)
def prepare(spec: Experiment) -> Prepared:
    """Build everything a spec describes; cached because specs are immutable and building is deterministic."""
    net = Network(spec.network.layers, spec.network.activations, spec.network.loss)
    data = load_data(spec)
    X, X_test = data.X_train, data.X_test
    if spec.data.features:
        X, X_test = add_features(X, spec.data.features), add_features(X_test, spec.data.features)
    if X.shape[1] != net.layers[0]:
        raise ValueError(
            f"network.layers: the input layer must have {X.shape[1]} units for this data (it has {net.layers[0]})"
        )
    if data.Y_train.shape[1] != net.layers[-1]:
        raise ValueError(
            f"network.layers: the output layer must have {data.Y_train.shape[1]} units for this "
            f"data (it has {net.layers[-1]})"
        )
    if spec.network.weights is not None:
        params0 = params_from_lists(net, spec.network.weights, spec.network.biases)
    else:
        if spec.network.biases is not None:
            raise ValueError("network.biases: give weights too, or neither")
        params0 = init_params(net, spec.network.init, spec.network.seed)
    check_targets(net.loss, data.Y_train)
    check_targets(net.loss, data.Y_test)
    for array in (X, data.Y_train, X_test, data.Y_test):
        array.setflags(write=False)
    return Prepared(spec, net, data, X, data.Y_train, X_test, data.Y_test, params0)


def contestant(opt: OptimizerSpec, steps: int) -> Contestant:
    """The optimizer's rule, its hyperparameters and lr_t for every step up to `steps`."""
    hyper = dict(opt.hyper)
    lrs = learning_rates(opt.schedule.name, dict(opt.schedule.params), hyper["lr"], steps)
    return Contestant(OPTIMIZERS[opt.name], hyper, lrs)


def groups(spec: Experiment) -> dict:
    """Contestant indices grouped by batch size: each group trains as one stacked program."""
    by_batch: dict = {}
    for k, opt in enumerate(spec.optimizers):
        by_batch.setdefault(opt.batch_size, []).append(k)
    return by_batch


def start(prep: Prepared, K: int) -> Checkpoint:
    """theta_0 for K contestants, identical rows, and fresh optimizer state."""
    theta0 = prep.params0.flat()
    return Checkpoint(0, np.tile(theta0, (K, 1)), [])


@dataclass(frozen=True)
class Run:
    """A contestant's per-step History and its final theta."""

    history: History
    theta: np.ndarray


def train_runs(spec: Experiment, steps: int, keep_path: bool = False, evaluate_every: int = 1) -> list[Run]:
    """Train every contestant `steps` steps from the same theta_0 on the same batch order (mini-batch runs evaluate
    the whole-set metrics every `evaluate_every` steps: StackedTrainer.run)."""
    prep = prepare(spec)
    results: list = [None] * len(spec.optimizers)
    for batch_size, members in groups(spec).items():
        trainer = trainer_for(prep, members, batch_size, steps, start(prep, len(members)))
        for i, (k, history) in enumerate(zip(members, trainer.run(steps, keep_path, evaluate_every))):
            results[k] = Run(history, trainer.theta[i].copy())
    return results


def train(spec: Experiment, steps: int, keep_path: bool = False) -> list[History]:
    """Train every contestant `steps` steps from the same theta_0 on the same batch order; one History each."""
    return [run.history for run in train_runs(spec, steps, keep_path)]


def trainer_for(prep: Prepared, members, batch_size, horizon, checkpoint, contestants=None) -> StackedTrainer:
    """A stacked trainer for the given contestants resuming from `checkpoint`.

    `contestants`, one per optimizer of the spec, replaces the spec's own (e.g. wrapped to record their state)."""
    spec = prep.spec
    chosen = [contestants[k] if contestants else contestant(spec.optimizers[k], horizon) for k in members]
    return StackedTrainer(
        prep.net,
        prep.X,
        prep.Y,
        chosen,
        checkpoint,
        batch_size,
        prep.regularization,
        spec.seed,
        prep.X_test,
        prep.Y_test,
        prep.classify,
    )


def stacked_trainers(prep: Prepared, contestants: list[Contestant]) -> list[tuple[list[int], StackedTrainer]]:
    """From theta_0, one stacked trainer per batch-size group of the spec, over the given contestants."""
    return [
        (members, trainer_for(prep, members, batch, None, start(prep, len(members)), contestants))
        for batch, members in groups(prep.spec).items()
    ]


def checkpoint_bytes(checkpoint: Checkpoint) -> int:
    """Memory a cached checkpoint holds: theta and every optimizer state vector, plus a little bookkeeping."""
    extra = 0 if getattr(checkpoint, "start_loss", None) is None else checkpoint.start_loss.nbytes
    return 200 + extra + checkpoint.theta.nbytes + sum(v.nbytes for s in checkpoint.states for v in s.values())


class CheckpointCache:
    """An LRU of checkpoints keyed by (spec id, contestant, t), bounded in bytes: stepping to t+1 costs one step,
    and reaching any t costs at most `every` steps from the sparse checkpoints `state_at` leaves on its way.

    Only a cache: a miss recomputes from theta_0, and the answer is the same either way. `nbytes`, `len()` and
    `stats()` expose its size; it never holds more than `max_bytes` (a checkpoint bigger than that is not kept).
    """

    def __init__(self, max_bytes: int = 64 << 20, every: int = 50):
        if every < 1:
            raise ValueError("every: sparse checkpoints need a stride of at least 1 step")
        self.max_bytes, self.every = int(max_bytes), int(every)
        self._items: OrderedDict = OrderedDict()  # key -> (checkpoint, nbytes)
        self._times: dict = {}  # (spec id, contestant) -> set of cached t
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict:
        """Entries, bytes held, the byte limit, the sparse stride, hits, misses and evictions."""
        with self._lock:
            return {
                "entries": len(self._items),
                "bytes": self.nbytes,
                "max_bytes": self.max_bytes,
                "every": self.every,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0].copy()

    def nearest(self, spec_id, k, t):
        """The latest cached checkpoint at or before step t."""
        with self._lock:
            best = max((u for u in self._times.get((spec_id, k), ()) if u <= t), default=None)
            if best is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end((spec_id, k, best))
            return self._items[(spec_id, k, best)][0].copy()

    def put(self, key, checkpoint: Checkpoint):
        size = checkpoint_bytes(checkpoint)
        if size > self.max_bytes:
            return
        copy = checkpoint.copy()
        with self._lock:
            self._drop(key)
            self._items[key] = (copy, size)
            self._times.setdefault(key[:2], set()).add(key[2])
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                self._drop(next(iter(self._items)))
                self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._times.clear()
            self.nbytes = 0

    def _drop(self, key) -> None:
        item = self._items.pop(key, None)
        if item is None:
            return
        self.nbytes -= item[1]
        times = self._times.get(key[:2])
        if times is not None:
            times.discard(key[2])
            if not times:
                del self._times[key[:2]]


def state_at(spec: Experiment, t: int, k: int = 0, cache: CheckpointCache | None = None) -> Checkpoint:
    """Contestant k's theta_t and optimizer state, recomputed from theta_0 (or a cached earlier checkpoint).

    With a cache, the walk from the nearest checkpoint leaves one every `cache.every` steps, so a later request for
    any step up to t resumes at most `every` steps before it.
    """
    prep = prepare(spec)
    opt = spec.optimizers[k]
    checkpoint = cache.nearest(spec.id, k, t) if cache is not None else None
    if checkpoint is None:
        checkpoint = start(prep, 1)
    if checkpoint.t < t:
        trainer = trainer_for(prep, [k], opt.batch_size, t, checkpoint)
        while trainer.t < t:
            stop = t if cache is None else min(t, (trainer.t // cache.every + 1) * cache.every)
            trainer.run(stop - trainer.t)
            if trainer.t < stop:  # every contestant diverged: training stopped there
                break
            if cache is not None and stop < t:
                cache.put((spec.id, k, stop), trainer.checkpoint())
        checkpoint = trainer.checkpoint()
    if not checkpoint.states:
        checkpoint.states.append(OPTIMIZERS[opt.name].init_state(prep.net.n_params))
    if cache is not None:
        cache.put((spec.id, k, t), checkpoint)
    return checkpoint


@dataclass(frozen=True)
class StepRecord:
    """Step t in full: theta_t, the batch, forward and backward per layer, and the update to theta_{t+1}."""

    t: int
    rows: np.ndarray  # training-set rows in this step's batch
    backprop: Backprop  # z, a, delta, dW, db per layer; loss on the batch
    learning_rate: float
    grad: np.ndarray  # flat gradient the optimizer received (penalty added, clipped)
    clip_before: float | None
    clip_after: float | None
    params_before: Params
    params_after: Params
    update: Params  # Delta theta = theta_{t+1} - theta_t, shaped like W, b
    state_before: dict  # optimizer state vectors (flat) before and after this step
    state_after: dict
    full_loss: float  # the training objective on the whole training set at theta_t


def step_record(spec: Experiment, t: int, k: int = 0, cache: CheckpointCache | None = None) -> StepRecord:
    """Recompute step t of contestant k with the readable reference code (engine.backprop)."""
    prep = prepare(spec)
    net, opt = prep.net, spec.optimizers[k]
    checkpoint = state_at(spec, t, k, cache)
    theta = checkpoint.theta[0].copy()
    params = Params.from_flat(net, theta)
    m = prep.X.shape[0]
    rows = batch_indices(spec.seed, t, m, m if opt.batch_size is None else opt.batch_size)
    X, Y = prep.X[rows], prep.Y[rows]
    drop = spec.dropout or (0.0,) * net.depth
    masks = dropout_masks(spec.seed, t, len(rows), net.layers[1:], drop)
    keep = [1.0 - p for p in drop]
    with np.errstate(all="ignore"):
        bp = backprop(net, params, X, Y, spec.l2, spec.l1, masks, keep)
        grad = Params(bp.grad_W, bp.grad_b).flat()
        clip_before = clip_after = None
        if spec.clip_norm:
            clip_before, clip_after = clip_by_global_norm(grad, spec.clip_norm)
        c = contestant(opt, t + 1)
        lr = float(c.learning_rates[t])
        state = {name: v.copy() for name, v in checkpoint.states[0].items()}
        after = theta.copy()
        c.optimizer.update(after, grad.copy(), state, lr, t + 1, c.hyper)
        full = objective(net, params, prep.X, prep.Y, spec.l2, spec.l1)
    return StepRecord(
        t,
        rows,
        bp,
        lr,
        grad,
        clip_before,
        clip_after,
        params,
        Params.from_flat(net, after),
        Params.from_flat(net, after - theta),
        checkpoint.states[0],
        state,
        full,
    )
