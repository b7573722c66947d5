"""Seeded toy datasets for classification and regression, split into train and test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
from sklearn.datasets import load_digits, make_blobs, make_circles, make_moons

MIN_N = 4
MAX_NOISE = 1.0
MAX_TEST_FRACTION = 0.9


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its task, its shapes and the limits on n."""

    name: str
    task: str  # "binary" | "multiclass" | "regression"
    n_inputs: int
    n_outputs: int  # 1 for binary and regression, the number of classes for multiclass
    default_n: int
    max_n: int
    fixed: bool  # the points are fixed (xor, linear): n and noise are ignored
    description: str


@dataclass(frozen=True)
class Dataset:
    """One generated dataset: samples are rows, train first, then test (possibly 0 rows)."""

    info: DatasetInfo
    X_train: np.ndarray  # (m, n_inputs) float64
    Y_train: np.ndarray  # (m, n_outputs) float64: 0/1 column, one-hot rows or target values
    X_test: np.ndarray
    Y_test: np.ndarray
    labels_train: np.ndarray  # (m,) int class labels; all zeros for regression
    labels_test: np.ndarray


# Each generator maps (n, noise, rng) to (X, target): target holds int class labels for
# classification and float values for regression. All randomness comes from rng.


def _sklearn_seed(rng: np.random.Generator) -> int:
    """Draw sklearn's random_state from rng, so sklearn never touches the global np.random."""
    return int(rng.integers(2**31 - 1))


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points of note 002: y = 1 exactly when x1 != x2."""
    return np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([0, 1, 1, 0])


def _xor_cloud(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """TF Playground's XOR scaled by 1/5: label 1 when x1 * x2 >= 0 at a noise-shifted point."""
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    X += np.where(X > 0, 0.06, -0.06)  # push points off the axes, as TF's padding of 0.3 does
    shifted = X + rng.uniform(-1.0, 1.0, size=(n, 2)) * noise  # noise flips labels near the axes
    return X, (shifted[:, 0] * shifted[:, 1] >= 0).astype(np.int64)


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sklearn make_circles: outer radius 1 is class 0, inner radius 0.5 is class 1."""
    return make_circles(n_samples=n, factor=0.5, noise=noise, random_state=_sklearn_seed(rng))


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sklearn make_moons, shifted by (-0.5, -0.25) to centre it on the origin."""
    X, labels = make_moons(n_samples=n, noise=noise, random_state=_sklearn_seed(rng))
    return X - np.array([0.5, 0.25]), labels


