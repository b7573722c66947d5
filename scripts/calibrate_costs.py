"""Time the most expensive request each computing endpoint accepts, to calibrate the cost model (app/cost.py).

    python scripts/calibrate_costs.py            # every case, best of 3 runs each
    python scripts/calibrate_costs.py --runs 1 --only train,race

For each case (an endpoint and a request shape that grows along one field), the largest value of that field the
cost model accepts is found by bisection in a dry run (the estimate is computed, nothing is trained), then that
request is sent to the app in this process (httpx on the ASGI app: routing, validation, the engine and JSON
encoding, no network, no gzip) and timed. Prints, per case: the field and the largest accepted value, the
estimated work (units of ~1 ns) and the wall time measured (best of --runs), their ratio, the answer's bytes.
The goal the limits are set for: every accepted request within ~2 s and under ~10 MB on the 2-core machine.
The machine may be shared: take the best of several runs and read the figures as upper bounds.
"""

import argparse
import asyncio
import copy
import pathlib
import sys
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import cost  # noqa: E402
from app.main import app  # noqa: E402
from app.routes.api import cache  # noqa: E402
from app.settings import get_settings  # noqa: E402
from engine.experiment import prepare  # noqa: E402

TANH3 = ["tanh", "tanh", "sigmoid"]
NETS = {
    "xor 2-2-1": ({"layers": [2, 2, 1], "activations": ["sigmoid", "sigmoid"], "loss": "bce"}, {"dataset": "xor"}),
    "spiral 2-8-8-1 n=200": (
        {"layers": [2, 8, 8, 1], "activations": TANH3, "loss": "bce"},
        {"dataset": "spiral", "n": 200},
    ),
    "spiral 2-8-8-1 n=2000": (
        {"layers": [2, 8, 8, 1], "activations": TANH3, "loss": "bce"},
        {"dataset": "spiral", "n": 2000},
    ),
    "digits 64-128-64-10": (
        {"layers": [64, 128, 64, 10], "activations": ["tanh", "tanh", "softmax"], "loss": "cross_entropy"},
        {"dataset": "digits"},
    ),
    "2-8x8-1 n=2000": (
        {"layers": [2] + [8] * 8 + [1], "activations": ["tanh"] * 8 + ["sigmoid"], "loss": "bce"},
        {"dataset": "spiral", "n": 2000},
    ),
    "2-256x8-1 n=2000": (
        {"layers": [2] + [256] * 8 + [1], "activations": ["tanh"] * 8 + ["sigmoid"], "loss": "bce"},
        {"dataset": "spiral", "n": 2000},
    ),
}
EIGHT = [{"name": n, "lr": 0.01} for n in ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "sgd")]


def spec(net: str, optimizers=None) -> dict:
    network, data = NETS[net]
    d = {"network": copy.deepcopy(network), "data": copy.deepcopy(data)}
    if optimizers is None:
        d["optimizer"] = {"name": "adam", "lr": 0.01}
    else:
        d["optimizers"] = copy.deepcopy(optimizers)
    return d


def train(net):
    return lambda x: ("/api/v1/train", {**spec(net), "steps": x})


def race(net, k=8):
    return lambda x: ("/api/v1/race", {**spec(net, EIGHT[:k]), "steps": x})


def step(net):
    return lambda x: ("/api/v1/step", {"spec": spec(net), "t": x})


def gradcheck(net):
    return lambda x: ("/api/v1/gradcheck", {"spec": spec(net), "max_params": x})


def surface(net, k=1, steps=0, resolution=None):
    def body(x):
        return (
            "/api/v1/surface",
            {
                "spec": spec(net, EIGHT[:k] if k > 1 else None),
                "kind": "slice",
                "steps": steps if resolution is None else x,
                "resolution": x if resolution is None else resolution,
            },
        )

    return body


def stream(net, k=8, surface=41, snapshots=26, boundary=32):
    """The race page's defaults: a 41^2 surface, 26 boundary frames of 32^2 per contestant."""
    return lambda x: (
        "/api/v1/race/stream",
        {
            **spec(net, EIGHT[:k]),
            "steps": x,
            "snapshots": snapshots,
            "boundary_resolution": boundary,
            "surface_resolution": surface,
        },
    )


def grid(net, encoding="json"):
    return lambda x: (
        "/api/v1/activations-grid",
        {"spec": spec(net), "t": 0, "resolution": x, "neuron_resolution": 50, "encoding": encoding},
    )


def function_race(k=8):
    return lambda x: (
        "/api/v1/function-race",
        {"problem": "rosenbrock", "optimizers": EIGHT[:k], "steps": x, "resolution": 201},
    )


