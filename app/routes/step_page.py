"""The /step page (one training step, phase by phase) and the HTMX fragments of its settings panel."""

import csv
import io
from dataclasses import replace
from functools import cache, lru_cache
from urllib.parse import parse_qsl

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import ImmutableMultiDict

from engine.activations import ACTIVATIONS
from engine.datasets import DATASETS
from engine.experiment import prepare
from engine.initializers import INITIALIZERS
from engine.losses import LOSSES
from engine.optimizers import OPTIMIZERS
from engine.presets import NOTES_B2, NOTES_W1, PRESETS, PRESETS_BY_ID
from engine.spec import Experiment, experiment_from_dict

from .. import cost
from ..payloads import step_payload
from ..serialize import dumps
from ..settings import get_settings
from ..templating import templates
from ..views.format import text
from ..views.forms import optimizer_form, optimizer_from_form
from ..views.step import View, edited_spec, records, stage
from .api import check_limits

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


@cache
def presets_info() -> list[dict]:
    """Each preset's id, title, timeline length and URL token (the toolbar's picker; computed once)."""
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


# a token is decoded on every key press of a lecture: the same few tokens, a pure function (errors are not kept)
_decode_token = lru_cache(maxsize=256)(Experiment.from_token)


def resolve_spec(spec: str | None, preset: str | None) -> tuple[Experiment, str | None]:
    """The experiment a URL names (token, else preset, else the notes' example), and an error message if any."""
    if spec:
        try:
            experiment = check_limits(_decode_token(spec))
            prepare(experiment)  # data and network must fit each other
            return experiment, None
        except ValueError as exc:
            return experiment_from_dict(PRESETS_BY_ID[DEFAULT_PRESET]["spec"]), f"The link's spec is not valid ({exc})."
    if preset and preset in PRESETS_BY_ID:
        return experiment_from_dict(PRESETS_BY_ID[preset]["spec"]), None
    return experiment_from_dict(PRESETS_BY_ID[DEFAULT_PRESET]["spec"]), None


def panel_context(experiment: Experiment) -> dict:
    """The settings panel's fields, filled from an experiment."""
    d = experiment.to_dict()
    opt = d["optimizers"][0]
    return {
        "spec": d,
        "layers_text": ", ".join(str(n) for n in d["network"]["layers"]),
        "activations": d["network"]["activations"],
        "explicit_weights": d["network"]["weights"] is not None,
        "explicit_data": d["data"]["X"] is not None,
        "data_X": _rows(d["data"]["X"]),
        "data_Y": _rows(d["data"]["Y"]),
        "opt": opt,
        "opt_form": optimizer_form(opt),
        "cat": catalog(),
    }


def _rows(rows) -> str:
    """Rows of numbers as editable text: one sample per line, values separated by commas."""
    if rows is None:
        return ""
    return "\n".join(", ".join(f"{v:g}" for v in r) for r in rows)


@cache
def _preset_steps() -> dict[str, int]:
    """Each preset's timeline length by experiment id (computed once: parsing the presets costs ~0.5 ms a request)."""
    return {p["spec_id"]: p["steps"] for p in presets_info()}


@cache
def notes_spec_id() -> str:
    """The id of the notes' example (note 002's network), whose step the page checks against the printed numbers."""
    return experiment_from_dict(PRESETS_BY_ID[DEFAULT_PRESET]["spec"]).id


def horizon_of(experiment: Experiment) -> int:
    """The timeline length a preset asks for, else the default."""
    return _preset_steps().get(experiment.id, DEFAULT_HORIZON)


