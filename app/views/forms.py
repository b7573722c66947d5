"""Form fields built from the engine's registries (names, defaults, bounds in one place) and read back.

`optimizer_form` feeds the `optimizer_fields` macro of templates/components.html (used by /step's settings and
/race's contestant editor); `optimizer_from_form` turns the submitted fields into the API's optimizer dict, which
`engine.spec.optimizer_from_dict` validates.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.optimizers import HYPER_BOUNDS, OPTIMIZERS
from engine.schedules import SCHEDULES

# The bounds engine.schedules.Schedule.params enforces: (min, max, integer).
SCHEDULE_BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    "gamma": (0.0, 1.0, False),
    "step_size": (1, None, True),
    "T": (1, None, True),
    "decay": (0.0, None, False),
    "lr_min": (0.0, None, False),
}

HYPER_LABELS = {
    "lr": "η (lr)",
    "momentum": "μ (momentum)",
    "beta": "β",
    "beta1": "β₁",
    "beta2": "β₂",
    "eps": "ε",
    "weight_decay": "weight decay λ",
    "lr_decay": "lr decay",
}


def input_text(value) -> str:
    """A number as an <input type=number> value: the shortest text that reads back as the same float."""
    if value is None:
        return ""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _field(key: str, value, default, low, high, label: str, integer: bool = False) -> dict:
    return {
        "key": key,
        "label": label,
        "value": input_text(value),
        "default": input_text(default),
        "min": None if low is None else input_text(low),
        "max": None if high is None else input_text(high),
        "step": 1 if integer else "any",
    }


def optimizer_form(opt: Mapping | None = None, name: str | None = None) -> dict:
    """What the optimizer macro renders: the chosen name, every optimizer's name, its hyperparameters (values
    from `opt` when it is the same optimizer, else the defaults) with their bounds, batch size and schedule.

    `opt` has the API's shape: {"name", <hyperparameters>, "batch_size", "schedule": {"name", <params>}}.
    `name` switches the optimizer (the fragment route after a change of the select): its defaults replace the
    hyperparameters, while batch size and schedule are kept.
    """
    opt = dict(opt or {})
    chosen = name or opt.get("name") or "sgd"
    if chosen not in OPTIMIZERS:
        raise ValueError(f"optimizer.name: unknown '{chosen}' (choose from {', '.join(OPTIMIZERS)})")
    optimizer = OPTIMIZERS[chosen]
    same = opt.get("name", chosen) == chosen
    hyper = [
        _field(
            key,
            opt.get(key, default) if same else default,
            default,
            *HYPER_BOUNDS.get(key, (None, None))[:2],
            HYPER_LABELS.get(key, key),
        )
        for key, default in optimizer.defaults.items()
    ]
    sched = dict(opt.get("schedule") or {})
    sched_name = sched.get("name") or "constant"
    if sched_name not in SCHEDULES:
        raise ValueError(f"schedule.name: unknown '{sched_name}' (choose from {', '.join(SCHEDULES)})")
    sched_params = [
        _field(
            key,
            sched.get(key, default),
            default,
            SCHEDULE_BOUNDS[key][0],
            SCHEDULE_BOUNDS[key][1],
            key,
            SCHEDULE_BOUNDS[key][2],
        )
        for key, default in SCHEDULES[sched_name].defaults.items()
    ]
    return {
        "name": chosen,
        "names": list(OPTIMIZERS),
        "matches": optimizer.matches,
        "hyper": hyper,
        "batch_size": opt.get("batch_size"),
        "schedule": {"name": sched_name, "names": list(SCHEDULES), "params": sched_params},
    }


def optimizer_from_form(values: Mapping, prefix: str = "") -> dict:
    """The fields of one `optimizer_fields(prefix=...)` back to the API's optimizer dict.

    Blank hyperparameters take the defaults; a blank batch size is the full batch. Text that is not a number
    raises ValueError naming the field ("optimizer.lr: ..."), as the engine does.
    """

    def get(key: str) -> str:
        v = values.get(prefix + key)
        return "" if v is None else str(v).strip()

    name = get("optimizer") or "sgd"
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name: unknown '{name}' (choose from {', '.join(OPTIMIZERS)})")
    out: dict = {"name": name}
    for key in OPTIMIZERS[name].defaults:
        text = get("h_" + key)
        if text:
            out[key] = _number(text, f"optimizer.{key}")
    batch = get("batch_size")
    out["batch_size"] = None if batch == "" else _integer(batch, "optimizer.batch_size")
    sched_name = get("schedule") or "constant"
    if sched_name not in SCHEDULES:
        raise ValueError(f"schedule.name: unknown '{sched_name}' (choose from {', '.join(SCHEDULES)})")
    schedule: dict = {"name": sched_name}
    for key in SCHEDULES[sched_name].defaults:
        text = get("s_" + key)
        if text:
            schedule[key] = _number(text, f"schedule.{key}")
    out["schedule"] = schedule
    return out


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{field}: '{text[:40]}' is not a number") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _integer(text: str, field: str) -> int:
    value = _number(text, field)
    if not float(value).is_integer():
        raise ValueError(f"{field}: must be a whole number")
    return int(value)
