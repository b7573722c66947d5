"""backprop-viz engine: a float64 NumPy MLP that records every value of a training step.

The public API, for scripts and notebooks (the web app uses the same functions):

    import engine
    spec = engine.experiment_from_dict({"network": {...}, "data": {...}, "optimizer": {...}})
    history = engine.train(spec, steps=300)[0]        # losses, accuracy, norms per step: run an experiment
    record = engine.step_record(spec, t=10)           # step 10 in full: z, a, delta, dW, db, the update
    check = engine.check_experiment(spec, t=10)       # analytic vs central-difference gradients
    prep = engine.prepare(spec)                       # the network, data and theta_0 the spec builds
    surface = engine.parameter_grid(prep.net, prep.params0, prep.X, prep.Y, i=0, j=1, span_i=2, span_j=2)

The README's "Using the engine from Python" walks through it (tests/engine/test_public_api.py runs that example).
"""

from .activations import ACTIVATIONS
from .backprop import Backprop, LayerRecord, backprop, forward, objective, predict
from .datasets import DATASETS, Dataset, make_dataset
from .experiment import Prepared, Run, StepRecord, prepare, state_at, step_record, train, train_runs
from .export import from_npz, pytorch_snippet, to_dict, to_npz, trained
from .gradcheck import GradCheck, check_experiment, gradient_check
from .initializers import INITIALIZERS
from .losses import LOSSES
from .network import Network, Params, init_params
from .optimizers import OPTIMIZERS
from .presets import PRESETS
from .schedules import SCHEDULES
from .spec import Experiment, experiment_from_dict
from .surfaces import Surface, parameter_grid, project, random_directions, slice_grid
from .trainer import History

__all__ = [
    # specs: an experiment is a pure function of its spec
    "Experiment",
    "experiment_from_dict",
    "PRESETS",
    # run an experiment
    "prepare",
    "Prepared",
    "train",
    "train_runs",
    "Run",
    "History",
    "state_at",
    # trace a step
    "step_record",
    "StepRecord",
    "backprop",
    "Backprop",
    "LayerRecord",
    "forward",
    "predict",
    "objective",
    # gradient checking
    "check_experiment",
    "gradient_check",
    "GradCheck",
    # loss surfaces
    "parameter_grid",
    "slice_grid",
    "random_directions",
    "project",
    "Surface",
    # networks and data
    "Network",
    "Params",
    "init_params",
    "make_dataset",
    "Dataset",
    # taking a trained network out
    "trained",
    "to_dict",
    "to_npz",
    "from_npz",
    "pytorch_snippet",
    # registries by name
    "ACTIVATIONS",
    "LOSSES",
    "INITIALIZERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "DATASETS",
]
