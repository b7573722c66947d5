"""A network's parameters out of backprop-viz: a JSON-ready dict, NumPy .npz bytes, and a runnable PyTorch snippet.

Every exporter takes the `Network` (sizes, activations, loss) and its `Params` (W^l of shape (n_l, n_{l-1}), b^l),
plus the input features when the playground feeds engineered features (x1^2, sin x1, ...) rather than raw x.
`trained` gives both for an experiment's contestant k after t steps, recomputed from the spec.
"""

import io

import numpy as np

from .backprop import predict
from .datasets import add_features
from .network import Network, Params

FORMATS = ("json", "npz", "torch")

# How each activation is written in torch.nn; softmax over the units of a sample (samples are rows).
_TORCH_LAYERS = {
    "sigmoid": "nn.Sigmoid()",
    "tanh": "nn.Tanh()",
    "relu": "nn.ReLU()",
    "leaky_relu": "nn.LeakyReLU(0.01)",
    "linear": "nn.Identity()",
    "softmax": "nn.Softmax(dim=1)",
}

# The loss each network was trained with, in PyTorch terms (a comment and one line of code in the snippet).
_TORCH_LOSSES = {
    "mse": ("nn.MSELoss()", "on model(x) and y"),
    "half_mse": ("lambda a, y: 0.5 * ((a - y) ** 2).sum(dim=1).mean()", "the notes' 1/2 sum_k (a_k - y_k)^2"),
    "bce": ("nn.BCEWithLogitsLoss()", "on the logits model[:-1](x): the stable form of BCE on sigmoid outputs"),
    "cross_entropy": (
        "nn.CrossEntropyLoss()",
        "on the logits model[:-1](x) and class indices y.argmax(dim=1): log-softmax inside",
    ),
}

# The playground's input features written with torch on x = (x1, x2); the same as engine.datasets.add_features.
_TORCH_FEATURES = {
    "x1": "x[:, 0]",
    "x2": "x[:, 1]",
    "x1^2": "x[:, 0] ** 2",
    "x2^2": "x[:, 1] ** 2",
    "x1x2": "x[:, 0] * x[:, 1]",
    "sin_x1": "torch.sin(x[:, 0])",
    "sin_x2": "torch.sin(x[:, 1])",
}


def trained(spec, t: int, k: int = 0) -> tuple[Network, Params]:
    """Contestant k's network and its parameters theta_t after t training steps of the spec (an `Experiment`)."""
    from .experiment import prepare, state_at

    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError("step: must be a whole number >= 0")
    if not 0 <= k < len(spec.optimizers):
        raise ValueError(f"contestant: must be between 0 and {len(spec.optimizers) - 1}")
    net = prepare(spec).net
    return net, Params.from_flat(net, state_at(spec, t, k).theta[0])


def to_dict(net: Network, params: Params, features=None) -> dict:
    """{layers, activations, loss, features, weights: [W^l as lists of rows], biases: [b^l]}: the API's network shape.

    The dict is valid as the `network` of a spec (features aside), so an exported network can be loaded back.
    """
    return {
        "layers": list(net.layers),
        "activations": list(net.activations),
        "loss": net.loss,
        "features": None if features is None else list(features),
        "weights": [W.tolist() for W in params.W],
        "biases": [b.tolist() for b in params.b],
    }


