"""The /step page (one training step, phase by phase) and the HTMX fragments of its settings panel."""

from fastapi import APIRouter, Query, Request

from engine.activations import ACTIVATIONS
from engine.datasets import DATASETS
from engine.initializers import INITIALIZERS
from engine.losses import LOSSES
from engine.optimizers import OPTIMIZERS
from engine.presets import NOTES_B2, NOTES_W1, PRESETS, PRESETS_BY_ID
from engine.spec import Experiment, experiment_from_dict

from ..templating import templates
from ..views.forms import optimizer_form, optimizer_from_form

router = APIRouter(include_in_schema=False)

DEFAULT_PRESET = "notes-2-2-1"
DEFAULT_HORIZON = 100  # timeline length for a spec that is not a preset

# Every number note 002 prints for its worked example, with where the same number lives in a step record
# (`layers.<l-1>.<field>` for the chosen sample, `upstream.<l-1>` for (W^{l+1})^T delta^{l+1}). The page
# compares them with the engine's values and says where the note slips (see the course notes' README).
NOTE_002 = [
    {
        "phase": "z1",
        "label": r"z_h",
        "printed": [0.1, 0.3],
        "digits": 1,
        "path": "layers.0.z",
        "remark": r"Note 002 calls $z_h = [0.1, 0.3]$ “example values” and gives no weights that produce them. "
        r"This preset uses $W_h = \begin{bmatrix}%g & %g\\ %g & %g\end{bmatrix}$, $b_h = 0$, which give "
        r"exactly these values for $x = [0.5, 0.8]$." % (*NOTES_W1[0], *NOTES_W1[1]),
    },
    {"phase": "a1", "label": r"a_h = \sigma(z_h)", "printed": [0.525, 0.574], "digits": 3, "path": "layers.0.a"},
    {
        "phase": "z2",
        "label": r"z_o",
        "printed": [0.2],
        "digits": 1,
        "path": "layers.1.z",
        "remark": r"The note prints no bias either: $z_o = 0.2$ with $w_o = [0.4, 0.6]$ needs "
        r"$b_o = 0.2 - w_o\, a_h = %.4f$." % NOTES_B2,
    },
    {"phase": "a2", "label": r"a_o = \sigma(z_o)", "printed": [0.549], "digits": 3, "path": "layers.1.a"},
    {
        "phase": "loss",
        "label": r"L = \tfrac12 (1 - a_o)^2",
        "printed": [0.102],
        "digits": 3,
        "path": "loss",
        "why": "the note squares the truncated 0.451",
    },
    {"phase": "delta2", "label": r"\sigma'(0.2)", "printed": [0.247], "digits": 3, "path": "layers.1.sigma_prime"},
    {"phase": "delta2", "label": r"\delta_o", "printed": [-0.111], "digits": 3, "path": "layers.1.delta"},
    {
        "phase": "delta1",
        "label": r"w_o^T \delta_o",
        "printed": [-0.044, -0.067],
        "digits": 3,
        "path": "upstream.0",
        "why": "the note multiplies the rounded −0.111",
    },
    {
        "phase": "delta1",
        "label": r"\sigma'(z_h)",
        "printed": [0.247, 0.241],
        "digits": 3,
        "path": "layers.0.sigma_prime",
    },
    {"phase": "delta1", "label": r"\delta_h", "printed": [-0.011, -0.016], "digits": 3, "path": "layers.0.delta"},
    {
        "phase": "grad2",
        "label": r"\partial L/\partial w_o",
        "printed": [-0.058, -0.064],
        "digits": 3,
        "path": "layers.1.dW",
    },
    {
        "phase": "grad1",
        "label": r"\partial L/\partial w_h",
        "printed": [-0.006, -0.009, -0.008, -0.013],
        "digits": 3,
        "path": "layers.0.dW",
    },
]


def preset_token(preset_id: str) -> str:
    return experiment_from_dict(PRESETS_BY_ID[preset_id]["spec"]).to_token()


def presets_info() -> list[dict]:
    """Each preset's id, title, timeline length and URL token (the toolbar's picker)."""
    out = []
    for p in PRESETS:
        spec = experiment_from_dict(p["spec"])
        out.append(
            {
                "id": p["id"],
                "title": p["title"],
                "description": p["description"],
                "steps": p["steps"],
                "token": spec.to_token(),
                "spec_id": spec.id,
            }
        )
    return out


def catalog() -> dict:
    """What the panel's dropdowns offer and the LaTeX the page writes equations with."""
    return {
        "activations": {
            a.name: {"latex": a.latex, "latex_grad": a.latex_grad, "output_only": a.output_only}
            for a in ACTIVATIONS.values()
        },
        "losses": {
            l.name: {"latex": l.latex, "latex_delta": l.latex_delta, "requires": l.requires} for l in LOSSES.values()
        },
        "initializers": list(INITIALIZERS),
        "optimizers": {
            o.name: {"defaults": o.defaults, "equations": list(o.equations), "matches": o.matches}
            for o in OPTIMIZERS.values()
        },
        "datasets": {
            d.name: {
                "n_inputs": d.n_inputs,
                "n_outputs": d.n_outputs,
                "default_n": d.default_n,
                "fixed": d.fixed,
                "task": d.task,
            }
            for d in DATASETS.values()
        },
    }


