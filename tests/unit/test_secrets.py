"""Secrets come from files (container secrets), and a database password never reaches a Ray job's
environment, which anyone holding the cluster's token can read."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import ApiSettings
from store.settings import StoreSettings
from workers.ray_dispatcher import entrypoint_env


def test_the_database_url_and_the_api_key_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "database_url").write_text("postgresql+psycopg://cifar:s3cret@db/cifar\n")
    (tmp_path / "api_key").write_text("the-key\n")
    for name in ("DATABASE_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "database_url"))
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "api_key"))
    settings = ApiSettings()
    assert settings.resolved_database_url == "postgresql+psycopg://cifar:s3cret@db/cifar"
    assert settings.api_key == "the-key"
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="API_KEY_FILE=.*missing: cannot read it"):
        ApiSettings()


def test_a_database_password_never_reaches_a_ray_jobs_environment() -> None:
    with_password = {"DATABASE_URL": "postgresql+psycopg://cifar:s3cret@db/cifar", "DATA_DIR": "/data"}
    with pytest.raises(SystemExit, match="DATABASE_URL_FILE"):
        entrypoint_env(with_password)
    passed = entrypoint_env({**with_password, "DATABASE_URL_FILE": "/run/secrets/database_url"})
    assert passed == {"DATABASE_URL_FILE": "/run/secrets/database_url", "DATA_DIR": "/data"}
    assert "s3cret" not in repr(passed)
    without = entrypoint_env({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/jobs"})
    assert without == {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/jobs"}


def test_a_ray_job_gets_every_store_setting_set_here() -> None:
    """Issue 40, finding 9: DATABASE_CONNECT_TIMEOUT_SECONDS did not reach the attempts Ray ran."""
    environ = {name.upper(): "7" for name in StoreSettings.model_fields if name != "database_url"}
    passed = entrypoint_env(environ)
    assert passed == environ and passed["DATABASE_CONNECT_TIMEOUT_SECONDS"] == "7"


def test_a_ray_job_finds_the_object_store_and_its_credentials_file_never_a_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 46: the artifact store's settings and where boto3 finds credentials reach a Ray job; the keys do not."""
    environ = {"ARTIFACT_STORE": "s3://lab/runs", "ARTIFACT_STORE_ENDPOINT": "http://s3.lab:8333",
               "AWS_ACCESS_KEY_ID": "AKIALAB", "AWS_SECRET_ACCESS_KEY": "s3cret-key",
               "AWS_DEFAULT_REGION": "eu-west-1"}  # fmt: skip
    passed = entrypoint_env(environ)
    assert passed == {"ARTIFACT_STORE": "s3://lab/runs", "ARTIFACT_STORE_ENDPOINT": "http://s3.lab:8333",
                      "AWS_DEFAULT_REGION": "eu-west-1"}  # fmt: skip
    assert "the nodes need their own credentials" in caplog.text  # said at the dispatcher's start
    caplog.clear()
    with_file = entrypoint_env({**environ, "AWS_SHARED_CREDENTIALS_FILE": "/run/secrets/s3"})
    assert with_file["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/s3" and "s3cret-key" not in repr(with_file)
    assert caplog.text == ""
