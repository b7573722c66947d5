"""/playground's endpoints against the engine: activations-grid, export, csv-points, the page, its form and panels."""

import asyncio
import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from app.main import app
from engine.backprop import backprop, forward, objective, predict
from engine.experiment import prepare, train_runs
from engine.hidden import grid_lines, hidden_view
from engine.network import Params
from engine.regularization import batch_indices, dropout_masks
from engine.spec import experiment_from_dict

SPIRAL = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["tanh", "tanh", "sigmoid"], "loss": "bce", "init": "xavier"},
    "data": {"dataset": "spiral", "n": 200, "noise": 0.05, "test_fraction": 0.3, "features": ["x1", "x2"]},
    "optimizer": {"name": "adam", "lr": 0.03, "batch_size": 10},
}


def call(method: str, url: str, body=None, form=None, content=None) -> httpx.Response:
    """One request through the ASGI app, on its own thread's event loop (pytest-playwright may own this one)."""

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            if form is not None:
                return await client.request(method, url, data=form)
            if content is not None:
                return await client.request(method, url, content=content, headers={"content-type": "application/json"})
            return await client.request(method, url, json=body)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def grid(spec, **fields) -> httpx.Response:
    return call("POST", "/api/v1/activations-grid", {"spec": spec, **fields})


def fields_of(response) -> list[str]:
    return [".".join(str(p) for p in d["loc"][1:]) for d in response.json()["detail"]]


def with_(spec, **changes):
    out = json.loads(json.dumps(spec))
    for path, value in changes.items():
        node = out
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return out


def unpack(g) -> np.ndarray:
    """The page's decoder, in NumPy: codes c -> lo + c (hi - lo) / (2^bits - 2), top code -> NaN."""
    dtype = "<u1" if g["bits"] == 8 else "<u2"
    codes = np.frombuffer(base64.b64decode(g["b64"]), dtype=dtype).astype(float)
    top = 2 ** g["bits"] - 1
    step = (g["hi"] - g["lo"]) / (top - 1) if g["hi"] > g["lo"] else 0.0
    values = np.where(codes == top, np.nan, g["lo"] + codes * step)
    return values.reshape(g["shape"])


# ---- the grid at step t -------------------------------------------------------------------------------------


def test_grid_at_t0_has_every_unit_and_the_engine_loss():
    r = grid(SPIRAL, t=0, since=0, include_data=True, resolution=30, neuron_resolution=12)
    assert r.status_code == 200, r.text
    body = r.json()
    assert np.array(body["output"]).shape == (30, 30)
    assert [len(layer) for layer in body["neurons"]] == [8, 8]
    assert np.array(body["neurons"][1][7]).shape == (12, 12)
    assert body["axis"][0] == -body["extent"] and body["axis"][-1] == body["extent"]
    prep = prepare(experiment_from_dict(SPIRAL))
    assert body["metrics"]["loss"] == pytest.approx(objective(prep.net, prep.params0, prep.X, prep.Y), rel=1e-12)
    assert body["history"] == {**body["history"], "since": 0, "loss": [body["metrics"]["loss"]]}
    assert body["m_train"] == 140 and body["m_test"] == 60
    assert len(body["data"]["train"]["x"]) == 140 and len(body["data"]["test"]["y"]) == 60
    assert body["dropout"] is None and body["diverged"] is False


def test_output_grid_is_the_network_at_those_points():
    """Row i, column j of the output is the prediction at (x = axis[j], y = axis[i]) with theta_t."""
    t = 25
    body = grid(SPIRAL, t=t, resolution=11).json()
    run = train_runs(experiment_from_dict(SPIRAL), t)[0]
    prep = prepare(experiment_from_dict(SPIRAL))
    params = Params.from_flat(prep.net, run.theta)
    axis = np.array(body["axis"])
    a = np.array([[axis[3], axis[8]]])  # x = axis[3], y = axis[8]
    for W, b, act in zip(params.W, params.b, prep.net.acts):
        a = act.f(a @ W.T + b)
    assert body["output"][8][3] == pytest.approx(a[0, 0], abs=1e-4)
    np.testing.assert_allclose(np.array(body["weights"][0]), params.W[0], rtol=0, atol=0)


