"""One cost model for every endpoint that computes: what a request will cost is estimated before any work starts,
and a request over a limit is refused at once with a 422 naming the field that made it expensive and the limit.

Three budgets (app.settings): CPU work in units of about a nanosecond of one core here (`max_work`), the size of
the answer (`max_response_bytes`) and the memory the request holds besides the answer (`max_memory_bytes`).

    work   = training steps x (per-step overhead + contestants x (update + rows x per-row cost of the network))
           + grid points x forward passes (loss surfaces, decision boundaries, activation grids)
           + parameters checked x 2 objective evaluations (gradient checks)
    bytes  = numbers in the answer x bytes per number (JSON floats, rounded grid values, packed codes)
    memory = recorded paths, snapshots and per-point activations held while the request runs

The coefficients were fitted on this 2-core machine with scripts/calibrate_costs.py, which times the most
expensive request each endpoint accepts (every one must answer within ~2 s and under ~10 MB).
"""

from contextvars import ContextVar
from dataclasses import dataclass, field

from engine import cancel

from .errors import BudgetError
from .settings import get_settings

# ---- coefficients, in ns of one core (scripts/calibrate_costs.py) ------------------------------------------------
STEP_FIXED = 60_000  # NumPy call overhead of one training step, whatever the network
STEP_PER_LAYER = 12_000  # ... and per layer
CONTESTANT_STEP = 25_000  # one contestant's optimizer update (a handful of calls)
UPDATE_PER_PARAM = 10.0  # the update's elementwise work per parameter
TRAIN_PER_PARAM_ROW = 0.45  # forward + backward multiply-adds, per parameter and sample
TRAIN_PER_UNIT_ROW = 35.0  # activations, their derivatives and the loss, per unit and sample
FORWARD_PER_PARAM_ROW = 0.7  # a forward pass only (surfaces, grids, objectives)
FORWARD_PER_UNIT_ROW = 22.0
FORWARD_CALL = 8_000  # fixed cost of one forward pass over a batch of points (per layer: ~ 2 calls)
FUNCTION_STEP = 25_000  # one step of one contestant on a 2-D test function (Python-level update)
FUNCTION_POINT = 60.0  # f at one contour point

SERIALIZE_PER_BYTE = 20.0  # turning arrays into JSON text, per byte of the answer
REQUEST_FIXED = 5_000_000  # parsing, validating and routing a request, building the spec

FLOAT_BYTES = 20  # a float64 in JSON: "0.12345678901234567," (measured: 19.9 a number in a step record)
ROUNDED_BYTES = 7  # a grid value rounded to 3-4 digits: "0.1234,"
INT_BYTES = 5  # a whole percent or a small index: "100,"
ARRAY_BYTES = 8  # float64 in memory


# scripts/calibrate_costs.py finds the largest request each endpoint accepts without running it: with this set,
# an accepted estimate raises Accepted instead of letting the work start.
dry_run: ContextVar[bool] = ContextVar("backprop_viz_cost_dry_run", default=False)


class Accepted(Exception):
    """Raised by Estimate.enforce in a dry run, carrying the accepted estimate."""

    def __init__(self, estimate: "Estimate"):
        super().__init__("accepted")
        self.estimate = estimate


@dataclass
class Estimate:
    """Work, answer bytes and memory of one request, each part blamed on the field that makes it grow."""

    work: dict = field(default_factory=lambda: {"request": REQUEST_FIXED})
    response: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)

    def add(self, field_name: str, work: float = 0.0, response: float = 0.0, memory: float = 0.0) -> "Estimate":
        """Blame work, answer bytes and memory on a field (writing the answer's JSON is work too)."""
        work = work + response * SERIALIZE_PER_BYTE
        for table, value in ((self.work, work), (self.response, response), (self.memory, memory)):
            if value:
                table[field_name] = table.get(field_name, 0.0) + float(value)
        return self

    def merge(self, other: "Estimate") -> "Estimate":
        for table, theirs in ((self.work, other.work), (self.response, other.response), (self.memory, other.memory)):
            for key, value in theirs.items():
                table[key] = table.get(key, 0.0) + value
        return self

    @property
    def total_work(self) -> float:
        return sum(self.work.values())

    @property
    def total_response(self) -> float:
        return sum(self.response.values())

    @property
    def total_memory(self) -> float:
        return sum(self.memory.values())

    def enforce(self) -> "Estimate":
        """Raise BudgetError (a 422) naming the biggest contributor of the first budget exceeded; else note the
        work on the current request (for the logs) and return self."""
        s = get_settings()
        checks = (
            (self.work, s.max_work, "work units (about a nanosecond of one core each)", "{:.3g}"),
            (self.response, s.max_response_bytes, "bytes of answer", "{:,.0f}"),
            (self.memory, s.max_memory_bytes, "bytes of memory", "{:,.0f}"),
        )
        for table, limit, what, fmt in checks:
            total = sum(table.values())
            if total > limit:
                blamed = max(table, key=table.get)
                raise BudgetError(
                    f"{blamed}: this request needs about {fmt.format(total)} {what}, over the limit of "
                    f"{fmt.format(limit)}; {ADVICE.get(blamed, 'ask for less')}"
                )
        if dry_run.get():
            raise Accepted(self)
        budget = cancel.current()
        if budget is not None:
            budget.notes["work"] = budget.notes.get("work", 0.0) + self.total_work
        return self


