"""Stateless by design (issue 4): the state at step t is a pure function of (spec, t), so two separate uvicorn
processes answer every request byte for byte alike, whatever each one has cached.

Two workers A and B start fresh. A single-worker reference walks t = 0..T on A in order (each step resumes from
the previous one's cached checkpoint); then requests alternate between the workers, forwards and backwards, by
inline spec and by URL token, and every body must equal the reference's bytes. A cold request (B's first ever
for the spec) must equal the warm one.
"""

import copy

import httpx
import pytest

from engine.presets import PRESETS_BY_ID

T = 10
API = "/api/v1"


def spiral_spec() -> dict:
    """The spiral preset with minibatches and dropout, so batch order, masks and Adam's state all matter."""
    spec = copy.deepcopy(PRESETS_BY_ID["spiral-2-8-8-1"]["spec"])
    spec["optimizer"] = {"name": "adam", "lr": 0.01, "batch_size": 32}
    spec["dropout"] = [0.2, 0.1]
    return spec


@pytest.fixture(scope="module")
def workers(start_server):
    a, b = start_server.start_many(2)
    with httpx.Client(base_url=a, timeout=30) as ca, httpx.Client(base_url=b, timeout=30) as cb:
        yield ca, cb
    start_server.stop(a)
    start_server.stop(b)


def step(client: httpx.Client, body: dict) -> bytes:
    r = client.post(f"{API}/step", json=body)
    assert r.status_code == 200, r.text[:500]
    return r.content


def test_alternating_workers_give_byte_identical_steps(workers):
    a, b = workers
    spec = spiral_spec()

    cold_b = step(b, {"spec": spec, "t": T})  # B: nothing cached, T steps from theta_0
    reference = [step(a, {"spec": spec, "t": t}) for t in range(T + 1)]  # A alone, in order, cache warm
    assert len(set(reference)) == T + 1

    assert cold_b == reference[T], "a fresh worker disagrees with a warm one"

    for t in range(T + 1):  # alternate A, B, A, ...
        worker = (a, b)[t % 2]
        assert step(worker, {"spec": spec, "t": t}) == reference[t], f"t={t} on worker {'AB'[t % 2]}"
    for t in reversed(range(T + 1)):  # and backwards, B first
        worker = (b, a)[t % 2]
        assert step(worker, {"spec": spec, "t": t}) == reference[t], f"t={t} backwards"

    token = httpx.Response(200, content=reference[0]).json()["spec_token"]
    for t in range(T + 1):  # the URL token on the other worker
        worker = (b, a)[t % 2]
        assert step(worker, {"spec_token": token, "t": t}) == reference[t], f"t={t} by token"


def test_fresh_worker_equals_warm_worker_for_a_race_contestant(workers, start_server):
    a, b = workers
    spec = spiral_spec()
    del spec["optimizer"]
    spec["optimizers"] = [
        {"name": "sgd", "lr": 0.5},
        {"name": "momentum", "lr": 0.1, "batch_size": 16},
        {"name": "adam", "lr": 0.01},
    ]
    warm = [step(a, {"spec": spec, "t": t, "contestant": 1}) for t in range(T + 1)]
    fresh = start_server()
    try:
        with httpx.Client(base_url=fresh, timeout=30) as c:
            assert step(c, {"spec": spec, "t": T, "contestant": 1}) == warm[T]
            assert step(c, {"spec": spec, "t": 3, "contestant": 1}) == warm[3]
    finally:
        start_server.stop(fresh)
    # and the whole-run endpoints agree across workers too
    body = {**spec, "steps": 50}
    assert a.post(f"{API}/race", json=body).content == b.post(f"{API}/race", json=body).content