def test_chunks_of_play_give_the_same_run_as_one_request():
    """Stepping 0 -> 10 -> 20 -> 30 through the checkpoint cache equals one request for 0..30, and /train."""
    spec = with_(SPIRAL, seed=7)
    whole = grid(spec, t=30, since=0).json()
    losses = []
    for t in (10, 20, 30):
        chunk = grid(spec, t=t, since=t - 10).json()
        assert chunk["history"]["since"] == t - 10
        assert len(chunk["history"]["loss"]) == 11 and len(chunk["history"]["delta_norm"]) == 10
        losses += chunk["history"]["loss"][:-1]
    losses.append(chunk["metrics"]["loss"])
    assert chunk["weights"] == whole["weights"]
    trained = call("POST", "/api/v1/train", {**spec, "steps": 30}).json()
    np.testing.assert_allclose(losses, trained["loss"], rtol=1e-12)
    np.testing.assert_allclose(whole["history"]["loss"], trained["loss"], rtol=1e-12)
    np.testing.assert_allclose(whole["history"]["delta_norm"], trained["delta_norm"], rtol=1e-12)
    np.testing.assert_allclose(whole["history"]["grad_norm"], trained["grad_norm"], rtol=1e-12)


def test_packed_grids_decode_to_the_json_grids():
    plain = grid(SPIRAL, t=40, resolution=20, neuron_resolution=10).json()
    packed = grid(SPIRAL, t=40, resolution=20, neuron_resolution=10, encoding="packed").json()
    out = unpack(packed["output"])
    span = packed["output"]["hi"] - packed["output"]["lo"]
    np.testing.assert_allclose(out, plain["output"], atol=span / 65534 + 1e-4)
    unit = unpack(packed["neurons"][0][3])
    span = packed["neurons"][0][3]["hi"] - packed["neurons"][0][3]["lo"]
    np.testing.assert_allclose(unit, plain["neurons"][0][3], atol=span / 254 + 1e-3)
    assert len(json.dumps(packed)) < len(json.dumps(plain)) / 2


def test_one_input_data_gives_curves():
    spec = {
        "network": {"layers": [1, 4, 1], "activations": ["tanh", "linear"], "loss": "mse"},
        "data": {"dataset": "sine", "n": 100, "test_fraction": 0.2, "features": ["x1"]},
        "optimizer": {"name": "adam", "lr": 0.03},
    }
    body = grid(spec, t=5, resolution=40, neuron_resolution=8).json()
    assert np.array(body["output"]).shape == (40,)
    assert np.array(body["neurons"][0][0]).shape == (8,)
    assert body["task"] == "regression" and body["metrics"]["accuracy"] is None


def test_features_and_explicit_points():
    spec = with_(
        SPIRAL,
        data={
            "X": [[0.1, 0.2], [-0.5, 0.4], [0.3, -0.9], [0.8, 0.8]],
            "Y": [[1], [0], [1], [0]],
            "features": ["x1", "x2", "x1x2", "sin_x1"],
        },
    )
    spec["network"]["layers"] = [4, 3, 1]
    spec["network"]["activations"] = ["relu", "sigmoid"]
    body = grid(spec, t=3, since=0, include_data=True, resolution=9).json()
    assert len(body["weights"][0][0]) == 4
    assert body["m_test"] == 0 and body["metrics"]["test_loss"] is None
    assert body["data"]["train"]["x"][3] == [0.8, 0.8]


def test_dropout_mask_is_the_engines_and_rescales_by_one_over_keep_prob():
    spec = with_(SPIRAL, dropout=0.3)
    t, row = 12, 5
    body = grid(spec, t=t, mask_row=row).json()
    drop = body["dropout"]
    exp = experiment_from_dict(spec)
    prep = prepare(exp)
    rows = batch_indices(exp.seed, t, prep.X.shape[0], 10)
    masks = dropout_masks(exp.seed, t, len(rows), prep.net.layers[1:], exp.dropout)
    assert drop["data_row"] == rows[row] and drop["batch_size"] == 10
    for l in range(2):
        np.testing.assert_array_equal(drop["masks"][l], masks[l][row])
        layer = drop["layers"][l]
        assert layer["keep_prob"] == pytest.approx(0.7)
        np.testing.assert_allclose(layer["a_after"], np.array(layer["a_before"]) * masks[l][row] / 0.7)


