"""Two-parameter test functions f(theta), theta = (x, y), with analytic gradients, and a stacked trainer for them.

The optimizer race runs on networks (y = 2x of note 000 is the `linear-y-2x` network preset: w and b) and on these
classic surfaces, where the whole loss landscape fits on one contour plot and every step can be seen:

  * Rosenbrock      f = (1 - x)^2 + 100 (y - x^2)^2                       a curved, flat-bottomed valley
  * Beale           f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2      steep walls, flat plateaus
  * saddle          f = x^2 + 1/4 (y^2 - 1)^2                            a saddle at (0, 0) between minima (0, +-1)
  * ill-conditioned f = 1/2 (x^2 + 25 y^2)                               a ravine: curvatures 1 and 25

Every function takes theta of shape (..., 2) and returns f of shape (...), and every gradient returns (..., 2),
so K contestants (K, 2) and a contour grid (R, R, 2) go through the same code. `FunctionTrainer` trains K
contestants with the network trainer's optimizers (engine.optimizers, the same update functions on a 2-vector)
and schedules (engine.schedules), all from the same start, and records theta_t, f(theta_t), lr_t, the gradient,
the update and the optimizer's state at every step. There is no data, so no batches: every contestant sees the
exact gradient, and a race is fair by construction.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import divergence
from .experiment import contestant
from .spec import MAX_CONTESTANTS, optimizer_from_dict
from .trainer import Contestant

ESCAPE = 1e8  # |x| or |y| beyond this counts as diverged: far outside every plot, and a few steps from overflow


@dataclass(frozen=True)
class Problem:
    """A function of theta = (x, y), its gradient, where races start, where the minima are, and how to plot it."""

    name: str
    title: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    latex: str
    latex_grad: tuple[str, str]
    description: str
    saddles: tuple[tuple[float, float], ...] = ()
    log_contour: bool = False  # contour log10 f: the values span several decades


def _xy(theta):
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape[-1:] != (2,):
        raise ValueError(f"theta: must have shape (..., 2), got {theta.shape}")
    return theta[..., 0], theta[..., 1]


def rosenbrock(theta):
    """f = (a - x)^2 + b (y - x^2)^2 with a = 1, b = 100; minimum 0 at (1, 1)."""
    x, y = _xy(theta)
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def rosenbrock_grad(theta):
    """df/dx = -2 (1 - x) - 400 x (y - x^2),  df/dy = 200 (y - x^2)."""
    x, y = _xy(theta)
    valley = y - x * x
    return np.stack([-2.0 * (1.0 - x) - 400.0 * x * valley, 200.0 * valley], axis=-1)


def beale(theta):
    """f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2; minimum 0 at (3, 0.5)."""
    x, y = _xy(theta)
    u1, u2, u3 = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    return u1**2 + u2**2 + u3**2


def beale_grad(theta):
    """df/dx = 2 u1 (y - 1) + 2 u2 (y^2 - 1) + 2 u3 (y^3 - 1),  df/dy = 2 u1 x + 2 u2 (2 x y) + 2 u3 (3 x y^2)."""
    x, y = _xy(theta)
    u1, u2, u3 = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    dx = 2.0 * u1 * (y - 1.0) + 2.0 * u2 * (y**2 - 1.0) + 2.0 * u3 * (y**3 - 1.0)
    dy = 2.0 * u1 * x + 2.0 * u2 * (2.0 * x * y) + 2.0 * u3 * (3.0 * x * y**2)
    return np.stack([dx, dy], axis=-1)


def saddle(theta):
    """f = x^2 + 1/4 (y^2 - 1)^2; a saddle at (0, 0) with f = 1/4 (Hessian diag(2, -1)), minima 0 at (0, +-1)."""
    x, y = _xy(theta)
    return x * x + 0.25 * (y * y - 1.0) ** 2


def saddle_grad(theta):
    """df/dx = 2 x,  df/dy = y (y^2 - 1)."""
    x, y = _xy(theta)
    return np.stack([2.0 * x, y * (y * y - 1.0)], axis=-1)


KAPPA = 25.0  # condition number of the ravine's Hessian diag(1, KAPPA): plain GD is stable only for lr < 2 / KAPPA


def ravine(theta):
    """f = 1/2 (x^2 + kappa y^2), kappa = 25; minimum 0 at (0, 0)."""
    x, y = _xy(theta)
    return 0.5 * (x * x + KAPPA * y * y)


def ravine_grad(theta):
    """df/dx = x,  df/dy = kappa y."""
    x, y = _xy(theta)
    return np.stack([x, KAPPA * y], axis=-1)


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "rosenbrock",
            "Rosenbrock's valley",
            rosenbrock,
            rosenbrock_grad,
            (-1.5, 2.5),
            ((1.0, 1.0),),
            (-2.0, 2.0),
            (-1.0, 3.0),
            r"f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2",
            (
                r"\frac{\partial f}{\partial x} = -2(1 - x) - 400\,x\,(y - x^2)",
                r"\frac{\partial f}{\partial y} = 200\,(y - x^2)",
            ),
            "A narrow curved valley: finding it is easy, following its almost flat floor to (1, 1) is not.",
            log_contour=True,
        ),
        Problem(
            "beale",
            "Beale's function",
            beale,
            beale_grad,
            (0.7, 1.4),
            ((3.0, 0.5),),
            (-1.5, 4.5),
            (-1.5, 2.5),
            r"f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
            (
                r"\frac{\partial f}{\partial x} = 2u_1(y - 1) + 2u_2(y^2 - 1) + 2u_3(y^3 - 1)",
                r"\frac{\partial f}{\partial y} = 2u_1 x + 4u_2\,xy + 6u_3\,xy^2",
            ),
            "Steep walls and flat plateaus (u_1, u_2, u_3 are the three brackets); the minimum is at (3, 0.5).",
            log_contour=True,
        ),
        Problem(
            "saddle",
            "A saddle point",
            saddle,
            saddle_grad,
            (1.5, 0.001),
            ((0.0, -1.0), (0.0, 1.0)),
            (-2.0, 2.0),
            (-1.6, 1.6),
            r"f(x, y) = x^2 + \tfrac14\,(y^2 - 1)^2",
            (r"\frac{\partial f}{\partial x} = 2x", r"\frac{\partial f}{\partial y} = y\,(y^2 - 1)"),
            "Starting almost on the ridge y = 0: the gradient first leads into the saddle at (0, 0), where it "
            "vanishes; who escapes to a minimum at (0, \u00b11), and how fast?",
            saddles=((0.0, 0.0),),
        ),
        Problem(
            "ravine",
            "Ill-conditioned quadratic",
            ravine,
            ravine_grad,
            (-4.5, 1.0),
            ((0.0, 0.0),),
            (-5.0, 5.0),
            (-2.5, 2.5),
            r"f(x, y) = \tfrac12\,(x^2 + 25\,y^2)",
            (r"\frac{\partial f}{\partial x} = x", r"\frac{\partial f}{\partial y} = 25\,y"),
            "Curvature 25 across the ravine, 1 along it (condition number 25): gradient descent zig-zags "
            "across and crawls along; it is stable only for lr < 2/25.",
        ),
    )
}


def get_problem(name: str) -> Problem:
    """The registered problem, or ValueError naming the choices."""
    if name not in PROBLEMS:
        raise ValueError(f"problem: unknown '{name}' (choose from {', '.join(PROBLEMS)})")
    return PROBLEMS[name]


@dataclass
class FunctionRun:
    """One contestant's race on a 2-D function; index t is theta_t (loss, path) or step t (the rest); NaN after
    divergence."""

    loss: np.ndarray  # (steps+1,) f(theta_t)
    path: np.ndarray  # (steps+1, 2) theta_t
    learning_rate: np.ndarray  # (steps,) lr_t
    grad: np.ndarray  # (steps, 2) g_t = grad f(theta_t)
    update: np.ndarray  # (steps, 2) theta_{t+1} - theta_t
    states: dict[str, np.ndarray]  # name -> (steps, 2): velocity, s, m, v, m_hat, v_hat, sum after step t
    diverged_at: int | None  # first t breaking engine.divergence's rule (f(theta_t) not finite or > 100x f(theta_0))
    # or with theta_t beyond ESCAPE


class FunctionTrainer:
    """K contestants on one problem from one start, as one (K, 2) array: f and grad f are evaluated for all of
    them in one call per step; each contestant's update is its optimizer's own in-place rule on its row."""

    def __init__(self, problem: Problem, contestants: list[Contestant], start=None):
        if not 1 <= len(contestants) <= MAX_CONTESTANTS:
            raise ValueError(f"optimizers: need 1 to {MAX_CONTESTANTS} contestants")
        start = problem.start if start is None else start
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        if start.shape != (2,) or not np.all(np.isfinite(start)) or np.any(np.abs(start) > 1e3):
            raise ValueError("start: must be two finite numbers within +-1000")
        self.problem, self.contestants, self.K = problem, contestants, len(contestants)
        self.theta = np.tile(start, (self.K, 1))  # every contestant starts at the same theta_0
        self.grad = np.zeros_like(self.theta)
        self.states = [c.optimizer.init_state(2) for c in contestants]

    def run(self, steps: int) -> list[FunctionRun]:
        """Take `steps` steps; a contestant that diverges is frozen (NaN from there on) and the others race on."""
        K, f, grad_f = self.K, self.problem.f, self.problem.grad
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError("steps: must be a whole number >= 0")
        lrs = np.stack([c.learning_rates[:steps] for c in self.contestants], axis=1)
        if lrs.shape[0] < steps:
            raise ValueError("steps: more steps than learning rates were scheduled")
        loss = np.full((steps + 1, K), np.nan)
        path = np.full((steps + 1, K, 2), np.nan)
        grads = np.full((steps, K, 2), np.nan)
        states = [{name: np.full((steps, 2), np.nan) for name in s} for s in self.states]
        diverged = np.full(K, -1)
        alive = np.ones(K, dtype=bool)
        with np.errstate(all="ignore"):
            for t in range(steps + 1):
                path[t] = self.theta
                loss[t] = f(self.theta)
                # THE divergence rule (engine.divergence: not finite or above 100x f(theta_0)), or theta escaped
                escaped = divergence.is_diverged(loss[t], loss[0]) | np.any(~(np.abs(self.theta) <= ESCAPE), axis=1)
                newly = alive & escaped
                diverged[newly] = t
                alive &= ~escaped
                if t == steps or not alive.any():
                    break
                self.grad[...] = grad_f(self.theta)  # the optimizers may overwrite g, so a buffer per row
                grads[t] = self.grad
                for k in np.flatnonzero(alive):
                    c = self.contestants[k]
                    c.optimizer.update(self.theta[k], self.grad[k], self.states[k], lrs[t, k], t + 1, c.hyper)
                    for name, value in self.states[k].items():
                        states[k][name][t] = value
        runs = []
        for k in range(K):
            d = int(diverged[k])
            keep = len(loss) if d < 0 else d + 1  # theta_d is kept: it is where it escaped
            run_loss, run_path = loss[:, k].copy(), path[:, k].copy()
            run_loss[keep:] = np.nan
            run_path[keep:] = np.nan
            run_loss[~np.isfinite(run_loss)] = np.nan
            done = steps if d < 0 else d
            lr = lrs[:, k].copy()
            lr[done:] = np.nan
            g = grads[:, k].copy()
            g[done:] = np.nan
            update = run_path[1:] - run_path[:-1]
            update[done:] = np.nan
            for value in states[k].values():
                value[done:] = np.nan
            runs.append(FunctionRun(run_loss, run_path, lr, g, update, states[k], None if d < 0 else d))
        return runs


def function_race(problem: str, optimizers: list[dict], steps: int, start=None) -> list[FunctionRun]:
    """Race the optimizers (dicts as in a spec: {"name": "adam", "lr": 0.1, "schedule": {...}}) on a problem."""
    chosen = get_problem(problem)
    if not isinstance(optimizers, (list, tuple)) or not 1 <= len(optimizers) <= MAX_CONTESTANTS:
        raise ValueError(f"optimizers: need 1 to {MAX_CONTESTANTS} optimizer objects")
    specs = [optimizer_from_dict(o) for o in optimizers]
    return FunctionTrainer(chosen, [contestant(o, steps) for o in specs], start).run(steps)


def contour_grid(problem: Problem, resolution: int = 101) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (R,), y (R,) and f on the grid, rows = y as Plotly's contour z expects; the problem's own plot window."""
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 5 <= resolution <= 401:
        raise ValueError("resolution: must be a whole number from 5 to 401")
    x = np.linspace(*problem.x_range, resolution)
    y = np.linspace(*problem.y_range, resolution)
    grid = np.stack(np.meshgrid(x, y), axis=-1)  # (R, R, 2), grid[r, c] = (x[c], y[r])
    return x, y, problem.f(grid)
