"""`make lint`'s checks catch what they are there for: run on a copy of the tree with one fault each."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files (tracked, and new ones not ignored), copied."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    copy = tmp_path_factory.mktemp("tree")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and name.endswith((".py", ".toml")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def run(tree: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=tree, capture_output=True, text=True)


def with_file(tree: Path, name: str, text: str) -> Path:
    path = tree / name
    path.write_text(text)
    return path


def test_the_unchanged_tree_passes_the_import_contract(tree: Path) -> None:
    result = run(tree, "lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("models/networks/mlp.py", "import sqlalchemy\n", "models imports nothing of ours and no SQL"),
        ("models/run.py", "import store.jobs\n", "models imports nothing of ours"),
        ("workers/child.py", "import app.settings\n", "workers and migrations import nothing from app"),
        ("store/jobs.py", "import fastapi\n", "the store knows nothing of HTTP"),
        ("migrations/env.py", "import models.kinds\n", "migrations use the store only"),
        ("bench/report_jobs.py", "import tests.conftest\n", "benchmarks do not import the tests"),
        ("app/jobs/service.py", "import app.curves.reading\n", "app: each feature above the features it uses"),
        ("app/http/deps.py", "import app.jobs.service\n", "app: each feature above the features it uses"),
    ],
)
def test_an_import_against_the_contract_fails(tree: Path, module: str, line: str, broken: str) -> None:
    path = tree / module
    original = path.read_text()
    path.write_text(original + line)
    try:
        result = run(tree, "lint-imports", "--no-cache")
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert broken in result.stdout and "BROKEN" in result.stdout


def test_an_unformatted_file_fails_the_format_check(tree: Path) -> None:
    path = with_file(tree, "store/unformatted.py", "x=[1,2 ,3]\n")
    try:
        result = run(tree, "ruff", "format", "--check", "store")
    finally:
        path.unlink()
    assert result.returncode != 0 and "unformatted.py" in result.stdout


def test_mypy_is_strict_everywhere(tree: Path) -> None:
    """A function without annotations passes plain mypy but not the project's configuration."""
    for folder in ("models", "tests", "bench"):
        path = with_file(tree, f"{folder}/untyped.py", "def double(x):\n    return x * 2\n")
        try:
            result = run(tree, "mypy", "--no-incremental", f"{folder}/untyped.py")
        finally:
            path.unlink()
        assert result.returncode != 0 and "missing a type annotation" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "read", ["import os\nURL = os.environ.get('DATABASE_URL')\n", "import os\nX = os.getenv('X')\n"]
)
def test_a_setting_read_from_the_environment_fails_the_lint(tree: Path, read: str) -> None:
    """Settings come through the settings classes: `os.environ` in the service's code fails `ruff check`."""
    path = with_file(tree, "store/stray_setting.py", read)
    try:
        result = run(tree, "ruff", "check", "store")
    finally:
        path.unlink()
    assert result.returncode != 0 and "TID251" in result.stdout and "settings class" in result.stdout


def test_a_private_member_of_a_library_fails_the_lint(tree: Path) -> None:
    """No reaching into a library's internals (`study._storage` once): `ruff check` refuses it in the service's code."""
    path = with_file(tree, "sweeps/stray_private.py", "import optuna\n\nSTORAGE = optuna.create_study()._storage\n")
    try:
        result = run(tree, "ruff", "check", "sweeps")
    finally:
        path.unlink()
    assert result.returncode != 0 and "SLF001" in result.stdout and "_storage" in result.stdout


def test_a_query_built_outside_the_store_fails_the_lint_and_inside_it_passes(tree: Path) -> None:
    """Every query is built in store/ (issue 41): SQLAlchemy's query builders elsewhere fail `ruff check`."""
    line = "from sqlalchemy import func, select\n\nQUERY = select(func.count())\n"
    outside, inside = with_file(tree, "app/stray_query.py", line), with_file(tree, "store/stray_query.py", line)
    try:
        refused, allowed = run(tree, "ruff", "check", "app"), run(tree, "ruff", "check", "store")
    finally:
        outside.unlink()
        inside.unlink()
    assert refused.returncode != 0 and "TID251" in refused.stdout and "sqlalchemy.select" in refused.stdout
    assert allowed.returncode == 0, allowed.stdout


@pytest.mark.parametrize(
    ("module", "text", "said"),
    [
        ("store/stray_commit.py", "def save(session):\n    session.commit()\n", ".commit() outside the unit of work"),
        (
            "app/stray_read.py",
            "def read(session, job_id):\n    return session.get(object, job_id)\n",
            "session.get() outside store/",
        ),
    ],  # fmt: skip
)
def test_a_commit_outside_the_unit_of_work_or_a_session_call_outside_the_store_fails(
    tree: Path, module: str, text: str, said: str
) -> None:
    path = with_file(tree, module, text)
    try:
        result = run(tree, "python", "-m", "harness.store_rules")
    finally:
        path.unlink()
    assert result.returncode == 1 and said in result.stdout, result.stdout


def test_dead_code_fails_the_lint(tree: Path) -> None:
    path = with_file(tree, "store/stray_dead.py", "def copy_logs_between(a: int, b: int) -> int:\n    return a + b\n")
    try:
        result = run(tree, "vulture")
    finally:
        path.unlink()
    assert result.returncode != 0 and "unused function 'copy_logs_between'" in result.stdout, result.stdout