def test_training_mode_applies_the_mask_to_the_grid():
    spec = with_(SPIRAL, dropout=0.5)
    for row in range(10):
        train = grid(spec, t=5, mask_row=row, mode="train", resolution=8).json()
        if 0 in train["dropout"]["masks"][0]:
            break
    evaluate = grid(spec, t=5, mask_row=row, mode="eval", resolution=8).json()
    assert train["mode"] == "train"
    assert not np.allclose(train["output"], evaluate["output"])


def test_divergence_is_null_not_a_500():
    spec = with_(
        SPIRAL,
        optimizer={"name": "sgd", "lr": 1.0},
        network={
            "layers": [2, 8, 8, 8, 8, 1],
            "activations": ["leaky_relu"] * 4 + ["linear"],
            "loss": "mse",
            "init": "large",
        },
    )
    r = grid(spec, t=60, since=0)
    assert r.status_code == 200
    body = r.json()
    assert body["diverged"] is True
    assert body["history"]["diverged_at"] is not None
    assert body["metrics"]["loss"] is None


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"t": 5, "since": 6}, "since"),
        ({"t": 30000, "since": 0}, "since"),
        ({"resolution": 500}, "resolution"),
        ({"mode": "test"}, "mode"),
        ({"encoding": "png"}, "encoding"),
        ({"t": -1}, "t"),
    ],
)
def test_bad_fields_are_422_naming_the_field(fields, field):
    r = grid(SPIRAL, **fields)
    assert r.status_code == 422
    assert any(f.startswith(field) for f in fields_of(r)), r.json()


def test_data_the_page_cannot_draw_is_422():
    three = with_(SPIRAL, data={"X": [[0, 0, 0], [1, 1, 1]], "Y": [[0], [1]]})
    three["network"]["layers"] = [3, 2, 1]
    three["network"]["activations"] = ["tanh", "sigmoid"]
    r = grid(three)
    assert r.status_code == 422 and "spec.data" in r.text
    wrong_inputs = with_(SPIRAL, network__layers=[3, 8, 8, 1])
    r = grid(wrong_inputs)
    assert r.status_code == 422 and "network.layers" in r.text


def test_a_far_step_from_cold_is_refused_by_the_budget():
    r = grid(with_(SPIRAL, seed=99), t=900_000)
    assert r.status_code == 422
    assert fields_of(r) == ["t"] and "work units" in r.json()["detail"][0]["msg"]


# ---- CSV ----------------------------------------------------------------------------------------------------


def csv(text, task=None):
    return call("POST", "/api/v1/csv-points", {"text": text, **({"task": task} if task else {})})


def test_good_csv_with_and_without_a_header():
    r = csv("x1,x2,label\n0.5,-0.25,1\n\n-1e-1, 2 ,0\r\n")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == [[0.5, -0.25, 1.0], [-0.1, 2.0, 0.0]] and body["n"] == 2
    assert body["header"] == ["x1", "x2", "label"] and body["separator"] == "," and body["classes"] == 2
    assert csv("0.1,0.2,1").json()["n"] == 1


def test_quoted_fields_semicolons_tabs_and_three_classes():
    r = csv('"x1";"x2";"label"\n"0,5";-1;2\n0.25;"1e-1";0\n')
    assert r.status_code == 200, r.text
    assert r.json()["points"] == [[0.5, -1.0, 2.0], [0.25, 0.1, 0.0]] and r.json()["classes"] == 3
    r = csv("0.5\t1\t1\n-0.5\t1\t0\n")
    assert r.json()["separator"] == "tab" and r.json()["n"] == 2


def test_bad_rows_each_get_a_message_and_nothing_is_evaluated():
    text = "x1,x2,label\n0.1,0.2,1\n0.3,abc,0\n<img src=x onerror=alert(1)>\n1,2,13\nnan,0,1\n__import__('os'),1,0\n20,0,1\n1_000,0,0\n"
    r = csv(text)
    assert r.status_code == 422
    detail = r.json()["detail"]
    by_row = {d["loc"][2]: d["msg"] for d in detail}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9]
    assert by_row[3] == "row 3: x2 'abc' is not a number"
    assert by_row[4] == "row 4: expected 3 values x1,x2,label, found 1"
    assert by_row[5] == "row 5: label '13' must be a class 0 to 9"
    assert "x1 'nan' is not a number" in by_row[6]
    assert "is not a number" in by_row[7] and len(by_row[7]) < 80
    assert by_row[8] == "row 8: x1 20 is outside [-10, 10]"
    assert "x1 '1_000' is not a number" in by_row[9]


