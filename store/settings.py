"""Where the store lives, read from the environment (and a `.env` file when present)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    """The settings every process that opens the store reads; the API's and the worker's extend it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder holding the data sets and, by default, the SQLite file.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file jobs.db in DATA_DIR.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobs.db').resolve()}"
