"""The CLI's settings: where the service is, and its key (environment variables, or a `.env` file)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    cifar_jobs_url: str = Field("http://127.0.0.1:8000", description="The service's address.")
    api_key: str | None = Field(None, description="The service's API_KEY, or a user's token (over the saved one).")
    config_dir: Path = Field(
        Path.home() / ".config" / "cifar-jobs",
        description="Where `cifar-jobs login` keeps the token (CIFAR_JOBS_CONFIG_DIR; a file only you may read).",
        validation_alias="CIFAR_JOBS_CONFIG_DIR",
    )

    @property
    def token_file(self) -> Path:
        return self.config_dir / "token"

    def token(self) -> str | None:
        """API_KEY when it is set, else the token `cifar-jobs login` kept."""
        if self.api_key:
            return self.api_key
        try:
            return self.token_file.read_text().strip() or None
        except FileNotFoundError:
            return None
