"""Every limit of the server in one settings object; override with BACKPROP_VIZ_* environment variables."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Bounds that keep any single request to a couple of seconds of one worker."""

    model_config = SettingsConfigDict(env_prefix="BACKPROP_VIZ_")

    max_layer_width: int = 256
    max_hidden_layers: int = 8
    max_rows: int = 2000  # samples in a request's data (named datasets: n)
    max_features: int = 64
    max_steps: int = 5000
    max_contestants: int = 8
    # Work budget in estimated units of about a nanosecond each on these machines (see app.routes.api.work_units):
    # 2.5e9 keeps a request near two seconds of one worker.
    max_work: float = 2.5e9
    max_surface_resolution: int = 81
    max_gradcheck_params: int = 2000
    max_body_bytes: int = 1_000_000
    checkpoint_cache_size: int = 512


@lru_cache
def get_settings() -> Settings:
    return Settings()