def test_regression_csv_takes_any_finite_target():
    assert csv("0.1,0.2,3.5\n0.2,0.1,-2", task="regression").json()["points"][0][2] == 3.5
    assert csv("0.1,0.2,1e9", task="regression").status_code == 422


def test_csv_limits_and_oversize_uploads():
    assert csv("").status_code == 422
    assert csv("x1,x2,label\n").json()["detail"][0]["msg"].startswith("text: no data rows")
    big = "0.1,0.1,1\n" * 10_001
    r = csv(big)
    assert r.status_code == 422 and fields_of(r) == ["text"]
    many = "0.1,0.1,1\n" * 1001
    r = csv(many)
    assert r.status_code == 422 and "at most 1000" in r.text
    lots_bad = "x,y,z\n" + "a,b,c\n" * 80
    detail = csv(lots_bad).json()["detail"]
    assert len(detail) == 51 and "more bad rows" in detail[-1]["msg"]
    assert csv('0,"0\n').status_code == 422 and "not valid CSV" in csv('0,"0\n').text
    huge = json.dumps({"text": "0.1,0.1,1\n" * 110_000}).encode()  # over the 1 MB body limit
    r = call("POST", "/api/v1/csv-points", content=huge)
    assert r.status_code == 413


def test_csv_rejects_non_strings_and_unknown_fields():
    assert call("POST", "/api/v1/csv-points", {"text": 5}).status_code == 422
    assert call("POST", "/api/v1/csv-points", {"text": "1,1,1", "run": True}).status_code == 422


# ---- multi-class, images, what a hidden layer sees, explicit data with a test split --------------------------

SPIRAL3 = {
    "network": {"layers": [2, 8, 8, 3], "activations": ["tanh", "tanh", "softmax"], "loss": "cross_entropy"},
    "data": {"dataset": "spiral3", "n": 300, "noise": 0.1, "test_fraction": 0.2, "features": ["x1", "x2"]},
    "optimizer": {"name": "adam", "lr": 0.03, "batch_size": 10},
}
DIGITS = {
    "network": {"layers": [64, 16, 10], "activations": ["relu", "softmax"], "loss": "cross_entropy"},
    "data": {"dataset": "digits", "n": 300, "test_fraction": 0.2},
    "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 20},
}


def theta_at(spec_dict, t):
    spec = experiment_from_dict(spec_dict)
    prep = prepare(spec)
    return prep, Params.from_flat(prep.net, train_runs(spec, t)[0].theta) if t else prep.params0


def test_three_classes_give_the_most_probable_class_and_argmax_accuracy():
    body = grid(SPIRAL3, t=40, resolution=9, include_data=True).json()
    prep, params = theta_at(SPIRAL3, 40)
    u = np.linspace(-body["extent"], body["extent"], 9)
    gx, gy = np.meshgrid(u, u)
    a = forward(prep.net, params, np.column_stack([gx.ravel(), gy.ravel()]))[1][-1]
    assert body["classes"] == 3
    assert np.array_equal(np.array(body["output_class"]).ravel(), np.argmax(a, axis=1))
    assert np.allclose(np.array(body["output"]).ravel(), np.max(a, axis=1), atol=5e-5)
    train_acc = np.mean(np.argmax(predict(prep.net, params, prep.X), 1) == np.argmax(prep.Y, 1))
    assert body["metrics"]["accuracy"] == pytest.approx(train_acc)
    assert body["text"]["accuracy"] == f"{100 * train_acc:.3g}%" or body["text"]["accuracy"].endswith("%")
    assert set(body["data"]["train"]["y"]) == {0, 1, 2}