ADVICE = {
    "steps": "use fewer steps, fewer contestants, fewer rows or a smaller network",
    "t": "pick an earlier step, or use fewer rows or a smaller network",
    "optimizers": "race fewer optimizers, or use a smaller network",
    "network.layers": "use a smaller network or fewer rows",
    "data": "use fewer rows or a smaller network",
    "resolution": "use a lower resolution, or fewer rows or a smaller network",
    "surface_resolution": "use a lower surface resolution, or a smaller network",
    "boundary_resolution": "use a lower boundary resolution or fewer snapshots",
    "neuron_resolution": "use a lower neuron resolution (or encoding: packed)",
    "snapshots": "ask for fewer snapshots, or race fewer optimizers on a smaller network",
    "max_params": "check fewer parameters (max_params), or use fewer rows",
    "since": "ask for a shorter history",
    "samples": "ask for fewer samples",
}


# ---- the parts ----------------------------------------------------------------------------------------------------
def rows_of(prep) -> int:
    """Samples one evaluation of the objective touches: the training set and the test set."""
    return int(prep.X.shape[0] + prep.X_test.shape[0])


def units_of(net) -> int:
    return int(sum(net.layers[1:]))


def step_work(prep, contestants: int) -> float:
    """One training step of `contestants` contestants (the loss on the whole training and test sets is recorded
    every step, so every row counts, whatever the batch size)."""
    net = prep.net
    per_row = TRAIN_PER_PARAM_ROW * net.n_params + TRAIN_PER_UNIT_ROW * units_of(net)
    per_contestant = CONTESTANT_STEP + UPDATE_PER_PARAM * net.n_params + rows_of(prep) * per_row
    return STEP_FIXED + STEP_PER_LAYER * net.depth + contestants * per_contestant


def forward_work(prep, points: float, rows: int = 1) -> float:
    """`points` forward passes of the network over `rows` samples each (grid points, or thetas x the data)."""
    net = prep.net
    per_row = FORWARD_PER_PARAM_ROW * net.n_params + FORWARD_PER_UNIT_ROW * units_of(net)
    return points * rows * per_row + FORWARD_CALL * net.depth * max(1.0, points * rows / 4096)


def history_numbers(prep, steps: int) -> int:
    """Numbers per contestant in a train result: losses, accuracies, lr, norms per layer, clipping, final theta."""
    return int((steps + 1) * 4 + steps * (3 + 2 * prep.net.depth) + prep.net.n_params)


def training(prep, steps: int, contestants: int = 1, field_name: str = "steps", keep_path: bool = False) -> Estimate:
    """`steps` steps of `contestants` contestants from theta_0 (recomputed: the cache is never relied on)."""
    est = Estimate().add(field_name, work=steps * step_work(prep, contestants))
    if keep_path:
        est.add(field_name, memory=(steps + 1) * contestants * prep.net.n_params * ARRAY_BYTES)
    # the per-step records the trainer keeps while it runs
    est.add(field_name, memory=(steps + 1) * contestants * (8 + 2 * prep.net.depth) * ARRAY_BYTES)
    return est


# ---- one estimate per endpoint ------------------------------------------------------------------------------------
def train_or_race(prep, steps: int, contestants: int) -> Estimate:
    """POST /train and /race: the training, and one history per contestant in the answer."""
    est = training(prep, steps, contestants, "steps")
    per_contestant = history_numbers(prep, steps) * FLOAT_BYTES
    # the final weights are what grows with the network; the histories grow with the steps
    est.add("steps", response=contestants * (per_contestant - prep.net.n_params * FLOAT_BYTES))
    est.add(
        "optimizers" if contestants > 1 else "network.layers", response=contestants * prep.net.n_params * FLOAT_BYTES
    )
    return est


def step_record(prep, t: int, batch_rows: int, shown_rows: int | None = None) -> Estimate:
    """POST /step: t steps to reach theta_t (cold), the reference backprop on the batch, the full objective, and a
    record of theta-shaped arrays (before, after, update, gradient, optimizer state) and per-sample values (in the
    answer: only the `shown_rows` samples asked for, when fewer)."""
    net = prep.net

    def numbers(rows):
        return 12 * net.n_params + 4 * rows * units_of(net) + rows * (net.layers[0] + net.layers[-1] + 2)

    shown = batch_rows if shown_rows is None else min(shown_rows, batch_rows)
    est = training(prep, t + 1, 1, "t")
    est.add("network.layers", work=forward_work(prep, 3, batch_rows) + forward_work(prep, 1, rows_of(prep)))
    est.add("network.layers", memory=numbers(batch_rows) * ARRAY_BYTES * 2)
    est.add("samples" if shown < batch_rows else "network.layers", response=numbers(shown) * FLOAT_BYTES)
    return est


