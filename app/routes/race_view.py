"""The /race page: a race a class can read. The URL is `?spec=<token>&steps=N` plus view settings (t, w, q, log,
present); opening it runs the race (recomputed from the spec) and restores the playhead.

GET  /race                 the page (old ?problem=&c= links of a network redirect to the ?spec= form)

A race on a 2-D test function (engine.problems: Rosenbrock, Beale, saddle, ravine) has no network, so no spec
token: its URL is `?problem=<name>&c=<contestants>&steps=N` plus the same view settings, where c is the old page's
base64url JSON list of contestants (so the old page's links open the same race); without c, the function's
default race. It runs through the same SSE flow, frames and playback; the landscape is the function's contour.
POST /race/start           the setup form -> the race's block (htmx), the URL pushed; a plain POST redirects
GET  /race/events          the race as server-sent events for htmx's SSE extension: status, standings, race, done
GET  /race/contestant      a new contestant's fields (templates/components.html optimizer_fields)
GET  /race/loss-field      the loss choices of a problem
GET  /race/race.csv        train and test loss, accuracy and lr per step, and the final weights, as CSV
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import time
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from jinja2_fragments import render_block

from engine import experiment, problems
from engine.initializers import INITIALIZERS
from engine.optimizers import OPTIMIZERS
from engine.spec import Experiment, experiment_from_dict, optimizer_from_dict

from .. import cost
from ..errors import BudgetError
from ..schemas import SpecRef
from ..serialize import dumps
from ..settings import get_settings
from ..templating import templates
from ..views import race as rv
from ..views.forms import optimizer_form, optimizer_from_form
from .api import check_features, resolve

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_PREFIXES = 16  # contestant field prefixes c0_ .. c15_ a form may carry (at most max_contestants of them)


# ---- the spec of a race, and its bounds ------------------------------------------------------------------------------
def check_race(spec: Experiment, steps: int) -> bool:
    """2..max contestants, 1..max steps, and the work bounded by the cost model (a race of the API's size plus the
    landscape grid and the recorded state). True if the decision boundaries fit in the budget too (two-input
    binary classifiers); a race that fits only without them runs without them."""
    S = get_settings()
    if not 2 <= len(spec.optimizers) <= S.max_contestants:
        raise ValueError(f"optimizers: a race needs 2 to {S.max_contestants} contestants")
    if not 1 <= steps <= S.max_steps:
        raise ValueError(f"steps: must be from 1 to {S.max_steps}")
    prep = experiment.prepare(spec)
    check_features(prep)
    est = cost.train_or_race(prep, steps, len(spec.optimizers))
    est.merge(cost.surface(prep, 0, 1, rv.RESOLUTION))
    est.add("steps", memory=min(rv.PATH_FLOATS, (steps + 1) * len(spec.optimizers) * prep.net.n_params) * 8)
    # every weight's optimizer state, float32 in base64 (5.4 bytes each): one string to write, not a float each,
    # so its bytes count against the answer's size but not as JSON serialisation work
    floats = rv.state_floats(spec, steps)
    est.add("optimizers", memory=floats * 4)
    est.response["optimizers"] = est.response.get("optimizers", 0.0) + floats * 5.4
    # the playback frames' standings as text, and the landscape's paths
    est.add("steps", response=len(rv.frame_steps(steps)) * len(spec.optimizers) * 60)
    est.enforce()
    if not rv.has_boundary(spec):
        return False
    pictures = len(spec.optimizers) * rv.BOUNDARY_SNAPSHOTS  # P(class 1) on a grid, per contestant and snapshot
    est.add("steps", work=cost.forward_work(prep, pictures, rv.BOUNDARY_RESOLUTION**2))
    est.response["steps"] = est.response.get("steps", 0.0) + pictures * rv.BOUNDARY_RESOLUTION**2 * 1.4
    try:
        est.enforce()
    except BudgetError:
        return False
    return True


def spec_from_token(token: str) -> Experiment:
    spec = resolve(SpecRef(spec_token=token))
    return spec


def _decode_legacy(token: str) -> list[dict]:
    """Old links' ?c=: base64url of the JSON list of contestants."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("c: not a valid list of contestants") from None
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise ValueError("c: not a valid list of contestants")
    return raw


