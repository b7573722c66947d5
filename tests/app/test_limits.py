"""Issue 15: a server a class cannot knock over.

* the cost model refuses, at once and naming the field, each request the issue measured as expensive, and the
  largest request it accepts answers under the size limit;
* the checkpoint cache never holds more than its byte limit, and its sparse checkpoints bound the steps to any t;
* a request over the time limit gets a 504 and frees the worker; a full worker answers a fast 503 with
  Retry-After while /healthz and /readyz still answer;
* a client that disconnects stops the work (a real uvicorn process: its CPU time stops growing).

Wall-clock bounds here are generous and only separate "refused at once" from "ran for minutes".
"""

import asyncio
import copy
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from app import cost
from app.settings import get_settings
from engine import experiment
from engine.cancel import Budget, Stopped, activate, deactivate
from engine.spec import experiment_from_dict

API = "/api/v1"
BIG_NET = {"layers": [2] + [256] * 8 + [1], "activations": ["tanh"] * 8 + ["sigmoid"], "loss": "bce"}
BIG_DATA = {"dataset": "spiral", "n": 2000}
SPIRAL = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["tanh", "tanh", "sigmoid"], "loss": "bce"},
    "data": {"dataset": "spiral", "n": 200},
}
EIGHT = [{"name": n, "lr": 0.01} for n in ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "sgd")]
REFUSED_AT_ONCE_S = 1.0  # generous: a refusal is an estimate, the requests refused would run for minutes


def big_spec(optimizers=None) -> dict:
    d = {"network": copy.deepcopy(BIG_NET), "data": copy.deepcopy(BIG_DATA)}
    if optimizers:
        d["optimizers"] = copy.deepcopy(optimizers)
    else:
        d["optimizer"] = {"name": "adam", "lr": 0.01}
    return d


# ---- the requests the issue measured -------------------------------------------------------------------------------
EXPENSIVE = {
    "surface slice at resolution 81 on 2-256x8-1 (256 s of CPU)": (
        "/surface",
        {"spec": big_spec(), "kind": "slice", "resolution": 81},
        {"resolution"},
    ),
    "streamed race of 8 on 2-256x8-1 with 60 snapshots (+1.9 GB)": (
        "/race/stream",
        {**big_spec(EIGHT), "steps": 20, "snapshots": 60},
        {"steps", "snapshots", "surface_resolution", "optimizers"},
    ),
    "race of 8 x 150 steps on 2-256x8-1 (a 77 MB answer)": (
        "/race",
        {**big_spec(EIGHT), "steps": 150},
        {"steps", "optimizers"},
    ),
    "activations grid on 2-256x8-1 (10.8 s, +580 MB)": (
        "/activations-grid",
        {"spec": big_spec(), "t": 0, "resolution": 100, "neuron_resolution": 50},
        {"resolution", "neuron_resolution", "network.layers"},
    ),
    "train 5000 steps on 2-256x8-1": ("/train", {**big_spec(), "steps": 5000}, {"steps"}),
    "step record of 2-256x8-1 over 2000 rows": ("/step", {"spec": big_spec(), "t": 0}, {"t", "network.layers"}),
    "gradcheck of 2000 parameters of 2-256x8-1": (
        "/gradcheck",
        {"spec": big_spec(), "max_params": 2000},
        {"max_params", "t"},
    ),
    "function race, 8 x 5000 steps and a 201^2 contour, all recorded": (
        "/function-race",
        {"problem": "rosenbrock", "optimizers": EIGHT, "steps": 5000, "resolution": 201},
        {"steps"},
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(EXPENSIVE))
async def test_formerly_expensive_requests_are_refused_at_once_naming_the_field(client, strict_json, case):
    path, body, fields = EXPENSIVE[case]
    started = time.perf_counter()
    r = await client.post(API + path, json=body)
    elapsed = time.perf_counter() - started
    assert r.status_code == 422, f"{r.status_code}: {r.text[:300]}"
    detail = strict_json(r.text)["detail"][0]
    field = detail["msg"].partition(":")[0]
    assert field in fields, detail
    assert "over the limit of" in detail["msg"], detail
    assert elapsed < REFUSED_AT_ONCE_S, f"refused after {elapsed:.2f} s"


@pytest.mark.anyio
async def test_the_largest_accepted_race_answers_under_the_size_limit():
    """Bisect the steps of an 8-optimizer race on the spiral to the largest the model accepts; run it."""
    from app.main import app

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)  # a dry run's Accepted reaches us
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
        await largest_race_fits(client)


