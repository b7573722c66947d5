"""The race page's endpoints: the streamed network race, the 2-D function race, the page and its fragment.

Fairness is proven on the stream: every contestant's step-0 loss and weights are identical, an identical contestant
anywhere in the race (or alone) has the same curve, and a mini-batch contestant's losses are those of the
reference engine stepping with regularization.batch_indices (the one batch order every contestant shares).
"""

import base64
import json
import re

import numpy as np
import pytest

from engine import experiment
from engine.regularization import batch_indices
from engine.spec import experiment_from_dict

pytestmark = pytest.mark.anyio

STREAM = "/api/v1/race/stream"
FUNCTION = "/api/v1/function-race"
MOONS = {
    "network": {"layers": [2, 5, 1], "activations": ["tanh", "sigmoid"], "loss": "bce", "seed": 2},
    "data": {"dataset": "moons", "n": 30, "seed": 1},
}
Y2X = {
    "network": {"layers": [1, 1], "activations": ["linear"], "loss": "mse", "weights": [[[0.0]]], "biases": [[0.0]]},
    "data": {"dataset": "linear"},
}


async def stream(client, body, strict_json):
    """POST a streamed race; the events in order, each parsed as strict JSON."""
    r = await client.post(STREAM, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [strict_json(line) for line in r.text.splitlines() if line.strip()]


def assemble(events):
    """The chunks glued back together: loss (K, steps+1), lr (K, steps), state per contestant, divergence."""
    start = events[0]
    chunks = [e for e in events if e["event"] == "chunk"]
    K, steps = len(start["optimizers"]), start["steps"]
    loss = np.full((K, steps + 1), np.inf)
    lr = np.full((K, steps), np.inf)
    state = [dict() for _ in range(K)]
    for c in chunks:
        for k in range(K):
            values = np.array(c["loss"][k], dtype=float)
            assert np.all(np.isinf(loss[k, c["t0"] : c["t1"] + 1])), "every step arrives exactly once"
            loss[k, c["t0"] : c["t1"] + 1] = values
            lr[k, c["s0"] : c["s0"] + len(c["learning_rate"][k])] = np.array(c["learning_rate"][k], dtype=float)
            for name, v in c["state"][k].items():
                state[k].setdefault(name, []).extend(v)
    assert not np.isinf(loss).any() and not np.isinf(lr).any(), "the chunks cover every step"
    return loss, lr, state, chunks[-1]["diverged_at"]


async def test_stream_events_in_order_and_covering_every_step(client, strict_json):
    body = {
        **MOONS,
        "optimizers": [
            {"name": "sgd", "lr": 0.5},
            {"name": "momentum", "lr": 0.5},
            {"name": "rmsprop", "lr": 0.01},
            {"name": "adam", "lr": 0.02},
        ],
        "steps": 57,
        "chunk": 10,
        "snapshots": 5,
        "boundary_resolution": 12,
        "surface_resolution": 11,
    }
    events = await stream(client, body, strict_json)
    kinds = [e["event"] for e in events]
    assert kinds == ["start"] + ["chunk"] * 6 + ["surface", "boundary", "done"]
    start, surface, boundary = events[0], events[-3], events[-2]
    assert start["steps"] == 57 and start["groups"] == [[0, 1, 2, 3]] and start["classify"]
    assert experiment_from_dict(body).id == start["spec_id"]
    loss, lr, state, diverged = assemble(events)
    runs = experiment.train_runs(experiment_from_dict(body), 57)
    for k, run in enumerate(runs):
        np.testing.assert_allclose(loss[k], run.history.loss, rtol=1e-12)
        np.testing.assert_allclose(lr[k], run.history.learning_rate, rtol=1e-12)
    assert diverged == [None] * 4
    assert surface["kind"] == "slice" and np.shape(surface["loss"]) == (11, 11)
    assert len(surface["paths"]) == 4 and all(len(p) == len(surface["path_steps"]) for p in surface["paths"])
    assert surface["paths"][0][0] == [0.0, 0.0]  # the slice is centred on theta_0
    assert boundary["steps"] == [0, 14, 28, 43, 57]
    z = np.array(boundary["z"], dtype=float)
    assert z.shape == (4, 5, 12, 12) and np.nanmin(z) >= 0 and np.nanmax(z) <= 100
    assert np.all(z[:, 0] == z[0, 0]), "at step 0 every contestant has the same weights, so the same boundary"


async def test_stream_evaluate_every_thins_only_the_mini_batch_group(client, strict_json):
    body = {
        **MOONS,
        "optimizers": [{"name": "sgd", "lr": 0.5}, {"name": "adam", "lr": 0.02, "batch_size": 8}],
        "steps": 23,
        "chunk": 10,
        "evaluate_every": 5,
        "snapshots": 3,
        "boundary_resolution": 8,
        "surface_resolution": 9,
    }
    events = await stream(client, body, strict_json)
    assert events[0]["evaluate_every"] == 5 and events[-1]["event"] == "done"
    chunks = [e for e in events if e["event"] == "chunk"]
    loss = {k: {} for k in range(2)}
    for c in chunks:
        for k in range(2):
            loss[k].update(zip(range(c["t0"], c["t1"] + 1), c["loss"][k]))
    runs = experiment.train_runs(experiment_from_dict(body), 23)
    assert all(loss[0][t] == pytest.approx(runs[0].history.loss[t], rel=1e-12) for t in range(24))  # full batch
    kept = sorted(t for t, v in loss[1].items() if v is not None)
    # multiples of 5, and each chunk's last step (10, 20, 23: a chunk ends with the loss at its last theta)
    assert kept == [0, 5, 10, 15, 20, 23]
    assert all(loss[1][t] == pytest.approx(runs[1].history.loss[t], rel=1e-12) for t in kept)


async def test_the_race_is_fair(client, strict_json):
    """Same theta_0, same step-0 loss, same batches: an identical contestant in another group or alone agrees."""
    twin = {"name": "sgd", "lr": 0.3, "batch_size": 4}
    body = {
        **MOONS,
        "optimizers": [
            twin,
            {"name": "adam", "lr": 0.02, "batch_size": 8},
            {"name": "momentum", "lr": 0.5, "batch_size": None},
            dict(twin),
        ],
        "steps": 24,
        "seed": 7,
        "surface_resolution": 9,
        "snapshots": 2,
    }
    events = await stream(client, body, strict_json)
    assert sorted(map(sorted, events[0]["groups"])) == [[0, 3], [1], [2]]
    loss, _, _, _ = assemble(events)
    assert np.all(loss[:, 0] == loss[0, 0]), "every contestant's step-0 loss is identical"
    surface = next(e for e in events if e["event"] == "surface")
    assert all(p[0] == [0.0, 0.0] for p in surface["paths"]), "every contestant starts from theta_0"
    np.testing.assert_array_equal(loss[0], loss[3])
    spec = experiment_from_dict(body)
    for k in range(4):  # each contestant racing alone: the same curve
        alone = experiment_from_dict({**body, "optimizers": [body["optimizers"][k]]})
        np.testing.assert_array_equal(experiment.train(alone, 24)[0].loss, loss[k])
    # the batches are regularization.batch_indices(seed, t, m, batch_size): the reference engine, stepping with
    # them, reproduces the race's losses of the mini-batch contestants
    for k in (0, 1):
        for t in range(0, 12, 3):
            record = experiment.step_record(spec, t, k)
            np.testing.assert_array_equal(record.rows, batch_indices(7, t, 30, body["optimizers"][k]["batch_size"]))
            assert record.full_loss == pytest.approx(loss[k, t], rel=1e-10)
    # and batch sizes 4 and 8 walk through each epoch's one permutation in the same order
    by_4 = np.concatenate([batch_indices(7, t, 30, 4) for t in range(8)])
    by_8 = np.concatenate([batch_indices(7, t, 30, 8) for t in range(4)])
    np.testing.assert_array_equal(by_4, by_8)


async def test_y_equals_2x_paths_contour_and_divergence(client, strict_json):
    body = {
        **Y2X,
        "optimizers": [
            {"name": "sgd", "lr": 1.0},
            {"name": "sgd", "lr": 0.01},
            {"name": "momentum", "lr": 0.05},
            {"name": "adam", "lr": 0.1},
        ],
        "steps": 300,
        "state_index": 1,
    }
    events = await stream(client, body, strict_json)
    loss, lr, state, diverged = assemble(events)
    assert diverged[0] == 1  # lr 1.0: 100x the starting loss after one step (engine.divergence)
    assert diverged[1:] == [None, None, None]
    assert np.isnan(loss[0, diverged[0] + 1 :]).all() and np.isnan(lr[0, diverged[0] :]).all()
    assert np.isfinite(loss[1:]).all() and loss[3, -1] < 1e-3
    start, surface = events[0], next(e for e in events if e["event"] == "surface")
    assert start["parameter_names"] == ["w", "b"] and start["state_name"] == "b"
    assert surface["kind"] == "parameters" and surface["axes"] == ["w", "b"]
    assert len(surface["paths"]) == 4 and surface["path_steps"] == list(range(301))
    for path in surface["paths"]:
        assert path[0] == [0.0, 0.0]  # w and b from 0, as in note 000
    w_end, b_end = surface["paths"][3][-1]
    assert abs(w_end - 2) < 0.05 and abs(b_end) < 0.1  # Adam finds y = 2x
    u, _v = np.array(surface["u"]), np.array(surface["v"])
    assert u.min() < 0 < 2 < u.max(), "the contour covers theta_0 and the minimum"
    # the recorded state of b is the optimizer's own: Adam's m_hat at step 0 is the gradient dJ/db = -2 mean(y)
    assert state[3]["g"][0] == pytest.approx(-8.0)
    assert state[3]["m_hat"][0] == pytest.approx(-8.0)
    assert state[3]["update"][0] == pytest.approx(0.1, rel=1e-6)


async def test_stream_state_matches_the_reference_step_record(client, strict_json):
    body = {
        **MOONS,
        "optimizers": [{"name": "rmsprop", "lr": 0.01}, {"name": "adam", "lr": 0.02}],
        "steps": 6,
        "state_index": 3,
        "surface_resolution": 9,
        "snapshots": 2,
    }
    _, _, state, _ = assemble(await stream(client, body, strict_json))
    spec = experiment_from_dict(body)
    for k, names in ((0, ["s"]), (1, ["m", "v", "m_hat", "v_hat"])):
        for t in (0, 5):
            record = experiment.step_record(spec, t, k)
            for name in names:
                assert state[k][name][t] == pytest.approx(record.state_after[name][3], rel=1e-9)
            assert state[k]["update"][t] == pytest.approx(
                record.params_after.flat()[3] - record.params_before.flat()[3], rel=1e-9
            )


@pytest.mark.parametrize(
    "change, field",
    [
        ({"state_index": 99}, "state_index"),
        ({"steps": 5001}, "steps"),
        ({"chunk": 0}, "chunk"),
        ({"snapshots": 1}, "snapshots"),
        ({"optimizers": [{"name": "adam"}]}, "optimizers"),
        ({"optimizers": [{"name": "adam"}, {"name": "adam", "lr": True}]}, "lr"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_stream_rejects_bad_input_with_a_422_naming_the_field(client, change, field):
    body = {**MOONS, "optimizers": [{"name": "sgd"}, {"name": "adam"}], "steps": 10, **change}
    r = await client.post(STREAM, json=body)
    assert r.status_code == 422, r.text
    assert any(field in ".".join(map(str, d["loc"])) + d["msg"] for d in r.json()["detail"])


async def test_stream_over_budget_is_refused_before_training(client):
    body = {
        "network": {"layers": [64, 64, 10], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
        "data": {"dataset": "digits", "n": 1797},
        "optimizers": [{"name": "adam"}] * 8,
        "steps": 5000,
    }
    r = await client.post(STREAM, json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "steps"]


async def test_function_race(client, strict_json):
    body = {
        "problem": "ravine",
        "steps": 100,
        "resolution": 21,
        "optimizers": [
            {"name": "sgd", "lr": 0.1},
            {"name": "momentum", "lr": 0.07},
            {"name": "adam", "lr": 0.1, "schedule": {"name": "cosine", "T": 100}},
            {"name": "rmsprop", "lr": 0.05},
        ],
    }
    r = await client.post(FUNCTION, json=body)
    assert r.status_code == 200, r.text
    d = strict_json(r.text)
    assert d["problem"]["name"] == "ravine" and d["problem"]["start"] == [-4.5, 1.0]
    assert np.shape(d["contour"]["z"]) == (21, 21)
    runs = d["runs"]
    assert [run["optimizer"]["name"] for run in runs] == ["sgd", "momentum", "adam", "rmsprop"]
    assert all(run["path"][0] == [-4.5, 1.0] and run["loss"][0] == runs[0]["loss"][0] for run in runs)
    sgd = runs[0]
    assert sgd["diverged"] and sgd["diverged_at"] is not None  # lr 0.1 > 2/25 across the ravine
    assert sgd["loss"][-1] is None and sgd["path"][-1] == [None, None]  # NaN became null
    assert not runs[2]["diverged"] and runs[2]["loss"][-1] < runs[2]["loss"][0] / 50
    assert runs[2]["learning_rate"][0] == 0.1 and runs[2]["learning_rate"][-1] < 1e-3  # cosine down to lr_min = 0
    assert set(runs[2]["states"]) == {"m", "v", "m_hat", "v_hat"} and len(runs[2]["grad"]) == 100


@pytest.mark.parametrize(
    "change, field",
    [
        ({"problem": "himmelblau"}, "problem"),
        ({"start": [1.0]}, "start"),
        ({"start": [1e9, 0.0]}, "start"),
        ({"steps": -1}, "steps"),
        ({"resolution": 500}, "resolution"),
        ({"optimizers": [{"name": "sgd", "batch_size": 1}, {"name": "adam"}]}, "batch_size"),
        ({"optimizers": [{"name": "sgd"}] * 9}, "optimizers"),
        ({"optimizers": [{"name": "sgd", "momentum": 1.5}, {"name": "adam"}]}, "momentum"),
        ({"optimizers": [{"name": "sgd", "beta1": 0.9}, {"name": "adam"}]}, "beta1"),
    ],
)
async def test_function_race_rejects_bad_input_with_a_422_naming_the_field(client, change, field):
    body = {"problem": "beale", "steps": 10, "optimizers": [{"name": "sgd"}, {"name": "adam"}], **change}
    r = await client.post(FUNCTION, json=body)
    assert r.status_code == 422, r.text
    assert any(field in ".".join(map(str, d["loc"])) + d["msg"] for d in r.json()["detail"])


# ---- the divergence rule in the API (engine/divergence.py): train, race, step ---------------------------------------
async def test_diverged_at_follows_the_rule_in_train_race_and_step(client, strict_json, preset):
    """y = 2x with SGD lr 1 is 100x its starting loss after one step: diverged_at 1 in /train and /race (the old
    NaN-only test said 153), and /step's `diverged` is true from the step whose loss breaks the rule."""
    spec = preset("linear-y-2x")
    spec["optimizer"] = {"name": "sgd", "lr": 1.0}
    run = strict_json((await client.post("/api/v1/train", json={**spec, "steps": 200})).text)
    assert run["diverged"] is True and run["diverged_at"] == 1
    assert run["loss"][1] > 100 * run["loss"][0] and all(v is None for v in run["loss"][2:])
    del spec["optimizer"]
    spec["optimizers"] = [{"name": "sgd", "lr": 1.0}, {"name": "sgd", "lr": 0.01}]
    runs = strict_json((await client.post("/api/v1/race", json={**spec, "steps": 200})).text)["runs"]
    assert [r["diverged_at"] for r in runs] == [1, None] and [r["diverged"] for r in runs] == [True, False]
    for t, expected in ((0, False), (1, True), (5, True)):
        body = {"spec": spec, "t": t, "contestant": 0}
        d = strict_json((await client.post("/api/v1/step", json=body)).text)
        assert d["diverged"] is expected, t
    d = strict_json((await client.post("/api/v1/step", json={"spec": spec, "t": 5, "contestant": 1})).text)
    assert d["diverged"] is False


async def test_sound_spiral_run_is_never_flagged(client, strict_json, preset):
    spec = preset("spiral-2-8-8-1")  # Adam 0.01
    run = strict_json((await client.post("/api/v1/train", json={**spec, "steps": 400})).text)
    assert run["diverged"] is False and run["diverged_at"] is None and None not in run["loss"]


# ---- the page: GET /race, POST /race/start, GET /race/events, fragments, CSV -------------------------------------------
def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream body."""
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        event = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        if event is None:
            continue
        out.append((event, "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))))
    return out


def sse_url(html: str) -> str:
    return re.search(r'sse-connect="([^"]+)"', html).group(1).replace("&amp;", "&")


async def test_page_opens_on_the_default_race_that_teaches(client):
    r = await client.get("/race")
    assert r.status_code == 200
    html = r.text
    assert "/race/events?spec=" in html and "steps=1000" in sse_url(html)
    # the two momentum conventions are named, with each contestant's steady step size
    assert "SGD + momentum (PyTorch&#39;s form)" in html and "Momentum (notes&#39; form)" in html
    assert r"\frac{0.3}{1-0.9} = 3.00" in html and r"\eta = 3" in html
    assert "Why this race turns out this way" in html
    assert "common.js" not in html and "window.BPV" not in html
    assert "<script>" not in html and " onclick=" not in html


async def test_events_stream_status_standings_and_the_race(client):
    spec = experiment_from_dict({**MOONS, "optimizers": [{"name": "sgd", "lr": 0.5}, {"name": "adam", "lr": 0.05}]})
    r = await client.get(f"/race/events?spec={spec.to_token()}&steps=40")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [e for e, _ in events]
    assert names[0] == "status" and names[-1] == "done" and names.count("race") == 1
    assert "standings" in names and names.index("race") < names.index("landscape")  # curves first
    data = json.loads(re.search(r'id="race-json">(.*)</script>', dict(events)["race"], re.S).group(1))
    land = json.loads(re.search(r'id="landscape-json">(.*)</script>', dict(events)["landscape"], re.S).group(1))
    result = experiment.train(spec, 40)
    for k in range(2):  # the page's curves are the engine's
        np.testing.assert_allclose(data["loss"][k], result[k].loss, rtol=1e-12)
    assert data["frames"][0] == 0 and data["frames"][-1] == 40
    final = data["standings"][-1]
    assert [row["rank"] for row in final] == ([1, 2] if result[0].loss[-1] < result[1].loss[-1] else [2, 1])
    assert land["explained"] is not None and 0 < sum(land["explained"]) <= 1
    assert "of the paths' squared distance from θ₀" in land["caption"]
    # the colour scale covers the losses along the paths
    path_losses = [v for row in data["loss"] for v in row if v is not None]
    lo = min(path_losses)
    assert (10 ** land["zmin"] if land["log"] else land["zmin"]) <= lo * (1 + 1e-9)
    # the decision boundaries of a two-input binary classifier: P(class 1) in percent, the engine's prediction
    b = land["boundary"]
    R, S = b["resolution"], len(b["steps"])
    z = np.frombuffer(base64.b64decode(b["z"]), dtype=np.uint8).reshape(2, S, R, R)
    assert b["steps"][0] == 0 and b["steps"][-1] == 40 and z.max() <= 100
    from engine.backprop import predict

    prep = experiment.prepare(spec)
    xs, ys = np.linspace(*b["x"], R), np.linspace(*b["y"], R)
    p = predict(prep.net, prep.params0, np.array([[xs[5], ys[9]]]))[0, 0]
    assert z[1, 0, 9, 5] == round(100 * p)  # theta_0, row = y, column = x
    # every weight's optimizer state is in the block: g, the update, and Adam's m, v, m_hat, v_hat
    assert set(data["state"][1]) == {"g", "update", "m", "v", "m_hat", "v_hat"}
    P = len(data["parameter_names"])
    raw = base64.b64decode(data["state"][1]["g"])
    rows = len(data["state_steps"])
    assert len(raw) == 4 * P * rows
    # weight by weight, byte-shuffled (app/views/race.py _b64): undone, row s of weight w is g of update state_steps[s]
    g = np.ascontiguousarray(np.frombuffer(raw, dtype=np.uint8).reshape(4, -1).T).view("<f4").reshape(P, rows)
    for s in (0, rows - 1):
        t = data["state_steps"][s]
        expected = experiment.step_record(spec, t - 1, 1).grad  # update t uses the gradient at theta_{t-1}
        np.testing.assert_array_equal(g[:, s], expected.astype(np.float32))


async def test_a_mini_batch_race_evaluates_its_losses_at_the_frames(client):
    """GD against SGD on batches of 4: the whole-set loss of the mini-batch group at the playback frames only (every
    ceil(steps / 300)-th step), the engine's numbers there; the full-batch contestant keeps every step."""
    spec = experiment_from_dict(
        {**MOONS, "optimizers": [{"name": "sgd", "lr": 0.5}, {"name": "sgd", "lr": 0.1, "batch_size": 4}]}
    )
    page = await client.get(f"/race?spec={spec.to_token()}&steps=700")
    assert "the loss on every training row, evaluated every 3 steps, joined by lines" in page.text
    r = await client.get(f"/race/events?spec={spec.to_token()}&steps=700")
    data = json.loads(re.search(r'id="race-json">(.*)</script>', dict(sse_events(r.text))["race"], re.S).group(1))
    assert data["evaluate_every"] == 3
    assert data["frames"] == [*range(0, 700, 3), 700]
    dense = experiment.train(spec, 700)
    np.testing.assert_allclose(data["loss"][0], dense[0].loss, rtol=1e-12)  # full batch: every step
    mini = np.array([np.nan if v is None else v for v in data["loss"][1]])
    kept = np.flatnonzero(np.isfinite(mini))
    assert set(data["frames"]) <= set(kept) and len(kept) < 300  # the frames, and each progress chunk's last step
    np.testing.assert_allclose(mini[kept], dense[1].loss[kept], rtol=1e-12)
    assert all(row["loss"] != "—" for frame in data["standings"] for row in frame)  # a number at every frame


async def test_events_refuse_bad_input_with_a_4xx(client):
    r = await client.get("/race/events?spec=nonsense&steps=10")
    assert 400 <= r.status_code < 500 and "spec" in r.text
    spec = experiment_from_dict({**MOONS, "optimizers": [{"name": "sgd"}, {"name": "adam"}]})
    r = await client.get(f"/race/events?spec={spec.to_token()}&steps=0")
    assert r.status_code == 422 and "steps" in r.text


async def test_start_form_runs_the_race_and_pushes_its_url(client):
    form = {
        "problem": "moons",
        "steps": "30",
        "loss": "mse",
        "init": "xavier",
        "c0_optimizer": "sgd",
        "c0_h_lr": "0.5",
        "c0_h_momentum": "0.9",
        "c3_optimizer": "momentum",
        "c3_h_lr": "5",
        "c3_h_beta": "0.9",
    }
    r = await client.post("/race/start", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    url = r.headers["HX-Push-Url"]
    assert url.startswith("/race?spec=") and "steps=30" in url
    token = re.search(r"spec=([^&]+)", url).group(1)
    spec = experiment.Experiment.from_token(token)
    assert [o.name for o in spec.optimizers] == ["sgd", "momentum"]
    assert spec.network.loss == "mse" and spec.network.init == "xavier"
    assert r"\frac{0.5}{1-0.9} = 5.00" in r.text  # PyTorch's momentum: steady step lr/(1-mu)
    # a plain form post redirects to the race's link
    r = await client.post("/race/start", data=form)
    assert r.status_code == 303 and r.headers["location"] == url


@pytest.mark.parametrize(
    "change, field",
    [
        ({"c0_h_lr": "fast"}, "optimizer.lr"),
        ({"steps": "0"}, "steps"),
        ({"loss": "cross_entropy"}, "network.loss"),
        ({"init": "magic"}, "network.init"),
        ({"c3_optimizer": None}, "optimizers"),
    ],
)
async def test_start_form_names_the_field_that_is_wrong(client, change, field):
    form = {"problem": "moons", "steps": "30", "c0_optimizer": "sgd", "c3_optimizer": "adam"}
    form.update(change)
    form = {k: v for k, v in form.items() if v is not None}
    r = await client.post("/race/start", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 422 and field in r.text


async def test_old_links_redirect_to_the_spec_form(client):
    c = base64.urlsafe_b64encode(json.dumps([{"name": "sgd", "lr": 0.3}, {"name": "adam"}]).encode()).decode()
    r = await client.get(f"/race?problem=moons&c={c.rstrip('=')}&steps=50")
    assert r.status_code == 307
    location = r.headers["location"]
    assert location.startswith("/race?spec=") and "steps=50" in location
    r = await client.get(location)
    assert r.status_code == 200 and "steps=50" in sse_url(r.text)


async def test_a_bad_link_says_so_and_opens_the_default(client):
    r = await client.get("/race?spec=garbage&steps=10")
    assert r.status_code == 400 and "The link had problems" in r.text and "steps=1000" in sse_url(r.text)


async def test_fragments_contestant_and_loss_field(client):
    r = await client.get("/race/contestant?c0_optimizer=sgd&c1_optimizer=adam")
    assert r.status_code == 200 and 'name="c2_optimizer"' in r.text
    r = await client.get("/race/loss-field?problem=digits")
    assert r.status_code == 200 and 'value="cross_entropy"' in r.text and 'value="bce"' not in r.text
    r = await client.get("/race/loss-field?problem=nope")
    assert r.status_code == 422 and "problem" in r.text


async def test_csv_has_test_loss_and_final_weights(client):
    spec = experiment_from_dict({**MOONS, "optimizers": [{"name": "sgd", "lr": 0.5}, {"name": "adam", "lr": 0.05}]})
    spec = experiment_from_dict({**spec.to_dict(), "data": {**spec.to_dict()["data"], "test_fraction": 0.2}})
    r = await client.get(f"/race/race.csv?spec={spec.to_token()}&steps=20")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = [line.split(",") for line in r.text.strip().split("\n")]
    assert rows[0] == ["contestant", "optimizer", "quantity", "step", "parameter", "value"]
    quantities = {row[2] for row in rows[1:]}
    assert {"train_loss", "test_loss", "final_weight", "learning_rate"} <= quantities
    runs = experiment.train_runs(spec, 20)
    test_loss = [float(row[-1]) for row in rows if row[0] == "2" and row[2] == "test_loss"]
    np.testing.assert_allclose(test_loss, runs[1].history.test_loss, rtol=1e-15)
    weights = [float(row[-1]) for row in rows if row[0] == "1" and row[2] == "final_weight"]
    np.testing.assert_allclose(weights, runs[0].theta, rtol=1e-15)


async def test_surface_pca_is_the_landscape_the_page_draws(client, strict_json):
    """kind pca: the plane of the paths' first two principal directions through theta_0, as /race draws it; both
    centre every kind on theta_0, so every path starts at (0, 0)."""
    from app.views import race as rv

    body = {**MOONS, "optimizers": [{"name": "sgd", "lr": 0.5}, {"name": "adam", "lr": 0.05}]}
    r = await client.post("/api/v1/surface", json={"spec": body, "kind": "pca", "steps": 60, "resolution": 33})
    assert r.status_code == 200, r.text
    d = strict_json(r.text)
    assert d["axes"] == ["PC 1", "PC 2"] and 0.5 < sum(d["explained"]) <= 1
    assert all(path[0] == [0.0, 0.0] for path in d["paths"])
    page = rv.landscape(rv.race(experiment_from_dict(body), 60), 33)
    np.testing.assert_allclose(d["u"], page["u"], rtol=1e-12)
    np.testing.assert_allclose(d["v"], page["v"], rtol=1e-12)
    np.testing.assert_allclose(d["explained"], page["explained"], rtol=1e-12)
    r = await client.post("/api/v1/surface", json={"spec": body, "kind": "slice", "steps": 20, "resolution": 9})
    assert all(path[0] == [0.0, 0.0] for path in strict_json(r.text)["paths"])  # the slice is centred on theta_0 too
    r = await client.post("/api/v1/surface", json={"spec": body, "kind": "pca", "steps": 0})
    assert r.status_code == 422 and "steps" in r.text


def test_the_default_race_teaches_what_the_notes_say():
    """Momentum (both forms) and Adam end far below plain SGD; the two momentum forms, one rule with lr rescaled,
    end within 5% of each other; nobody diverges."""
    from app.views import race as rv

    spec = experiment_from_dict(rv.race_spec(rv.DEFAULT_PROBLEM, rv.DEFAULT_RACE))
    sgd, torch_momentum, notes_momentum, adam = (h.loss[-1] for h in experiment.train(spec, rv.DEFAULT_STEPS))
    assert max(torch_momentum, notes_momentum, adam) < sgd / 5
    assert abs(torch_momentum - notes_momentum) < 0.05 * torch_momentum
    assert all(h.diverged_at is None for h in experiment.train(spec, rv.DEFAULT_STEPS))


# ---- races on 2-D test functions (engine.problems) on the same page --------------------------------------------------
def race_data(text: str) -> dict:
    """The playback data block of a /race/events stream."""
    events = dict(sse_events(text))
    return json.loads(re.search(r">(.*)</script>", events["race"], re.S).group(1))


def landscape_data(text: str) -> dict:
    events = dict(sse_events(text))
    return json.loads(re.search(r">(.*)</script>", events["landscape"], re.S).group(1))


async def test_an_old_rosenbrock_link_opens_that_function_race(client, strict_json):
    """/race?problem=rosenbrock (the old page's link) opens Rosenbrock's default race: every path starts at the
    function's start (-1.5, 2.5); the numbers are the API's /api/v1/function-race to the last digit; Adam ends
    nearer the minimum (1, 1) than plain SGD."""
    from app.views import race as rv

    r = await client.get("/race?problem=rosenbrock")
    assert r.status_code == 200 and 'data-testid="race-url-error"' not in r.text
    html = r.text
    assert '<option value="rosenbrock" selected>' in html and 'data-testid="function-equations"' in html
    assert r"f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2" in html
    url = sse_url(html)
    assert url.startswith("/race/events?problem=rosenbrock&c=") and "steps=1000" in url
    r = await client.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [e for e, _ in sse_events(r.text)]
    assert names == ["status", "standings", "race", "landscape", "status", "done"]
    data = race_data(r.text)
    assert data["labels"] == ["SGD", "SGD + momentum (PyTorch's form)", "RMSprop", "Adam"]
    api = await client.post(
        FUNCTION, json={"problem": "rosenbrock", "steps": 1000, "optimizers": rv.FUNCTION_RACES["rosenbrock"]}
    )
    runs = strict_json(api.text)["runs"]
    land = landscape_data(r.text)
    for k, run in enumerate(runs):
        assert land["paths"][k][0] == [-1.5, 2.5]
        assert data["loss"][k] == run["loss"] and land["paths"][k] == run["path"]
    assert data["diverged_at"] == [None] * 4
    sgd, adam = np.array(runs[0]["path"][-1]), np.array(runs[3]["path"][-1])
    assert np.linalg.norm(adam - 1) < np.linalg.norm(sgd - 1) / 10  # Adam (0.980, 0.961), SGD (-0.812, 0.668)
    np.testing.assert_allclose(adam, [0.980, 0.961], atol=5e-4)
    np.testing.assert_allclose(sgd, [-0.812, 0.668], atol=5e-4)
    # the standings at the end: f(theta_1000) and where each contestant is, formatted by the server
    assert (
        data["standings"][-1][3]["where"] == "(0.980, 0.961)" and data["standings"][-1][0]["where"] == "(−0.812, 0.668)"
    )
    # the contour: log-spaced contours, the minimum marked, the colour scale covering the start's value
    assert land["log"] and land["contours"]["size"] in (0.25, 0.5)
    assert {"x": 1.0, "y": 1.0, "kind": "minimum", "text": "minimum f = 0 at (1, 1)"} in land["marks"]
    assert land["zmin"] <= np.log10(np.nanmin(data["loss"])) or "lowest colour" in land["range_text"]
    assert land["zmax"] >= np.log10(12.5)


async def test_a_function_link_with_contestants_and_the_divergence_rule(client):
    """?problem=&c= keeps the old page's contestants; a run is flagged by the engine's rule (f > 100 f(theta_0)):
    SGD at lr 0.1 on the ravine multiplies y by -1.5 a step and breaks it at step 7."""
    c = base64.urlsafe_b64encode(json.dumps([{"name": "sgd", "lr": 0.1}, {"name": "adam", "lr": 0.1}]).encode())
    r = await client.get(f"/race?problem=ravine&c={c.decode().rstrip('=')}&steps=60")
    assert r.status_code == 200 and "steps=60" in sse_url(r.text)
    r = await client.get(sse_url(r.text))
    data = race_data(r.text)
    assert data["diverged_at"] == [7, None]
    assert data["standings"][-1][0]["status"] == "diverged at step 7" and data["standings"][-1][0]["rank"] == 2
    assert data["loss"][0][7] > 100 * data["loss"][0][0] > data["loss"][0][6] and data["loss"][0][8] is None
    r = await client.get("/race?problem=ravine&c=notbase64!&steps=60")
    assert r.status_code == 400 and 'data-testid="race-url-error"' in r.text


async def test_the_form_starts_a_function_race_and_its_csv(client):
    form = {"problem": "beale", "steps": "50", "c0_optimizer": "sgd", "c0_h_lr": "0.01", "c1_optimizer": "adam"}
    r = await client.post("/race/start", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    url = r.headers["HX-Push-Url"]
    assert url.startswith("/race?problem=beale&c=") and url.endswith("steps=50")
    r = await client.get(url)
    assert r.status_code == 200 and '<option value="beale" selected>' in r.text
    r = await client.get(sse_url(r.text).replace("/race/events", "/race/race.csv"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = [line.split(",") for line in r.text.strip().split("\n")]
    x0 = [row for row in rows if row[2] == "theta" and row[3] == "0"]
    assert [(row[0], row[4], row[5]) for row in x0] == [
        ("1", "x", "0.7"),
        ("1", "y", "1.4"),
        ("2", "x", "0.7"),
        ("2", "y", "1.4"),
    ]
    assert len([row for row in rows if row[2] == "final_weight"]) == 4
    r = await client.get("/race/loss-field?problem=saddle")
    assert r.status_code == 200 and "θ₀ = (1.5, 0.001)" in r.text and 'name="loss"' not in r.text