def opt_dict(o) -> dict:
    """An engine OptimizerSpec in the API's shape (what the optimizer form and the spec read)."""
    return {
        "name": o.name,
        **dict(o.hyper),
        "batch_size": o.batch_size,
        "schedule": {"name": o.schedule.name, **dict(o.schedule.params)},
    }


def _race_url(spec: Experiment, steps: int, **view) -> str:
    query = {"spec": spec.to_token(), "steps": steps, **{k: v for k, v in view.items() if v not in (None, "", 0)}}
    return "/race?" + urlencode(query)


# ---- races on 2-D test functions ------------------------------------------------------------------------------------
def function_from_query(problem: str, c: str | None) -> rv.FunctionRace:
    """A function race from ?problem=&c= (the old page's links, and the new page's); no c: the default race."""
    optimizers = _decode_legacy(c) if c is not None else rv.FUNCTION_RACES[problem]
    return rv.function_race_spec(problem, optimizers)


def check_function_race(fr: rv.FunctionRace, steps: int) -> None:
    """2..max contestants, 1..max steps, the work bounded by the cost model of POST /api/v1/function-race (with
    the page's contour grid) plus the playback frames' standings as text."""
    S = get_settings()
    if not 2 <= len(fr.optimizers) <= S.max_contestants:
        raise ValueError(f"optimizers: a race needs 2 to {S.max_contestants} contestants")
    if not 1 <= steps <= S.max_steps:
        raise ValueError(f"steps: must be from 1 to {S.max_steps}")
    states = [len(OPTIMIZERS[o.name].state_names) for o in fr.optimizers]
    est = cost.function_race(steps, states, rv.FUNCTION_RESOLUTION)
    est.add("steps", response=len(rv.frame_steps(steps)) * len(fr.optimizers) * 90)
    est.enforce()


def _function_query(fr: rv.FunctionRace, steps: int) -> dict:
    return {"problem": fr.problem, "c": fr.to_token(), "steps": steps}


def _function_url(fr: rv.FunctionRace, steps: int, **view) -> str:
    query = {**_function_query(fr, steps), **{k: v for k, v in view.items() if v not in (None, "", 0)}}
    return "/race?" + urlencode(query)


def function_setup_context(fr: rv.FunctionRace, steps: int) -> dict:
    contestants = [
        {"k": k, "prefix": f"c{k}_", "form": optimizer_form(opt_dict(o) | {"batch_size": None})}
        for k, o in enumerate(fr.optimizers)
    ]
    return {
        "problem": fr.problem,
        "problems": rv.PROBLEMS,
        "functions": problems.PROBLEMS,
        "function": _function_info(fr.problem),
        "problem_entry": None,
        "steps": steps,
        "init": None,
        "inits": list(INITIALIZERS),
        "loss": None,
        "losses": [],
        "loss_titles": rv.LOSS_TITLES,
        "contestants": contestants,
        "max_contestants": get_settings().max_contestants,
    }


def _function_info(name: str) -> dict:
    p = problems.PROBLEMS[name]
    return {
        "name": p.name,
        "title": p.title,
        "latex": p.latex,
        "latex_grad": p.latex_grad,
        "description": p.description,
        "start_text": f"θ₀ = ({rv.fmt.text(p.start[0])}, {rv.fmt.text(p.start[1])})",
    }


def function_context(fr: rv.FunctionRace, steps: int) -> dict:
    """The race block of a function race: the keys of race_context."""
    quantities = []
    for o in fr.optimizers:
        for q in ("update", "g", *OPTIMIZERS[o.name].state_names):
            if q not in quantities:
                quantities.append(q)
    query = urlencode(_function_query(fr, steps))
    info = _function_info(fr.problem)
    return {
        "spec": fr,
        "steps": steps,
        "spec_token": fr.to_token(),
        "cards": rv.function_cards(fr),
        "events_url": "/race/events?" + query,
        "csv_url": "/race/race.csv?" + query,
        "race_url": _function_url(fr, steps),
        "parameter_names": ["x", "y"],
        "quantities": [(q, rv.STATE_TITLES.get(q, q)) for q in quantities],
        "classify": False,
        "has_test": False,
        "where": True,
        "boundary": False,
        "function": info,
        "loss_title": "f(θₜ) along each path",
        "data_text": f"no data: every contestant follows the exact gradient from {info['start_text']}",
        "network_text": f"{info['title']} · start {info['start_text']} · {info['description']}",
        "why": None,
        "standings": rv.empty_standings(fr),
        "divergence_rule": rv.DIVERGENCE_TEXT.replace("its loss", "its f").replace("starting loss", "starting f"),
        "phase": "connecting",
        "done": 0,
    }


