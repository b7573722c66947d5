"""Every documented error of JSON API v1, and divergence (a 200, never invalid JSON, never a 500).

Errors are 4xx in FastAPI's shape: {"detail": [{"loc": [...], "msg": "field: what is wrong", ...}]}, and every
error body is strict JSON (no NaN/Infinity tokens, even when the input had them).
"""

import base64
import json
import math
import zlib

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.anyio

API = "/api/v1"
MB = 1_000_000


def small_train(**overrides):
    body = {
        "network": {"layers": [2, 3, 1]},
        "data": {"dataset": "xor"},
        "optimizer": {"name": "sgd", "lr": 0.5},
        "steps": 5,
    }
    body.update(overrides)
    return body


SPEC = {k: v for k, v in small_train().items() if k != "steps"}


def field_head(detail: dict) -> str:
    return detail["msg"].partition(":")[0].strip()


def assert_error(r: httpx.Response, strict_json, status: int, *fields: str) -> dict:
    """`status` with a strict-JSON body whose first message starts with one of `fields` (if given)."""
    assert r.status_code == status, f"{r.status_code}: {r.text[:1000]}"
    assert r.headers["content-type"].startswith("application/json")
    body = strict_json(r.text)
    detail = body["detail"]
    assert isinstance(detail, list) and detail and all(isinstance(d, dict) and "msg" in d for d in detail), body
    if fields:
        assert any(
            field_head(detail[0]) == f
            or field_head(detail[0]).startswith(f + ".")
            or field_head(detail[0]).startswith(f + "[")
            for f in fields
        ), detail[0]
    return body


# --- schema errors (pydantic, strict) ----------------------------------------------------------------------------

SCHEMA_ERRORS = {
    "bool as int (steps)": (small_train(steps=True), "steps"),
    "bool as int (layer size)": (small_train(network={"layers": [2, True, 1]}), "network.layers"),
    "bool as int (seed)": (small_train(seed=False), "seed"),
    "bool as float (lr)": (small_train(optimizer={"name": "sgd", "lr": True}), "optimizer.lr"),
    "string as number (lr)": (small_train(optimizer={"name": "sgd", "lr": "0.1"}), "optimizer.lr"),
    "string as int (steps)": (small_train(steps="5"), "steps"),
    "string in X": (small_train(data={"X": [["1", 0]], "Y": [[1]]}), "data.X"),
    "float as int (steps)": (small_train(steps=5.5), "steps"),
    "unknown top-level field": (small_train(epochs=5), "epochs"),
    "unknown optimizer field": (
        small_train(optimizer={"name": "sgd", "learning_rate": 0.1}),
        "optimizer.learning_rate",
    ),
    "unknown network field": (small_train(network={"layers": [2, 3, 1], "depth": 2}), "network.depth"),
    "unknown optimizer name": (small_train(optimizer={"name": "lbfgs"}), "optimizer.name"),
    "unknown activation": (
        small_train(network={"layers": [2, 3, 1], "activations": ["gelu", "sigmoid"]}),
        "network.activations",
    ),
    "unknown dataset": (small_train(data={"dataset": "mnist"}), "data.dataset"),
    "negative steps": (small_train(steps=-1), "steps"),
    "too many steps": (small_train(steps=10**6), "steps"),
    "missing network": ({"data": {"dataset": "xor"}, "optimizer": {"name": "sgd"}, "steps": 1}, "network"),
    "layer too wide": (small_train(network={"layers": [2, 100_000, 1]}), "network.layers"),
    "zero lr": (small_train(optimizer={"name": "sgd", "lr": 0}), "optimizer.lr"),
    "X and dataset": (small_train(data={"dataset": "xor", "X": [[0, 0]], "Y": [[0]]}), "data"),
    "X without Y": (small_train(data={"X": [[0, 0]]}), "data"),
}


@pytest.mark.parametrize("case", list(SCHEMA_ERRORS))
async def test_schema_errors(client, strict_json, case):
    body, field = SCHEMA_ERRORS[case]
    r = await client.post(f"{API}/train", json=body)
    body = assert_error(r, strict_json, 422, field)
    assert body["detail"][0]["loc"][0] == "body"