def _gaussians(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sklearn make_blobs at (-0.4, -0.4) (class 0) and (0.4, 0.4) (class 1); TF's variance scale / 5."""
    std = np.sqrt(0.5 + 7.0 * noise) / 5.0  # TF: variance 0.5 at noise 0 rising to 4 at noise 0.5
    centers = np.array([[-0.4, -0.4], [0.4, 0.4]])
    return make_blobs(n_samples=n, centers=centers, cluster_std=std, random_state=_sklearn_seed(rng))


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """TF Playground's two spirals scaled by 1/5: 1.75 turns out to radius 1, the second arm turned by pi."""
    arms = []
    for _label, (size, turn) in enumerate([(n - n // 2, np.pi), (n // 2, 0.0)]):
        r = np.arange(size) / size
        t = 1.75 * 2 * np.pi * r + turn
        arms.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    X = np.vstack(arms) + rng.uniform(-1.0, 1.0, size=(n, 2)) * noise / 5.0
    return X, np.repeat([0, 1], [n - n // 2, n // 2])


def _spiral3(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three spiral arms (CS231n's classic): arm k has radius r in [0, 1) at angle 4k + 4r + N(0, (2 noise)^2)."""
    sizes = [n // 3 + (k < n % 3) for k in range(3)]
    arms, labels = [], []
    for k, size in enumerate(sizes):
        r = np.arange(size) / size
        t = 4.0 * k + 4.0 * r + rng.normal(0.0, 2.0 * noise, size=size)
        arms.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        labels.append(np.full(size, k))
    return np.vstack(arms), np.concatenate(labels)


def _gaussians3(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs (sklearn make_blobs) at radius 0.5, angles 90, 210 and 330 degrees; std as gaussians."""
    std = np.sqrt(0.5 + 7.0 * noise) / 5.0
    angles = np.deg2rad([90.0, 210.0, 330.0])
    centers = 0.5 * np.column_stack([np.cos(angles), np.sin(angles)])
    return make_blobs(n_samples=n, centers=centers, cluster_std=std, random_state=_sklearn_seed(rng))


def _linear(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Note 000's example: x = 1, 2, 3 and y = 2x exactly."""
    x = np.array([[1.0], [2.0], [3.0]])
    return x, 2.0 * x[:, 0]


def _plane(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """y = 2 x1 - x2 + N(0, noise^2) on x uniform in [-1, 1]^2."""
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    return X, 2.0 * X[:, 0] - X[:, 1] + rng.normal(0.0, noise, size=n)


def _sine(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """y = sin(x) + N(0, noise^2) on x uniform in [-pi, pi]."""
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    return x, np.sin(x[:, 0]) + rng.normal(0.0, noise, size=n)


def _digits(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n of sklearn's 1797 8x8 digit images, pixels divided by 16 into [0, 1]."""
    digits = load_digits()
    rows = rng.permutation(len(digits.target))[:n]
    return digits.data[rows] / 16.0, digits.target[rows]


_GENERATORS: dict[str, Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "xor": _xor,
    "xor_cloud": _xor_cloud,
    "circles": _circles,
    "moons": _moons,
    "gaussians": _gaussians,
    "spiral": _spiral,
    "spiral3": _spiral3,
    "gaussians3": _gaussians3,
    "linear": _linear,
    "plane": _plane,
    "sine": _sine,
    "digits": _digits,
}

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "xor", "binary", 2, 1, 4, 4, True, "The 4 XOR points of note 002: (0,0)->0, (0,1)->1, (1,0)->1, (1,1)->0."
        ),
        DatasetInfo(
            "xor_cloud",
            "binary",
            2,
            1,
            200,
            2000,
            False,
            "TensorFlow Playground's XOR scaled into about [-1.06, 1.06]^2: label 1 when "
            "x1*x2 >= 0; noise shifts the point the label is read at by up to +-noise, "
            "so labels flip near the axes.",
        ),
        DatasetInfo(
            "circles",
            "binary",
            2,
            1,
            200,
            2000,
            False,
            "sklearn make_circles: outer circle of radius 1 is class 0, inner circle of "
            "radius 0.5 is class 1; noise is the std of Gaussian noise on the inputs.",
        ),
        DatasetInfo(
            "moons",
            "binary",
            2,
            1,
            200,
            2000,
            False,
            "sklearn make_moons centred on the origin (inputs within about [-1.5, 1.5] x "
            "[-0.75, 0.75]); noise is the std of Gaussian noise on the inputs.",
        ),
        DatasetInfo(
            "gaussians",
            "binary",
            2,
            1,
            200,
            2000,
            False,
            "Two Gaussian blobs (sklearn make_blobs) at (-0.4, -0.4) for class 0 and "
            "(0.4, 0.4) for class 1; std = sqrt(0.5 + 7*noise)/5, TensorFlow Playground's "
            "spread scaled by 1/5.",
        ),
        DatasetInfo(
            "spiral",
            "binary",
            2,
            1,
            200,
            2000,
            False,
            "TensorFlow Playground's two interleaved spirals scaled by 1/5: 1.75 turns "
            "out to radius 1; noise moves each input by up to +-noise/5.",
        ),
        DatasetInfo(
            "spiral3",
            "multiclass",
            2,
            3,
            300,
            2000,
            False,
            "Three interleaved spiral arms (CS231n's classic) inside the unit disc: arm k at angle 4k + 4r for "
            "radius r in [0, 1); noise is the std of the angle divided by 2. Classes 0, 1, 2, one-hot.",
        ),
        DatasetInfo(
            "gaussians3",
            "multiclass",
            2,
            3,
            300,
            2000,
            False,
            "Three Gaussian blobs at radius 0.5 (angles 90, 210, 330 degrees); std = sqrt(0.5 + 7*noise)/5 as "
            "in gaussians. Classes 0, 1, 2, one-hot.",
        ),
        DatasetInfo("linear", "regression", 1, 1, 3, 3, True, "Note 000's example: x = 1, 2, 3 and y = 2x exactly."),
        DatasetInfo(
            "plane",
            "regression",
            2,
            1,
            200,
            2000,
            False,
            "y = 2*x1 - x2 on x uniform in [-1, 1]^2; noise is the std of Gaussian noise on y.",
        ),
        DatasetInfo(
            "sine",
            "regression",
            1,
            1,
            200,
            2000,
            False,
            "y = sin(x) on x uniform in [-pi, pi]; noise is the std of Gaussian noise on y.",
        ),
        DatasetInfo(
            "digits",
            "multiclass",
            64,
            10,
            500,
            1797,
            False,
            "sklearn's 8x8 handwritten digits: 64 pixel inputs divided by 16 into [0, 1], "
            "10 one-hot classes; n images drawn by a seeded permutation; noise is ignored.",
        ),
    ]
}


def _lookup(name: str) -> DatasetInfo:
    """Return the registry entry for name, or raise naming the choices."""
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown name {name!r} (choose from {', '.join(DATASETS)})")
    return DATASETS[name]


def _check_n(info: DatasetInfo, n: int | None) -> int:
    """Return the number of samples to draw: the default, the fixed count, or a checked n."""
    if info.fixed or n is None:
        return info.default_n
    if isinstance(n, bool) or not isinstance(n, Integral) or not MIN_N <= n <= info.max_n:
        raise ValueError(f"n: must be an integer between {MIN_N} and {info.max_n} for {info.name!r}")
    return int(n)


def _check_noise(noise: float) -> float:
    """Return noise as a float in [0, MAX_NOISE], or raise."""
    if isinstance(noise, bool) or not isinstance(noise, Real) or not 0.0 <= noise <= MAX_NOISE:
        raise ValueError(f"noise: must be a number between 0 and {MAX_NOISE:g}")
    return float(noise)


def _check_seed(seed: int) -> int:
    """Return seed as a non-negative int, or raise."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError("seed: must be a non-negative integer")
    return int(seed)


def _n_test(info: DatasetInfo, n: int, test_fraction: float) -> int:
    """Return round(test_fraction * n), the number of test rows, checking it leaves training rows."""
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, Real)
        or not (0.0 <= test_fraction < MAX_TEST_FRACTION)
    ):
        raise ValueError(f"test_fraction: must be in [0, {MAX_TEST_FRACTION:g})")
    if info.fixed and test_fraction > 0:
        raise ValueError(f"test_fraction: {info.name} has only {info.default_n} fixed points; use 0")
    n_test = round(test_fraction * n)
    if n_test >= n:
        raise ValueError(f"test_fraction: {test_fraction:g} of n = {n} leaves no training rows")
    return n_test


def _targets(info: DatasetInfo, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (Y, labels): a 0/1 column, one-hot rows, or a value column with zero labels."""
    if info.task == "regression":
        return target.reshape(-1, 1).astype(np.float64), np.zeros(len(target), dtype=np.int64)
    labels = np.asarray(target, dtype=np.int64)
    if info.task == "binary":
        return labels.reshape(-1, 1).astype(np.float64), labels
    return np.eye(info.n_outputs)[labels], labels


def _split(info: DatasetInfo, X: np.ndarray, Y: np.ndarray, labels: np.ndarray, n_test: int) -> Dataset:
    """Put the last n_test rows in test and the rest in train."""
    m = len(X) - n_test
    X = np.asarray(X, dtype=np.float64)
    return Dataset(info, X[:m], Y[:m], X[m:], Y[m:], labels[:m], labels[m:])


def make_dataset(
    name: str, n: int | None = None, noise: float = 0.1, seed: int = 0, test_fraction: float = 0.0
) -> Dataset:
    """Generate dataset name from (n, noise, seed), shuffle it and hold out the last rows as test."""
    info = _lookup(name)
    n = _check_n(info, n)
    noise = _check_noise(noise)
    rng = np.random.default_rng(_check_seed(seed))
    n_test = _n_test(info, n, test_fraction)
    X, target = _GENERATORS[name](n, noise, rng)
    Y, labels = _targets(info, target)
    order = np.arange(n) if info.fixed else rng.permutation(n)  # fixed points keep the notes' order
    return _split(info, X[order], Y[order], labels[order], n_test)


def _as_matrix(field: str, values: object) -> np.ndarray:
    """Return values as a new 2-D finite float64 array with at least one row and column, or raise."""
    try:
        A = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: must be numbers, with every row the same length") from None
    if A.ndim != 2:
        raise ValueError(f"{field}: must be 2-D (one row per sample), got shape {A.shape}")
    if A.size == 0:
        raise ValueError(f"{field}: is empty, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{field}: contains NaN or infinite values")
    return A


def _infer_task(Y: np.ndarray) -> str:
    """Binary for one 0/1 column, multiclass for one-hot rows, regression otherwise."""
    is_01 = bool(np.all((Y == 0) | (Y == 1)))
    if Y.shape[1] == 1 and is_01:
        return "binary"
    if Y.shape[1] > 1 and is_01 and np.all(Y.sum(axis=1) == 1):
        return "multiclass"
    return "regression"


def make_custom(X: object, Y: object, test_fraction: float = 0.0, seed: int = 0) -> Dataset:
    """Wrap user arrays as a fixed dataset, inferring the task from Y.

    With test_fraction > 0 the rows are shuffled by a permutation seeded with `seed` and the last
    round(test_fraction * m) held out, as for the named datasets; with 0 they stay in order, all training.
    """
    X, Y = _as_matrix("X", X), _as_matrix("Y", Y)
    if len(X) != len(Y):
        raise ValueError(f"Y: has {len(Y)} rows but X has {len(X)}; need one target row per sample")
    task = _infer_task(Y)
    m, n_inputs = X.shape
    info = DatasetInfo(
        "custom", task, n_inputs, Y.shape[1], m, m, True, f"User data: {m} samples, {n_inputs} inputs, {task} targets."
    )
    labels = {"binary": Y[:, 0], "multiclass": Y.argmax(axis=1)}.get(task, np.zeros(m)).astype(np.int64)
    n_test = _n_test(replace(info, fixed=False), m, test_fraction)  # fixed points, but any split of them
    if n_test:
        order = np.random.default_rng(_check_seed(seed)).permutation(m)
        X, Y, labels = X[order], Y[order], labels[order]
    return _split(info, X, Y, labels, n_test)


_FEATURE_FUNCS: dict[str, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    # name: (number of input columns it needs, the feature as a function of X)
    "x1": (1, lambda X: X[:, 0]),
    "x2": (2, lambda X: X[:, 1]),
    "x1^2": (1, lambda X: X[:, 0] ** 2),
    "x2^2": (2, lambda X: X[:, 1] ** 2),
    "x1x2": (2, lambda X: X[:, 0] * X[:, 1]),
    "sin_x1": (1, lambda X: np.sin(X[:, 0])),
    "sin_x2": (2, lambda X: np.sin(X[:, 1])),
}
FEATURES = tuple(_FEATURE_FUNCS)


def add_features(X: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Return the playground input features of X (x1, x2, x1^2, ...) as columns in the order given."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X: must be 2-D (one row per sample), got shape {X.shape}")
    if isinstance(features, str) or len(features) == 0:
        raise ValueError(f"features: give a non-empty list of names from {', '.join(FEATURES)}")
    for name in features:
        if name not in _FEATURE_FUNCS:
            raise ValueError(f"features: unknown feature {name!r} (choose from {', '.join(FEATURES)})")
        if _FEATURE_FUNCS[name][0] > X.shape[1]:
            needs = _FEATURE_FUNCS[name][0]
            raise ValueError(f"features: {name!r} needs {needs} input column(s), X has {X.shape[1]}")
    if len(set(features)) != len(features):
        raise ValueError("features: each feature may be listed only once")
    return np.column_stack([_FEATURE_FUNCS[name][1](X) for name in features])
