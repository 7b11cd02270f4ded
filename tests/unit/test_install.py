"""What `make serve` and `make test` install, read from make's own plan (`make -n`): serving installs the
service alone (no test tools, no Ray: 0.6 GB less), Ray comes with EXECUTOR=ray, the tests add both."""

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def installs(*target: str, **env: str) -> list[str]:
    environment = {key: value for key, value in os.environ.items() if key != "EXECUTOR"} | env
    plan = subprocess.run(["make", "-n", "-B", *target], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    return [line.split("install", 1)[1].strip() for line in plan.stdout.splitlines() if "pip install" in line]


def test_make_serve_installs_what_serving_needs() -> None:
    assert installs("serve") == ["-q -e ."]


def test_ray_comes_with_executor_ray_and_with_the_tests() -> None:
    assert installs("serve", EXECUTOR="ray") == ["-q -e .", "-q -e '.[ray]'"]
    assert installs("ray") == ["-q -e .", "-q -e '.[ray]'"]
    bootstrap, everything = installs("test-sqlite")  # uv, then one run of it for everything (the example plugin too)
    assert bootstrap == "-q 'uv>=0.9,<1'" and everything.endswith("-e '.[test,ray]' -e examples/vit_kind")


def test_the_test_install_byte_compiles_and_takes_its_packages_where_pip_would(tmp_path: Path) -> None:
    """uv compiles on every core (without .pyc files every process would compile torch again where
    PYTHONDONTWRITEBYTECODE is set), and installs from the indexes, links and constraints pip is configured with."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2.14.1\n")
    settings = {"PIP_EXTRA_INDEX_URL": "https://example.org/whl/cpu", "PIP_FIND_LINKS": str(tmp_path),
                "PIP_CONSTRAINT": str(constraints)}  # fmt: skip
    _, everything = installs("test-sqlite", **settings)
    words = everything.split()
    assert "--compile-bytecode" in words and "--index-strategy" in words
    for option, value in [("--extra-index-url", "https://example.org/whl/cpu"), ("--find-links", str(tmp_path)),
                          ("--constraint", str(constraints))]:  # fmt: skip
        assert value in [words[i + 1] for i, word in enumerate(words) if word == option], option


def test_make_test_installs_the_missing_system_packages_in_one_apt_run() -> None:
    """Two apt-get runs at once would collide; one run for all the missing ones also updates its lists once."""

    def plan(**has: str) -> str:
        return subprocess.run(["make", "-s", "system-packages", "APT_INSTALL=echo apt-get install",
                               *(f"HAS_{package}={found}" for package, found in has.items())], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip

    found = {"postgresql": "false", "chromium": "true", "docker-compose": "false"}
    assert plan(**found).strip() == "apt-get install postgresql docker-compose"
    nothing = plan(**dict.fromkeys(found, "true"))
    assert nothing == ""


def test_make_data_unpacks_an_archive_into_the_data_dir() -> None:
    plan = subprocess.run(["make", "-n", "data", "ARCHIVE=/some/cifar10-jpeg.tar.gz", "DATA_DIR=/srv/data"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "tar -xzf /some/cifar10-jpeg.tar.gz -C /srv/data/cifar10" in plan
    missing = subprocess.run(["make", "data"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "usage: make data ARCHIVE=" in missing.stderr
