"""Tests for engine.datasets: shapes, determinism, the notes' fixed points, splits and validation."""

import dataclasses

import numpy as np
import pytest

from engine.datasets import DATASETS, FEATURES, Dataset, add_features, make_custom, make_dataset

NAMES = list(DATASETS)
RANDOM = [name for name, info in DATASETS.items() if not info.fixed]
BINARY_RANDOM = [name for name in RANDOM if DATASETS[name].task == "binary"]
ARRAYS = ("X_train", "Y_train", "X_test", "Y_test", "labels_train", "labels_test")


def _test_fraction(name):
    """A test split for datasets that allow one, none for the fixed ones."""
    return 0.0 if DATASETS[name].fixed else 0.25


def _same(a: Dataset, b: Dataset) -> bool:
    """True when every array of the two datasets is identical."""
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ARRAYS)


def test_registry_names_and_features():
    assert set(DATASETS) == {
        "xor",
        "xor_cloud",
        "circles",
        "moons",
        "gaussians",
        "spiral",
        "spiral3",
        "gaussians3",
        "linear",
        "plane",
        "sine",
        "digits",
    }
    assert all(name == info.name for name, info in DATASETS.items())
    assert FEATURES == ("x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
    info = DATASETS[name]
    data = make_dataset(name, test_fraction=_test_fraction(name))
    m_test = round(_test_fraction(name) * info.default_n)
    m_train = info.default_n - m_test
    assert data.info is info
    assert data.X_train.shape == (m_train, info.n_inputs)
    assert data.Y_train.shape == (m_train, info.n_outputs)
    assert data.X_test.shape == (m_test, info.n_inputs)
    assert data.Y_test.shape == (m_test, info.n_outputs)
    assert data.labels_train.shape == (m_train,) and data.labels_test.shape == (m_test,)
    for field in ("X_train", "Y_train", "X_test", "Y_test"):
        assert getattr(data, field).dtype == np.float64, field
        assert np.all(np.isfinite(getattr(data, field))), field
    assert np.issubdtype(data.labels_train.dtype, np.integer)
    assert np.issubdtype(data.labels_test.dtype, np.integer)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_on_small_scales(name):
    X = make_dataset(name).X_train
    limit = np.pi if name == "sine" else 3.0
    assert np.abs(X).max() <= limit + 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_same_arguments_give_identical_arrays(name):
    args = dict(noise=0.2, seed=7, test_fraction=_test_fraction(name))
    assert _same(make_dataset(name, **args), make_dataset(name, **args))


@pytest.mark.parametrize("name", RANDOM)
def test_different_seed_gives_different_data(name):
    assert not _same(make_dataset(name, seed=1), make_dataset(name, seed=2))


@pytest.mark.parametrize("name", RANDOM)
def test_different_seed_draws_different_points_not_just_a_new_order(name):
    a, b = (np.sort(make_dataset(name, seed=s).X_train, axis=0) for s in (1, 2))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", [n for n in RANDOM if DATASETS[n].n_inputs == 2 and n != "xor_cloud"])
def test_two_input_sets_centred_on_origin(name):
    X = make_dataset(name, n=2000, noise=0.0).X_train
    assert np.allclose(X.mean(axis=0), 0.0, atol=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_global_numpy_random_state_untouched(name):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    make_dataset(name, seed=5)
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("name", NAMES)
def test_labels_agree_with_Y(name):
    info = DATASETS[name]
    data = make_dataset(name, test_fraction=_test_fraction(name))
    for Y, labels in [(data.Y_train, data.labels_train), (data.Y_test, data.labels_test)]:
        if info.task == "binary":
            assert set(np.unique(Y)) <= {0.0, 1.0}
            assert np.array_equal(labels, Y[:, 0].astype(int))
        elif info.task == "multiclass":
            assert set(np.unique(Y)) <= {0.0, 1.0}
            assert np.array_equal(Y.sum(axis=1), np.ones(len(Y)))
            assert np.array_equal(labels, Y.argmax(axis=1))
        else:
            assert np.array_equal(labels, np.zeros(len(Y), dtype=int))


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("n, test_fraction, m_test", [(100, 0.25, 25), (100, 0.0, 0), (10, 0.33, 3), (4, 0.1, 0)])
def test_split_sizes(name, n, test_fraction, m_test):
    data = make_dataset(name, n=n, test_fraction=test_fraction)
    assert len(data.X_train) == n - m_test and len(data.Y_train) == n - m_test
    assert len(data.X_test) == m_test and len(data.Y_test) == m_test


@pytest.mark.parametrize("name", RANDOM)
def test_split_only_partitions_the_same_points(name):
    whole = make_dataset(name, n=60, seed=3)
    split = make_dataset(name, n=60, seed=3, test_fraction=0.5)
    assert np.array_equal(np.vstack([split.X_train, split.X_test]), whole.X_train)
    assert np.array_equal(np.vstack([split.Y_train, split.Y_test]), whole.Y_train)


@pytest.mark.parametrize("name", [name for name in RANDOM if DATASETS[name].task != "regression"])
def test_rows_are_shuffled(name):
    labels = make_dataset(name, n=200).labels_train
    # some generators emit points grouped by class; after shuffling every quarter is mixed
    assert all(len(np.unique(quarter)) > 1 for quarter in np.split(labels, 4))


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_extreme_valid_arguments(name, noise):
    for n in (4, 5, DATASETS[name].max_n):
        data = make_dataset(name, n=n, noise=noise, seed=2**40)
        assert len(data.X_train) == n and np.all(np.isfinite(data.X_train))


@pytest.mark.parametrize("name", BINARY_RANDOM)
def test_binary_classes_roughly_balanced(name):
    labels = make_dataset(name, n=400, seed=11).labels_train
    assert 0.4 <= labels.mean() <= 0.6


def test_xor_is_note_002_exactly():
    data = make_dataset("xor", n=999, noise=0.9, seed=42)  # n, noise and seed are ignored
    assert np.array_equal(data.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert np.array_equal(data.Y_train, [[0], [1], [1], [0]])
    assert np.array_equal(data.labels_train, [0, 1, 1, 0])
    assert data.X_test.shape == (0, 2) and data.Y_test.shape == (0, 1)


def test_linear_is_note_000_exactly():
    data = make_dataset("linear", n=50, seed=9)
    assert np.array_equal(data.X_train, [[1.0], [2.0], [3.0]])
    assert np.array_equal(data.Y_train, [[2.0], [4.0], [6.0]])
    assert data.X_test.shape == (0, 1)


def test_noise_free_shapes_follow_their_rules():
    xor = make_dataset("xor_cloud", n=500, noise=0.0)
    X = xor.X_train
    assert np.array_equal(xor.labels_train, (X[:, 0] * X[:, 1] >= 0).astype(int))
    assert np.abs(X).min() >= 0.06 and np.abs(X).max() <= 1.06

    circles = make_dataset("circles", n=100, noise=0.0)
    radius = np.linalg.norm(circles.X_train, axis=1)
    assert np.allclose(radius, np.where(circles.labels_train == 1, 0.5, 1.0))

    spiral = make_dataset("spiral", n=100, noise=0.0)
    assert np.linalg.norm(spiral.X_train, axis=1).max() < 1.0

    plane = make_dataset("plane", n=50, noise=0.0)
    X = plane.X_train
    assert np.allclose(plane.Y_train[:, 0], 2 * X[:, 0] - X[:, 1])

    sine = make_dataset("sine", n=50, noise=0.0)
    assert np.allclose(sine.Y_train[:, 0], np.sin(sine.X_train[:, 0]))
    assert np.abs(sine.X_train).max() <= np.pi


def test_noise_adds_spread():
    clean = make_dataset("plane", n=200, noise=0.0, seed=1)
    noisy = make_dataset("plane", n=200, noise=0.5, seed=1)
    residual = noisy.Y_train[:, 0] - (2 * noisy.X_train[:, 0] - noisy.X_train[:, 1])
    assert 0.35 < residual.std() < 0.65
    assert not np.array_equal(clean.Y_train, noisy.Y_train)


def test_digits_scaled_and_full_size_allowed():
    data = make_dataset("digits", n=1797, test_fraction=0.2)
    X = np.vstack([data.X_train, data.X_test])
    assert X.min() == 0.0 and X.max() == 1.0
    assert len(np.unique(np.concatenate([data.labels_train, data.labels_test]))) == 10


def test_dataset_is_frozen():
    data = make_dataset("xor")
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.X_train = np.zeros((4, 2))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(name="foo"), "dataset:"),
        (dict(name="spiral", n=3), "n:"),
        (dict(name="spiral", n=2001), "n:"),
        (dict(name="digits", n=1798), "n:"),
        (dict(name="moons", n=100.0), "n:"),
        (dict(name="moons", n=True), "n:"),
        (dict(name="moons", noise=-0.1), "noise:"),
        (dict(name="moons", noise=1.5), "noise:"),
        (dict(name="moons", noise=float("nan")), "noise:"),
        (dict(name="moons", noise="0.1"), "noise:"),
        (dict(name="xor", noise=2.0), "noise:"),
        (dict(name="moons", seed=-1), "seed:"),
        (dict(name="moons", seed=1.5), "seed:"),
        (dict(name="moons", test_fraction=-0.1), "test_fraction:"),
        (dict(name="moons", test_fraction=0.9), "test_fraction:"),
        (dict(name="moons", test_fraction=float("nan")), "test_fraction:"),
        (dict(name="xor", test_fraction=0.25), "test_fraction:"),
        (dict(name="linear", test_fraction=0.1), "test_fraction:"),
        (dict(name="moons", n=4, test_fraction=0.89), "test_fraction:"),
    ],
)
def test_make_dataset_errors_name_their_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make_dataset(**kwargs)


