"""engine.export: the JSON dict, the .npz round trip and the PyTorch snippet hold the exact parameters."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from engine import export
from engine.backprop import predict
from engine.datasets import FEATURES, add_features
from engine.network import Network, init_params
from engine.spec import experiment_from_dict


def _net(layers=(2, 5, 3, 3), acts=("tanh", "leaky_relu", "softmax"), loss="cross_entropy"):
    net = Network(layers, acts, loss)
    params = init_params(net, "xavier", 3)
    # nonzero biases, so a snippet that dropped them would fail
    rng = np.random.default_rng(1)
    return net, type(params)(params.W, tuple(b + rng.normal(size=b.shape) for b in params.b))


def test_dict_is_the_api_network_shape():
    net, params = _net()
    d = export.to_dict(net, params)
    assert d["layers"] == [2, 5, 3, 3] and d["activations"] == ["tanh", "leaky_relu", "softmax"]
    assert np.array_equal(np.array(d["weights"][1]), params.W[1]) and np.array_equal(d["biases"][2], params.b[2])
    spec = experiment_from_dict(
        {
            "network": {k: d[k] for k in ("layers", "activations", "loss", "weights", "biases")},
            "data": {"X": [[0, 0]], "Y": [[1, 0, 0]]},
        }
    )
    assert spec.network.weights[0] == tuple(tuple(r) for r in params.W[0].tolist())


def test_npz_loads_with_numpy_without_pickle_and_round_trips():
    net, params = _net()
    data = export.to_npz(net, params, ("x1", "x2", "x1x2"))
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        assert f["W1"].shape == (5, 2) and f["b3"].shape == (3,)
        assert list(f["activations"]) == ["tanh", "leaky_relu", "softmax"]
        assert np.array_equal(f["W2"], params.W[1])
    net2, params2, features = export.from_npz(data)
    assert net2 == net and features == ("x1", "x2", "x1x2")
    assert all(np.array_equal(a, b) for a, b in zip(params.W + params.b, params2.W + params2.b))


def test_snippet_is_valid_python_with_exact_weights():
    net, params = _net()
    code = export.pytorch_snippet(net, params, check_inputs=[[0.1, -0.2], [0.5, 0.7]])
    compile(code, "snippet.py", "exec")
    assert "nn.Softmax(dim=1)" in code and "nn.LeakyReLU(0.01)" in code and "nn.CrossEntropyLoss()" in code
    assert repr(float(params.W[0][0, 0])) in code and repr(float(params.b[1][2])) in code


def test_every_feature_has_a_torch_form():
    assert set(export._TORCH_FEATURES) == set(FEATURES)


def test_trained_recomputes_theta_t_and_rejects_bad_steps():
    spec = experiment_from_dict({"network": {"layers": [2, 3, 1]}, "data": {"dataset": "xor"}})
    net, p0 = export.trained(spec, 0)
    _, p5 = export.trained(spec, 5)
    assert net.layers == (2, 3, 1) and not np.array_equal(p0.W[0], p5.W[0])
    with pytest.raises(ValueError, match="step"):
        export.trained(spec, -1)
    with pytest.raises(ValueError, match="contestant"):
        export.trained(spec, 1, k=3)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (never a dependency)")
@pytest.mark.parametrize("features", [None, ("x1", "x2", "x1^2", "sin_x2", "x1x2")])
def test_snippet_runs_in_pytorch_and_agrees_to_1e_12(tmp_path, features):
    n_in = len(features) if features else 2
    net, params = _net(layers=(n_in, 6, 4, 3))
    X = np.random.default_rng(0).uniform(-1, 1, size=(7, 2))
    path = tmp_path / "snippet.py"
    path.write_text(export.pytorch_snippet(net, params, features, check_inputs=X))
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    ns = {}
    exec(path.read_text().split("if __name__")[0], ns)  # the model itself, outputs compared here too
    import torch

    with torch.no_grad():
        got = ns["predict"](torch.tensor(X)).numpy()
    want = predict(net, params, add_features(X, features) if features else X)
    assert np.max(np.abs(got - want)) <= 1e-12


# A few dozen lines of NumPy standing in for the part of torch the snippet uses, so the snippet runs in every test
# run (torch itself is not installed here): it checks the program's structure (layer order, W^l's orientation,
# biases, the features) end to end, with the snippet's own 1e-12 assertion.
FAKE_TORCH = """
import contextlib
import numpy as np
from scipy.special import expit, softmax