def trace(prep) -> Estimate:
    """POST /trace: one forward and backward pass at theta_0, z, a, delta per sample in the answer."""
    rows = int(prep.X.shape[0])
    numbers = 4 * rows * units_of(prep.net) + 2 * prep.net.n_params + rows * (prep.net.layers[0] + 2)
    return Estimate().add("data", work=forward_work(prep, 3, rows), response=numbers * FLOAT_BYTES)


def gradcheck(prep, t: int, checked: int) -> Estimate:
    """POST /gradcheck: t steps, then two objective evaluations on the training set per checked parameter."""
    est = training(prep, t, 1, "t")
    rows = int(prep.X.shape[0])
    est.add("max_params", work=(2 * checked + 3) * forward_work(prep, 1, rows), response=checked * 5 * FLOAT_BYTES)
    return est


def surface(prep, steps: int, contestants: int, resolution: int) -> Estimate:
    """POST /surface: the contestants' paths (theta at every step), then the loss at resolution^2 thetas."""
    est = training(prep, steps, contestants, "steps", keep_path=True)
    points = resolution * resolution
    est.add("resolution", work=forward_work(prep, points, rows_of(prep)), response=points * FLOAT_BYTES)
    est.add("steps", response=(steps + 1) * contestants * 2 * FLOAT_BYTES)
    return est


def race_stream(prep, steps, contestants, surface_resolution, boundary, boundary_resolution, snapshots, path_floats):
    """POST /race/stream: the race in chunks (loss, accuracy, lr and one weight's state per step), the surface
    over a slice, and decision-boundary frames (snapshots of theta kept per contestant)."""
    K, P = contestants, prep.net.n_params
    est = training(prep, steps, K, "steps")
    est.add("steps", response=(steps + 1) * K * 8 * FLOAT_BYTES)  # loss, accuracy, lr, g, update, state
    est.add("steps", memory=min(path_floats, (steps + 1) * K * P) * ARRAY_BYTES)  # thinned paths
    points = surface_resolution**2
    est.add("surface_resolution", work=forward_work(prep, points, rows_of(prep)), response=points * FLOAT_BYTES)
    if boundary:
        frames = K * snapshots
        grid = boundary_resolution**2
        est.add("snapshots", memory=frames * P * ARRAY_BYTES, work=forward_work(prep, frames, grid))
        est.add("boundary_resolution", response=frames * grid * INT_BYTES)
    # the stream writes its events through json.dumps (not orjson): about three times the work per byte
    est.add("steps", work=2 * SERIALIZE_PER_BYTE * est.response.get("steps", 0))
    if boundary:
        est.add("boundary_resolution", work=2 * SERIALIZE_PER_BYTE * est.response.get("boundary_resolution", 0))
    return est


def activations_grid(prep, steps: int, history: int, resolution: int, neuron_resolution: int, packed: bool):
    """POST /activations-grid: steps to reach t from the nearest checkpoint, the network over two grids (output,
    and every hidden unit), the metrics on the data, and the history of the chunk."""
    net = prep.net
    est = training(prep, steps, 1, "t")
    hidden = units_of(net) - net.layers[-1]
    out_points, unit_points = resolution**2, neuron_resolution**2
    per_value = 2.7 if packed else ROUNDED_BYTES  # packed: 8 or 16-bit codes in base64
    est.add("resolution", work=forward_work(prep, 1, out_points), response=out_points * per_value)
    est.add(
        "neuron_resolution",
        work=forward_work(prep, 1, unit_points),
        response=hidden * unit_points * per_value,
        memory=2 * (out_points + unit_points) * units_of(net) * ARRAY_BYTES,
    )
    est.add("network.layers", work=forward_work(prep, 2, rows_of(prep)), response=net.n_params * FLOAT_BYTES)
    est.add("since", response=history * (4 + 2 * net.depth) * FLOAT_BYTES)
    return est


def function_race(steps: int, state_counts: list[int], resolution: int) -> Estimate:
    """POST /function-race: contestants on a 2-D function (state_counts: each one's optimizer state vectors),
    per step f, theta, lr, g, update and every state entry; f on the contour grid."""
    numbers = (steps + 1) * sum(8 + 2 * states for states in state_counts)
    est = Estimate().add("steps", work=steps * len(state_counts) * FUNCTION_STEP, response=numbers * FLOAT_BYTES)
    est.add("resolution", work=resolution**2 * FUNCTION_POINT, response=resolution**2 * FLOAT_BYTES)
    return est