def test_error_messages_are_specific():
    with pytest.raises(ValueError, match=r"unknown name 'foo' \(choose from xor, xor_cloud"):
        make_dataset("foo")
    with pytest.raises(ValueError, match=r"between 4 and 2000 for 'spiral'"):
        make_dataset("spiral", n=1)
    with pytest.raises(ValueError, match=r"xor has only 4 fixed points"):
        make_dataset("xor", test_fraction=0.5)


@pytest.mark.parametrize(
    "Y, task, labels",
    [
        ([[0], [1], [1], [0]], "binary", [0, 1, 1, 0]),
        ([[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]], "multiclass", [0, 2, 1, 2]),
        ([[0.5], [1], [2], [3]], "regression", [0, 0, 0, 0]),
        ([[0, 0], [1, 1], [0, 1], [1, 0]], "regression", [0, 0, 0, 0]),  # 0/1 but not one-hot
    ],
)
def test_make_custom_infers_task(Y, task, labels):
    X = [[0, 0], [0, 1], [1, 0], [1, 1]]
    data = make_custom(X, Y)
    assert data.info.task == task and data.info.fixed and data.info.name == "custom"
    assert data.info.n_inputs == 2 and data.info.n_outputs == len(Y[0])
    assert np.array_equal(data.X_train, X) and np.array_equal(data.Y_train, Y)
    assert data.X_train.dtype == np.float64 and data.Y_train.dtype == np.float64
    assert np.array_equal(data.labels_train, labels)
    assert data.X_test.shape == (0, 2) and data.Y_test.shape == (0, len(Y[0]))