def test_spiral3_trains_past_90_percent_with_softmax_and_cross_entropy():
    body = grid(SPIRAL3, t=400, encoding="packed").json()
    assert body["metrics"]["accuracy"] > 0.9 and body["metrics"]["test_accuracy"] > 0.9
    classes = unpack(body["output_class"])
    assert set(np.unique(classes[np.isfinite(classes)]).round().astype(int)) == {0, 1, 2}  # a 3-colour boundary


def test_digits_give_one_image_and_its_ten_probabilities():
    body = grid(DIGITS, t=30, sample=3).json()
    prep, params = theta_at(DIGITS, 30)
    s = body["sample"]
    assert s["set"] == "test" and s["index"] == 3 and len(s["image"]) == 64
    probs = predict(prep.net, params, prep.X_test[3:4])[0]
    assert np.allclose(s["probs"], probs) and s["predicted"] == int(np.argmax(probs))
    assert s["label"] == int(prep.data.labels_test[3]) and len(s["probs_text"]) == 10
    assert body["neurons"] == [] and body["output"] is None and len(s["hidden"][0]) == 16


def test_hidden_layer_view_is_the_engines_projection():
    body = grid(SPIRAL3, t=10, hidden_layer=1).json()
    prep, params = theta_at(SPIRAL3, 10)
    view = hidden_view(prep.net, params, prep.data.X_train, 1, ("x1", "x2"), grid_lines(body["extent"]))
    h = body["hidden"]
    assert h["axes"] == ["PC1", "PC2"] and h["width"] == 8
    assert np.allclose(h["points"], view.points, atol=1e-4) and np.allclose(h["lines"], view.lines, atol=1e-4)
    assert h["variance"] == pytest.approx(list(view.variance))
    assert "PC1 holds" in h["variance_text"] and "%" in h["variance_text"]
    assert grid(SPIRAL3, hidden_layer=3).status_code == 422


def test_explicit_points_get_a_test_split():
    pts = {"X": [[i / 10, -i / 10] for i in range(20)], "Y": [[i % 2] for i in range(20)], "test_fraction": 0.25}
    body = grid(with_(SPIRAL, data=pts)).json()
    assert body["m_train"] == 15 and body["m_test"] == 5


# ---- exports --------------------------------------------------------------------------------------------------


def export(spec, fmt, t=20):
    return call("POST", "/api/v1/export", {"spec": spec, "t": t, "format": fmt})


def test_json_export_is_theta_t():
    r = export(SPIRAL3, "json")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    d = r.json()
    prep, params = theta_at(SPIRAL3, 20)
    assert d["layers"] == [2, 8, 8, 3] and d["activations"][-1] == "softmax" and d["t"] == 20
    assert all(np.array_equal(np.array(W), p) for W, p in zip(d["weights"], params.W))
    assert all(np.array_equal(np.array(b), p) for b, p in zip(d["biases"], params.b))


def test_npz_export_loads_in_numpy():
    r = export(SPIRAL3, "npz")
    assert r.status_code == 200 and r.headers["content-disposition"].endswith('.npz"')
    prep, params = theta_at(SPIRAL3, 20)
    with np.load(io.BytesIO(r.content), allow_pickle=False) as f:
        assert list(f["layers"]) == [2, 8, 8, 3] and list(f["features"]) == ["x1", "x2"]
        assert np.array_equal(f["W3"], params.W[2]) and np.array_equal(f["b1"], params.b[0])


def test_torch_export_is_a_program_that_checks_itself():
    r = export(SPIRAL3, "torch")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/x-python")
    code = r.text
    compile(code, "snippet.py", "exec")
    assert "nn.Softmax(dim=1)" in code and "assert difference <= 1e-12" in code and "def features(x)" in code