NON_FINITE = [
    b'{"network": {"layers": [2, 3, 1]}, "data": {"dataset": "xor"}, "optimizer": {"name": "sgd", "lr": NaN}, "steps": 1}',
    b'{"network": {"layers": [2, 3, 1]}, "data": {"dataset": "xor"}, "optimizer": {"name": "sgd", "lr": Infinity}, "steps": 1}',
    b'{"network": {"layers": [2, 3, 1]}, "data": {"X": [[-Infinity, 0]], "Y": [[1]]}, "optimizer": {"name": "sgd"}, "steps": 1}',
    b'{"network": {"layers": [2, 3, 1], "weights": [[[NaN, 0], [0, 0], [0, 0]], [[0, 0, 0]]], "biases": [[0, 0, 0], [0]]}, "data": {"dataset": "xor"}, "optimizer": {"name": "sgd"}, "steps": 1}',
    b'{"network": {"layers": [2, 3, 1]}, "data": {"dataset": "xor"}, "optimizer": {"name": "sgd"}, "steps": 1, "l2": 1e400}',
]


@pytest.mark.parametrize("raw", NON_FINITE, ids=["NaN lr", "Infinity lr", "-Infinity in X", "NaN weight", "1e400 l2"])
async def test_non_finite_literals_are_refused_with_strict_json(client, strict_json, raw):
    r = await client.post(f"{API}/train", content=raw, headers={"content-type": "application/json"})
    body = assert_error(r, strict_json, 422)
    assert b"NaN" not in r.content and b"Infinity" not in r.content
    assert field_head(body["detail"][0]) != "body"  # names the field


async def test_malformed_json_is_422(client, strict_json):
    r = await client.post(f"{API}/train", content=b'{"network": ', headers={"content-type": "application/json"})
    assert_error(r, strict_json, 422)


async def _documented_statuses(client, strict_json, path):
    schema = strict_json((await client.get("/openapi.json")).text)
    return {int(code) for code in schema["paths"][path]["post"]["responses"]}


