"""/step's server-rendered fragments: the optimizer fields macro, every phase of a step with exact numbers."""

import re

import pytest

from app.views.forms import optimizer_form, optimizer_from_form
from engine.optimizers import HYPER_BOUNDS, OPTIMIZERS, check_hyper
from engine.spec import optimizer_from_dict

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------- the optimizer fields (shared with /race)


def test_hyper_bounds_are_the_bounds_check_hyper_enforces():
    for key, (low, high, low_in, high_in) in HYPER_BOUNDS.items():
        for value, ok in ((low, low_in), (high, high_in), ((low + high) / 2, True)):
            if ok:
                check_hyper(key, value)
            else:
                with pytest.raises(ValueError, match=key):
                    check_hyper(key, value)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_form_round_trips_through_the_engine(name):
    opt = {"name": name, "lr": 0.25, "batch_size": 4, "schedule": {"name": "step", "gamma": 0.5, "step_size": 10}}
    form = optimizer_form(opt)
    assert [h["key"] for h in form["hyper"]] == list(OPTIMIZERS[name].defaults)
    values = {"c0-optimizer": name, "c0-batch_size": "4", "c0-schedule": "step"}
    values |= {f"c0-h_{h['key']}": h["value"] for h in form["hyper"]}
    values |= {f"c0-s_{p['key']}": p["value"] for p in form["schedule"]["params"]}
    back = optimizer_from_dict(optimizer_from_form(values, "c0-"))
    assert back == optimizer_from_dict(opt)


def test_form_reports_bad_numbers_by_field():
    with pytest.raises(ValueError, match=r"^optimizer\.lr: 'abc' is not a number"):
        optimizer_from_form({"optimizer": "sgd", "h_lr": "abc"})
    with pytest.raises(ValueError, match=r"^optimizer\.batch_size"):
        optimizer_from_form({"optimizer": "sgd", "batch_size": "2.5"})


async def test_fields_fragment_switches_to_the_new_optimizers_defaults(client):
    r = await client.get(
        "/components/optimizer-fields",
        params={
            "prefix": "c1-",
            "c1-optimizer": "adam",
            "c1-previous": "sgd",
            "c1-h_lr": "0.5",
            "c1-batch_size": "8",
            "c1-schedule": "constant",
            "c1-previous_schedule": "constant",
        },
    )
    assert r.status_code == 200
    html = r.text
    assert html.lstrip().startswith('<fieldset class="opt-fields" id="c1-opt-fields"')
    assert '<option value="adam" selected>' in html
    assert re.search(r'name="c1-h_lr"[^>]*value="0.01"', html, re.S)  # adam's default, not sgd's 0.5
    assert re.search(r'name="c1-h_beta2"[^>]*max="1"[^>]*value="0.999"', html, re.S)
    assert re.search(r'name="c1-batch_size"[^>]*value="8"', html, re.S)  # kept


async def test_fields_fragment_keeps_values_when_only_the_schedule_changes(client):
    r = await client.get(
        "/components/optimizer-fields",
        params={
            "optimizer": "momentum",
            "previous": "momentum",
            "h_lr": "0.3",
            "h_beta": "0.8",
            "schedule": "cosine",
            "previous_schedule": "constant",
        },
    )
    assert r.status_code == 200
    assert re.search(r'name="h_lr"[^>]*value="0.3"', r.text, re.S)
    assert re.search(r'name="s_T"[^>]*value="100"', r.text, re.S)
    r = await client.get("/components/optimizer-fields", params={"optimizer": "lbfgs"})
    assert r.status_code == 422 and "optimizer.name" in r.text


# ---------------------------------------------------------------- every phase, rendered by the server

import html  # noqa: E402
import math  # noqa: E402

from engine.presets import PRESETS_BY_ID  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

PHASES_221 = ["z1", "a1", "z2", "a2", "loss", "delta2", "delta1", "grad2", "grad1", "update"]
STAGE = {"HX-Request": "true", "HX-Target": "stage"}


def notes_spec(**changes) -> dict:
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS_BY_ID["notes-2-2-1"]["spec"].items()}
    for key, value in changes.items():
        spec[key] = value
    return spec


def token(spec: dict) -> str:
    return experiment_from_dict(spec).to_token()


async def stage(client, spec: dict | None = None, **params) -> str:
    if spec is not None:
        params["spec"] = token(spec)
    r = await client.get("/step", params=params, headers=STAGE)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["cache-control"].startswith("private")
    return r.text


