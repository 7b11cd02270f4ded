"""The registry of model kinds: plugins found through their entry points, and each way a plugin can be wrong
stops the start with a message naming its package. The plugins are real distributions (a dist-info folder and a
module) on a folder put first on sys.path, as an installed package would be."""

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.kinds import KINDS
from models.kinds.registry import KindPluginError, discover

SPEC_OF = textwrap.dedent("""
    from typing import Literal
    from pydantic import Field
    from models.kinds.common import TorchJobSpec
    from models.kinds.registry import torch_kind

    class Spec(TorchJobSpec):
        model: Literal["{kind}"] = Field(description="The kind.")
        learning_rate: float = {learning_rate}

    KIND = torch_kind(Spec, lambda spec, n_classes: None)
""")


def install(site: Path, package: str, entry: str, module: str) -> None:
    """A distribution `package` 1.0 registering `entry = <package module>:KIND`, its module's text `module`."""
    module_name = package.replace("-", "_")
    info = site / f"{module_name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[cifar_jobs.kinds]\n{entry} = {module_name}:KIND\n")
    (site / f"{module_name}.py").write_text(module)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [name for name, module in sys.modules.items() if str(getattr(module, "__file__", "")).startswith(
            str(tmp_path))]:  # fmt: skip
        del sys.modules[name]  # the next test's plugin of the same name is another module


def test_the_built_in_kinds_and_the_installed_example_plugin_are_registered() -> None:
    assert list(KINDS)[:5] == ["torch_mlp", "numpy_mlp", "convnet", "resnet18", "speedrun"]
    assert KINDS["convnet"].package == "cifar-jobs"
    vit = KINDS["vit"]  # examples/vit_kind, installed into the test environment
    assert (vit.package, vit.version, vit.uses_torch) == ("cifar-jobs-vit", "0.1.0", True)


def test_a_plugin_imported_first_registers_once_it_has_made_its_kind() -> None:
    """A script that imports the plugin before anything of the service: the plugin's own import of
    `models.kinds.common` must not look for the kinds yet (its `KIND` is not made at that point)."""
    script = "import cifar_jobs_vit\nfrom models.kinds import KINDS\nprint(KINDS['vit'].spec is cifar_jobs_vit.ViTSpec)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr


def test_a_plugin_is_found_through_its_entry_point(site: Path) -> None:
    install(site, "tiny-kind", "tiny", SPEC_OF.format(kind="tiny", learning_rate=0.1))
    kinds = discover()
    assert kinds["tiny"].package == "tiny-kind" and kinds["tiny"].version == "1.0"
    assert kinds["tiny"].spec.model_fields["learning_rate"].default == 0.1


@pytest.mark.parametrize(
    ("entry", "module", "message"),
    [
        ("broken", "import flash_attention_3\n",
         r"model kind 'broken' of package broken-kind could not be loaded .*ModuleNotFoundError.*flash_attention_3"),
        ("convnet", SPEC_OF.format(kind="convnet", learning_rate=0.1),
         r"'convnet' of package broken-kind .* is already registered by package cifar-jobs"),
        ("nodefault", SPEC_OF.format(kind="nodefault", learning_rate="Field()"),
         r"'nodefault' of package broken-kind .*every field needs a default, and learning_rate has none"),
        ("other", SPEC_OF.format(kind="named_else", learning_rate=0.1),
         r"entry point 'other' of package broken-kind registers a kind named 'named_else'"),
        ("number", "KIND = 3\n", r"'number' of package broken-kind .* is a int, not a .*ModelKind"),
        ("Bad", SPEC_OF.format(kind="Bad-Name", learning_rate=0.1), r"'Bad-Name' of package broken-kind .*lower-case"),
    ],
    ids=["import-error", "name-clash", "no-default", "entry-name", "not-a-kind", "bad-name"],
)  # fmt: skip
def test_a_broken_plugin_is_refused_naming_its_package(site: Path, entry: str, module: str, message: str) -> None:
    install(site, "broken-kind", entry, module)
    with pytest.raises(KindPluginError, match=message):
        discover()


def test_the_service_does_not_start_with_a_broken_plugin(site: Path) -> None:
    """The API and the worker stop at once, saying which package, without a traceback."""
    install(site, "broken-kind", "broken", "raise RuntimeError('needs CUDA 13')\n")
    for program in (["-c", "import app.main"], ["-m", "workers", "--help"]):
        ended = subprocess.run([sys.executable, *program], capture_output=True, text=True, timeout=120,
                               env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert ended.returncode == 1, ended.stderr
        assert ended.stderr.strip() == (
            "cifar-jobs cannot start: the model kind 'broken' of package broken-kind could not be loaded "
            "(broken_kind:KIND): RuntimeError: needs CUDA 13"
        )