float64 = np.float64


def set_default_dtype(dtype):
    pass


class Tensor:
    def __init__(self, a):
        self.a = np.asarray(a, dtype=np.float64)

    def __getitem__(self, key):
        return Tensor(self.a[key])

    def __mul__(self, other):
        return Tensor(self.a * other.a)

    def __sub__(self, other):
        return Tensor(self.a - other.a)

    def __pow__(self, k):
        return Tensor(self.a ** k)

    def abs(self):
        return Tensor(np.abs(self.a))

    def max(self):
        return Tensor(self.a.max())

    def item(self):
        return float(self.a)

    def copy_(self, other):
        assert other.a.shape == self.a.shape, (other.a.shape, self.a.shape)
        self.a[...] = other.a

    def numpy(self):
        return self.a


def tensor(data):
    return Tensor(data)


def stack(tensors, dim):
    return Tensor(np.stack([t.a for t in tensors], axis=dim))


def sin(t):
    return Tensor(np.sin(t.a))


def no_grad():
    return contextlib.nullcontext()
"""

FAKE_NN = """
import numpy as np
from scipy.special import expit, softmax
from torch import Tensor


class Linear:
    def __init__(self, n_in, n_out):
        self.weight, self.bias = Tensor(np.zeros((n_out, n_in))), Tensor(np.zeros(n_out))

    def __call__(self, x):
        return Tensor(x.a @ self.weight.a.T + self.bias.a)


class _Elementwise:
    f = None

    def __call__(self, x):
        return Tensor(type(self).f(x.a))


class Sigmoid(_Elementwise):
    f = staticmethod(expit)


class Tanh(_Elementwise):
    f = staticmethod(np.tanh)


class ReLU(_Elementwise):
    f = staticmethod(lambda z: np.maximum(z, 0.0))


class Identity(_Elementwise):
    f = staticmethod(lambda z: z)


class LeakyReLU:
    def __init__(self, slope):
        self.slope = slope

    def __call__(self, x):
        return Tensor(np.where(x.a > 0, x.a, self.slope * x.a))


class Softmax:
    def __init__(self, dim):
        self.dim = dim

    def __call__(self, x):
        return Tensor(softmax(x.a, axis=self.dim))


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def __getitem__(self, i):
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def MSELoss():
    return None


def BCEWithLogitsLoss():
    return None


def CrossEntropyLoss():
    return None
"""


@pytest.mark.parametrize(
    "layers, acts, loss, features",
    [
        ((2, 5, 3, 3), ("tanh", "leaky_relu", "softmax"), "cross_entropy", None),
        ((5, 4, 1), ("relu", "sigmoid"), "bce", ("x1", "x2", "x1^2", "sin_x2", "x1x2")),
        ((1, 3, 1), ("sigmoid", "linear"), "half_mse", ("sin_x1",)),
    ],
)
def test_snippet_runs_against_a_numpy_stand_in_for_torch(tmp_path, layers, acts, loss, features):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(FAKE_TORCH)
    (tmp_path / "torch" / "nn.py").write_text(FAKE_NN)
    net, params = _net(layers, acts, loss)
    X = np.random.default_rng(2).uniform(-1, 1, size=(6, 2 if layers[0] != 1 or features else 1))
    path = tmp_path / "snippet.py"
    path.write_text(export.pytorch_snippet(net, params, features, check_inputs=X))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert "largest difference from backprop-viz" in run.stdout
    # and a wrong weight is caught by the snippet's own check
    broken = path.read_text().replace(
        "model[0].bias.copy_(torch.tensor([", "model[0].bias.copy_(torch.tensor([1.0 + ", 1
    )
    path.write_text(broken)
    assert subprocess.run([sys.executable, str(path)], capture_output=True, env=env, timeout=120).returncode != 0
