"""What a race costs, measured in one run, printed as ratios (not asserted):

1. the engine: a race of 8 contestants x 1,000 steps on the spiral network against ONE SGD run and ONE Adam run of
   the same length (the contestants that share a batch size train as one stacked program, so a race of 8 costs far
   less than 8 runs); also the race as /race computes it (chunks, paths, every weight's optimizer state, landscape);
   a GD-against-SGD race (mini-batch contestants) with its losses evaluated at the playback frames against every step;
   and the optimizer-state tables the page receives, plain float32 against byte-shuffled, gzipped at level 1;
2. the page: the time from pressing Start to the race fully drawn in Chromium, divided by the time the JSON API
   (POST /api/v1/race) takes for the same race (the issue's target: at most 1.5x);
3. playback on 8 x 1,000: redraws per second at 1x (target 30), the script's cost of one forward frame, and a scrub
   (a jump back) from the call to the next painted frame (target < 50 ms).

    python benchmarks/race.py             # all three, best of several interleaved blocks
    python benchmarks/race.py --quick     # 100 steps, fewer blocks: a smoke run
    python benchmarks/race.py --no-browser

One BLAS thread, wall time, best of interleaved blocks, ratios from the same run (../shared/RECIPES.md). The browser
part needs Debian's Chromium at /usr/bin/chromium (benchmarks/race_browser.py).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS; an explicit setting wins

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from app.views import race as rv  # noqa: E402
from engine import experiment  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

EIGHT = [
    {"name": "sgd", "lr": 0.3},
    {"name": "sgd", "lr": 0.3, "momentum": 0.9},
    {"name": "momentum", "lr": 3.0, "beta": 0.9},
    {"name": "nesterov", "lr": 0.3, "momentum": 0.9},
    {"name": "rmsprop", "lr": 0.01},
    {"name": "adam", "lr": 0.01},
    {"name": "adamw", "lr": 0.01},
    {"name": "adagrad", "lr": 0.1},
]


def spiral(optimizers) -> object:
    return experiment_from_dict(rv.race_spec("spiral", optimizers))


def best_of(blocks, runs):
    """runs: name -> zero-argument callable; the best wall time of each over interleaved blocks."""
    best = {name: float("inf") for name in runs}
    for _ in range(blocks):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def engine_part(steps: int, blocks: int) -> None:
    race = spiral(EIGHT)
    sgd = spiral([{"name": "sgd", "lr": 0.3}])
    adam = spiral([{"name": "adam", "lr": 0.01}])

    def page_race():
        result = rv.race(race, steps)
        rv.page_data(result, rv.landscape(result, rv.RESOLUTION))

    t = best_of(
        blocks,
        {
            "race": lambda: experiment.train(race, steps),
            "sgd": lambda: experiment.train(sgd, steps),
            "adam": lambda: experiment.train(adam, steps),
            "page": page_race,
        },
    )
    print(f"engine, spiral 2-8-8-1, {steps} steps, best of {blocks} (OPENBLAS_NUM_THREADS=1)")
    print(f"  one SGD run            {t['sgd'] * 1e3:8.1f} ms")
    print(f"  one Adam run           {t['adam'] * 1e3:8.1f} ms")
    print(f"  race of 8              {t['race'] * 1e3:8.1f} ms")
    print(
        f"  race/one-run ratio     {t['race'] / t['sgd']:8.2f}x against SGD, {t['race'] / t['adam']:.2f}x against Adam"
    )
    print(
        f"  the race as /race computes it (state of every weight, landscape): {t['page'] * 1e3:.1f} ms, "
        f"{t['page'] / t['race']:.2f}x the race"
    )
    mini_batch_part(steps, blocks)
    state_encoding_part(steps)


GD_SGD = [
    {"name": "sgd", "lr": 0.3},
    {"name": "sgd", "lr": 0.05, "batch_size": 1},
    {"name": "sgd", "lr": 0.1, "batch_size": 16},
    {"name": "adam", "lr": 0.01, "batch_size": 16},
]


def mini_batch_part(steps: int, blocks: int) -> None:
    """The page's race with mini-batch contestants: whole-set losses at its frames (rv.evaluation_stride) against
    at every step (the stride forced to 1)."""
    race = spiral(GD_SGD)
    stride = rv.evaluation_stride

    def every_step():
        rv.evaluation_stride = lambda spec, steps: 1
        try:
            rv.race(race, steps)
        finally:
            rv.evaluation_stride = stride

    t = best_of(blocks, {"frames": lambda: rv.race(race, steps), "every": every_step})
    print(f"GD, SGD (batch 1), SGD and Adam (batch 16), as /race computes it, {steps} steps:")
    print(
        f"  losses at the frames (every {stride(race, steps)} steps) {t['frames'] * 1e3:.1f} ms, at every step "
        f"{t['every'] * 1e3:.1f} ms: {t['every'] / t['frames']:.2f}x"
    )


def state_encoding_part(steps: int) -> None:
    """The bytes and gzip time of the page's optimizer-state tables: plain float32 rows against rv._b64's weight-major,
    byte-shuffled layout, both in base64 and gzipped at level 1 as the server sends them."""
    import base64
    import zlib

    import numpy as np

    result = rv.race(spiral(EIGHT), steps)
    tables = [v for s in result.states for v in s.values()]
    plain = "".join(base64.b64encode(np.ascontiguousarray(t, dtype="<f4").tobytes()).decode() for t in tables)
    shuffled = "".join(rv._b64(t) for t in tables)
    print(f"optimizer-state tables of the race of 8, {steps} steps ({len(plain) / 1e6:.2f} MB of base64):")
    sizes = {}
    for name, text in (("plain", plain), ("shuffled", shuffled)):
        data = text.encode()
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            sent = compressor.compress(data) + compressor.flush()
            best = min(best, time.process_time() - started)
        sizes[name] = (len(sent), best)
        print(f"  {name:9s} {len(sent) / 1e6:.2f} MB gzipped in {best * 1e3:.1f} ms")
    (plain_bytes, plain_s), (shuffled_bytes, shuffled_s) = sizes["plain"], sizes["shuffled"]
    fewer, faster = 1 - shuffled_bytes / plain_bytes, 1 - shuffled_s / plain_s
    print(f"  shuffled: {fewer:.0%} fewer bytes, {faster:.0%} less gzip time")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps, fewer blocks")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    steps, blocks = (100, 2) if args.quick else (args.steps, args.blocks)
    engine_part(steps, blocks)
    if args.no_browser:
        return
    from benchmarks import race_browser  # noqa: PLC0415 (Playwright only when the browser part runs)

    race_browser.run(spiral(EIGHT), steps, repeats=2 if args.quick else 3)


if __name__ == "__main__":
    main()