# ---- what the page template needs --------------------------------------------------------------------------------
def setup_context(spec: Experiment, steps: int) -> dict:
    """The setup form filled in from a spec: problem, steps, initialiser, loss, one optimizer form per contestant."""
    problem = rv.match_problem(spec) or "custom"
    entry = rv.PROBLEMS.get(problem)
    d = spec.to_dict()
    contestants = [
        {"k": k, "prefix": f"c{k}_", "form": optimizer_form(opt_dict(o))} for k, o in enumerate(spec.optimizers)
    ]
    return {
        "problem": problem,
        "problems": rv.PROBLEMS,
        "functions": problems.PROBLEMS,
        "function": None,
        "problem_entry": entry,
        "steps": steps,
        "init": d["network"]["init"],
        "inits": list(INITIALIZERS),
        "loss": d["network"]["loss"],
        "losses": rv.loss_choices(entry) if entry else [d["network"]["loss"]],
        "loss_titles": rv.LOSS_TITLES,
        "contestants": contestants,
        "max_contestants": get_settings().max_contestants,
    }


def race_context(spec: Experiment, steps: int) -> dict:
    """The race block: cards, the stream's URL, the standings table before any step, the view's selects."""
    prep = experiment.prepare(spec)
    names = ["w", "b"] if tuple(prep.net.layers) == (1, 1) else rv.parameter_names(prep.net)
    quantities = []
    for o in spec.optimizers:
        for q in ("update", "g", *rv.OPTIMIZERS[o.name].state_names):
            if q not in quantities:
                quantities.append(q)
    m_test = 0 if prep.X_test is None else int(prep.X_test.shape[0])
    every = rv.evaluation_stride(spec, steps)
    query = urlencode({"spec": spec.to_token(), "steps": steps})
    return {
        "spec": spec,
        "steps": steps,
        "spec_token": spec.to_token(),
        "cards": [rv.card(spec, k) for k in range(len(spec.optimizers))],
        "events_url": "/race/events?" + query,
        "csv_url": "/race/race.csv?" + query,
        "race_url": _race_url(spec, steps),
        "parameter_names": names,
        "quantities": [(q, rv.STATE_TITLES.get(q, q)) for q in quantities],
        "classify": prep.classify,
        "has_test": m_test > 0,
        "boundary": rv.has_boundary(spec),
        "loss_title": rv.LOSS_TITLES.get(prep.net.loss, prep.net.loss),
        "data_text": f"{prep.X.shape[0]} training rows"
        + (f", {m_test} test rows" if m_test else ", no test set (every row trains)")
        + (f"; {rv.evaluation_note(every)}" if every > 1 else ""),
        "every": every,  # > 1: the mini-batch losses are drawn at every `every` steps
        "network_text": f"{'-'.join(map(str, prep.net.layers))} · {', '.join(prep.net.activations)} · "
        f"{rv.LOSS_TITLES.get(prep.net.loss, prep.net.loss)} · init {spec.network.init} · "
        f"{prep.net.n_params} parameters",
        "why": rv.WHY_DEFAULT if is_default(spec) else None,
        "standings": rv.empty_standings(spec),
        "divergence_rule": rv.DIVERGENCE_TEXT,
        "phase": "connecting",
        "done": 0,
    }


def is_default(spec: Experiment) -> bool:
    return spec.id == experiment_from_dict(rv.race_spec(rv.DEFAULT_PROBLEM, rv.DEFAULT_RACE)).id


def default_spec() -> Experiment:
    return experiment_from_dict(rv.race_spec(rv.DEFAULT_PROBLEM, rv.DEFAULT_RACE))