def formulas(fragment: str) -> list[str]:
    """The LaTeX of every display formula in a fragment, as the browser's KaTeX reads it."""
    return [html.unescape(m) for m in re.findall(r"\$\$(.*?)\$\$", fragment, re.S)]


def cell(fragment: str, testid: str) -> str:
    m = re.search(rf'data-testid="{re.escape(testid)}">([^<]*)<', fragment)
    assert m, f"no {testid}"
    return html.unescape(m.group(1))


def sample_formulas(fragment: str) -> list[str]:
    """The formulas written with the step's numbers (the "numbers" group of the math column)."""
    m = re.search(r'<div class="eq-group numbers[^"]*">(.*?)</div>\s*(?:<h3|</div>)', fragment, re.S)
    return formulas(m.group(1)) if m else []


def evaluate(tex: str, eps: float = 0.0) -> float:
    """A substituted LaTeX expression as the page shows it, computed from the digits shown."""
    s = re.sub(r"(\d(?:\.\d+)?) \\times 10\^\{(-?\d+)\}", r"\1e\2", tex)
    for a, b in ((r"\left(", "("), (r"\right)", ")"), (r"\times", "*"), (r"\cdot", "*"), (r"\,", " ")):
        s = s.replace(a, b)
    s = s.replace(r"\epsilon", f"({eps!r})").replace(r"\tfrac", r"\frac")
    for _ in range(6):
        s = re.sub(r"\^\{([^{}]*)\}", r"**(\1)", s)
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
    s = re.sub(r"\^(\d)", r"**\1", s)
    s = re.sub(r"\)\s*\(", ")*(", s)
    s = re.sub(r"(\d)\s*\(", r"\1*(", s)
    assert "\\" not in s and "{" not in s, f"cannot evaluate {tex!r} -> {s!r}"
    return eval(s, {"sqrt": math.sqrt, "e": math.e, "__builtins__": {}})  # noqa: S307 -- our own test's arithmetic


def decimals_of(text: str) -> tuple[float, int]:
    m = re.fullmatch(r"(-?\d+(?:\.(\d+))?)(?: \\times 10\^\{(-?\d+)\})?", text.strip())
    assert m, f"not a number: {text!r}"
    exp = int(m.group(3) or 0)
    return float(m.group(1)) * 10.0**exp, len(m.group(2) or "") - exp


def assert_holds(line: str, eps: float = 0.0) -> None:
    """The last `= result` of a formula is true of the digits the formula shows before it."""
    parts = re.split(r"\s(=|\\approx)\s", line.split("\\leftarrow")[-1])
    expr, rel, result = parts[-3], parts[-2], parts[-1]
    value, places = decimals_of(result)
    got = evaluate(expr, eps)
    if rel == "=":
        assert abs(got - value) <= 0.5 * 10.0**-places + 1e-12, f"{line}: the digits give {got}"
    else:
        # "approximately": the operands' rounding (a difference of near-equal numbers) decides the digits
        assert abs(got - value) <= max(2 * 10.0**-places, 0.01 * abs(value)), f"{line}: {got} is not {value}"