def test_make_custom_copies_its_input():
    X = np.array([[1.0], [2.0], [3.0]])
    data = make_custom(X, 2 * X)
    X[0, 0] = 100.0
    assert data.X_train[0, 0] == 1.0


@pytest.mark.parametrize(
    "X, Y, field",
    [
        ([[1, 2], [3]], [[0], [1]], "X:"),
        ([["a", "b"]], [[0]], "X:"),
        ([1, 2, 3], [[0], [1], [2]], "X:"),
        ([], [[0]], "X:"),
        (np.zeros((2, 0)), [[0], [1]], "X:"),
        ([[1.0], [float("nan")]], [[0], [1]], "X:"),
        ([[1.0], [float("inf")]], [[0], [1]], "X:"),
        ([[1], [2]], [[0], [1, 2]], "Y:"),
        ([[1], [2]], [0, 1], "Y:"),
        ([[1], [2]], [[0], [float("-inf")]], "Y:"),
        ([[1], [2]], np.zeros((0, 1)), "Y:"),
        ([[1], [2], [3]], [[0], [1]], "Y:"),
    ],
)
def test_make_custom_errors_name_their_field(X, Y, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make_custom(X, Y)


def test_add_features_values_in_given_order():
    X = np.array([[1.0, 2.0], [-0.5, 3.0]])
    out = add_features(X, ["x1x2", "x1", "sin_x2", "x2^2", "x1^2", "x2", "sin_x1"])
    expected = np.array(
        [
            [2.0, 1.0, np.sin(2.0), 4.0, 1.0, 2.0, np.sin(1.0)],
            [-1.5, -0.5, np.sin(3.0), 9.0, 0.25, 3.0, np.sin(-0.5)],
        ]
    )
    assert out.shape == (2, 7) and out.dtype == np.float64
    assert np.allclose(out, expected, rtol=0, atol=1e-15)


def test_add_features_on_one_input():
    X = np.array([[2.0], [-1.0]])
    assert np.allclose(add_features(X, ["x1", "x1^2"]), [[2.0, 4.0], [-1.0, 1.0]])


@pytest.mark.parametrize(
    "X, features, field",
    [
        (np.zeros((3, 2)), ["x3"], "features:"),
        (np.zeros((3, 2)), [], "features:"),
        (np.zeros((3, 2)), "x1", "features:"),
        (np.zeros((3, 2)), ["x1", "x1"], "features:"),
        (np.zeros((3, 1)), ["x2"], "features:"),
        (np.zeros((3, 1)), ["x1x2"], "features:"),
        (np.zeros(3), ["x1"], "X:"),
    ],
)
def test_add_features_errors_name_their_field(X, features, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        add_features(X, features)