# ---- the page ------------------------------------------------------------------------------------------------------
@router.get("/race")
def race_page(
    request: Request,
    spec: str | None = None,
    steps: int | None = None,
    present: int = 0,
    problem: str | None = None,
    c: str | None = None,
):
    """The race in the URL (or the default race), run as the page opens; old ?problem=&c= links of a network
    redirect, those of a 2-D function (and the new page's) open that function race."""
    errors: list[str] = []
    if spec is None and problem in problems.PROBLEMS:
        try:
            fr = function_from_query(problem, c)
            fr_steps = steps or rv.FUNCTION_STEPS[fr.problem]
            check_function_race(fr, fr_steps)
        except (ValueError, BudgetError) as exc:
            errors.append(_message(exc))
        else:
            ctx = {
                "page": "race",
                "present": bool(present),
                "errors": [],
                **function_setup_context(fr, fr_steps),
                **function_context(fr, fr_steps),
            }
            return templates.TemplateResponse(request, "race.html", ctx)
    elif spec is None and (problem is not None or c is not None):
        try:
            name = problem or rv.DEFAULT_PROBLEM
            if name not in rv.PROBLEMS:
                raise ValueError(
                    f"problem: unknown '{name}' (choose from {', '.join([*rv.PROBLEMS, *problems.PROBLEMS])})"
                )
            optimizers = _decode_legacy(c) if c is not None else rv.DEFAULT_RACE
            new = experiment_from_dict(rv.race_spec(name, [opt_dict(optimizer_from_dict(o)) for o in optimizers]))
            return RedirectResponse(
                _race_url(new, steps or rv.PROBLEMS[name]["steps"], present=present), status_code=307
            )
        except ValueError as exc:
            errors.append(str(exc))
    race_spec_ = default_spec()
    race_steps = rv.DEFAULT_STEPS
    if spec is not None:
        try:
            race_spec_ = spec_from_token(spec)
            race_steps = steps or (rv.PROBLEMS.get(rv.match_problem(race_spec_) or "", {}).get("steps", 300))
            check_race(race_spec_, race_steps)
        except (ValueError, BudgetError) as exc:
            errors.append(_message(exc))
            race_spec_, race_steps = default_spec(), rv.DEFAULT_STEPS
    ctx = {
        "page": "race",
        "present": bool(present),
        "errors": errors,
        **setup_context(race_spec_, race_steps),
        **race_context(race_spec_, race_steps),
    }
    bad_link = errors and (spec or problem in problems.PROBLEMS)
    return templates.TemplateResponse(request, "race.html", ctx, status_code=400 if bad_link else 200)


def _message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in errors())
        except (TypeError, AttributeError):
            pass
    return str(getattr(exc, "detail", None) or exc)


def spec_from_form(form) -> tuple[Experiment, int]:
    """The setup form back to a spec and a number of steps; ValueError names the field."""
    problem = form.get("problem") or rv.DEFAULT_PROBLEM
    if problem not in rv.PROBLEMS and problem not in problems.PROBLEMS:
        names = ", ".join([*rv.PROBLEMS, *problems.PROBLEMS])
        raise ValueError(f"problem: unknown '{problem}' (choose from {names})")
    default_steps = rv.PROBLEMS[problem]["steps"] if problem in rv.PROBLEMS else rv.FUNCTION_STEPS[problem]
    try:
        steps = int(form.get("steps") or default_steps)
    except ValueError:
        raise ValueError("steps: must be a whole number") from None
    optimizers = []
    for k in range(MAX_PREFIXES):
        prefix = f"c{k}_"
        if form.get(prefix + "optimizer") is None:
            continue
        try:
            optimizers.append(optimizer_from_form(form, prefix))
        except ValueError as exc:
            raise ValueError(f"contestant {len(optimizers) + 1}: {exc}") from None
    if problem in problems.PROBLEMS:
        fr = rv.function_race_spec(problem, optimizers)
        check_function_race(fr, steps)
        return fr, steps
    spec = experiment_from_dict(rv.race_spec(problem, optimizers, form.get("init") or None, form.get("loss") or None))
    check_race(spec, steps)
    return spec, steps