S = get_settings()
# (name, request builder of x, field, lowest, highest)
CASES = [
    ("train", train("xor 2-2-1"), "steps", 1, S.max_steps),
    ("train", train("spiral 2-8-8-1 n=2000"), "steps", 1, S.max_steps),
    ("train", train("digits 64-128-64-10"), "steps", 1, S.max_steps),
    ("train", train("2-256x8-1 n=2000"), "steps", 1, S.max_steps),
    ("race", race("spiral 2-8-8-1 n=2000"), "steps", 1, S.max_steps),
    ("race", race("digits 64-128-64-10"), "steps", 1, S.max_steps),
    ("race", race("2-256x8-1 n=2000", 2), "steps", 0, S.max_steps),
    ("step", step("spiral 2-8-8-1 n=2000"), "t", 0, S.max_steps),
    ("step", step("digits 64-128-64-10"), "t", 0, S.max_steps),
    ("step", step("2-256x8-1 n=2000"), "t", 0, S.max_steps),
    ("gradcheck", gradcheck("spiral 2-8-8-1 n=2000"), "max_params", 1, S.max_gradcheck_params),
    ("gradcheck", gradcheck("digits 64-128-64-10"), "max_params", 1, S.max_gradcheck_params),
    ("gradcheck", gradcheck("2-256x8-1 n=2000"), "max_params", 1, S.max_gradcheck_params),
    ("surface", surface("spiral 2-8-8-1 n=2000"), "resolution", 5, S.max_surface_resolution),
    ("surface", surface("spiral 2-8-8-1 n=2000", k=8, resolution=41), "steps", 0, S.max_steps),
    ("surface", surface("digits 64-128-64-10"), "resolution", 5, S.max_surface_resolution),
    ("surface", surface("2-256x8-1 n=2000"), "resolution", 5, S.max_surface_resolution),
    ("race/stream", stream("spiral 2-8-8-1 n=200"), "steps", 1, S.max_steps),
    ("race/stream", stream("spiral 2-8-8-1 n=200", snapshots=60, boundary=64), "steps", 1, S.max_steps),
    ("race/stream", stream("spiral 2-8-8-1 n=2000", surface=31), "steps", 1, S.max_steps),
    ("race/stream", stream("digits 64-128-64-10", surface=21), "steps", 1, S.max_steps),
    ("race/stream", stream("2-256x8-1 n=2000", 2, surface=9), "steps", 1, S.max_steps),
    ("activations-grid", grid("2-8x8-1 n=2000"), "resolution", 5, 100),
    ("activations-grid", grid("2-256x8-1 n=2000"), "resolution", 5, 100),
    ("activations-grid", grid("2-256x8-1 n=2000", "packed"), "resolution", 5, 100),
    ("function-race", function_race(), "steps", 1, S.max_steps),
]


def describe(body: dict) -> str:
    """The network, rows and contestants of a request, for the table."""
    spec = body.get("spec", body)
    if "network" not in spec:
        return f"{body.get('problem')} K={len(body.get('optimizers', []))}"
    layers = spec["network"]["layers"]
    hidden = layers[1:-1]
    if len(hidden) >= 3 and len(set(hidden)) == 1:
        net = f"{layers[0]}-{hidden[0]}x{len(hidden)}-{layers[-1]}"
    else:
        net = "-".join(map(str, layers))
    rows = spec["data"].get("n", spec["data"]["dataset"])
    k = len(spec.get("optimizers", [])) or 1
    return f"{net} n={rows} K={k}"


async def accepted(client, path: str, body: dict) -> cost.Estimate | None:
    """The estimate if the cost model accepts the request (nothing runs), else None."""
    token = cost.dry_run.set(True)
    try:
        r = await client.post(path, json=body)
    except cost.Accepted as exc:
        return exc.estimate
    finally:
        cost.dry_run.reset(token)
    if r.status_code == 200:
        raise RuntimeError(f"{path}: answered without consulting the cost model")
    return None


async def largest(client, build, lo: int, hi: int):
    """The largest x in [lo, hi] accepted, by bisection (acceptance shrinks as x grows), and its estimate."""
    est = await accepted(client, *build(lo))
    if est is None:
        return None, None
    top = await accepted(client, *build(hi))
    if top is not None:
        return hi, top
    while hi - lo > 1:
        mid = (lo + hi) // 2
        e = await accepted(client, *build(mid))
        if e is None:
            hi = mid
        else:
            lo, est = mid, e
    return lo, est


async def timed(client, path: str, body: dict, runs: int):
    """Best wall time, best CPU time of this process (all threads: the request's work) and the bytes of the answer
    (a stream is read to its end)."""
    best, cpu, size, status = float("inf"), float("inf"), 0, None
    for _ in range(runs):
        cache.clear()  # a cold worker: nothing cached, every step recomputed
        prepare.cache_clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        async with client.stream("POST", path, json=body, headers={"Accept-Encoding": "identity"}) as r:
            size = 0
            async for chunk in r.aiter_raw():
                size += len(chunk)
            status = r.status_code
        best = min(best, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu_started)
    return best, cpu, size, status


async def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated endpoints (train,race,step,...)")
    args = parser.parse_args(argv)
    only = {o for o in args.only.split(",") if o}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    print(f"limits: max_work {S.max_work:.3g} units, answers <= {S.max_response_bytes:,} bytes")
    print(
        f"{'endpoint':18s} {'case':28s} {'field':>18s} {'max':>6s} {'est. units':>11s} {'wall s':>7s} "
        f"{'cpu s':>6s} {'ns/unit':>8s} {'bytes':>11s} {'est. bytes':>11s}"
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://calibrate", timeout=600) as client:
        for name, build, field, lo, hi in CASES:
            if only and name not in only:
                continue
            label = describe(build(lo)[1])
            x, est = await largest(client, build, lo, hi)
            if x is None:
                print(f"{name:18s} {label:28s} {field:>18s} {'none':>6s}   refused at the smallest value")
                continue
            wall, cpu, size, status = await timed(client, *build(x), args.runs)
            ratio = cpu * 1e9 / est.total_work
            print(
                f"{name:18s} {label:28s} {field:>18s} {x:6d} {est.total_work:11.3g} "
                f"{wall:7.2f} {cpu:6.2f} {ratio:8.2f} "
                f"{size:11,d} {est.total_response:11,.0f}" + ("" if status == 200 else f"  status {status}"),
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
