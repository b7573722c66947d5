"""POST /api/v1/activations-grid and /api/v1/csv-points, and GET /playground, against the engine."""

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from app.main import app
from engine.backprop import objective
from engine.experiment import prepare, train_runs
from engine.network import Params
from engine.regularization import batch_indices, dropout_masks
from engine.spec import experiment_from_dict

SPIRAL = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["tanh", "tanh", "sigmoid"], "loss": "bce", "init": "xavier"},
    "data": {"dataset": "spiral", "n": 200, "noise": 0.05, "test_fraction": 0.3, "features": ["x1", "x2"]},
    "optimizer": {"name": "adam", "lr": 0.03, "batch_size": 10},
}


def call(method: str, url: str, body=None) -> httpx.Response:
    """One request through the ASGI app, on its own thread's event loop (pytest-playwright may own this one)."""

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
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
    assert r.json() == {"points": [[0.5, -0.25, 1.0], [-0.1, 2.0, 0.0]], "n": 2}
    assert csv("0.1,0.2,1").json()["n"] == 1


def test_bad_rows_each_get_a_message_and_nothing_is_evaluated():
    text = "x1,x2,label\n0.1,0.2,1\n0.3,abc,0\n<img src=x onerror=alert(1)>\n1,2,3\nnan,0,1\n__import__('os'),1,0\n20,0,1\n1_000,0,0\n"
    r = csv(text)
    assert r.status_code == 422
    detail = r.json()["detail"]
    by_row = {d["loc"][2]: d["msg"] for d in detail}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9]
    assert by_row[3] == "row 3: x2 'abc' is not a number"
    assert by_row[4] == "row 4: expected 3 values x1,x2,label, found 1"
    assert by_row[5] == "row 5: label 3 must be 0 or 1"
    assert "x1 'nan' is not a number" in by_row[6]
    assert "is not a number" in by_row[7] and len(by_row[7]) < 80
    assert by_row[8] == "row 8: x1 20 is outside [-10, 10]"
    assert "x1 '1_000' is not a number" in by_row[9]


def test_regression_csv_takes_any_finite_target():
    assert csv("0.1,0.2,3.5\n0.2,0.1,-2", task="regression").json()["points"][0][2] == 3.5
    assert csv("0.1,0.2,1e9", task="regression").status_code == 422


def test_csv_limits():
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


def test_csv_rejects_non_strings_and_unknown_fields():
    assert call("POST", "/api/v1/csv-points", {"text": 5}).status_code == 422
    assert call("POST", "/api/v1/csv-points", {"text": "1,1,1", "run": True}).status_code == 422


# ---- the page -----------------------------------------------------------------------------------------------


def test_page_embeds_the_catalog_safely():
    r = call("GET", "/playground?present=1")
    assert r.status_code == 200
    html = r.text
    assert 'data-testid="playground"' in html and 'class="present"' in html
    start = html.index('id="pg-catalog">') + len('id="pg-catalog">')
    catalog = json.loads(html[start : html.index("</script>", start)])
    assert [d["name"] for d in catalog["datasets"]] == [
        "circles",
        "xor_cloud",
        "gaussians",
        "spiral",
        "moons",
        "plane",
        "sine",
    ]
    assert catalog["features"] == ["x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2"]
    assert "bce" in [l["name"] for l in catalog["losses"]]
    assert catalog["limits"]["gradcheck_threshold"] == 1e-7


def test_endpoints_are_in_the_openapi_schema_and_the_page_is_not():
    paths = call("GET", "/openapi.json").json()["paths"]
    assert "/api/v1/activations-grid" in paths and "/api/v1/csv-points" in paths
    assert "/playground" not in paths
