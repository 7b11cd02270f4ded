"""Where the store lives, read from the environment (and a `.env` file when present)."""

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    """The settings every process that opens the store reads; the API's and the worker's extend it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder holding the data sets and, by default, the SQLite file.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file jobs.db in DATA_DIR.")
    sqlite_busy_timeout_ms: int = Field(
        30_000,
        ge=0,
        description="How long a SQLite statement waits for a lock; past it, workers keep training and retry.",
    )
    database_connect_timeout_seconds: int = Field(
        10,
        ge=1,
        le=600,
        description="How long opening a PostgreSQL connection may take (reaching the server to logging in); past "
        "it the attempt fails as an outage would (a DATABASE_URL's own ?connect_timeout= stands).",
    )
    executor_alive_seconds: float = Field(
        60.0, gt=0, description="An executor unseen this long no longer counts for a queued job's waiting_reason."
    )
    quota_running_jobs: int = Field(
        4,
        ge=1,
        description="With users: a user's jobs running at once at most (admins: no cap); more wait in the queue, "
        "and other users' jobs go first. Read by the executors (they claim) and the API (GET /users/me/usage).",
    )
    database_url_file: Path | None = Field(
        None,
        description="A file holding DATABASE_URL (a container secret, say): a URL with a password then never "
        "sits in the environment, or in a Ray job's metadata.",
    )

    artifact_store: str | None = Field(
        None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?#]*)?$",
        description="Where models and checkpoints go: an S3 bucket and key prefix (`s3://bucket/prefix`), reached "
        "with boto3's usual credentials (AWS_* variables or AWS_SHARED_CREDENTIALS_FILE). Unset: in the database.",
    )
    artifact_store_endpoint: str | None = Field(
        None,
        description="The S3 API's address when it is not Amazon's (SeaweedFS, MinIO, Ceph): http://host:port.",
    )

    @model_validator(mode="after")
    def _read_secret_files(self) -> "StoreSettings":
        if self.database_url is None and self.database_url_file is not None:
            self.database_url = read_secret(self.database_url_file, "DATABASE_URL_FILE")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobs.db').resolve()}"


def read_secret(path: Path, setting: str) -> str:
    """A secret's value from its file (surrounding whitespace and a final newline left out)."""
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{setting}={path}: cannot read it ({exc.strerror})") from None
