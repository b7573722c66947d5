"""Every limit of the server in one settings object; override with BACKPROP_VIZ_* environment variables."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Bounds that keep any single request to a couple of seconds of one worker, and a worker responsive."""

    model_config = SettingsConfigDict(env_prefix="BACKPROP_VIZ_")

    # ---- sizes of what a request may describe
    max_layer_width: int = 256
    max_hidden_layers: int = 8
    max_rows: int = 2000  # samples in a request's data (named datasets: n)
    max_features: int = 64
    max_steps: int = 5000
    max_contestants: int = 8
    max_surface_resolution: int = 81
    max_gradcheck_params: int = 2000
    max_body_bytes: int = 1_000_000
    max_query_chars: int = 16_000  # a page URL's query string, spec tokens included (uvicorn's own cap is 16 kB)
    # ---- the cost model (app.cost; calibrated by scripts/calibrate_costs.py on the 2-core development machine)
    max_work: float = 1.5e9  # estimated work units, about a nanosecond of one core each
    max_response_bytes: int = 10_000_000  # estimated size of an answer (before compression)
    max_memory_bytes: int = 200_000_000  # memory a request holds besides its answer (paths, snapshots, grids)
    # ---- a worker under load
    max_concurrent: int = 3  # compute requests running at once per worker; more wait in a bounded line
    # a class of 300 opening /step at once waits in line (a page costs ~20 ms) instead of being turned away
    max_queued: int = 512  # requests waiting for a slot; beyond, a fast 503 with Retry-After
    queue_timeout: float = 10.0  # seconds a request waits in line before it gets the 503
    retry_after: int = 1  # seconds, in the Retry-After header of that 503
    request_timeout: float = 20.0  # seconds (10x the ~2 s an accepted request takes); then the work stops: a 504
    gil_switch_interval: float = 0.001  # s; Python's default 0.005 lets computing threads starve the event loop
    shutdown_timeout: float = 10.0  # seconds a stopping worker waits for requests in flight
    # ---- the checkpoint cache of each worker (engine.experiment.CheckpointCache)
    checkpoint_cache_bytes: int = 64 << 20
    checkpoint_every: int = 50  # sparse checkpoints: reaching any step t costs at most this many steps
    # ---- logs
    json_logs: bool = False  # one JSON object per request (request id, route, status, duration, work units)
    access_log: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