def resolve_spec(spec: str | None, preset: str | None) -> tuple[Experiment, str | None]:
    """The experiment a URL names (token, else preset, else the notes' example), and an error message if any."""
    if spec:
        try:
            return Experiment.from_token(spec), None
        except ValueError as exc:
            return experiment_from_dict(PRESETS_BY_ID[DEFAULT_PRESET]["spec"]), f"The link's spec is not valid ({exc})."
    if preset and preset in PRESETS_BY_ID:
        return experiment_from_dict(PRESETS_BY_ID[preset]["spec"]), None
    return experiment_from_dict(PRESETS_BY_ID[DEFAULT_PRESET]["spec"]), None


def panel_context(experiment: Experiment) -> dict:
    """The settings panel's fields, filled from an experiment."""
    d = experiment.to_dict()
    opt = d["optimizers"][0]
    hyper = {k: v for k, v in opt.items() if k not in ("name", "batch_size", "schedule")}
    return {
        "spec": d,
        "layers_text": ", ".join(str(n) for n in d["network"]["layers"]),
        "activations": d["network"]["activations"],
        "explicit_weights": d["network"]["weights"] is not None,
        "explicit_data": d["data"]["X"] is not None,
        "data_X": _rows(d["data"]["X"]),
        "data_Y": _rows(d["data"]["Y"]),
        "opt": opt,
        "hyper": hyper,
        "cat": catalog(),
    }


def _rows(rows) -> str:
    """Rows of numbers as editable text: one sample per line, values separated by commas."""
    if rows is None:
        return ""
    return "\n".join(", ".join(f"{v:g}" for v in r) for r in rows)


def horizon_of(experiment: Experiment) -> int:
    for p in PRESETS:
        if experiment_from_dict(p["spec"]).id == experiment.id:
            return p["steps"]
    return DEFAULT_HORIZON


@router.get("/step")
def step_page(request: Request, spec: str | None = None, preset: str | None = None, present: int = 0):
    """One training step of backpropagation, phase by phase, with the class's numbers in every equation."""
    experiment, error = resolve_spec(spec, preset)
    notes_spec = experiment_from_dict(PRESETS_BY_ID[DEFAULT_PRESET]["spec"])
    config = {
        "token": experiment.to_token(),
        "spec": experiment.to_dict(),
        "spec_id": experiment.id,
        "horizon": horizon_of(experiment),
        "default_horizon": DEFAULT_HORIZON,
        "presets": presets_info(),
        "catalog": catalog(),
        "notes": {"spec_id": notes_spec.id, "checks": NOTE_002},
    }
    ctx = {"page": "step", "present": bool(present), "config": config, "error": error, **panel_context(experiment)}
    return templates.TemplateResponse(request, "step.html", ctx)


@router.get("/step/panel")
def panel(request: Request, spec: str):
    """The settings panel filled from a spec token (after a preset pick, an edit or Apply)."""
    experiment = Experiment.from_token(spec)
    return templates.TemplateResponse(
        request, "step.html", {"page": "step", **panel_context(experiment)}, block_name="panel"
    )


@router.get("/step/panel/activations")
def panel_activations(request: Request, layers: str = "", act: list[str] = Query(default=[])):
    """One activation select per layer after the input, as many as the sizes field asks for."""
    count = min(10, max(1, len([s for s in layers.replace(";", ",").split(",") if s.strip()]) - 1))
    acts = [a for a in act if a in ACTIVATIONS] or ["sigmoid"]
    acts = (acts + [acts[-1]] * count)[:count]
    return templates.TemplateResponse(
        request, "step.html", {"activations": acts, "cat": catalog()}, block_name="activations"
    )


@router.get("/step/panel/hyper")
def panel_hyper(request: Request, optimizer: str = "sgd"):
    """The hyperparameter fields of one optimizer, at its defaults."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer.name: unknown '{optimizer}'")
    return templates.TemplateResponse(
        request, "step.html", {"hyper": dict(OPTIMIZERS[optimizer].defaults)}, block_name="hyper"
    )


@router.get("/components/optimizer-fields")
def optimizer_fields_fragment(request: Request):
    """The `optimizer_fields` macro re-rendered after its optimizer or schedule select changed.

    A new optimizer starts from its defaults; a new schedule from its defaults; batch size is kept.
    """
    q = request.query_params
    prefix = q.get("prefix", "")[:40]
    name = q.get(prefix + "optimizer") or "sgd"
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name: unknown '{name}' (choose from {', '.join(OPTIMIZERS)})")
    try:
        opt = optimizer_from_form(q, prefix)
    except ValueError:  # a half-typed field: keep what parses, defaults for the rest
        opt = {"name": name, "schedule": {"name": q.get(prefix + "schedule") or "constant"}}
    if q.get(prefix + "previous") != name:
        opt = {"name": name, "batch_size": opt.get("batch_size"), "schedule": opt.get("schedule")}
    if q.get(prefix + "previous_schedule") != (opt.get("schedule") or {}).get("name"):
        opt["schedule"] = {"name": (opt.get("schedule") or {}).get("name", "constant")}
    ctx = {
        "form": optimizer_form(opt),
        "prefix": prefix,
        "endpoint": request.url.path,
        "batch": q.get("batch", "1") != "0",
        "schedule": q.get("schedule_on", "1") != "0",
        "legend": q.get("legend", "Optimizer")[:60],
    }
    return templates.TemplateResponse(request, "components.html", ctx, block_name="optimizer_fields")
