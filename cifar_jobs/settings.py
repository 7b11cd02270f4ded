"""Where the service is and which token to send: environment variables (or a `.env` file), then the token
`cifar-jobs login` kept. The client and the CLI read the same settings."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
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