async def largest_race_fits(client):
    spec = {**copy.deepcopy(SPIRAL), "optimizers": EIGHT}
    lo, hi = 1, get_settings().max_steps
    token = cost.dry_run.set(True)
    try:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                r = await client.post(f"{API}/race", json={**spec, "steps": mid})
                assert r.status_code == 422, r.text[:300]
                hi = mid
            except cost.Accepted:
                lo = mid
    finally:
        cost.dry_run.reset(token)
    r = await client.post(f"{API}/race", json={**spec, "steps": lo}, headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert len(r.content) <= get_settings().max_response_bytes
    r = await client.post(f"{API}/race", json={**spec, "steps": lo + 1})
    assert r.status_code == 422 or lo == get_settings().max_steps


def test_every_budget_names_its_biggest_contributor(monkeypatch):
    est = cost.Estimate().add("steps", work=1e9).add("resolution", work=2e9)
    with pytest.raises(ValueError, match=r"^resolution: .*over the limit of 1.5e\+09"):
        est.enforce()
    est = cost.Estimate().add("snapshots", memory=5e8).add("steps", memory=1e6)
    with pytest.raises(ValueError, match=r"^snapshots: .*bytes of memory"):
        est.enforce()
    est = cost.Estimate().add("boundary_resolution", response=2e7)
    with pytest.raises(ValueError, match=r"^boundary_resolution: .*bytes of answer"):
        est.enforce()
    cost.Estimate().add("steps", work=1e6, response=1e3, memory=1e3).enforce()  # within every limit


def test_estimates_grow_with_what_costs():
    spec = experiment_from_dict({**SPIRAL, "optimizer": {"name": "adam"}})
    prep = experiment.prepare(spec)
    work = [cost.training(prep, steps).total_work for steps in (100, 200, 300)]
    assert work[2] - work[1] == pytest.approx(work[1] - work[0])  # linear in the steps, above a fixed cost
    assert cost.training(prep, 100, 8).total_work > 4 * cost.training(prep, 100, 1).total_work
    assert cost.surface(prep, 0, 1, 81).total_work > 3 * cost.surface(prep, 0, 1, 41).total_work
    stream = [cost.race_stream(prep, 100, 8, 41, True, 32, s, 4_000_000).total_memory for s in (2, 60)]
    assert stream[1] > stream[0]


# ---- the checkpoint cache --------------------------------------------------------------------------------------------
def spiral_spec(**changes):
    return experiment_from_dict({**copy.deepcopy(SPIRAL), "optimizer": {"name": "adam", "lr": 0.01}, **changes})


def test_cache_never_exceeds_its_byte_limit():
    spec = spiral_spec()
    checkpoint = experiment.state_at(spec, 0)
    size = experiment.checkpoint_bytes(checkpoint)
    cache = experiment.CheckpointCache(max_bytes=10 * size + size // 2, every=1000)
    for t in range(100):
        cache.put((spec.id, 0, t), checkpoint)
        assert cache.nbytes <= cache.max_bytes
        assert cache.stats()["bytes"] == cache.nbytes
    assert len(cache) == 10
    assert cache.stats()["evictions"] == 90
    assert cache.get((spec.id, 0, 99)) is not None and cache.get((spec.id, 0, 0)) is None  # least recent went
    tiny = experiment.CheckpointCache(max_bytes=size - 1)
    tiny.put((spec.id, 0, 0), checkpoint)  # bigger than the whole cache: not kept
    assert len(tiny) == 0 and tiny.nbytes == 0


def test_big_network_checkpoints_fill_the_cache_by_bytes_not_by_count():
    spec = experiment_from_dict(
        {"network": BIG_NET, "data": {"dataset": "spiral", "n": 20}, "optimizer": {"name": "adam"}}
    )
    checkpoint = experiment.state_at(spec, 0)
    size = experiment.checkpoint_bytes(checkpoint)
    assert size > 3 * 8 * 461_569  # theta and Adam's two moments
    cache = experiment.CheckpointCache(max_bytes=64 << 20)
    for t in range(40):
        cache.put((spec.id, 0, t), checkpoint)
    assert cache.nbytes <= 64 << 20 and len(cache) == (64 << 20) // size


def count_steps(monkeypatch) -> list:
    """Record how many steps every StackedTrainer.run takes."""
    taken = []
    run = experiment.StackedTrainer.run

    def counting(self, steps, keep_path=False):
        taken.append(steps)
        return run(self, steps, keep_path)

    monkeypatch.setattr(experiment.StackedTrainer, "run", counting)
    return taken


def test_sparse_checkpoints_bound_the_steps_to_any_t(monkeypatch):
    spec = spiral_spec()
    cache = experiment.CheckpointCache(max_bytes=8 << 20, every=50)
    taken = count_steps(monkeypatch)
    far = experiment.state_at(spec, 1000, 0, cache)
    assert sum(taken) == 1000
    assert {key[2] for key in cache._items} >= set(range(50, 1000, 50)) | {1000}
    for t in (975, 501, 49, 333):
        taken.clear()
        warm = experiment.state_at(spec, t, 0, cache)
        assert sum(taken) <= 50, (t, taken)
        cold = experiment.state_at(spec, t)  # no cache: from theta_0
        np.testing.assert_array_equal(warm.theta, cold.theta)  # the same bits either way
        for name in cold.states[0]:
            np.testing.assert_array_equal(warm.states[0][name], cold.states[0][name])
    np.testing.assert_array_equal(far.theta, experiment.state_at(spec, 1000).theta)


# ---- time limit, concurrency limit, probes ---------------------------------------------------------------------------
@pytest.fixture
def settings(monkeypatch):
    """The live settings object, restored after the test (monkeypatch.setattr on it)."""
    return get_settings()


def long_train() -> dict:
    """A train request that runs for minutes once the work budget is lifted (spiral of 2000 rows, 5000 steps)."""
    return {
        **copy.deepcopy(SPIRAL),
        "data": {"dataset": "spiral", "n": 2000},
        "optimizer": {"name": "adam"},
        "steps": 5000,
    }


@pytest.mark.anyio
async def test_request_over_the_time_limit_gets_504_and_frees_the_worker(client, strict_json, settings, monkeypatch):
    monkeypatch.setattr(settings, "max_work", 1e15)
    monkeypatch.setattr(settings, "request_timeout", 0.3)
    started = time.perf_counter()
    r = await client.post(f"{API}/train", json=long_train())
    elapsed = time.perf_counter() - started
    assert r.status_code == 504, r.text[:300]
    detail = strict_json(r.text)["detail"][0]
    assert detail["msg"].startswith("request: took longer than the limit of 0.3 s")
    assert elapsed < 10, elapsed  # the whole run takes minutes on this machine
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and strict_json(ready.text)["in_flight"] == 0


@pytest.mark.anyio
async def test_streamed_race_over_the_time_limit_stops_with_an_error_event(client, strict_json, settings, monkeypatch):
    monkeypatch.setattr(settings, "max_work", 1e15)
    monkeypatch.setattr(settings, "max_memory_bytes", 10**12)
    monkeypatch.setattr(settings, "max_response_bytes", 10**12)
    monkeypatch.setattr(settings, "request_timeout", 0.3)
    body = {**copy.deepcopy(SPIRAL), "data": {"dataset": "spiral", "n": 2000}, "optimizers": EIGHT, "steps": 5000}
    started = time.perf_counter()
    r = await client.post(f"{API}/race/stream", json=body)
    assert r.status_code == 200
    events = [strict_json(line) for line in r.text.splitlines()]
    assert events[-1]["event"] == "error", events[-1]
    assert "took longer than the limit" in events[-1]["detail"][0]["msg"]
    assert time.perf_counter() - started < 10


@pytest.mark.anyio
async def test_a_full_worker_answers_503_with_retry_after_at_once(client, strict_json, settings, monkeypatch):
    monkeypatch.setattr(settings, "max_work", 1e15)
    monkeypatch.setattr(settings, "max_concurrent", 1)
    monkeypatch.setattr(settings, "max_queued", 0)
    monkeypatch.setattr(settings, "request_timeout", 3.0)
    slow = asyncio.create_task(client.post(f"{API}/train", json=long_train()))
    for _ in range(200):  # until the slow request holds the only slot
        ready = await client.get("/readyz")
        if ready.status_code == 503:
            break
        await asyncio.sleep(0.01)
    assert ready.status_code == 503 and strict_json(ready.text)["in_flight"] == 1
    started = time.perf_counter()
    busy = await client.post(f"{API}/train", json={**copy.deepcopy(SPIRAL), "optimizer": {"name": "sgd"}, "steps": 1})
    assert time.perf_counter() - started < REFUSED_AT_ONCE_S
    assert busy.status_code == 503 and busy.headers["retry-after"] == str(settings.retry_after)
    assert strict_json(busy.text)["detail"][0]["msg"].startswith("request: this worker is busy")
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.text == "ok"
    page = await client.get("/")  # pages that do not compute are not held back
    assert page.status_code == 200
    assert (await slow).status_code == 504
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.anyio
async def test_a_bounded_line_waits_for_a_slot_and_refuses_beyond(client, strict_json, settings, monkeypatch):
    monkeypatch.setattr(settings, "max_work", 1e15)
    monkeypatch.setattr(settings, "max_concurrent", 1)
    monkeypatch.setattr(settings, "max_queued", 1)
    monkeypatch.setattr(settings, "queue_timeout", 30.0)
    monkeypatch.setattr(settings, "request_timeout", 1.0)
    small = {**copy.deepcopy(SPIRAL), "optimizer": {"name": "sgd"}, "steps": 1}
    slow = asyncio.create_task(client.post(f"{API}/train", json=long_train()))
    while (await client.get("/readyz")).json()["in_flight"] == 0:
        await asyncio.sleep(0.01)
    waiting = asyncio.create_task(client.post(f"{API}/train", json=small))
    while (await client.get("/readyz")).json()["queued"] == 0:
        await asyncio.sleep(0.01)
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and strict_json(ready.text)["queued"] == 1  # the line is full
    refused = await client.post(f"{API}/train", json=small)
    assert refused.status_code == 503 and "retry-after" in refused.headers
    page = await client.get("/step", headers={"accept": "text/html"})  # a page load: a page that reloads itself
    assert page.status_code == 503 and '<meta http-equiv="refresh"' in page.text
    assert (await slow).status_code == 504
    assert (await waiting).status_code == 200  # it got the slot the slow one freed
    assert strict_json((await client.get("/readyz")).text)["in_flight"] == 0


def test_the_engine_stops_at_its_next_check():
    spec = spiral_spec()
    budget = Budget(None)
    budget.cancel()
    token = activate(budget)
    try:
        with pytest.raises(Stopped, match="client disconnected"):
            experiment.state_at(spec, 100)
    finally:
        deactivate(token)
    experiment.state_at(spec, 3)  # no budget: nothing is checked


# ---- disconnects, on a real server ----------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


@pytest.fixture
def heavy_server(start_server, monkeypatch):
    """A uvicorn worker whose budget admits a minutes-long request, and its process id."""
    monkeypatch.setenv("BACKPROP_VIZ_MAX_WORK", "1e15")
    monkeypatch.setenv("BACKPROP_VIZ_MAX_MEMORY_BYTES", "1000000000000")
    monkeypatch.setenv("BACKPROP_VIZ_MAX_RESPONSE_BYTES", "1000000000000")
    monkeypatch.setenv("BACKPROP_VIZ_REQUEST_TIMEOUT", "300")
    url = start_server()
    yield url, start_server.procs[url][0].pid
    start_server.stop(url)


def leave_early(url: str, path: str, body: dict, after: float, stream: bool) -> None:
    """Send the request and hang up after `after` seconds (closing the connection mid-answer)."""
    started = time.monotonic()
    try:
        with httpx.Client(base_url=url, timeout=httpx.Timeout(after)) as c:
            if stream:
                with c.stream("POST", path, json=body) as r:
                    for _ in r.iter_lines():
                        if time.monotonic() - started > after:
                            break
            else:
                c.post(path, json=body)
    except httpx.TimeoutException:
        pass


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_client_that_leaves_stops_the_work(heavy_server, stream):
    url, pid = heavy_server
    body = long_train()
    path = f"{API}/train"
    if stream:
        body = {**long_train(), "optimizers": EIGHT}
        body.pop("optimizer")
        path = f"{API}/race/stream"
    before = cpu_seconds(pid)
    client = threading.Thread(target=leave_early, args=(url, path, body, 2.5, stream))
    client.start()
    client.join()
    busy = cpu_seconds(pid) - before
    assert busy > 0.3, f"the request never ran ({busy:.2f} s of CPU)"  # it was working when the client left
    time.sleep(0.5)  # the engine notices at its next step
    idle_from = cpu_seconds(pid)
    time.sleep(2.0)
    idle = cpu_seconds(pid) - idle_from
    assert idle < 0.4, f"{idle:.2f} s of CPU in the 2 s after the client left: the work did not stop"
    r = httpx.get(f"{url}/readyz", timeout=5)
    assert r.status_code == 200 and r.json()["in_flight"] == 0