def bounded_horizon(experiment: Experiment, T: int | None) -> tuple[int, str | None]:
    """The timeline length: the URL's, else the preset's; within the server's step limit and work budget
    (the loss chart trains T steps). Over budget, it is cut down and the page says so."""
    s = get_settings()
    T = horizon_of(experiment) if T is None else T
    T = max(1, min(int(T), s.max_steps))
    per_step = cost.step_work(prepare(experiment), 1)  # the one cost model (app/cost.py)
    if T * per_step > s.max_work:
        cut = max(1, int(s.max_work // per_step))
        return (
            cut,
            f"T: {T} steps of this network and data are over the server's work budget; the timeline stops at {cut}.",
        )
    return T, None


def view_of(experiment: Experiment, t, phase, sample, unit, T, predict, shown, present, detail, note) -> View:
    return View(
        token=experiment.to_token(),
        spec=experiment,
        t=max(0, min(t, T)),
        phase=phase or "z1",
        sample=max(0, sample - 1),
        unit=max(0, unit - 1),
        T=T,
        predict=bool(predict),
        shown=bool(shown),
        present=bool(present),
        detail=(detail or "")[:24],
        note=(note or "")[:200],
    )


def is_fragment(request: Request) -> bool:
    """An htmx request for the stage (a key press, a link, the timeline) gets the block, anything else the page."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "stage"


FRAGMENT_HEADERS = {
    # a stage is a pure function of its URL: the browser may keep it (the next phase is prefetched into this cache)
    "Cache-Control": "private, max-age=600",
    "Vary": "HX-Request, HX-Target",
}


@router.get("/step")
def step_page(
    request: Request,
    spec: str | None = None,
    preset: str | None = None,
    present: int = 0,
    t: int = Query(0, ge=0, le=1_000_000),
    phase: str = Query("z1", max_length=12),
    sample: int = Query(1, ge=1, le=1_000_000),
    unit: int = Query(1, ge=1, le=100_000),
    T: int | None = Query(None, ge=1, le=1_000_000),
    predict: int = 0,
    shown: int = 0,
    detail: str = Query("", max_length=24),
    note: str = Query("", max_length=200),
):
    """One training step of backpropagation, phase by phase, with the class's numbers in every equation."""
    experiment, error = resolve_spec(spec, preset)
    T, budget_error = bounded_horizon(experiment, T)
    view = view_of(experiment, t, phase, sample, unit, T, predict, shown, present, detail, note)
    try:
        ctx = stage(view, NOTE_002, notes_spec_id())
    except ValueError:  # a bad `detail` in a shared link: show the phase without it
        ctx = stage(replace(view, detail=""), NOTE_002, notes_spec_id())
    ctx |= {"page": "step", "present": bool(present), "presets": presets_info(), "error": error or budget_error}
    if is_fragment(request):
        return templates.TemplateResponse(request, "step.html", ctx, block_name="stage", headers=FRAGMENT_HEADERS)
    # a link whose spec does not decode still opens the notes' example, with the reason, under a 4xx status
    return templates.TemplateResponse(
        request, "step.html", {**ctx, **panel_context(experiment), "horizon": T}, status_code=422 if error else 200
    )


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


def _rows_of(text: str, name: str) -> list[list[float]]:
    """Rows of numbers typed one sample a line (commas, spaces or semicolons between values)."""
    rows = []
    for line in text.strip().splitlines():
        line = line.replace("[", " ").replace("]", " ").strip()
        if not line:
            continue
        try:
            rows.append([float(x) for x in line.replace(",", " ").replace(";", " ").split()])
        except ValueError:
            raise ValueError(f"data.{name}: one sample a line, numbers separated by commas") from None
    if not rows:
        raise ValueError(f"data.{name}: give at least one row")
    return rows


def spec_from_form(form, current: Experiment | None) -> dict:
    """The settings panel's fields as an API spec dict (engine.spec validates it)."""
    try:
        layers = [int(x) for x in str(form.get("layers", "")).replace(",", " ").replace(";", " ").split()]
    except ValueError:
        raise ValueError("network.layers: whole numbers separated by commas, e.g. 2, 4, 1") from None
    acts = form.getlist("act")
    if len(acts) != len(layers) - 1:
        raise ValueError(f"network.activations: one per layer after the input ({max(len(layers) - 1, 0)})")

    def num(name, default=None):
        text = str(form.get(name, "")).strip()
        if text == "":
            return default
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"{name}: '{text[:30]}' is not a number") from None

    network = {
        "layers": layers,
        "activations": acts,
        "loss": form.get("loss"),
        "init": form.get("init"),
        "seed": num("net_seed", 0),
    }
    if form.get("keep_weights") and current is not None:
        cur = current.to_dict()["network"]
        if cur["layers"] != layers:
            raise ValueError(
                f"network.weights: the explicit weights fit sizes {', '.join(map(str, cur['layers']))}; "
                "untick “keep explicit weights” to initialise new ones"
            )
        network["weights"], network["biases"] = cur["weights"], cur["biases"]
    dataset = form.get("dataset") or ""
    if not dataset:
        data = {"X": _rows_of(str(form.get("X", "")), "X"), "Y": _rows_of(str(form.get("Y", "")), "Y")}
    else:
        data = {"dataset": dataset, "noise": num("noise", 0.1), "seed": num("data_seed", 0)}
        if num("n") is not None:
            data["n"] = num("n")
        if current is not None and current.data.dataset == dataset:
            cd = current.to_dict()["data"]
            for key in ("test_fraction", "features"):
                if cd.get(key):
                    data[key] = cd[key]
    spec = {"network": network, "data": data, "optimizer": optimizer_from_form(form)}
    if current is not None:
        spec |= {"l2": current.l2, "l1": current.l1, "seed": current.seed}
        if current.dropout and len(current.dropout) == len(layers) - 1:
            spec["dropout"] = list(current.dropout)
        if current.clip_norm is not None:
            spec["clip_norm"] = current.clip_norm
    return spec


async def form_of(request: Request) -> ImmutableMultiDict:
    """An htmx form post (application/x-www-form-urlencoded), without python-multipart."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return ImmutableMultiDict(parse_qsl(body, keep_blank_values=True, max_num_fields=200))


def _error_fragment(request: Request, message: str):
    """A 422 whose body is the message as HTML (step.js lets htmx swap it into the form's error box)."""
    return templates.TemplateResponse(
        request, "step.html", {"message": message}, block_name="form_error", status_code=422
    )


@router.post("/step/apply")
async def apply_settings(request: Request):
    """The settings panel: a new experiment at t = 0 (HX-Redirect to its URL), or a 422 naming the field."""
    form = await form_of(request)
    try:
        current = Experiment.from_token(str(form.get("spec", ""))) if form.get("spec") else None
    except ValueError:
        current = None
    try:
        experiment = check_limits(experiment_from_dict(spec_from_form(form, current)))
        horizon = form.get("horizon") or None
        T, _ = bounded_horizon(experiment, int(horizon) if horizon and str(horizon).isdigit() else None)
        prepare(experiment)
    except ValueError as exc:
        return _error_fragment(request, str(exc))
    url = View(experiment.to_token(), experiment, T=T).url()
    return Response(status_code=204, headers={"HX-Redirect": url})


@router.post("/step/edit")
async def edit_parameter(request: Request):
    """One weight or bias changed: a new experiment whose theta_0 is this step's theta_t with that value."""
    form = await form_of(request)
    try:
        spec = Experiment.from_token(str(form.get("spec", "")))
        t = int(str(form.get("t", "0")))
        name = str(form.get("param", ""))[:24]
        try:
            value = float(str(form.get("value", "")))
        except ValueError:
            raise ValueError("value: must be a number") from None
        if not np.isfinite(value):
            raise ValueError("value: must be a finite number")
        T, _ = bounded_horizon(spec, int(str(form.get("T") or 0)) or None)
        if not 0 <= t <= T:
            raise ValueError(f"t: must be in [0, {T}]")
        d, old = edited_spec(spec, t, name, value)
        experiment = experiment_from_dict(d)
    except ValueError as exc:
        return _error_fragment(request, str(exc))
    note = f"{name}: {text(old)} → {text(value)}, from the weights of step t = {t}"
    phase = str(form.get("phase", "z1"))[:12]
    view = View(experiment.to_token(), experiment, T=T, phase=phase, note=note, present=bool(form.get("present")))
    return Response(status_code=204, headers={"HX-Redirect": view.url()})


def _record_for(spec: str, t: int):
    experiment = check_limits(Experiment.from_token(spec))
    T, _ = bounded_horizon(experiment, max(t, 1))
    if t > T:
        raise ValueError(f"t: at most {T} for this network and data")
    return experiment, records.get(experiment, t)


@router.get("/step/export.json")
def export_json(spec: str, t: int = Query(0, ge=0, le=1_000_000)):
    """The step record as the API's /step answer, as a download."""
    experiment, rec = _record_for(spec, t)
    body = {
        "spec_token": spec,
        "spec": experiment.to_dict(),
        "record": step_payload(experiment, prepare(experiment), 0, rec),
    }
    return Response(
        dumps(body),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="step-t{t}.json"'},
    )


@router.get("/step/export.csv")
def export_csv(spec: str, t: int = Query(0, ge=0, le=1_000_000)):
    """Every tensor of the step, one value a line: tensor, layer, sample, row, col, value."""
    _, rec = _record_for(spec, t)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["tensor", "layer", "sample", "row", "col", "value"])
    bp = rec.backprop
    for i, row in enumerate(bp.X):
        w.writerows(["x", 0, i + 1, "", k + 1, repr(float(v))] for k, v in enumerate(row))
    for i, row in enumerate(bp.Y):
        w.writerows(["y", "", i + 1, "", k + 1, repr(float(v))] for k, v in enumerate(row))
    for li, lay in enumerate(bp.layers):
        l = li + 1
        for name in ("z", "a", "sigma_prime", "delta"):
            for i, row in enumerate(getattr(lay, name)):
                w.writerows([name, l, i + 1, j + 1, "", repr(float(v))] for j, v in enumerate(row))
        tensors = [
            ("dW", lay.dW),
            ("W_before", rec.params_before.W[li]),
            ("update_W", rec.update.W[li]),
            ("W_after", rec.params_after.W[li]),
        ]
        for name, M in tensors:
            w.writerows(
                [name, l, "", j + 1, k + 1, repr(float(v))] for j, row in enumerate(M) for k, v in enumerate(row)
            )
        vectors = [
            ("db", lay.db),
            ("b_before", rec.params_before.b[li]),
            ("update_b", rec.update.b[li]),
            ("b_after", rec.params_after.b[li]),
        ]
        for name, v in vectors:
            w.writerows([name, l, "", j + 1, "", repr(float(x))] for j, x in enumerate(v))
    w.writerows(["loss", "", i + 1, "", "", repr(float(v))] for i, v in enumerate(bp.per_sample_loss))
    w.writerow(["L", "", "", "", "", repr(float(bp.loss))])
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="step-t{t}.csv"'}
    )
