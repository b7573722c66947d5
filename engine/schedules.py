"""Learning-rate schedules: lr_t for optimizer step t = 0, 1, 2, ... (note 003)."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Schedule:
    """lr_t as a vectorised function of t and the base lr, with its defaults and equation."""

    name: str
    rate: Callable
    defaults: dict = field(default_factory=dict)
    equation: str = ""

    def params(self, given: dict) -> dict:
        """Defaults overridden by `given`, validated."""
        unknown = set(given) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"schedule.{sorted(unknown)[0]}: not a parameter of {self.name} "
                f"(it takes {', '.join(self.defaults) or 'none'})"
            )
        merged = {**self.defaults, **given}
        for key, value in merged.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"schedule.{key}: must be a finite number")
            if key in ("step_size", "T") and (value < 1 or int(value) != value):
                raise ValueError(f"schedule.{key}: must be a whole number >= 1")
            if key in ("gamma",) and not 0 < value <= 1:
                raise ValueError(f"schedule.{key}: must be in (0, 1]")
            if key in ("decay", "lr_min") and value < 0:
                raise ValueError(f"schedule.{key}: must be >= 0")
        return merged


def constant(t, lr):
    """lr_t = lr."""
    return np.full(np.shape(t), float(lr))


def step(t, lr, gamma, step_size):
    """lr_t = lr gamma^floor(t / step_size)."""
    return lr * gamma ** np.floor(np.asarray(t) / step_size)


def exponential(t, lr, decay):
    """lr_t = lr exp(-decay t)."""
    return lr * np.exp(-decay * np.asarray(t, dtype=np.float64))


def cosine(t, lr, lr_min, T):
    """lr_t = lr_min + 1/2 (lr - lr_min)(1 + cos(pi t / T)), held at lr_min once t passes T."""
    t = np.minimum(np.asarray(t, dtype=np.float64), T)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + np.cos(np.pi * t / T))


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("constant", constant, {}, r"\eta_t = \eta_0"),
        Schedule("step", step, {"gamma": 0.5, "step_size": 100}, r"\eta_t = \eta_0\, \gamma^{\lfloor t / k \rfloor}"),
        Schedule("exponential", exponential, {"decay": 0.01}, r"\eta_t = \eta_0\, e^{-\lambda t}"),
        Schedule(
            "cosine",
            cosine,
            {"lr_min": 0.0, "T": 100},
            r"\eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})\left(1 + \cos\frac{t\pi}{T}\right)",
        ),
    )
}


def learning_rates(name: str, params: dict, lr: float, steps: int) -> np.ndarray:
    """lr_t for t = 0 .. steps-1 in one array."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule.name: unknown '{name}' (choose from {', '.join(SCHEDULES)})")
    schedule = SCHEDULES[name]
    return schedule.rate(np.arange(steps), lr, **schedule.params(params))