async def test_every_phase_of_the_notes_example(client):
    texts = {ph: await stage(client, phase=ph) for ph in PHASES_221}
    f = {ph: "\n".join(formulas(t)) for ph, t in texts.items()}
    assert r"0.1\cdot 0.5 + 0.0625\cdot 0.8 + 0 = 0.1" in f["z1"]
    assert r"= \begin{bmatrix}0.525 \\ 0.574\end{bmatrix}" in f["a1"]
    assert r"0.4\cdot 0.525 + 0.6\cdot 0.574 + \left(-0.355\right) = 0.2" in f["z2"]
    assert r"\frac{1}{1+e^{-0.2}} = 0.550" in f["a2"]
    assert r"\ell_{(1)} = \tfrac{1}{2}(0.550 - 1)^2 = 0.101" in f["loss"]
    assert r"(0.5498 - 1) \times 0.2475 = -0.1114" in f["delta2"]  # one more digit: 0.550 x 0.248 would not hold
    assert r"= \begin{bmatrix}-0.0111 \\ -0.0163\end{bmatrix}" in f["delta1"]
    assert r"= \begin{bmatrix}-0.0585 & -0.0640\end{bmatrix}" in f["grad2"]
    assert r"\begin{bmatrix}-0.00556 & -0.00889 \\ -0.00817 & -0.0131\end{bmatrix}" in f["grad1"]
    assert r"= \begin{bmatrix}0.429 & 0.632\end{bmatrix}" in f["update"]
    assert r"b^{2} \leftarrow -0.355 - 0.5\,\left(-0.111\right) = -0.299" in f["update"]
    # tables
    assert cell(texts["a1"], "num-a-1-1") == "0.525" and cell(texts["a1"], "num-a-1-2") == "0.574"
    assert cell(texts["delta2"], "num-delta-2-1") == "\u22120.111"
    assert cell(texts["delta1"], "num-delta-1-1") == "\u22120.0111"
    assert cell(texts["grad2"], "num-dW-2-1-2") == "\u22120.0640"
    assert cell(texts["update"], "num-after-w2.1.1") == "0.429"
    # every row of the update table names the parameter its numbers belong to (theta's flat order interleaves
    # each row of W with its bias): W^1 = [[0.1, 0.0625], [0.2, 0.25]], b^1 = 0, lr 0.5
    assert cell(texts["update"], "num-after-w1.2.1") == "0.204"  # 0.2 - 0.5 (-0.00817)
    assert cell(texts["update"], "num-after-w1.2.2") == "0.257"  # 0.25 - 0.5 (-0.0131)
    assert cell(texts["update"], "num-after-b1.1") == "0.00556"  # 0 - 0.5 (-0.0111)
    assert cell(texts["update"], "num-update-b2.1") == "0.0557"  # -0.5 (-0.111)
    assert "Every parameter, with this step" in texts["update"]  # plain SGD writes every matrix out
    # note 002's printed numbers, against the engine's
    assert texts["delta1"].count('data-testid="note-ok"') == 1  # delta_h = [-0.011, -0.016]
    assert "Slip in note 002" in texts["delta1"]  # sigma'(z_h) = [0.247, 0.241]: sigma'(0.1) is 0.2494
    assert "[\u22120.058, \u22120.064]" in texts["grad2"]
    # every displayed computation with a single result holds at its digits
    for ph in PHASES_221:
        for line in formulas(texts[ph]):
            if (
                line.count(" = ") >= 2
                and "bmatrix" not in line.split(" = ")[-2]
                and "\\sigma" not in line.split(" = ")[-2]
            ):
                if re.search(r"\\(sum|log|tanh|max|odot|ell|delta|qquad|frac\{\\partial)", line.split(" = ")[-2]):
                    continue
                assert_holds(line)


async def test_phase_direction_and_title(client):
    fwd = await stage(client, phase="z2")
    assert 'data-direction="forward"' in fwd and "Forward · output layer · weighted input z<sup>2</sup>" in fwd
    back = await stage(client, phase="delta1")
    assert 'data-direction="backward"' in back and "Backward · error δ<sup>1</sup> of layer 1" in back
    grad = await stage(client, phase="grad1")
    assert 'class="edge hl grad"' in grad  # gradient phases: edges carry dL/dW


async def test_navigation_links_and_predict_first(client):
    t = await stage(client, phase="a2")
    nxt = html.unescape(re.search(r'href="([^"]+)" data-nav="next"', t).group(1))
    assert "phase=loss" in nxt
    hidden = await stage(client, phase="a2", predict=1)
    assert r"\boxed{\;?\;}" in hidden and ">0.550<" not in hidden
    nxt = html.unescape(re.search(r'href="([^"]+)" data-nav="next"', hidden).group(1))
    assert "phase=a2" in nxt and "shown=1" in nxt  # the first press reveals
    last = await stage(client, phase="update", t=3)
    nxt = html.unescape(re.search(r'href="([^"]+)" data-nav="next"', last).group(1))
    assert "t=4" in nxt and "phase=z1" in nxt


OPTIMIZER_CASES = {
    "momentum": {"name": "momentum", "lr": 0.5, "beta": 0.9},
    "nesterov": {"name": "nesterov", "lr": 0.5, "momentum": 0.9},
    "rmsprop": {"name": "rmsprop", "lr": 0.05, "beta": 0.9},
    "adam": {"name": "adam", "lr": 0.05},
    "adagrad": {"name": "adagrad", "lr": 0.5},
    "sgd+wd": {"name": "sgd", "lr": 0.5, "momentum": 0.5, "weight_decay": 0.1},
}


