"""Service settings, read once from the environment (and a `.env` file when present)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder holding the data sets and, by default, the SQLite file.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file jobs.db in DATA_DIR.")
    download_datasets: bool = Field(True, description="Download CIFAR-10 when it is missing and the network allows.")
    api_key: str | None = Field(
        None, description="When set, every request but /healthz and the docs needs `Authorization: Bearer <key>`."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Routes read the database from a thread pool; in one process those threads queue for the GIL,
    # which tripled the p99 latency of polling under load on 2 cores (docs/BENCHMARKS.md).
    api_workers: int = Field(2, ge=1, le=64, description="API server processes `make serve` starts (uvicorn workers).")
    worker_poll_seconds: float = Field(0.5, description="How long an idle worker waits before looking again.")
    heartbeat_seconds: float = Field(5.0, description="How often a worker refreshes the heartbeat of its job.")
    training_nice: int = Field(
        10, ge=0, le=19, description="Scheduling niceness of training processes, so the API stays responsive."
    )
    stale_after_seconds: float = Field(
        30.0, description="A running job whose heartbeat is older than this lost its worker and is requeued."
    )
    flush_seconds: float = Field(1.0, description="How often a training job writes its points and progress.")
    max_request_bytes: int = Field(64 * 1024 * 1024, description="Largest request body the API accepts.")
    max_image_bytes: int = Field(10 * 1024 * 1024, description="Largest single image file for /predict.")
    max_image_pixels: int = Field(25_000_000, description="Largest image (width x height) /predict decodes.")
    max_images_per_request: int = Field(256, description="Most images in one /predict request.")
    model_cache_size: int = Field(8, description="Trained models /predict keeps loaded (least recently used go).")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobs.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
