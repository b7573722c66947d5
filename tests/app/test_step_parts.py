"""/api/v1/step `samples` and `parts`: less of the same record, nothing renamed or reshaped; the default unchanged."""

import asyncio

import httpx
import pytest

from app.main import app
from app.payloads import STEP_PARTS
from engine.presets import PRESETS_BY_ID

SPIRAL = PRESETS_BY_ID["spiral-2-8-8-1"]["spec"]


def post(body):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await c.post("/api/v1/step", json=body)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def full():
    r = post({"spec": SPIRAL, "t": 4})
    assert r.status_code == 200
    return r.json()


def test_samples_pick_rows_of_every_per_sample_array(full):
    r = post({"spec": SPIRAL, "t": 4, "samples": [7, 0, 7]})
    assert r.status_code == 200
    part = r.json()
    assert part["samples"] == [7, 0, 7]
    for key in ("X", "Y", "rows", "per_sample_loss"):
        assert part[key] == [full[key][7], full[key][0], full[key][7]], key
    for mine, theirs in zip(part["layers"], full["layers"]):
        for key in ("z", "a", "sigma_prime", "delta"):
            assert mine[key] == [theirs[key][7], theirs[key][0], theirs[key][7]], key
        assert mine["dW"] == theirs["dW"] and mine["db"] == theirs["db"]  # batch means: unchanged
    for key in ("loss", "data_loss", "full_loss", "grad", "params_after", "update", "optimizer", "spec_id"):
        assert part[key] == full[key], key
    assert "samples" not in full  # the default answer is the contract's


@pytest.mark.parametrize("parts", [["forward"], ["backward", "gradients"], ["params", "state", "data"]])
def test_parts_keep_only_their_arrays(full, parts):
    part = post({"spec": SPIRAL, "t": 4, "parts": parts}).json()
    for group, keys in STEP_PARTS.items():
        for key in keys:
            where, _, name = key.partition(".")
            present = (
                [name in layer for layer in part["layers"]]
                if where == "layers"
                else [name in part["optimizer"]]
                if where == "optimizer"
                else [key in part]
            )
            assert all(present) if group in parts else not any(present), (group, key)
            if group in parts and where == "layers":
                assert [layer[name] for layer in part["layers"]] == [layer[name] for layer in full["layers"]]
    for key in ("t", "loss", "learning_rate", "clip", "network", "diverged", "spec_token"):
        assert part[key] == full[key]
    assert part["optimizer"]["equations"] == full["optimizer"]["equations"]


def test_smaller_answer_for_a_sample():
    body = {"spec": SPIRAL, "t": 4}
    full_size = len(post(body).content)
    small = post({**body, "samples": [3], "parts": ["forward", "backward"]})
    assert small.status_code == 200 and len(small.content) < full_size / 20


@pytest.mark.parametrize(
    "extra, loc",
    [
        ({"samples": [200]}, ["body", "samples"]),  # the spiral preset's batch is its 200 rows
        ({"samples": []}, ["body", "samples"]),
        ({"samples": [-1]}, ["body", "samples", "0"]),
        ({"samples": ["1"]}, ["body", "samples", "0"]),
        ({"parts": ["everything"]}, ["body", "parts", "0"]),
        ({"parts": "forward"}, ["body", "parts"]),
    ],
)
def test_bad_selection_is_422_naming_the_field(extra, loc):
    r = post({"spec": SPIRAL, "t": 0, **extra})
    assert r.status_code == 422
    assert [str(x) for x in r.json()["detail"][0]["loc"]] == loc
