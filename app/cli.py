"""The `backprop-viz` command: serve the web app, train a spec from a file, export a trained network.

    backprop-viz --version
    backprop-viz serve [--host 127.0.0.1] [--port 8000] [--workers 1]
    backprop-viz train SPEC.json [--steps N] [-o RESULT.json]
    backprop-viz export SPEC.json --step T --format npz|json|torch [-o FILE]

A SPEC.json is the body of `POST /api/v1/train` (or `/race`): {network, data, optimizer | optimizers, schedule?,
l2?, ..., steps?}. `{"spec": {...}}` and `{"spec_token": "..."}` (the token of a page's URL) work too, and so do a
preset's id (`backprop-viz train xor-2-4-1`) and a page's URL (`backprop-viz export 'http://.../step?spec=...&t=40'
--format torch`). A bad file gets one line on stderr naming the file and the field, exit status 2, and nothing
written.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

DIST_NAME = "backprop-viz"
MAX_CLI_STEPS = 1_000_000  # a sanity bound for a local run; the server's limits (app/settings.py) are tighter
TABLE_ROWS = 11  # loss-table rows (t = 0 and t = steps included)
CHECK_ROWS = 4  # inputs the PyTorch snippet checks itself on

# The keys a spec file may have: the API's experiment fields, the step count, and the two wrappers.
EXPERIMENT_KEYS = {
    "network",
    "data",
    "optimizer",
    "optimizers",
    "schedule",
    "l2",
    "l1",
    "dropout",
    "clip_norm",
    "batch_size",
    "seed",
}
FILE_KEYS = EXPERIMENT_KEYS | {"steps", "evaluate_every", "t", "contestant", "spec", "spec_token"}


class CommandError(Exception):
    """What stops a command: one line on stderr, exit status 2."""


class SpecFileError(CommandError):
    """A spec file that cannot be used; the message names the file and what is wrong."""


def version() -> str:
    """The installed distribution's version (pyproject.toml is the one source)."""
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


# --------------------------------------------------------------------------- spec files


def spec_source(path: str) -> dict | None:
    """A spec that is not a file: a preset's id (`xor-2-4-1`) or a page's URL with `?spec=TOKEN` (a shared link).
    None when `path` is neither, so that it is read as a file."""
    from urllib.parse import parse_qs, urlsplit

    from engine.presets import PRESETS_BY_ID

    if Path(path).exists():
        return None
    if path in PRESETS_BY_ID:
        preset = PRESETS_BY_ID[path]
        return {"spec": preset["spec"], "steps": preset["steps"]}
    parts = urlsplit(path)
    if parts.scheme in ("http", "https") and parts.query:
        query = parse_qs(parts.query)
        if query.get("spec"):
            found = {"spec_token": query["spec"][0]}
            for key in ("t", "contestant"):
                if query.get(key) and query[key][0].isdigit():
                    found[key] = int(query[key][0])
            return found
    return None


def load_spec(path: str):
    """(Experiment, the file's top-level dict) from a JSON spec file (or a preset id, or a page's URL), or
    SpecFileError naming what is wrong."""
    from engine.presets import PRESETS_BY_ID
    from engine.spec import Experiment, experiment_from_dict

    d = spec_source(path)
    if d is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            presets = ", ".join(PRESETS_BY_ID)
            raise SpecFileError(
                f"{path}: cannot read ({e.strerror or e}); give a spec file, a page's URL with ?spec=, "
                f"or a preset: {presets}"
            ) from None
        d = parse_spec_file(path, raw)
    unknown = sorted(set(d) - FILE_KEYS)
    if unknown:
        raise SpecFileError(f"{path}: unknown field {unknown[0]!r} (a spec has {', '.join(sorted(FILE_KEYS))})")
    try:
        if "spec_token" in d:
            if not isinstance(d["spec_token"], str):
                raise ValueError("spec_token: must be a string")
            spec = Experiment.from_token(d["spec_token"])
        elif "spec" in d:
            spec = experiment_from_dict(d["spec"])
        else:
            spec = experiment_from_dict({k: v for k, v in d.items() if k in EXPERIMENT_KEYS})
        from engine.experiment import prepare

        prepare(spec)  # builds the data and theta_0, so a network that does not fit the data fails here
    except ValueError as e:
        raise SpecFileError(f"{path}: {e}") from None
    return spec, d


def parse_spec_file(path: str, raw: bytes) -> dict:
    """The JSON object of a spec file, or SpecFileError."""
    try:
        d = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise SpecFileError(f"{path}: must hold a JSON object (a spec), not {type(d).__name__}")
    return d


