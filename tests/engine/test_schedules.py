"""Every learning-rate schedule against its formula for t = 0..300, and its parameter checks."""

import math

import numpy as np
import pytest

from engine.schedules import SCHEDULES, learning_rates
from engine.spec import schedule_from_dict

T_MAX = 300


def formula(name, t, lr, p):
    """lr_t as note 003 and the issue write it, one t at a time in plain Python."""
    if name == "constant":
        return lr
    if name == "step":
        return lr * p["gamma"] ** math.floor(t / p["step_size"])
    if name == "exponential":
        return lr * math.exp(-p["decay"] * t)
    if name == "cosine":
        if t > p["T"]:
            return p["lr_min"]  # held at lr_min once the half period is over
        return p["lr_min"] + 0.5 * (lr - p["lr_min"]) * (1 + math.cos(math.pi * t / p["T"]))
    raise AssertionError(f"no formula for {name}")


SETTINGS = {
    "constant": [{}],
    "step": [{}, {"gamma": 0.1, "step_size": 30}, {"gamma": 0.9, "step_size": 1}, {"gamma": 1.0, "step_size": 7}],
    "exponential": [{}, {"decay": 0.0}, {"decay": 0.05}, {"decay": 1.0}],
    "cosine": [{}, {"lr_min": 0.001, "T": 50}, {"lr_min": 0.0, "T": 300}, {"lr_min": 0.01, "T": 1}],
}
CASES = [(name, given, lr) for name in SCHEDULES for given in SETTINGS[name] for lr in (0.1, 0.7)]


def test_every_schedule_has_a_formula():
    assert set(SETTINGS) == set(SCHEDULES)


@pytest.mark.parametrize("name,given,lr", CASES)
def test_schedule_follows_its_formula(name, given, lr):
    params = SCHEDULES[name].params(given)
    expected = np.array([formula(name, t, lr, params) for t in range(T_MAX + 1)])
    actual = learning_rates(name, given, lr, T_MAX + 1)
    assert actual.shape == (T_MAX + 1,)
    np.testing.assert_allclose(actual, expected, rtol=1e-14, atol=0)
    assert actual[0] == pytest.approx(lr, rel=1e-15)  # every schedule starts at lr


def test_schedule_values_at_landmarks():
    """A few values worked by hand, so the formulas above are themselves checked."""
    step = learning_rates("step", {"gamma": 0.5, "step_size": 100}, 0.2, 301)
    assert (step[99], step[100], step[199], step[200], step[300]) == (0.2, 0.1, 0.1, 0.05, 0.025)
    cosine = learning_rates("cosine", {"lr_min": 0.01, "T": 100}, 0.11, 301)
    assert cosine[50] == pytest.approx(0.06, rel=1e-14)  # halfway between lr and lr_min
    assert cosine[100] == pytest.approx(0.01, rel=1e-14)
    assert np.all(cosine[100:] == cosine[100]) and np.all(np.diff(cosine[:101]) < 0)
    exponential = learning_rates("exponential", {"decay": 0.01}, 1.0, 301)
    assert exponential[100] == pytest.approx(math.exp(-1), rel=1e-15)


@pytest.mark.parametrize("name", SCHEDULES)
def test_defaults_resolve_through_the_spec(name):
    spec = schedule_from_dict({"name": name})
    assert spec.name == name
    assert dict(spec.params) == SCHEDULES[name].defaults


BAD = [
    ("step", {"gamma": 0.0}, "gamma"),
    ("step", {"gamma": 1.5}, "gamma"),
    ("step", {"gamma": -0.5}, "gamma"),
    ("step", {"step_size": 0}, "step_size"),
    ("step", {"step_size": 2.5}, "step_size"),
    ("step", {"step_size": -3}, "step_size"),
    ("exponential", {"decay": -0.1}, "decay"),
    ("cosine", {"lr_min": -0.001}, "lr_min"),
    ("cosine", {"T": 0}, "T"),
    ("cosine", {"T": 10.5}, "T"),
    ("cosine", {"T": float("nan")}, "T"),
    ("exponential", {"decay": float("inf")}, "decay"),
    ("step", {"gamma": "0.5"}, "gamma"),
    ("step", {"gamma": True}, "gamma"),
    ("cosine", {"T": None}, "T"),
    ("constant", {"gamma": 0.5}, "gamma"),
    ("cosine", {"decay": 0.1}, "decay"),
    ("step", {"T": 10}, "T"),
]


@pytest.mark.parametrize("name,given,field", BAD)
def test_bad_parameters_are_named(name, given, field):
    with pytest.raises(ValueError, match=rf"^schedule\.{field}:"):
        learning_rates(name, given, 0.1, 10)
    with pytest.raises(ValueError, match=rf"^schedule\.{field}:"):
        schedule_from_dict({"name": name, **given})


@pytest.mark.parametrize("name", ["linear", "", "Cosine"])
def test_unknown_schedule_is_named(name):
    with pytest.raises(ValueError, match=r"^schedule\.name:"):
        learning_rates(name, {}, 0.1, 10)
    with pytest.raises(ValueError, match=r"^schedule\.name:"):
        schedule_from_dict({"name": name})
