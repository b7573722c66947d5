"""How much a race costs over a single run: 6 contestants, 1,000 steps, on the spiral network (preset spiral-2-8-8-1).

    python benchmarks/race.py            # best of 7 interleaved blocks
    python benchmarks/race.py --quick    # 100 steps, best of 2: a smoke run for CI

The 6 contestants share the full batch, so `engine.experiment.train` trains them as one stacked program (a leading
contestant axis through np.matmul). Printed, not asserted: the time of the race divided by the time of one
contestant's run (one Adam run, and one plain SGD run: the cheapest update) (the issue's target is at most 2x; six
separate runs would be about 6x), the same for six separate runs, and for the race as the /race page streams it
(chunks, one weight's optimizer state, paths kept for the landscape). One BLAS thread, best of several interleaved
blocks, ratios from the same run (../shared/RECIPES.md).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS; an explicit setting wins

import argparse
import copy
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from engine import experiment  # noqa: E402
from engine.presets import PRESETS_BY_ID  # noqa: E402
from engine.spec import experiment_from_dict  # noqa: E402

CONTESTANTS = [
    {"name": "sgd", "lr": 1.0},
    {"name": "momentum", "lr": 1.0},
    {"name": "nesterov", "lr": 0.3},
    {"name": "rmsprop", "lr": 0.01},
    {"name": "adam", "lr": 0.01},
    {"name": "adamw", "lr": 0.01},
]


def spiral_spec(optimizers):
    spec = copy.deepcopy(PRESETS_BY_ID["spiral-2-8-8-1"]["spec"])
    spec.pop("optimizer")
    return experiment_from_dict({**spec, "optimizers": optimizers})


def best_of(blocks, runs):
    """runs: name -> zero-argument callable; the best wall time of each over interleaved blocks."""
    best = {name: float("inf") for name in runs}
    for _ in range(blocks):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps, 2 blocks")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args(argv)
    steps, blocks = (100, 2) if args.quick else (args.steps, args.blocks)

    race = spiral_spec(CONTESTANTS)
    singles = [spiral_spec([c]) for c in CONTESTANTS]
    one = spiral_spec([{"name": "adam", "lr": 0.01}])
    one_sgd = spiral_spec([{"name": "sgd", "lr": 1.0}])
    assert len(experiment.groups(race)) == 1, "the six share the full batch: one stacked group"

    from app.routes.race_page import RaceStreamRequest, StreamedRace  # the page's streamed race

    body = RaceStreamRequest.model_validate({**race.to_dict(), "steps": steps, "snapshots": 2, "surface_resolution": 9})

    def streamed():
        for _ in StreamedRace(race, body)._train():
            pass

    for spec in [race, one, one_sgd, *singles]:
        experiment.prepare(spec)  # build data and theta_0 outside the timing
        experiment.train(spec, 5)
    best = best_of(
        blocks,
        {
            "one": lambda: experiment.train(one, steps),
            "one_sgd": lambda: experiment.train(one_sgd, steps),
            "race": lambda: experiment.train(race, steps),
            "separate": lambda: [experiment.train(s, steps) for s in singles],
            "streamed": streamed,
        },
    )
    print(
        f"spiral 2-8-8-1, 200 rows, full batch, {steps} steps, OPENBLAS_NUM_THREADS="
        f"{os.environ['OPENBLAS_NUM_THREADS']}, best of {blocks}"
    )
    print(f"  one contestant (adam)            {best['one'] * 1e3:8.1f} ms")
    print(f"  one contestant (sgd)             {best['one_sgd'] * 1e3:8.1f} ms")
    for name, label in (
        ("race", "race of 6, one stacked program"),
        ("separate", "6 separate runs"),
        ("streamed", "race of 6 as /race streams it"),
    ):
        print(
            f"  {label:<32} {best[name] * 1e3:8.1f} ms   / one adam run = {best[name] / best['one']:.2f}x, "
            f"/ one sgd run = {best[name] / best['one_sgd']:.2f}x"
        )


if __name__ == "__main__":
    main()
