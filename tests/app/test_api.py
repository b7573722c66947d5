"""JSON API v1, endpoint by endpoint, against the ASGI app (httpx, no network).

Known numbers come from the presets: the notes' worked example (note 002) and y = 2x (note 000).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.anyio

API = "/api/v1"
NOTES_LOSS = 0.10132471498783105  # 1/2 (a - 1)^2 at the notes' weights, x = [0.5, 0.8]
NOTES_OUTPUT_DELTA = -0.1114235461366134  # (a - y) sigma'(z_o)


async def post(client, path, body, strict_json):
    r = await client.post(f"{API}{path}", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return strict_json(r.text)


def train_body(spec, steps, **extra):
    return {**spec, "steps": steps, **extra}


# --- trace -------------------------------------------------------------------------------------------------------


async def test_trace_notes_example(client, preset, strict_json):
    spec = preset("notes-2-2-1")
    d = await post(client, "/trace", {"network": spec["network"], "data": spec["data"]}, strict_json)
    assert d["loss"] == pytest.approx(NOTES_LOSS, rel=1e-12)
    assert len(d["layers"]) == 2
    hidden, out = d["layers"]
    assert np.allclose(hidden["z"], [[0.1, 0.3]], rtol=0, atol=1e-12)
    assert np.allclose(out["z"], [[0.2]], rtol=0, atol=1e-12)
    assert out["delta"] == [[pytest.approx(NOTES_OUTPUT_DELTA, rel=1e-12)]]
    for layer, (n_out, n_in) in zip(d["layers"], [(2, 2), (1, 2)]):
        assert set(layer) >= {"z", "a", "delta", "dW", "db"}
        assert np.shape(layer["z"]) == np.shape(layer["a"]) == np.shape(layer["delta"]) == (1, n_out)
        assert np.shape(layer["dW"]) == (n_out, n_in)
        assert np.shape(layer["db"]) == (n_out,)
    # dW^2 = delta_o a_h^T, one sample
    assert np.allclose(out["dW"], np.outer(out["delta"][0], hidden["a"][0]), rtol=1e-12)


async def test_trace_rows_are_samples(client, strict_json):
    d = await post(client, "/trace", {"network": {"layers": [2, 3, 1]}, "data": {"dataset": "xor"}}, strict_json)
    assert [np.shape(l["a"]) for l in d["layers"]] == [(4, 3), (4, 1)]


# --- train -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset_id", ["notes-2-2-1", "xor-2-4-1", "linear-y-2x"])
async def test_train_presets(client, preset, strict_json, preset_id):
    spec = preset(preset_id)
    steps = 50
    d = await post(client, "/train", train_body(spec, steps), strict_json)
    assert len(d["loss"]) == steps + 1
    assert d["diverged"] is False and d["diverged_at"] is None
    assert all(isinstance(v, float) for v in d["loss"])
    assert d["loss"][-1] < d["loss"][0]
    # loss[0] is the objective at theta_0: the trace's loss (full batch, no penalty)
    trace = await post(client, "/trace", {"network": spec["network"], "data": spec["data"]}, strict_json)
    assert d["loss"][0] == pytest.approx(trace["loss"], rel=1e-12)
    for key in ("weights", "biases", "test_loss", "accuracy", "grad_norm", "delta_norm", "spec_id", "spec_token"):
        assert key in d
    n_layers = len(spec["network"]["layers"]) - 1
    assert len(d["weights"]) == len(d["biases"]) == n_layers
    assert np.shape(d["grad_norm"]) == (steps, n_layers)


async def test_train_y_equals_2x(client, preset, strict_json):
    """Note 000: w and b from 0, lr 0.01, 1000 epochs of full-batch gradient descent on MSE."""
    d = await post(client, "/train", train_body(preset("linear-y-2x"), 1000), strict_json)
    assert len(d["loss"]) == 1001
    assert d["loss"][0] == pytest.approx((4 + 16 + 36) / 3, rel=1e-12)  # y = 2, 4, 6 at w = b = 0
    assert d["weights"] == [[[pytest.approx(1.9708, abs=5e-5)]]]
    assert d["biases"] == [[pytest.approx(0.0664, abs=5e-5)]]
    assert d["diverged"] is False


async def test_train_reports_test_metrics(client, preset, strict_json):
    spec = preset("spiral-2-8-8-1")
    spec["data"]["test_fraction"] = 0.25
    d = await post(client, "/train", train_body(spec, 20), strict_json)
    assert len(d["test_loss"]) == len(d["accuracy"]) == len(d["test_accuracy"]) == 21
    assert all(0 <= a <= 1 for a in d["accuracy"])


# --- race --------------------------------------------------------------------------------------------------------


async def test_race(client, preset, strict_json):
    spec = preset("spiral-2-8-8-1")
    del spec["optimizer"]
    optimizers = [
        {"name": "sgd", "lr": 1.0},
        {"name": "momentum", "lr": 0.5},
        {"name": "rmsprop", "lr": 0.01},
        {"name": "adam", "lr": 0.01, "batch_size": 32},
    ]
    d = await post(client, "/race", {**spec, "optimizers": optimizers, "steps": 30}, strict_json)
    runs = d["runs"]
    assert len(runs) == len(optimizers)
    assert [r["optimizer"]["name"] for r in runs] == [o["name"] for o in optimizers]
    # same theta_0: the same objective value (to rounding: contestants are stacked into one BLAS call, and a
    # row of a stacked matmul can round differently from a solo one, by ~1 ulp)
    loss0 = runs[0]["loss"][0]
    assert all(r["loss"][0] == pytest.approx(loss0, rel=1e-14) for r in runs)
    assert all(r["weights"] != runs[0]["weights"] for r in runs[1:])
    assert all(len(r["loss"]) == 31 and r["diverged"] is False for r in runs)
    assert len({tuple(r["loss"][1:4]) for r in runs}) == len(runs)


async def test_race_contestant_equals_solo_run(client, preset, strict_json):
    spec = preset("xor-2-4-1")
    del spec["optimizer"]
    optimizers = [{"name": "sgd", "lr": 2.0}, {"name": "adam", "lr": 0.05}]
    race = await post(client, "/race", {**spec, "optimizers": optimizers, "steps": 40}, strict_json)
    for run, opt in zip(race["runs"], optimizers):
        solo = await post(client, "/train", {**spec, "optimizer": opt, "steps": 40}, strict_json)
        np.testing.assert_allclose(run["loss"], solo["loss"], rtol=1e-12)
        for a, b in zip(run["weights"], solo["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


async def test_train_evaluate_every_thins_the_whole_set_metrics_of_a_mini_batch_run(client, preset, strict_json):
    spec = {**preset("spiral-2-8-8-1"), "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 16}}
    spec["data"] = {**spec["data"], "test_fraction": 0.25}
    dense = await post(client, "/train", train_body(spec, 25), strict_json)
    sparse = await post(client, "/train", train_body(spec, 25, evaluate_every=10), strict_json)
    assert dense["evaluate_every"] == 1 and sparse["evaluate_every"] == 10
    assert sparse["weights"] == dense["weights"]  # the same training
    evaluated = [0, 10, 20, 25]
    for t in range(26):
        if t in evaluated:
            assert sparse["loss"][t] == dense["loss"][t]
            assert sparse["test_loss"][t] == dense["test_loss"][t]
        else:
            assert sparse["loss"][t] is None and sparse["accuracy"][t] is None
    assert sparse["grad_norm"] == dense["grad_norm"]  # per step, whatever is evaluated


async def test_race_evaluate_every_leaves_a_full_batch_contestant_dense(client, preset, strict_json):
    spec = preset("xor-2-4-1")
    del spec["optimizer"]
    optimizers = [{"name": "sgd", "lr": 2.0}, {"name": "sgd", "lr": 2.0, "batch_size": 2}]
    d = await post(client, "/race", {**spec, "optimizers": optimizers, "steps": 9, "evaluate_every": 4}, strict_json)
    full, mini = d["runs"]
    assert full["evaluate_every"] == 1 and None not in full["loss"]
    assert mini["evaluate_every"] == 4
    assert [t for t, v in enumerate(mini["loss"]) if v is not None] == [0, 4, 8, 9]


async def test_evaluate_every_must_be_positive(client, preset):
    r = await client.post(f"{API}/train", json=train_body(preset("xor-2-4-1"), 5, evaluate_every=0))
    assert r.status_code == 422 and "evaluate_every" in r.text


# --- step --------------------------------------------------------------------------------------------------------


async def test_step_zero_of_notes_example(client, preset, strict_json):
    spec = preset("notes-2-2-1")
    d = await post(client, "/step", {"spec": spec, "t": 0}, strict_json)
    assert d["t"] == 0
    assert d["loss"] == pytest.approx(NOTES_LOSS, rel=1e-12)
    assert d["layers"][1]["delta"] == [[pytest.approx(NOTES_OUTPUT_DELTA, rel=1e-12)]]
    lr = spec["optimizer"]["lr"]
    assert d["learning_rate"] == lr
    for part in ("weights", "biases"):
        update, grad = d["update"][part], d["grad"][part]
        for u, g in zip(update, grad):
            np.testing.assert_allclose(u, -lr * np.asarray(g), rtol=1e-12, atol=1e-17)
        for before, after, u in zip(d["params_before"][part], d["params_after"][part], update):
            np.testing.assert_allclose(np.asarray(after) - np.asarray(before), u, rtol=1e-12, atol=1e-17)
    for key in ("X", "Y", "rows", "optimizer", "full_loss", "spec_id", "spec_token"):
        assert key in d
    assert d["diverged"] is False


async def test_step_spec_token_round_trip(client, preset, strict_json):
    spec = preset("spiral-2-8-8-1")
    inline = await post(client, "/step", {"spec": spec, "t": 3}, strict_json)
    by_token = await post(client, "/step", {"spec_token": inline["spec_token"], "t": 3}, strict_json)
    assert by_token == inline


def flat(params: dict) -> np.ndarray:
    return np.concatenate([np.ravel(w) for w in params["weights"]] + [np.ravel(b) for b in params["biases"]])


async def test_step_t_matches_train(client, preset, strict_json):
    spec = preset("spiral-2-8-8-1")
    trained = await post(client, "/train", train_body(spec, 5), strict_json)
    step5 = await post(client, "/step", {"spec": spec, "t": 5}, strict_json)
    step4 = await post(client, "/step", {"spec": spec, "t": 4}, strict_json)
    # theta_5 is the trainer's own state: exactly the train endpoint's weights
    assert step5["params_before"] == {"weights": trained["weights"], "biases": trained["biases"]}
    assert step5["full_loss"] == pytest.approx(trained["loss"][5], rel=1e-12)
    # step 4's record recomputes the update with the readable reference code: equal to rounding
    np.testing.assert_allclose(flat(step4["params_after"]), flat(step5["params_before"]), rtol=1e-12, atol=1e-15)
    for name, state in step4["optimizer"]["state_after"].items():  # adam's m and v carry over
        np.testing.assert_allclose(flat(state), flat(step5["optimizer"]["state_before"][name]), rtol=1e-12, atol=1e-15)


async def test_step_of_a_race_contestant(client, preset, strict_json):
    spec = preset("xor-2-4-1")
    del spec["optimizer"]
    spec["optimizers"] = [{"name": "sgd", "lr": 2.0}, {"name": "adam", "lr": 0.05}]
    d = await post(client, "/step", {"spec": spec, "t": 2, "contestant": 1}, strict_json)
    assert d["contestant"] == 1 and d["optimizer"]["name"] == "adam"


# --- gradcheck, surface ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset_id", ["notes-2-2-1", "xor-2-4-1", "spiral-2-8-8-1"])
async def test_gradcheck_passes(client, preset, strict_json, preset_id):
    d = await post(client, "/gradcheck", {"spec": preset(preset_id), "t": 3}, strict_json)
    assert d["passed"] is True
    assert d["difference"] < d["threshold"]
    assert len(d["analytic"]) == len(d["numeric"]) == len(d["names"])


@pytest.mark.parametrize("kind", ["parameters", "slice"])
async def test_surface(client, preset, strict_json, kind):
    spec = preset("xor-2-4-1")
    del spec["optimizer"]
    spec["optimizers"] = [{"name": "sgd", "lr": 2.0}, {"name": "adam", "lr": 0.05}, {"name": "momentum", "lr": 1.0}]
    res, steps = 9, 12
    d = await post(
        client, "/surface", {"spec": spec, "kind": kind, "resolution": res, "steps": steps, "i": 0, "j": 3}, strict_json
    )
    assert d["kind"] == kind
    assert np.shape(d["loss"]) == (res, res)
    assert len(d["u"]) == len(d["v"]) == res
    assert len(d["paths"]) == len(spec["optimizers"])
    assert all(np.shape(p) == (steps + 1, 2) for p in d["paths"])
    assert len(d["axes"]) == 2


async def test_surface_parameters_path_starts_at_theta0(client, preset, strict_json):
    spec = preset("notes-2-2-1")
    d = await post(
        client,
        "/surface",
        {"spec": spec, "kind": "parameters", "i": 0, "j": 1, "resolution": 5, "steps": 3},
        strict_json,
    )
    assert d["paths"][0][0] == pytest.approx([0.1, 0.0625])  # W^1[0, 0] and W^1[0, 1]


# --- spec --------------------------------------------------------------------------------------------------------


async def test_spec_canonical_id_is_stable(client, preset, strict_json):
    spec = preset("xor-2-4-1")
    a = await post(client, "/spec", {"spec": spec}, strict_json)
    b = await post(client, "/spec", {"spec": spec}, strict_json)
    assert a == b
    assert len(a["spec_id"]) == 16
    # the canonical form is a fixed point
    c = await post(client, "/spec", {"spec": a["spec"]}, strict_json)
    assert c["spec_id"] == a["spec_id"]
    t = await post(client, "/spec", {"spec_token": a["spec_token"]}, strict_json)
    assert t["spec_id"] == a["spec_id"] and t["spec"] == a["spec"]


async def test_spec_defaults_omitted_or_explicit_same_id(client, strict_json):
    catalog = strict_json((await client.get(f"{API}/catalog")).text)
    adam_defaults = next(o for o in catalog["optimizers"] if o["name"] == "adam")["defaults"]
    short = {"network": {"layers": [2, 4, 1]}, "data": {"dataset": "xor"}, "optimizer": {"name": "adam"}}
    explicit = {
        "network": {
            "layers": [2, 4, 1],
            "activations": ["sigmoid", "sigmoid"],
            "loss": "half_mse",
            "init": "xavier",
            "seed": 0,
        },
        "data": {"dataset": "xor", "noise": 0.1, "seed": 0, "test_fraction": 0.0},
        "optimizer": {"name": "adam", **adam_defaults, "batch_size": None, "schedule": {"name": "constant"}},
        "l2": 0.0,
        "l1": 0.0,
        "seed": 0,
    }
    a = await post(client, "/spec", {"spec": short}, strict_json)
    b = await post(client, "/spec", {"spec": explicit}, strict_json)
    assert a["spec"] == b["spec"]
    assert a["spec_id"] == b["spec_id"] and a["spec_token"] == b["spec_token"]
    # the same spec with the optimizer given as a one-element list
    c = await post(
        client,
        "/spec",
        {"spec": {**{k: v for k, v in short.items() if k != "optimizer"}, "optimizers": [short["optimizer"]]}},
        strict_json,
    )
    assert c["spec_id"] == a["spec_id"]
    other = await post(client, "/spec", {"spec": {**short, "seed": 1}}, strict_json)
    assert other["spec_id"] != a["spec_id"]


# --- catalogues and docs -----------------------------------------------------------------------------------------


async def test_datasets(client, strict_json):
    r = await client.get(f"{API}/datasets")
    assert r.status_code == 200
    d = strict_json(r.text)
    names = {ds["name"] for ds in d["datasets"]}
    assert {"xor", "spiral", "linear", "digits"} <= names
    assert all({"task", "n_inputs", "n_outputs"} <= set(ds) for ds in d["datasets"])
    assert "x1" in d["features"]


async def test_presets(client, strict_json):
    r = await client.get(f"{API}/presets")
    assert r.status_code == 200
    presets = strict_json(r.text)["presets"]
    ids = {p["id"] for p in presets}
    assert {"notes-2-2-1", "xor-2-4-1", "linear-y-2x"} <= ids
    for p in presets:  # every preset is a valid spec whose token reproduces it
        a = await post(client, "/spec", {"spec": p["spec"]}, strict_json)
        b = await post(client, "/spec", {"spec_token": p["spec_token"]}, strict_json)
        assert a["spec_id"] == b["spec_id"]


async def test_catalog(client, strict_json):
    r = await client.get(f"{API}/catalog")
    assert r.status_code == 200
    d = strict_json(r.text)
    assert set(d) >= {"activations", "losses", "initializers", "optimizers", "schedules"}
    assert {"sgd", "momentum", "adam"} <= {o["name"] for o in d["optimizers"]}
    assert {"sigmoid", "tanh", "relu", "softmax"} <= {a["name"] for a in d["activations"]}
    adam = next(o for o in d["optimizers"] if o["name"] == "adam")
    assert adam["defaults"]["beta1"] == 0.9


async def test_docs_and_openapi(client, strict_json):
    r = await client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    schema = strict_json(r.text)
    paths = set(schema["paths"])
    for name in ("trace", "train", "race", "step", "gradcheck", "surface", "spec", "datasets", "presets", "catalog"):
        assert f"{API}/{name}" in paths


async def test_documented_examples_are_accepted(client, strict_json):
    """Every request example in the OpenAPI document works as written."""
    schema = strict_json((await client.get("/openapi.json")).text)
    components = schema["components"]["schemas"]
    tried = 0
    for path, ops in schema["paths"].items():
        op = ops.get("post")
        if not op:
            continue
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for example in components[ref].get("examples", []):
            r = await client.post(path, json=example)
            assert r.status_code == 200, f"{path} example {example}: {r.status_code} {r.text[:500]}"
            tried += 1
    assert tried >= 4


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"
