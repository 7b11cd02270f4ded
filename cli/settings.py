"""The CLI's settings: where the service is, and its key (environment variables, or a `.env` file)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    cifar_jobs_url: str = Field("http://127.0.0.1:8000", description="The service's address.")
    api_key: str | None = Field(None, description="The service's API_KEY, when it has one.")
