"""Ready experiments from the course notes and classic teaching problems, in the API's spec form."""

from .activations import sigmoid

# Note 002 gives z_h = [0.1, 0.3] and z_o = 0.2 as "example values" without the weights behind them.
# These weights produce exactly those values for x = [0.5, 0.8]: W1 x = [0.05 + 0.05, 0.1 + 0.2], and
# b2 = 0.2 - w_o . sigma(z_h) makes z_o = 0.2 with w_o = [0.4, 0.6] as printed.
NOTES_W1 = [[0.1, 0.0625], [0.2, 0.25]]
NOTES_W2 = [[0.4, 0.6]]
NOTES_B2 = 0.2 - 0.4 * float(sigmoid(0.1)) - 0.6 * float(sigmoid(0.3))

PRESETS = [
    {
        "id": "notes-2-2-1",
        "title": "The notes' worked example (2-2-1, sigmoid)",
        "description": "Note 002: x = [0.5, 0.8], y = 1, z_h = [0.1, 0.3], z_o = 0.2, w_o = [0.4, 0.6], "
        "L = 1/2 (a - y)^2.",
        "steps": 20,
        "spec": {
            "network": {
                "layers": [2, 2, 1],
                "activations": ["sigmoid", "sigmoid"],
                "loss": "half_mse",
                "weights": [NOTES_W1, NOTES_W2],
                "biases": [[0.0, 0.0], [NOTES_B2]],
            },
            "data": {"X": [[0.5, 0.8]], "Y": [[1.0]]},
            "optimizer": {"name": "sgd", "lr": 0.5},
        },
    },
    {
        "id": "xor-2-4-1",
        "title": "XOR (2-4-1, sigmoid, binary cross-entropy)",
        "description": "The 4 points of note 002's NumPy example; dZ = A - Y (note 003).",
        "steps": 1000,
        "spec": {
            "network": {
                "layers": [2, 4, 1],
                "activations": ["sigmoid", "sigmoid"],
                "loss": "bce",
                "init": "xavier",
                "seed": 1,
            },
            "data": {"dataset": "xor"},
            "optimizer": {"name": "sgd", "lr": 2.0},
        },
    },
    {
        "id": "linear-y-2x",
        "title": "y = 2x by gradient descent (note 000)",
        "description": "One weight, one bias, MSE, w and b from 0, lr 0.01, 1000 epochs.",
        "steps": 1000,
        "spec": {
            "network": {
                "layers": [1, 1],
                "activations": ["linear"],
                "loss": "mse",
                "weights": [[[0.0]]],
                "biases": [[0.0]],
            },
            "data": {"dataset": "linear"},
            "optimizer": {"name": "sgd", "lr": 0.01},
        },
    },
    {
        "id": "spiral-2-8-8-1",
        "title": "Spiral classifier (2-8-8-1, tanh)",
        "description": "Two interleaved spirals, 200 points; tanh hidden layers with He initialisation.",
        "steps": 1000,
        "spec": {
            "network": {
                "layers": [2, 8, 8, 1],
                "activations": ["tanh", "tanh", "sigmoid"],
                "loss": "bce",
                "init": "he",
                "seed": 0,
            },
            "data": {"dataset": "spiral", "n": 200, "noise": 0.05, "seed": 0},
            "optimizer": {"name": "adam", "lr": 0.01},
        },
    },
]

PRESETS_BY_ID = {p["id"]: p for p in PRESETS}