def test_csv_export_reads_back_through_the_upload():
    r = export(SPIRAL3, "csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    back = csv(r.text)
    assert back.status_code == 200 and back.json()["n"] == 300 and back.json()["classes"] == 3
    assert export(DIGITS, "csv").text.splitlines()[0].startswith("p0,p1,")


def test_bad_exports_are_4xx_naming_the_field():
    assert fields_of(export(SPIRAL3, "pickle")) == ["format"]
    r = export(with_(SPIRAL3, seed=77), "npz", t=900_000)
    assert r.status_code == 422 and fields_of(r) == ["t"]
    diverging = with_(SPIRAL, optimizer={"name": "sgd", "lr": 1.0})
    diverging["network"] = {
        "layers": [2, 8, 8, 8, 8, 1],
        "activations": ["leaky_relu"] * 4 + ["linear"],
        "loss": "mse",
        "init": "large",
    }
    r = export(diverging, "json", t=60)
    assert r.status_code == 422 and fields_of(r) == ["t"] and "diverged" in r.text


# ---- the page, its settings form and its panels ------------------------------------------------------------


def run_of(html: str) -> dict:
    start = html.index('id="pg-run">') + len('id="pg-run">')
    return json.loads(html[start : html.index("</script>", start)])


FORM = {
    "dataset": "circles",
    "dataset_was": "circles",
    "hidden": "4,2",
    "act1": "tanh",
    "act2": "tanh",
    "act_all": "tanh",
    "act_all_was": "tanh",
    "features": ["x1", "x2"],
    "loss": "bce",
    "opt": "adam",
    "opt_was": "adam",
    "lr": "0.03",
    "batch": "10",
    "n": "200",
    "noise": "0.1",
    "test": "0.3",
}


def settings(**changes):
    return call("POST", "/playground/settings", form={**FORM, **changes})


def test_page_renders_the_form_from_the_registries_and_the_summary():
    r = call("GET", "/playground?present=1")
    assert r.status_code == 200
    html = r.text
    assert 'data-testid="playground"' in html and 'class="present"' in html and 'data-testid="summary"' in html
    for name in ("spiral3", "gaussians3", "digits", "circles"):
        assert f'value="{name}"' in html
    assert 'name="clip"' in html and 'name="act_all"' in html and "<script>" not in html
    run = run_of(html)
    assert run["spec"]["network"]["layers"] == [2, 4, 2, 1] and run["meta"]["task"] == "binary"
    assert "<dt>Learning rate η</dt><dd>0.03</dd>" in html


def test_settings_switch_to_three_classes_softmax_and_cross_entropy():
    r = settings(dataset="spiral3")
    assert r.status_code == 200
    run = run_of(r.text)
    net = run["spec"]["network"]
    assert net["layers"] == [2, 4, 2, 3] and net["activations"][-1] == "softmax" and net["loss"] == "cross_entropy"
    assert 'id="pg-summary" class="pg-summary" hx-swap-oob="true"' in r.text and "softmax + cross-entropy" in r.text
    assert experiment_from_dict(run["spec"]).to_token() == run["token"]


def test_one_control_sets_every_hidden_layer_and_buttons_change_the_network():
    net = run_of(settings(act_all="relu").text)["spec"]["network"]
    assert net["activations"] == ["relu", "relu", "sigmoid"]
    net = run_of(settings(act2="sigmoid").text)["spec"]["network"]  # act_all unchanged: per-layer wins
    assert net["activations"] == ["tanh", "sigmoid", "sigmoid"]
    assert run_of(settings(action="add-layer").text)["spec"]["network"]["layers"] == [2, 4, 2, 2, 1]
    assert run_of(settings(action="plus-1").text)["spec"]["network"]["layers"] == [2, 5, 2, 1]
    spec = run_of(settings(clip="1", dropout="0.2", l2="0.001").text)["spec"]
    assert spec["clip_norm"] == 1.0 and spec["dropout"] == 0.2 and spec["l2"] == 0.001


def test_your_points_go_into_the_spec_with_a_test_split():
    pts = json.dumps([[0.1, 0.2, 0], [0.3, -0.1, 2], [0.5, 0.5, 1], [-0.5, 0.2, 0]])
    spec = run_of(settings(pts=pts, test="0.3").text)["spec"]
    assert spec["data"]["X"][1] == [0.3, -0.1] and spec["data"]["Y"][1] == [0, 0, 1]
    assert spec["data"]["test_fraction"] == 0.3 and spec["network"]["loss"] == "cross_entropy"


def test_a_shared_link_restores_the_settings_and_a_bad_one_says_so():
    token = run_of(settings(dataset="gaussians3", lr="0.1").text)["token"]
    html = call("GET", f"/playground?spec={token}&t=5").text
    assert run_of(html)["token"] == token and 'data-t="5"' in html
    assert 'value="gaussians3" data-testid="dataset-gaussians3" checked' in html
    bad = call("GET", "/playground?spec=notatoken123")
    assert bad.status_code == 422 and 'data-testid="notice"' in bad.text  # 4xx, and the page still opens


def test_links_from_before_spec_tokens_still_open_their_experiment():
    html = call(
        "GET", "/playground?dataset=spiral&noise=0.05&hidden=8,8&acts=relu,relu,sigmoid&lr=0.1&pts=0.1,0.2,1;0.3,0.4,0"
    ).text
    spec = run_of(html)["spec"]
    assert spec["network"]["layers"] == [2, 8, 8, 1] and spec["network"]["activations"] == ["relu", "relu", "sigmoid"]
    assert spec["optimizer"]["lr"] == 0.1 and spec["data"]["X"] == [[0.1, 0.2], [0.3, 0.4]]
    spec = run_of(call("GET", "/playground?dataset=moons&noise=0.3").text)["spec"]
    assert spec["data"]["dataset"] == "moons" and spec["data"]["noise"] == 0.3


def panel(tab, token, **fields):
    return call("POST", "/playground/panel", form={"token": token, "t": "20", "tab": tab, **fields})


def test_panels_render_the_engines_numbers():
    token = experiment_from_dict(SPIRAL3).to_token()
    prep, params = theta_at(SPIRAL3, 20)
    html = panel("gradients", token).text
    bp = backprop(prep.net, params, prep.X, prep.Y)
    first = float(np.sqrt(np.mean(np.sum(bp.layers[0].delta ** 2, axis=1))))
    assert f"{first:.3g}" in html.replace("\\times 10^{", "e").replace("}", "")
    gc = panel("gradcheck", token, eps="-6").text
    assert "✓ PASSED" in gc and 'data-chart="pg-panel-chart"' in gc and "W1[0,0]" in gc
    assert "$$" in panel("regularization", token).text
    assert "Dropout is off" in panel("dropout", token).text
    cmp = panel("compare", token, kind="activation", init="he").text
    assert 'data-testid="cmp-table"' in cmp and "sigmoid" in cmp
    bad = panel("gradients", "notatoken123")
    assert bad.status_code == 422 and "spec_token" in bad.text
    assert panel("nonsense", token).status_code == 422


BIG = {
    "network": {"layers": [2] + [256] * 8 + [1], "activations": ["tanh"] * 8 + ["sigmoid"], "loss": "bce"},
    "data": {"dataset": "circles", "n": 2000},
    "optimizer": {"name": "sgd", "lr": 0.1},
}


def test_expensive_panels_and_exports_are_refused_at_once():
    token = experiment_from_dict(BIG).to_token()
    r = panel("gradcheck", token, t="0")
    assert r.status_code == 422 and "over the limit" in r.text
    r = panel("compare", token, t="0", kind="clip", c="nan")
    assert r.status_code == 422 and "c:" in r.text
    r = export(BIG, "torch", t=50)
    assert r.status_code == 422 and fields_of(r)[0] in ("t", "network.layers")


def test_endpoints_are_in_the_openapi_schema_and_the_page_is_not():
    paths = call("GET", "/openapi.json").json()["paths"]
    assert {"/api/v1/activations-grid", "/api/v1/csv-points", "/api/v1/export"} <= set(paths)
    assert "/playground" not in paths and "/playground/settings" not in paths


def test_grid_flags_divergence_by_the_engine_rule():
    """A loss 100x its start is diverged on /playground as on every other run (engine/divergence.py), with finite
    weights; a sound run is not flagged."""
    wild = with_(SPIRAL, optimizer__name="sgd", optimizer__lr=100.0, optimizer__batch_size=None)
    wild["network"] = {
        **wild["network"],
        "layers": [1, 8, 8, 1],
        "activations": ["relu", "relu", "linear"],
        "loss": "mse",
    }
    wild["data"] = {**wild["data"], "dataset": "sine", "features": ["x1"]}
    r = grid(wild, t=1, since=0, resolution=10, neuron_resolution=5)  # finite weights, loss ~5e7
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["diverged"] is True, body["metrics"]
    assert "100" in body["divergence_rule"]
    sound = grid(SPIRAL, t=3, since=0, resolution=10, neuron_resolution=5).json()
    assert sound["diverged"] is False