@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
async def test_update_phase_of_each_optimizer_holds_at_its_digits(client, case):
    opt = OPTIMIZER_CASES[case]
    spec = notes_spec(optimizer=opt)
    text = await stage(client, spec, phase="update", t=2)  # t = 2: the state before is not zero
    lines = formulas(text)
    worked = sample_formulas(text)
    assert len(worked) >= 2, lines
    eps = 1e-8 if opt["name"] in ("rmsprop", "adam") else 1e-10 if opt["name"] == "adagrad" else 0.0
    for line in worked:
        assert_holds(line, eps)
    # the parameter written out ends where the engine's theta_{t+1} does
    from engine.experiment import step_record

    rec = step_record(experiment_from_dict(spec), 2)
    w_after = rec.params_after.W[1][0, 0]
    assert re.search(r"w\^\{2\}_\{11\} \\leftarrow .* (=|\\approx) " + re.escape(format_tex(w_after)), "\n".join(lines))
    # the state table has every state the optimizer keeps, before and after
    names = {"momentum": "v", "nesterov": "v", "rmsprop": "s", "adam": "m̂", "adagrad": "G", "sgd+wd": "v"}
    assert f"<th>{names[case]} <span class='muted'>before / after</span></th>" in text


def format_tex(x: float) -> str:
    from app.views.format import tex

    return tex(x, 3)


LOSS_CASES = {
    "mse": ("sigmoid", "mse", r"\tfrac{2}{1}"),
    "half_mse": ("sigmoid", "half_mse", r"\sigma'(z^{L})"),
    "bce": ("sigmoid", "bce", r"a^{L} - y ="),
    "cross_entropy": ("softmax", "cross_entropy", r"a^{L}_{1} - y"),
}


@pytest.mark.parametrize("case", list(LOSS_CASES))
async def test_output_delta_of_each_loss(client, case):
    act, loss, marker = LOSS_CASES[case]
    out = 2 if act == "softmax" else 1
    spec = {
        "network": {"layers": [2, 2, out], "activations": ["sigmoid", act], "loss": loss, "init": "xavier", "seed": 3},
        "data": {"X": [[0.5, 0.8], [1.0, -0.5]], "Y": [[1.0, 0.0]] * 2 if out == 2 else [[1.0], [0.0]]},
        "optimizer": {"name": "sgd", "lr": 0.5},
    }
    text = await stage(client, spec, phase="delta2", sample=2)
    lines = formulas(text)
    assert any(marker.replace("a^{L}_{1} - y", "") in line for line in lines), lines
    from engine.experiment import step_record

    d = step_record(experiment_from_dict(spec), 0).backprop.layers[1].delta[1, 0]
    assert cell(text, "num-delta-2-1") == format_text(d)
    for line in lines:
        plain = "bmatrix" not in line and "nabla" not in line and line.count(" = ") >= 2
        if plain and line.startswith(r"\delta^{L}") and "odot" not in line.split(" = ")[-2]:
            assert_holds(line)
    if loss in ("bce", "cross_entropy"):
        assert "cancels" in text


def format_text(x: float) -> str:
    from app.views.format import text

    return text(x)


async def test_dropout_and_l2_are_written_out(client):
    spec = {
        "network": {"layers": [2, 4, 1], "activations": ["relu", "sigmoid"], "loss": "bce", "init": "he", "seed": 1},
        "data": {"dataset": "xor"},
        "optimizer": {"name": "sgd", "lr": 0.5},
        "dropout": [0.5, 0.0],
        "l2": 0.1,
    }
    a1 = await stage(client, spec, phase="a1")
    assert "Dropout this step" in a1
    delta1 = await stage(client, spec, phase="delta1")
    assert "passes no error back" in delta1
    loss = "\n".join(formulas(await stage(client, spec, phase="loss")))
    penalty = [line for line in loss.splitlines() if "penalty} =" in line]
    assert penalty
    assert_holds(penalty[0])
    grad = await stage(client, spec, phase="grad1")
    assert "plus the regularisation term" in grad


async def test_deep_sigmoid_gradients_are_never_shown_as_zero(client):
    spec = {
        "network": {
            "layers": [2] + [3] * 8 + [1],
            "activations": ["sigmoid"] * 9,
            "loss": "half_mse",
            "init": "xavier",
        },
        "data": {"X": [[0.5, 0.8]], "Y": [[1.0]]},
        "optimizer": {"name": "sgd", "lr": 0.5},
    }
    text = await stage(client, spec, phase="grad1")
    cells = re.findall(r'data-testid="num-dW-1-\d-\d">([^<]*)<', text)
    assert len(cells) == 6
    for c in cells:
        assert "10⁻" in c and not re.fullmatch(r"[\u2212-]?0(\.0+)?", c), c
    assert r"\times 10^{-" in "\n".join(formulas(text))
    assert "0.000" not in text