def to_npz(net: Network, params: Params, features=None) -> bytes:
    """The bytes of an .npz file: W1..WL (n_l, n_{l-1}), b1..bL, layers, activations, loss, features.

    Names and strings are stored as unicode arrays, so `np.load(f)` reads it without allow_pickle.
    """
    arrays = {f"W{l + 1}": W for l, W in enumerate(params.W)}
    arrays.update({f"b{l + 1}": b for l, b in enumerate(params.b)})
    arrays["layers"] = np.array(net.layers, dtype=np.int64)
    arrays["activations"] = np.array(net.activations, dtype=str)
    arrays["loss"] = np.array(net.loss, dtype=str)
    arrays["features"] = np.array(list(features or ()), dtype=str)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def from_npz(data: bytes) -> tuple[Network, Params, tuple[str, ...] | None]:
    """The inverse of `to_npz`: (network, parameters, features or None)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        net = Network(tuple(int(n) for n in f["layers"]), tuple(str(a) for a in f["activations"]), str(f["loss"]))
        params = Params(
            tuple(f[f"W{l + 1}"].copy() for l in range(net.depth)),
            tuple(f[f"b{l + 1}"].copy() for l in range(net.depth)),
        )
        features = tuple(str(s) for s in f["features"]) or None
    return net, params, features


def _literal(array: np.ndarray) -> str:
    """A Python literal of the array whose floats round-trip exactly (repr of a float is its shortest exact form)."""
    if array.ndim == 1:
        return "[" + ", ".join(repr(float(v)) for v in array) + "]"
    return "[\n        " + ",\n        ".join(_literal(row) for row in array) + ",\n    ]"


def pytorch_snippet(net: Network, params: Params, features=None, check_inputs=None) -> str:
    """A runnable Python program that rebuilds the network as torch.nn.Sequential (float64) with these weights.

    With `check_inputs` (raw inputs, samples as rows; at most a few) the program also holds its outputs against
    backprop-viz's forward pass on them and fails if any differs by more than 1e-12.
    """
    lines = [
        '"""The network trained in backprop-viz, rebuilt in PyTorch (float64).',
        "",
        f"layers {list(net.layers)}, activations {list(net.activations)}, loss {net.loss}.",
        "nn.Linear keeps W^l as (n_l, n_{l-1}) like backprop-viz, so z^l = W^l a^{l-1} + b^l is model[2l](a).",
        '"""',
        "",
        "import torch",
        "from torch import nn",
        "",
        "torch.set_default_dtype(torch.float64)",
        "",
        "model = nn.Sequential(",
    ]
    for n_in, n_out, act in zip(net.layers[:-1], net.layers[1:], net.activations):
        lines += [f"    nn.Linear({n_in}, {n_out}),", f"    {_TORCH_LAYERS[act]},"]
    lines += [")", "", "with torch.no_grad():"]
    for l, (W, b) in enumerate(zip(params.W, params.b)):
        lines += [
            f"    model[{2 * l}].weight.copy_(torch.tensor({_literal(W)}))",
            f"    model[{2 * l}].bias.copy_(torch.tensor({_literal(b)}))",
        ]
    loss_code, loss_note = _TORCH_LOSSES[net.loss]
    lines += ["", f"loss_fn = {loss_code}  # {net.loss}: {loss_note}", ""]
    if features:
        body = ", ".join(_TORCH_FEATURES[name] for name in features)
        lines += [
            "",
            "def features(x):",
            f'    """The network\'s inputs {list(features)} from raw points x = (x1, x2), one row each."""',
            f"    return torch.stack([{body}], dim=1)",
            "",
            "",
            "def predict(x):",
            '    """Outputs a^L for raw points x (rows)."""',
            "    return model(features(x))",
        ]
    else:
        lines += ["", "def predict(x):", '    """Outputs a^L for inputs x (rows)."""', "    return model(x)"]
    if check_inputs is not None:
        X = np.asarray(check_inputs, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError("check_inputs: need at least one row of inputs")
        expected = predict(net, params, add_features(X, features) if features else X)
        lines += [
            "",
            "",
            'if __name__ == "__main__":',
            "    # backprop-viz's outputs on these inputs; PyTorch must agree to 1e-12.",
            f"    x = torch.tensor({_literal(X)})",
            f"    expected = torch.tensor({_literal(expected)})",
            "    with torch.no_grad():",
            "        got = predict(x)",
            "    difference = (got - expected).abs().max().item()",
            "    print(got)",
            '    print(f"largest difference from backprop-viz: {difference:.3g}")',
            '    assert difference <= 1e-12, "PyTorch disagrees with backprop-viz"',
        ]
    return "\n".join(lines) + "\n"