@pytest.mark.parametrize("path", ["/trace", "/train", "/step"])
async def test_body_that_is_not_utf8_gets_a_documented_status(client, strict_json, path):
    """Found by schemathesis: bytes that are not UTF-8 got an undocumented 400 from FastAPI's body parser."""
    r = await client.post(f"{API}{path}", content=b'\xff{"t": 0}', headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert r.status_code in await _documented_statuses(client, strict_json, f"{API}{path}"), r.text
    assert_error(r, strict_json, r.status_code)  # the documented shape: detail is a list of {loc, msg, type}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_body_with_wrong_content_type_is_a_4xx_not_a_500(client, strict_json, content_type):
    """Found by schemathesis: FastAPI's error then carries the raw bytes as `input`, which json.dumps refused."""
    raw = json.dumps(small_train()).encode()
    r = await client.post(f"{API}/train", content=raw, headers={"content-type": content_type})
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    assert r.status_code in await _documented_statuses(client, strict_json, f"{API}/train"), r.text
    assert_error(r, strict_json, r.status_code)


# --- engine ValueErrors: 422 naming the field --------------------------------------------------------------------

ENGINE_ERRORS = {
    "softmax hidden layer": (
        "/train",
        small_train(network={"layers": [2, 3, 1], "activations": ["softmax", "sigmoid"]}),
        ("network.activations", "activations"),
    ),
    "bce without sigmoid output": (
        "/train",
        small_train(network={"layers": [2, 3, 1], "activations": ["tanh", "tanh"], "loss": "bce"}),
        ("network.loss", "loss"),
    ),
    "cross_entropy without softmax": (
        "/train",
        small_train(network={"layers": [2, 3, 1], "activations": ["tanh", "sigmoid"], "loss": "cross_entropy"}),
        ("network.loss", "loss"),
    ),
    "activations count": (
        "/train",
        small_train(network={"layers": [2, 3, 1], "activations": ["tanh"]}),
        ("network.activations", "activations"),
    ),
    "wrong weight shapes": (
        "/train",
        small_train(network={"layers": [2, 3, 1], "weights": [[[1, 2]], [[1, 2, 3]]], "biases": [[0, 0, 0], [0]]}),
        ("network.weights",),
    ),
    "wrong bias length": (
        "/trace",
        {
            "network": {"layers": [2, 2, 1], "weights": [[[1, 2], [3, 4]], [[1, 2]]], "biases": [[0], [0]]},
            "data": {"dataset": "xor"},
        },
        ("network.biases",),
    ),
    "biases without weights": (
        "/trace",
        {"network": {"layers": [2, 2, 1], "biases": [[0, 0], [0]]}, "data": {"dataset": "xor"}},
        ("network.biases",),
    ),
    "input size differs from the dataset": ("/train", small_train(network={"layers": [3, 3, 1]}), ("network.layers",)),
    "output size differs from the dataset": (
        "/trace",
        {
            "network": {"layers": [2, 3, 2], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
            "data": {"dataset": "xor"},
        },
        ("network.layers",),
    ),
    "input size differs from explicit X": (
        "/trace",
        {"network": {"layers": [2, 1]}, "data": {"X": [[1, 2, 3]], "Y": [[1]]}},
        ("network.layers",),
    ),
    "X and Y row counts": (
        "/trace",
        {"network": {"layers": [2, 1]}, "data": {"X": [[1, 2], [3, 4]], "Y": [[1]]}},
        ("data.Y", "Y"),
    ),
    "ragged X": (
        "/trace",
        {"network": {"layers": [2, 1]}, "data": {"X": [[1, 2], [3]], "Y": [[1], [0]]}},
        ("data.X", "X"),
    ),
    "unknown hyperparameter for the optimizer": (
        "/train",
        small_train(optimizer={"name": "adam", "momentum": 0.9}),
        ("optimizer.momentum",),
    ),
    "unknown hyperparameter in a race": (
        "/race",
        {**small_train(), "optimizer": None, "optimizers": [{"name": "sgd"}, {"name": "rmsprop", "beta1": 0.9}]},
        ("optimizers", "optimizer.beta1"),
    ),
    "unknown schedule parameter": (
        "/train",
        small_train(schedule={"name": "cosine", "gamma": 0.5}),
        ("schedule.gamma",),
    ),
    "n over the dataset's size": (  # digits has 1797 images; the schema's bound is the server's max_rows
        "/train",
        small_train(
            network={"layers": [64, 4, 10], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
            data={"dataset": "digits", "n": 1900},
        ),
        ("data.n", "n"),
    ),
    "dropout on the output layer": ("/train", small_train(dropout=[0.1, 0.5]), ("dropout",)),
    "dropout count": (
        "/train",
        small_train(network={"layers": [2, 3, 3, 1]}, dropout=[0.1, 0.1, 0.1, 0.0]),
        ("dropout",),
    ),
    "surface i equals j": ("/surface", {"spec": SPEC, "i": 1, "j": 1}, ("i", "j")),
    "surface parameter index out of range": ("/surface", {"spec": SPEC, "i": 0, "j": 999}, ("i", "j")),
}


@pytest.mark.parametrize("case", list(ENGINE_ERRORS))
async def test_engine_errors_are_422_naming_the_field(client, strict_json, case):
    path, body, fields = ENGINE_ERRORS[case]
    body = {k: v for k, v in body.items() if v is not None}
    r = await client.post(f"{API}{path}", json=body)
    assert_error(r, strict_json, 422, *fields)


async def test_engine_error_on_step_gradcheck_surface(client, strict_json):
    spec = {**SPEC, "network": {"layers": [3, 3, 1]}}
    for path in ("/step", "/gradcheck", "/surface"):  # /spec only canonicalises; it does not build the data
        r = await client.post(f"{API}{path}", json={"spec": spec})
        assert_error(r, strict_json, 422, "network.layers")


# --- budgets -----------------------------------------------------------------------------------------------------

BIG_NET = {"layers": [64, 256, 256, 10], "activations": ["relu", "relu", "softmax"], "loss": "cross_entropy"}
DIGITS = {"dataset": "digits", "n": 1797}


async def test_budget_steps_times_rows(client, strict_json):
    r = await client.post(
        f"{API}/train", json={"network": BIG_NET, "data": DIGITS, "optimizer": {"name": "sgd"}, "steps": 5000}
    )
    body = assert_error(r, strict_json, 422, "steps")
    assert body["detail"][0]["loc"] == ["body", "steps"]
    assert "limit" in body["detail"][0]["msg"]


async def test_budget_race_contestants(client, strict_json):
    """A run that fits alone is refused with 8 contestants."""
    alone = {"network": BIG_NET, "data": DIGITS, "optimizer": {"name": "sgd"}, "steps": 10}
    r = await client.post(f"{API}/train", json=alone)
    assert r.status_code == 200, r.text[:300]
    race = {**alone, "optimizer": None, "optimizers": [{"name": "sgd"}] * 8, "steps": 600}
    race = {k: v for k, v in race.items() if v is not None}
    assert_error(await client.post(f"{API}/race", json=race), strict_json, 422, "steps")


async def test_budget_step_t(client, strict_json):
    spec = {"network": BIG_NET, "data": DIGITS, "optimizer": {"name": "sgd"}}
    assert_error(await client.post(f"{API}/step", json={"spec": spec, "t": 5000}), strict_json, 422, "t")


async def test_budget_trace_values(client, strict_json):
    net = {
        "layers": [64, 256, 256, 256, 10],
        "activations": ["relu", "relu", "relu", "softmax"],
        "loss": "cross_entropy",
    }
    assert_error(await client.post(f"{API}/trace", json={"network": net, "data": DIGITS}), strict_json, 422, "data")


async def test_too_many_contestants(client, strict_json):
    body = {**small_train(), "optimizers": [{"name": "sgd"}] * 9}
    del body["optimizer"]
    body = assert_error(await client.post(f"{API}/race", json=body), strict_json, 422, "optimizers")
    assert body["detail"][0]["loc"] == ["body", "optimizers"]


async def test_race_needs_two_contestants(client, strict_json):
    body = {**small_train(), "optimizers": [{"name": "sgd"}]}
    del body["optimizer"]
    assert_error(await client.post(f"{API}/race", json=body), strict_json, 422, "optimizers")


# --- body size ---------------------------------------------------------------------------------------------------


def big_body() -> bytes:
    rows = ",".join(["[0.5,0.25]"] * 110_000)
    body = ('{"network": {"layers": [2, 1]}, "data": {"X": [' + rows + '], "Y": [[1]]}}').encode()
    assert len(body) > MB
    return body


async def test_body_over_1mb_with_content_length_is_413(client, strict_json):
    raw = big_body()
    r = await client.post(f"{API}/trace", content=raw, headers={"content-type": "application/json"})
    assert r.request.headers["content-length"] == str(len(raw))
    assert_error(r, strict_json, 413, "body")


async def test_body_over_1mb_chunked_is_413(client, strict_json):
    raw = big_body()

    async def chunks():
        for i in range(0, len(raw), 64 * 1024):
            yield raw[i : i + 64 * 1024]

    r = await client.post(f"{API}/trace", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, strict_json, 413, "body")


def test_body_over_1mb_chunked_is_413_on_uvicorn(start_server, strict_json):
    """The same through a real server."""
    base = start_server()
    raw = big_body()

    def chunks():
        for i in range(0, len(raw), 64 * 1024):
            yield raw[i : i + 64 * 1024]

    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post(f"{API}/trace", content=chunks(), headers={"content-type": "application/json"})
        assert_error(r, strict_json, 413, "body")
        r = c.post(f"{API}/trace", content=raw, headers={"content-type": "application/json"})
        assert_error(r, strict_json, 413, "body")
        assert c.get("/healthz").text == "ok"


async def test_body_just_under_the_limit_is_read(client, strict_json):
    rows = ",".join(["[0.5,0.25]"] * 80_000)
    raw = ('{"network": {"layers": [2, 1]}, "data": {"X": [' + rows + '], "Y": [[1]]}}').encode()
    assert len(raw) < MB
    r = await client.post(f"{API}/trace", content=raw, headers={"content-type": "application/json"})
    assert_error(r, strict_json, 422, "data.X")  # read and validated (over max_rows), not a 413


# --- spec tokens and contestants ---------------------------------------------------------------------------------


def token_of(payload: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(payload, 9)).decode().rstrip("=")


GARBAGE_TOKENS = {
    "not base64 zlib": "garbagegarbage",
    "zlib of text": token_of(b"hello, world"),
    "zlib of a JSON list": token_of(b"[1, 2, 3]"),
    "zlib of a bad spec": token_of(b'{"network": {"layers": "abc"}}'),
    "zlib of NaN": token_of(b'{"network": {"layers": [2, 2, 1]}, "l2": NaN}'),
    "truncated valid token": None,  # a valid token cut to 40 characters, filled in below
}


@pytest.mark.parametrize("case", list(GARBAGE_TOKENS))
async def test_garbage_spec_token_is_422(client, strict_json, case):
    token = GARBAGE_TOKENS[case]
    if token is None:
        token = strict_json((await client.post(f"{API}/spec", json={"spec": SPEC})).text)["spec_token"][:40]
    for path in ("/step", "/spec", "/gradcheck", "/surface"):
        r = await client.post(f"{API}{path}", json={"spec_token": token})
        assert_error(r, strict_json, 422, "spec_token", "spec", "network.layers", "layers", "l2")


async def test_spec_token_with_a_bad_alphabet_is_422(client, strict_json):
    assert_error(await client.post(f"{API}/step", json={"spec_token": "abc+/def=ghi"}), strict_json, 422, "spec_token")


async def test_spec_and_token_together_is_422(client, strict_json):
    token = strict_json((await client.post(f"{API}/spec", json={"spec": SPEC})).text)["spec_token"]
    assert_error(await client.post(f"{API}/step", json={"spec": SPEC, "spec_token": token}), strict_json, 422)
    assert_error(await client.post(f"{API}/step", json={"t": 0}), strict_json, 422)


async def test_token_cannot_bypass_the_servers_limits(client, strict_json):
    """A token is decoded by the engine, whose own sanity bounds are looser than the server's settings
    (layer width 4096 vs 256): the same spec inline is a 422, so by token it must be one too."""
    spec = {"network": {"layers": [2, 1024, 1]}, "data": {"dataset": "xor"}}
    inline = await client.post(f"{API}/step", json={"spec": spec, "t": 0})
    assert_error(inline, strict_json, 422, "spec.network.layers", "network.layers")
    r = await client.post(f"{API}/step", json={"spec_token": token_of(json.dumps(spec).encode()), "t": 0})
    assert_error(r, strict_json, 422, "network.layers", "layers", "spec_token", "spec")


@pytest.mark.parametrize("path", ["/step", "/gradcheck", "/surface", "/spec"])
async def test_contestant_out_of_range(client, strict_json, path):
    assert_error(
        await client.post(f"{API}{path}", json={"spec": SPEC, "contestant": 1}), strict_json, 422, "contestant"
    )
    assert_error(
        await client.post(f"{API}{path}", json={"spec": SPEC, "contestant": 8}), strict_json, 422, "contestant"
    )


HEAVY_BUT_VALID = {
    # every size at the server's limits (width 256, 8 hidden layers), 4 rows
    "deepest xor": {"network": {"layers": [2] + [256] * 8 + [1]}, "data": {"dataset": "xor"}},
    # the same on all 1797 digits
    "deepest digits": {
        "network": {
            "layers": [64] + [256] * 8 + [10],
            "activations": ["relu"] * 8 + ["softmax"],
            "loss": "cross_entropy",
        },
        "data": {"dataset": "digits", "n": 1797},
    },
}


@pytest.mark.parametrize("case", list(HEAVY_BUT_VALID))
def test_largest_valid_step_answers_within_seconds(start_server, case):
    """No request may hold a worker for more than a couple of seconds (issue 4): a schema-valid step record is
    either answered quickly or refused by a budget 422. Measured through uvicorn with gzip, like a browser."""
    base = start_server()
    try:
        with httpx.Client(base_url=base, timeout=10) as c:
            try:
                r = c.post(
                    f"{API}/step", json={"spec": HEAVY_BUT_VALID[case], "t": 0}, headers={"accept-encoding": "gzip"}
                )
            except httpx.TimeoutException:
                pytest.fail(f"/step t=0 of {case} took over 10 s")
            assert r.status_code in (200, 422), r.text[:300]
            assert len(r.content) < 20 * MB, f"{len(r.content) / MB:.0f} MB of JSON"
    finally:
        start_server.stop(base)  # a request still running would hold a core for minutes


# --- the schema and the engine agree -----------------------------------------------------------------------------


async def test_schema_lower_bound_of_clip_norm_is_accepted(client, strict_json):
    """Found by schemathesis (positive data rejected): the OpenAPI schema allowed any clip_norm > 0 while the
    engine refused values under 1e-6. A value the schema allows must not be refused for that field."""
    schema = strict_json((await client.get("/openapi.json")).text)
    prop = schema["components"]["schemas"]["TrainRequest"]["properties"]["clip_norm"]
    bounds = next(s for s in prop.get("anyOf", [prop]) if s.get("type") == "number")
    if "minimum" in bounds:
        value = bounds["minimum"]
    else:
        value = math.nextafter(bounds["exclusiveMinimum"], math.inf) * 10 or 1e-300
        value = min(value, 1e-7)
    r = await client.post(f"{API}/train", json=small_train(clip_norm=value))
    assert r.status_code == 200, f"clip_norm={value}: {r.text[:300]}"


# --- divergence: 200, diverged: true, nulls, strict JSON ---------------------------------------------------------


def y2x(preset, lr, steps):
    spec = preset("linear-y-2x")
    spec["optimizer"] = {"name": "sgd", "lr": lr}
    return {**spec, "steps": steps}


def assert_diverged_run(run: dict, steps: int):
    assert run["diverged"] is True
    at = run["diverged_at"]
    assert isinstance(at, int) and not isinstance(at, bool) and 0 < at <= steps
    assert len(run["loss"]) == steps + 1
    assert all(isinstance(v, float) and math.isfinite(v) for v in run["loss"][:at])
    # the rule (engine.divergence): the loss at diverged_at is non-finite (null) or above 100x the starting loss
    assert run["loss"][at] is None or run["loss"][at] > 100 * run["loss"][0]
    assert all(v <= 100 * run["loss"][0] for v in run["loss"][:at])
    assert all(v is None for v in run["loss"][at + 1 :])
    assert all(v is None for v in np.ravel(run["grad_norm"][at:]))


async def test_train_divergence(client, preset, strict_json):
    steps = 500
    r = await client.post(f"{API}/train", json=y2x(preset, 1.0, steps))
    assert r.status_code == 200, r.text[:300]
    assert b"NaN" not in r.content and b"Infinity" not in r.content
    run = strict_json(r.text)
    assert_diverged_run(run, steps)
    assert run["diverged_at"] == 1  # 18.7 -> 1,894 in one step: 100x its start (NaN only at step 153)


async def test_no_divergence_is_reported_as_such(client, preset, strict_json):
    r = await client.post(f"{API}/train", json=y2x(preset, 0.1, 300))
    run = strict_json(r.text)
    assert run["diverged"] is False and run["diverged_at"] is None and None not in run["loss"]


async def test_race_with_one_diverging_contestant(client, preset, strict_json):
    spec = preset("linear-y-2x")
    del spec["optimizer"]
    optimizers = [
        {"name": "sgd", "lr": 0.01},
        {"name": "sgd", "lr": 1.0},
        {"name": "adam", "lr": 0.1},
        {"name": "momentum", "lr": 0.01},
    ]
    steps = 400
    r = await client.post(f"{API}/race", json={**spec, "optimizers": optimizers, "steps": steps})
    assert r.status_code == 200, r.text[:300]
    runs = strict_json(r.text)["runs"]
    assert_diverged_run(runs[1], steps)
    for k in (0, 2, 3):
        assert runs[k]["diverged"] is False and runs[k]["diverged_at"] is None
        solo = strict_json(
            (await client.post(f"{API}/train", json={**spec, "optimizer": optimizers[k], "steps": steps})).text
        )
        np.testing.assert_allclose(runs[k]["loss"], solo["loss"], rtol=1e-12)
        np.testing.assert_allclose(runs[k]["weights"][0], solo["weights"][0], rtol=1e-12)
        np.testing.assert_allclose(runs[k]["biases"][0], solo["biases"][0], rtol=1e-12)


@pytest.mark.parametrize("t", [0, 152, 153, 154, 400])
async def test_step_through_divergence(client, preset, strict_json, t):
    body = y2x(preset, 1.0, 0)
    del body["steps"]
    r = await client.post(f"{API}/step", json={"spec": body, "t": t})
    assert r.status_code == 200, r.text[:300]
    d = strict_json(r.text)
    assert isinstance(d["diverged"], bool)
    r = await client.post(f"{API}/gradcheck", json={"spec": body, "t": t})
    assert r.status_code == 200, r.text[:300]
    strict_json(r.text)


@pytest.mark.parametrize("kind", ["parameters", "slice"])
async def test_surface_with_a_diverging_contestant(client, preset, strict_json, kind):
    spec = preset("linear-y-2x")
    del spec["optimizer"]
    spec["optimizers"] = [{"name": "sgd", "lr": 1.0}, {"name": "sgd", "lr": 0.01}]
    r = await client.post(f"{API}/surface", json={"spec": spec, "kind": kind, "steps": 300, "resolution": 7})
    assert r.status_code == 200, r.text[:300]
    d = strict_json(r.text)
    assert len(d["paths"]) == 2


async def test_trace_overflow_is_null_not_nan(client, strict_json):
    net = {"layers": [1, 1], "activations": ["linear"], "loss": "mse", "weights": [[[1e300]]], "biases": [[1e300]]}
    r = await client.post(f"{API}/trace", json={"network": net, "data": {"dataset": "linear"}})
    assert r.status_code == 200
    assert strict_json(r.text)["loss"] is None


# --- after all that ----------------------------------------------------------------------------------------------


async def test_still_healthy_after_errors(client, strict_json):
    for body in (small_train(steps=True), small_train(network={"layers": [3, 3, 1]})):
        await client.post(f"{API}/train", json=body)
    await client.post(f"{API}/trace", content=b"\xff", headers={"content-type": "application/json"})
    await client.post(f"{API}/train", content=b"{}", headers={"content-type": "text/plain"})
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"
    r = await client.post(f"{API}/train", json=small_train())
    assert r.status_code == 200


# --- issue 15: the five 500s, and targets checked against the loss -----------------------------------------------
def token_for(d: dict) -> str:
    """A URL token built by hand (the server never makes one of these: it is what a hostile link carries)."""
    return base64.urlsafe_b64encode(zlib.compress(json.dumps(d).encode())).decode().rstrip("=")


HUGE = 10**400
HUGE_TOKENS = {
    "seed": {**SPEC, "seed": HUGE},
    "optimizer.lr": {**SPEC, "optimizer": {"name": "sgd", "lr": HUGE}},
    "data.X": {**SPEC, "network": {"layers": [2, 2, 1]}, "data": {"X": [[HUGE, 1]], "Y": [[1]]}},
    "network.weights": {**SPEC, "network": {"layers": [1, 1], "weights": [[[HUGE]]]}, "data": {"X": [[1]], "Y": [[1]]}},
    "optimizer.schedule.step_size": {
        **SPEC,
        "optimizer": {"name": "sgd", "schedule": {"name": "step", "step_size": HUGE}},
    },
    "dropout": {**SPEC, "network": {"layers": [2, 3, 3, 1]}, "dropout": HUGE},
}


@pytest.mark.parametrize("field", list(HUGE_TOKENS))
async def test_huge_integers_in_a_token_are_4xx_naming_the_field(client, strict_json, field):
    token = token_for(HUGE_TOKENS[field])
    r = await client.post(f"{API}/step", json={"spec_token": token, "t": 0})
    body = assert_error(r, strict_json, 422, field)
    assert "too large" in body["detail"][0]["msg"]
    page = await client.get("/step", params={"spec": token})  # the page shows the error and falls back
    assert page.status_code < 500
    panel = await client.get("/step/panel", params={"spec": token})
    assert panel.status_code < 500


async def test_deeply_nested_json_is_4xx_not_a_recursion_error(client, strict_json):
    deep = {"network": {"layers": [2, 2, 1]}, "data": {"dataset": "xor"}, "extra": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}
    r = await client.post(f"{API}/step", json={"spec_token": token_for(deep), "t": 0})
    assert_error(r, strict_json, 422, "extra")
    nested = "[" * 3000 + "]" * 3000
    token = base64.urlsafe_b64encode(zlib.compress(nested.encode())).decode().rstrip("=")
    r = await client.post(f"{API}/step", json={"spec_token": token, "t": 0})
    assert_error(r, strict_json, 422, "spec_token")
    for params in ({"spec": token}, {"c": base64.urlsafe_b64encode(nested.encode()).decode()}):
        page = await client.get("/race", params=params)
        assert page.status_code < 500, params


async def test_race_link_with_a_huge_integer_is_not_a_500(client):
    c = base64.urlsafe_b64encode(json.dumps([{"name": "sgd", "lr": HUGE}, {"name": "adam"}]).encode()).decode()
    r = await client.get("/race", params={"c": c})
    assert r.status_code < 500 and "too large" in r.text


BAD_TARGETS = {
    "bce label 3.5": ("bce", "sigmoid", [[0.0], [3.5]]),
    "bce label -1": ("bce", "sigmoid", [[-1.0], [1.0]]),
    "cross_entropy row sums to 2": ("cross_entropy", "softmax", [[1.0, 1.0], [0.0, 1.0]]),
    "cross_entropy negative entry": ("cross_entropy", "softmax", [[1.5, -0.5], [0.0, 1.0]]),
}


@pytest.mark.parametrize("case", list(BAD_TARGETS))
async def test_targets_are_checked_against_the_loss(client, strict_json, case):
    loss, out, Y = BAD_TARGETS[case]
    body = small_train(
        network={"layers": [2, 3, len(Y[0])], "activations": ["tanh", out], "loss": loss},
        data={"X": [[0.0, 1.0], [1.0, 0.0]], "Y": Y},
    )
    r = await client.post(f"{API}/train", json=body)
    detail = assert_error(r, strict_json, 422, "data.Y")["detail"][0]
    assert loss in detail["msg"]
    r = await client.post(
        f"{API}/step", json={"spec_token": token_for({k: v for k, v in body.items() if k != "steps"})}
    )
    assert_error(r, strict_json, 422, "data.Y")


async def test_a_regression_dataset_cannot_train_with_bce(client, strict_json):
    body = small_train(network={"layers": [1, 4, 1], "activations": ["tanh", "sigmoid"], "loss": "bce"})
    body["data"] = {"dataset": "sine", "n": 50}
    r = await client.post(f"{API}/train", json=body)
    assert_error(r, strict_json, 422, "data.Y")


async def test_good_targets_still_train(client):
    body = small_train(
        network={"layers": [2, 3, 2], "activations": ["tanh", "softmax"], "loss": "cross_entropy"},
        data={"X": [[0.0, 1.0], [1.0, 0.0]], "Y": [[0.25, 0.75], [1.0, 0.0]]},
    )
    assert (await client.post(f"{API}/train", json=body)).status_code == 200
    body = small_train(
        network={"layers": [2, 3, 1], "activations": ["tanh", "sigmoid"], "loss": "bce"},
        data={"X": [[0.0, 1.0], [1.0, 0.0]], "Y": [[0.0], [0.3]]},
    )
    assert (await client.post(f"{API}/train", json=body)).status_code == 200


@pytest.mark.parametrize(
    "steps", ["1" + "0" * 30, "-1" + "0" * 30, "1" + "0" * 5000], ids=["beyond 64 bits", "below -2^63", "5000 digits"]
)
async def test_huge_integers_in_a_body_are_echoed_safely(client, strict_json, steps):
    """Found by schemathesis: a 422 echoing an integer beyond 64 bits could not be written (orjson) -> 500."""
    body = json.dumps(small_train(steps=0)).replace('"steps": 0', f'"steps": {steps}').encode()
    r = await client.post(f"{API}/train", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text[:300]
    assert_error(r, strict_json, r.status_code)