async def test_a_weights_chain_rule_and_its_edit(client):
    text = await stage(client, phase="grad1", detail="w1.2.1")
    lines = formulas(text)
    chain = [line for line in lines if r"\partial w^{1}_{21}" in line]
    assert chain and r"\delta^{1}_{2}\,x_{1}" in chain[0]
    assert any(r"\sum_i w^{2}_{i2}" in line for line in lines)  # delta expanded one layer up
    r = await client.post("/step/edit", data={"spec": token(notes_spec()), "t": "0", "param": "b2.1", "value": "0.5"})
    assert r.status_code == 204
    url = r.headers["HX-Redirect"]
    page = await client.get(url)
    assert page.status_code == 200 and "b2.1" in page.text
    r = await client.post("/step/edit", data={"spec": token(notes_spec()), "t": "0", "param": "w9.1.1", "value": "1"})
    assert r.status_code == 422 and "detail" in r.text


async def test_digits_fragment_is_bounded(client):
    spec = {
        "network": {"layers": [64, 128, 64, 10], "activations": ["relu", "relu", "softmax"], "loss": "cross_entropy"},
        "data": {"dataset": "digits", "n": 320},
        "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 256},
    }
    for ph in ("z1", "delta2", "grad2", "update"):
        text = await stage(client, spec, phase=ph, T=20)
        assert len(text.encode()) < 150_000, (ph, len(text))


async def test_exports_and_settings(client):
    tok = token(notes_spec())
    r = await client.get("/step/export.csv", params={"spec": tok, "t": 0})
    assert r.status_code == 200 and r.text.startswith("tensor,layer,sample,row,col,value\n")
    assert "\ndW,2,,1,1,-0.05849" in r.text
    r = await client.get("/step/export.json", params={"spec": tok, "t": 1})
    assert r.status_code == 200 and r.json()["record"]["t"] == 1
    form = {
        "spec": tok,
        "layers": "2, 3, 1",
        "act": ["tanh", "sigmoid"],
        "loss": "bce",
        "init": "xavier",
        "net_seed": "0",
        "dataset": "xor",
        "noise": "0",
        "data_seed": "0",
        "optimizer": "adam",
        "h_lr": "0.02",
        "schedule": "constant",
        "horizon": "50",
    }
    r = await client.post("/step/apply", data=form)
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/step?spec=")
    r = await client.post("/step/apply", data={**form, "layers": "2, x"})
    assert r.status_code == 422 and "network.layers" in r.text


async def test_saturated_units_and_dead_relus_are_marked(client):
    spec = {
        "network": {
            "layers": [2, 3, 1],
            "activations": ["sigmoid", "sigmoid"],
            "loss": "half_mse",
            "weights": [[[10, 10], [-10, -10], [0.1, 0.1]], [[1, 1, 1]]],
            "biases": [[0, 0, 0], [0]],
        },
        "data": {"X": [[0.5, 0.8]], "Y": [[1.0]]},
        "optimizer": {"name": "sgd", "lr": 0.5},
    }
    svg = await stage(client, spec, phase="delta1")
    assert re.search(r'class="node [^"]*saturated[^"]*" data-testid="node-1-1"', svg)
    assert re.search(r'class="node [^"]*saturated[^"]*" data-testid="node-1-2"', svg)
    assert not re.search(r'class="node [^"]*saturated[^"]*" data-testid="node-1-3"', svg)
    spec["network"]["activations"] = ["relu", "sigmoid"]
    svg = await stage(client, spec, phase="delta1")
    assert re.search(r'class="node [^"]*dead[^"]*" data-testid="node-1-2"', svg)  # z = -13: no gradient passes
    assert not re.search(r'class="node [^"]*dead[^"]*" data-testid="node-1-1"', svg)


async def test_a_bad_detail_in_a_shared_link_is_left_out(client):
    r = await client.get("/step", params={"phase": "grad1", "detail": "w7.7.7"})
    assert r.status_code == 200 and 'data-testid="detail"' not in r.text