def whole_number(value, name: str, path: str, high: int = MAX_CLI_STEPS, low: int = 0) -> int:
    """A whole number low..high from the command line or the file, or SpecFileError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecFileError(f"{path}: {name}: must be a whole number from {low} to {high} (got {value!r})")
    return value


# --------------------------------------------------------------------------- output


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder: a failure leaves no partial file."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit(data: bytes, output: str) -> str:
    """Write to the file `output` (or stdout for "-"); returns where it went."""
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return "stdout"
    try:
        write_atomically(Path(output), data)
    except OSError as e:
        raise CommandError(f"{output}: cannot write ({e.strerror or e})") from None
    return output


def output_stem(source: str, spec) -> str:
    """The default output name: the spec file's stem, the preset's id, or spec-<id> for a page's URL."""
    from engine.presets import PRESETS_BY_ID

    if Path(source).is_file():
        return Path(source).stem
    return source if source in PRESETS_BY_ID else f"spec-{spec.id}"


class Progress:
    """A one-line progress bar on a terminal, redrawn in place: `[#####.....]  50%  500/1000 steps  1.2 s`."""

    WIDTH = 30

    def __init__(self, total: int, stream, enabled: bool):
        self.total, self.stream, self.enabled = max(total, 1), stream, enabled
        self.start = time.perf_counter()
        self.shown = False

    def draw(self, done: int) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH * done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        seconds = time.perf_counter() - self.start
        self.stream.write(f"\r[{bar}] {100 * done // self.total:3d}%  {done}/{self.total} steps  {seconds:.1f} s")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the bar so that a table row can be printed on its line."""
        if self.enabled and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def close(self, done: int) -> None:
        if self.enabled:
            self.draw(done)
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------- train


def table_steps(steps: int, rows: int = TABLE_ROWS, every: int = 1) -> list[int]:
    """The steps the loss table shows: evenly spaced from 0 to `steps`, both included, no repeats; with
    evaluate_every > 1, multiples of it (where the loss was evaluated) and the last step."""
    if steps == 0:
        return [0]
    return sorted({every * round(i * steps / (rows - 1) / every) for i in range(rows - 1)} | {steps})


def concat_histories(parts):
    """One History from consecutive chunks of one run (each chunk's first loss is the previous chunk's last)."""
    import numpy as np

    from engine.trainer import History

    def per_theta(name):
        arrays = [getattr(h, name) for h in parts]
        return None if arrays[0] is None else np.concatenate([arrays[0]] + [a[1:] for a in arrays[1:]])

    def per_step(name):
        arrays = [getattr(h, name) for h in parts]
        return None if arrays[0] is None else np.concatenate(arrays)

    diverged_at, offset = None, 0
    for h in parts:
        if h.diverged_at is not None:
            diverged_at = offset + h.diverged_at
            break
        offset += len(h.learning_rate)
    # where the whole-set metrics were evaluated (evaluate_every): None when every step was, in every part
    evaluated = None
    if any(h.evaluated is not None for h in parts):
        masks = [np.ones(len(h.loss), dtype=bool) if h.evaluated is None else h.evaluated for h in parts]
        evaluated = np.concatenate([masks[0]] + [m[1:] for m in masks[1:]])
    return History(
        loss=per_theta("loss"),
        test_loss=per_theta("test_loss"),
        accuracy=per_theta("accuracy"),
        test_accuracy=per_theta("test_accuracy"),
        learning_rate=per_step("learning_rate"),
        delta_norm=per_step("delta_norm"),
        grad_norm=per_step("grad_norm"),
        clip_before=per_step("clip_before"),
        clip_after=per_step("clip_after"),
        diverged_at=diverged_at,
        evaluated=evaluated,
    )


def train_with_progress(spec, steps: int, on_chunk=None, evaluate_every: int = 1):
    """Every contestant trained `steps` steps, as engine.experiment.train_runs does, in chunks so that a caller can
    show progress: on_chunk(t0, t1, histories) after each chunk (one History of steps t0..t1 per contestant).
    Returns [(History, final theta)] per contestant.

    A group of contestants in which one diverged is trained again in one engine run at the end (a diverged run
    stops early, so that is cheap): the engine stops a run's updates once all of it diverged, which chunks that
    resume training cannot see, and the result must be the engine's, weights included."""
    from engine.experiment import groups, prepare, start, trainer_for

    prep = prepare(spec)
    trainers = [
        (batch_size, members, trainer_for(prep, members, batch_size, steps, start(prep, len(members))))
        for batch_size, members in groups(spec).items()
    ]
    # chunk ends are evaluated steps (StackedTrainer.run): with evaluate_every > 1 they are its multiples, so the
    # chunked run evaluates where one engine run would, and the table's rows are numbers
    stride = evaluate_every * max(1, -(-max(1, steps // 100) // evaluate_every))
    stops = sorted(set(table_steps(steps, every=evaluate_every)) | set(range(0, steps, stride)) | {steps})
    chunks = list(zip(stops[:-1], stops[1:])) or [(0, 0)]  # 0 steps: one empty chunk gives the metrics at theta_0
    parts = {k: [] for k in range(len(spec.optimizers))}
    diverged = set()
    for t0, t1 in chunks:
        latest = [None] * len(spec.optimizers)  # None: that contestant's group has diverged entirely
        for _, members, trainer in trainers:
            if diverged.issuperset(members):
                continue
            for k, history in zip(members, trainer.run(t1 - t0, evaluate_every=evaluate_every)):
                parts[k].append(history)
                latest[k] = history
                if history.diverged_at is not None:
                    diverged.add(k)
        if on_chunk:
            on_chunk(t0, t1, latest)
    results = [None] * len(spec.optimizers)
    for batch_size, members, trainer in trainers:
        if diverged.intersection(members):
            trainer = trainer_for(prep, members, batch_size, steps, start(prep, len(members)))
            for k, history in zip(members, trainer.run(steps, evaluate_every=evaluate_every)):
                parts[k] = [history]
        for i, k in enumerate(members):
            results[k] = (concat_histories(parts[k]), trainer.theta[i].copy())
    return results


def contestant_names(spec) -> list[str]:
    """Column names: the optimizer's name, numbered when two contestants share it."""
    names = [o.name for o in spec.optimizers]
    return [f"{n}#{k}" if names.count(n) > 1 else n for k, n in enumerate(names)]


class LossTable:
    """The loss curve as a text table, each row printed as soon as training reaches its step: the training loss of
    each contestant, or for a single contestant its loss, test loss and accuracies."""

    def __init__(self, spec, steps: int, stream, progress: Progress, every: int = 1):
        self.names, self.steps, self.stream, self.progress = contestant_names(spec), steps, stream, progress
        self.rows = set(table_steps(steps, every=every))
        self.columns = None
        self.width = 12

    def _columns(self, histories) -> list[tuple[str, int, str]]:
        """(header, contestant, History field) per column."""
        if len(histories) > 1:
            return [(name, k, "loss") for k, name in enumerate(self.names)]
        fields = [("loss", "loss"), ("test loss", "test_loss"), ("accuracy", "accuracy")]
        fields.append(("test accuracy", "test_accuracy"))
        return [(header, 0, name) for header, name in fields if getattr(histories[0], name) is not None]

    def _print(self, line: str) -> None:
        self.progress.clear()
        print(line, file=self.stream, flush=True)

    def _row(self, t: int, histories, i: int) -> None:
        from .views.format import text

        def value(k, name):
            return float("nan") if histories[k] is None else float(getattr(histories[k], name)[i])

        cells = "".join(f"{text(value(k, name), 4):>{self.width}}" for _, k, name in self.columns)
        self._print(f"{t:>8}{cells}")

    def on_chunk(self, t0: int, t1: int, histories) -> None:
        """Print the header and the row of t = 0 first, then the row of t1 if it is one of the table's steps."""
        if self.columns is None:
            self.columns = self._columns(histories)
            self.width = max(12, *(len(header) + 2 for header, _, _ in self.columns))
            self._print(f"{'step':>8}" + "".join(f"{header:>{self.width}}" for header, _, _ in self.columns))
            self._row(0, histories, 0)
        if t1 in self.rows and t1 > t0:
            self._row(t1, histories, -1)
        self.progress.draw(t1)


def train_payload(spec, results, steps: int, evaluate_every: int = 1) -> dict:
    """The answer of POST /api/v1/train (one optimizer) or /api/v1/race (several), field for field."""
    from engine.experiment import prepare

    from .payloads import history_payload

    prep = prepare(spec)
    runs = [
        history_payload(spec, prep, k, history, theta, evaluate_every) for k, (history, theta) in enumerate(results)
    ]
    ids = {"steps": steps, "spec_id": spec.id, "spec_token": spec.to_token()}
    return {**runs[0], **ids} if len(runs) == 1 else {"runs": runs, **ids}


def cmd_train(args) -> int:
    from .serialize import dumps

    spec, d = load_spec(args.spec)
    steps = args.steps if args.steps is not None else d.get("steps")
    if steps is None:
        raise SpecFileError(f'{args.spec}: steps: give --steps N or a "steps" field')
    steps = whole_number(steps, "steps", args.spec)
    every = whole_number(d.get("evaluate_every", 1), "evaluate_every", args.spec, low=1)
    output = args.output or f"{output_stem(args.spec, spec)}.result.json"
    out = sys.stderr if output == "-" else sys.stdout  # the JSON owns stdout when it goes there
    progress = Progress(steps, sys.stderr, args.progress if args.progress is not None else sys.stderr.isatty())
    table = None if args.quiet else LossTable(spec, steps, out, progress, every)
    if table:
        layers = "-".join(str(n) for n in spec.network.layers)
        data = spec.data.dataset or "the given X, Y"
        print(f"training {layers} on {data} with {', '.join(table.names)}: {steps} steps (spec {spec.id})", file=out)
    results = train_with_progress(
        spec, steps, table.on_chunk if table else lambda t0, t1, h: progress.draw(t1), evaluate_every=every
    )
    progress.close(steps)
    if table:
        for name, (history, _) in zip(table.names, results):
            if history.diverged_at is not None:
                print(f"{name} diverged at step {history.diverged_at}: its loss is null from there on", file=out)
    where = emit(dumps(train_payload(spec, results, steps, every)), output)
    if output != "-":
        print(f"wrote {where}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- export


EXTENSIONS = {"json": ".json", "npz": ".npz", "torch": ".py"}


def cmd_export(args) -> int:
    from engine import export
    from engine.experiment import prepare

    spec, d = load_spec(args.spec)
    step = args.step if args.step is not None else d.get("t")
    if step is None:
        raise SpecFileError(f"{args.spec}: --step: give the step T to export (theta_T, after T steps)")
    step = whole_number(step, "--step", args.spec)
    contestant = args.contestant if args.contestant is not None else d.get("contestant", 0)
    contestant = whole_number(contestant, "contestant", args.spec, len(spec.optimizers) - 1)
    prep = prepare(spec)
    features = spec.data.features
    net, params = export.trained(spec, step, contestant)
    if args.format == "json":
        from .serialize import dumps  # strict JSON: weights that overflowed are null, never NaN

        data = dumps(
            {
                "network": export.to_dict(net, params, features),
                "step": step,
                "contestant": contestant,
                "spec_id": spec.id,
                "spec_token": spec.to_token(),
            }
        )
    elif args.format == "npz":
        data = export.to_npz(net, params, features)
    else:
        X = prep.data.X_train[:CHECK_ROWS]
        data = export.pytorch_snippet(net, params, features, check_inputs=X).encode()
    output = args.output or f"{output_stem(args.spec, spec)}-step{step}{EXTENSIONS[args.format]}"
    where = emit(data, output)
    if output != "-":
        print(f"wrote {where} ({args.format}, step {step}, contestant {contestant})", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- serve


def cmd_serve(args) -> int:
    import uvicorn

    from app.settings import get_settings

    # One BLAS thread per computation: a worker runs up to max_concurrent of them, and multi-threaded BLAS on a
    # busy 2-core box is several times slower, not faster (the cost model counts one core per request).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    # no `server: uvicorn` banner; a stopping worker finishes what is in flight for at most shutdown_timeout s
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        server_header=False,
        timeout_graceful_shutdown=get_settings().shutdown_timeout,
    )
    return 0


SPEC_HELP = "a JSON file (the body of POST /api/v1/train or /race), a preset id, or a page's URL with ?spec="


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backprop-viz", description="backprop-viz: see every number of backprop.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; any worker answers any request (experiments are pure functions of their spec)",
    )
    serve.set_defaults(run=cmd_serve)

    train = sub.add_parser("train", help="train a spec file; print the loss curve; write the result as JSON")
    train.add_argument("spec", metavar="SPEC.json", help=SPEC_HELP)
    train.add_argument("--steps", type=int, help='optimizer steps (default: the file\'s "steps")')
    train.add_argument(
        "-o", "--output", help="where the JSON result goes (default SPEC.result.json here; - for stdout)"
    )
    train.add_argument("-q", "--quiet", action="store_true", help="no loss table")
    train.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, help="progress bar on stderr (default: on a terminal)"
    )
    train.set_defaults(run=cmd_train)

    export = sub.add_parser("export", help="write a network's weights after T steps as npz, JSON or PyTorch code")
    export.add_argument("spec", metavar="SPEC.json", help=SPEC_HELP)
    export.add_argument("--step", type=int, metavar="T", help="export theta_T, after T steps (default: a URL's t)")
    export.add_argument("--format", choices=sorted(EXTENSIONS), required=True)
    export.add_argument("--contestant", type=int, help="which optimizer of a race (default 0)")
    export.add_argument("-o", "--output", help="the file to write (default SPEC-stepT.EXT here; - for stdout)")
    export.set_defaults(run=cmd_export)
    return p


def main(argv=None) -> int:
    """Parse the command line and run the command; a bad spec file is one line on stderr and exit status 2."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as e:
        print(f"backprop-viz {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"backprop-viz {args.command}: interrupted; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
