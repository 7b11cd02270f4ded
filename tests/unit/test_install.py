"""What `make serve` and `make test` install, read from make's own plan (`make -n`): serving installs the
service alone (no test tools, no Ray: 0.6 GB less), Ray comes with EXECUTOR=ray, the tests add both."""

import os
import subprocess

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
    assert installs("test-sqlite") == ["-q --no-compile -e '.[test,ray]'"]  # one pip run (then compileall)


def test_the_test_install_byte_compiles_everything_after_pip() -> None:
    """pip compiles on one core, so the test install compiles afterwards on all of them; without .pyc files every
    process would compile torch again where PYTHONDONTWRITEBYTECODE is set."""
    plan = subprocess.run(["make", "-n", "-B", "test-sqlite"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True).stdout.splitlines()  # fmt: skip
    pip = next(i for i, line in enumerate(plan) if "pip install" in line)
    compiles = [i for i, line in enumerate(plan) if "-m compileall" in line and ".venv/lib" in line]
    assert compiles and compiles[0] > pip and "-j 0" in plan[compiles[0]]


def test_make_data_unpacks_an_archive_into_the_data_dir() -> None:
    plan = subprocess.run(["make", "-n", "data", "ARCHIVE=/some/cifar10-jpeg.tar.gz", "DATA_DIR=/srv/data"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "tar -xzf /some/cifar10-jpeg.tar.gz -C /srv/data/cifar10" in plan
    missing = subprocess.run(["make", "data"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "usage: make data ARCHIVE=" in missing.stderr