@router.post("/race/start")
async def race_start(request: Request):
    """Start the race the form describes: htmx gets the race block and the new URL; a plain form post redirects."""
    # htmx and plain forms post application/x-www-form-urlencoded: parsed here, no multipart parser needed
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    try:
        spec, steps = spec_from_form(form)
    except (ValueError, BudgetError) as exc:
        message = _message(exc)
        if request.headers.get("HX-Request"):
            return templates.TemplateResponse(
                request, "race.html", {"form_error": message}, block_name="form_error", status_code=422
            )
        return Response(message, status_code=422, media_type="text/plain")
    function = isinstance(spec, rv.FunctionRace)
    url = _function_url(spec, steps) if function else _race_url(spec, steps)
    if not request.headers.get("HX-Request"):
        return RedirectResponse(url, status_code=303)
    ctx = {**(function_context(spec, steps) if function else race_context(spec, steps)), "present": False}
    response = templates.TemplateResponse(request, "race.html", ctx, block_name="race_block")
    response.headers["HX-Push-Url"] = url
    return response


# ---- the race, streamed ------------------------------------------------------------------------------------------
def _sse(event: str, html: str) -> bytes:
    lines = html.replace("\r", "").split("\n")
    return (f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


@router.get("/race/events")
def race_events(
    request: Request, steps: int, spec: str | None = None, problem: str | None = None, c: str | None = None
):
    """The race as server-sent events: `status` and `standings` (HTML) per chunk, `race` (the playback data as a
    JSON block), then `done`; a failure is an `error` event, then `done`. ?problem=&c= : a 2-D function race."""
    if spec is None:
        if problem not in problems.PROBLEMS:
            raise ValueError("spec: required (or problem: one of " + ", ".join(problems.PROBLEMS) + ")")
        return _function_events(function_from_query(problem, c), steps)
    race_spec_ = spec_from_token(spec)
    with_boundary = check_race(race_spec_, steps)
    prep = experiment.prepare(race_spec_)
    table = {
        "cards": rv.cards(race_spec_),
        "has_test": prep.X_test is not None and len(prep.X_test) > 0,
        "classify": prep.classify,
    }

    def body():
        gen = rv.run_race(race_spec_, steps)
        while True:
            try:
                done, partial = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            yield _sse("status", _block("status", {"done": done, "steps": steps, "phase": "training"}))
            yield _sse("standings", _block("standings", {"standings": partial, **table}))
        # the curves first: the page draws them while the landscape is computed
        data = rv.page_data(result)
        yield _sse("standings", _block("standings", {"standings": data["standings"][-1], **table}))
        yield _sse("race", _json_block("race-json", data))
        yield _sse("status", _block("status", {"done": steps, "steps": steps, "phase": "landscape"}))
        land = rv.landscape(result, rv.RESOLUTION)
        # two-input binary classifiers, when the work budget allows; else None
        land["boundary"] = rv.boundary(result) if with_boundary else None
        yield _sse("landscape", _json_block("landscape-json", land))

    return _event_stream(body(), steps, "race events failed")


def _function_events(fr: rv.FunctionRace, steps: int) -> StreamingResponse:
    """The same events as a network race: status, standings, race, landscape (the function's contour), done."""
    check_function_race(fr, steps)
    table = {"cards": rv.function_cards(fr), "has_test": False, "classify": False, "where": True}

    def body():
        yield _sse("status", _block("status", {"done": 0, "steps": steps, "phase": "training"}))
        result = rv.run_function_race(fr, steps)
        data = rv.function_page_data(result)
        yield _sse("standings", _block("standings", {"standings": data["standings"][-1], **table}))
        yield _sse("race", _json_block("race-json", data))
        yield _sse("landscape", _json_block("landscape-json", rv.function_landscape(result)))

    return _event_stream(body(), steps, "function race events failed")


def _event_stream(body, steps: int, failure: str) -> StreamingResponse:
    """A race's events framed as one server-sent stream: no reconnection, the final `done` status with the time
    taken, a failure reported in the stream (the status line is gone) and logged, then `done`."""

    def events():
        started = time.perf_counter()
        try:
            yield b"retry: 3600000\n\n"  # a finished stream is not reopened by the browser
            yield from body
            elapsed = time.perf_counter() - started
            yield _sse("status", _block("status", {"done": steps, "steps": steps, "phase": "done", "elapsed": elapsed}))
        except Exception as exc:
            log.exception(failure)
            yield _sse("status", _block("status", {"phase": "error", "message": str(exc)}))
        yield _sse("done", "")

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


def _json_block(element_id: str, value) -> str:
    """A JSON data block (<script type="application/json">) that no `</script>` inside can end early."""
    blob = dumps(value).decode().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{element_id}">{blob}</script>'


def _block(name: str, ctx: dict) -> str:
    """One named block of race.html rendered to a string (jinja2-fragments' render_block)."""
    return render_block(templates.env, "race.html", name, ctx)


# ---- small fragments ---------------------------------------------------------------------------------------------
@router.get("/race/contestant")
def contestant_fragment(request: Request):
    """Fields for one more contestant (Adam at its defaults) under the first free prefix."""
    used = {k for k in range(MAX_PREFIXES) if request.query_params.get(f"c{k}_optimizer") is not None}
    if len(used) >= get_settings().max_contestants:
        raise ValueError(f"optimizers: at most {get_settings().max_contestants} contestants")
    k = min(set(range(MAX_PREFIXES)) - used)
    ctx = {"c": {"k": k, "prefix": f"c{k}_", "form": optimizer_form({"name": "adam"})}}
    return templates.TemplateResponse(request, "race.html", ctx, block_name="contestant")


def _contestant_forms(optimizers: list[dict]) -> list[dict]:
    return [{"k": k, "prefix": f"c{k}_", "form": optimizer_form(o)} for k, o in enumerate(optimizers)]


@router.get("/race/loss-field")
def loss_field(request: Request, problem: str = rv.DEFAULT_PROBLEM):
    """The problem's fields (a network: steps, loss, initialiser; a 2-D function: steps and its start) and, out of
    band, its default contestants (learning rates that suit it, as the old page reset them)."""
    if problem in problems.PROBLEMS:
        ctx = {"function": _function_info(problem), "steps": rv.FUNCTION_STEPS[problem], "inits": list(INITIALIZERS)}
        # the problem's own race (learning rates that suit it), out of band into #contestants
        ctx["oob_contestants"] = _contestant_forms(rv.FUNCTION_RACES[problem])
        return templates.TemplateResponse(request, "race.html", ctx, block_name="loss_field")
    if problem not in rv.PROBLEMS:
        raise ValueError(f"problem: unknown '{problem}' (choose from {', '.join([*rv.PROBLEMS, *problems.PROBLEMS])})")
    entry = rv.PROBLEMS[problem]
    ctx = {"losses": rv.loss_choices(entry), "loss": entry["network"]["loss"], "loss_titles": rv.LOSS_TITLES}
    ctx["steps"] = entry["steps"]
    network = experiment_from_dict({"network": entry["network"], "data": entry["data"]}).to_dict()["network"]
    ctx["init"], ctx["inits"] = network["init"], list(INITIALIZERS)
    ctx["oob_contestants"] = _contestant_forms(rv.DEFAULT_RACE)
    return templates.TemplateResponse(request, "race.html", ctx, block_name="loss_field")


@router.get("/race/race.csv")
def race_csv(steps: int, spec: str | None = None, problem: str | None = None, c: str | None = None):
    """The race as tidy CSV: per contestant and step train/test loss, accuracy, lr; then the final weights.
    ?problem=&c= : a 2-D function race (f, lr, x and y per step, then the final x and y)."""
    if spec is None:
        if problem not in problems.PROBLEMS:
            raise ValueError("spec: required (or problem: one of " + ", ".join(problems.PROBLEMS) + ")")
        fr = function_from_query(problem, c)
        check_function_race(fr, steps)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rv.function_csv_rows(rv.run_function_race(fr, steps)))
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="race-{fr.problem}-{fr.id[:12]}.csv"'},
        )
    race_spec_ = spec_from_token(spec)
    check_race(race_spec_, steps)
    result = rv.race(race_spec_, steps)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rv.csv_rows(result):
        writer.writerow(row)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="race-{race_spec_.id[:12]}.csv"'},
    )
