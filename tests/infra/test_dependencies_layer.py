"""The handlers' dependencies layer: requirements-lambda.txt, built by `make install` as wheels
for the functions' runtime and architecture, one LayerVersion per stack on every function."""

from __future__ import annotations

import shlex
import subprocess
from importlib.metadata import distributions
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from packaging.requirements import Requirement

from stacks import constants, function
from stacks.function import DEPENDENCIES_LAYER_ID, LayerNotBuiltError, dependencies_layer
from tests.infra.conftest import REPO_ROOT
from tests.infra.helpers import Env

HANDLERS = (
    constants.START_JOB_HANDLER,
    constants.POST_PROCESS_HANDLER,
    constants.RECONCILE_HANDLER,
)
# Lambda's architecture names, as the machine in wheel platform tags and extension file names.
MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
# ELF e_machine of a shared library built for each architecture.
ELF_MACHINE = {"aarch64": 0xB7, "x86_64": 0x3E}

LAYER_PYTHON = REPO_ROOT / constants.DEPENDENCIES_LAYER_DIR / "python"


def machine() -> str:
    return MACHINE[constants.LAMBDA_ARCHITECTURE.name]


def python_version() -> str:
    """ "3.13" from the runtime's name ("python3.13")."""
    return constants.LAMBDA_RUNTIME.name.removeprefix("python")


def pinned_requirements() -> list[Requirement]:
    lines = (REPO_ROOT / constants.DEPENDENCIES_REQUIREMENTS).read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_one_layer_for_the_functions_runtime_and_architecture(any_env: Env) -> None:
    layers = any_env.template.find_resources("AWS::Lambda::LayerVersion")
    assert list(layers) == [
        any_env.logical_id(any_env.stack.node.find_child(DEPENDENCIES_LAYER_ID))
    ]
    ((_, layer),) = layers.items()
    assert layer["Properties"]["CompatibleRuntimes"] == [constants.LAMBDA_RUNTIME.name]
    assert layer["Properties"]["CompatibleArchitectures"] == [constants.LAMBDA_ARCHITECTURE.name]
    assert constants.DEPENDENCIES_REQUIREMENTS in layer["Properties"]["Description"]


def test_every_function_lists_powertools_and_the_dependencies_layer(any_env: Env) -> None:
    (logical_id,) = any_env.template.find_resources("AWS::Lambda::LayerVersion")
    parameters = any_env.template.to_json()["Parameters"]
    for handler in HANDLERS:
        layers = any_env.function(handler)[1]["Properties"]["Layers"]
        assert len(layers) == 2, handler
        assert {"Ref": logical_id} in layers, handler
        (powertools,) = [layer for layer in layers if layer != {"Ref": logical_id}]
        assert parameters[powertools["Ref"]]["Default"] == constants.POWERTOOLS_LAYER_PARAMETER


def test_the_layer_asset_is_the_built_directory(app: App, envs: dict[str, Env]) -> None:
    # The asset CDK staged for the layer holds the same files as build/lambda-layer.
    layer = envs["dev"].resources[
        envs["dev"].logical_id(envs["dev"].stack.node.find_child(DEPENDENCIES_LAYER_ID))
    ]
    asset_hash = layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    staged = Path(app.outdir) / f"asset.{asset_hash}"
    built = LAYER_PYTHON.parent

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    assert files(staged) == files(built)
    assert any(name.startswith("python/msgspec/") for name in files(staged))


def test_built_layer_holds_every_pin_at_its_version() -> None:
    installed = {
        d.metadata["Name"].lower(): d.version for d in distributions(path=[str(LAYER_PYTHON)])
    }
    pins = pinned_requirements()
    assert pins, "requirements-lambda.txt pins nothing"
    for requirement in pins:
        assert requirement.name.lower() in installed, requirement.name
        assert requirement.specifier.contains(installed[requirement.name.lower()]), requirement


def test_compiled_modules_are_for_the_lambda_runtime_and_architecture() -> None:
    # A wrong --platform or --python-version in the Makefile gives another file name (or a
    # pure-Python fallback), and the ELF header says which CPU the code is for.
    expected_suffix = f".cpython-{python_version().replace('.', '')}-{machine()}-linux-gnu.so"
    extensions = list(LAYER_PYTHON.rglob("*.so"))
    assert any(p.relative_to(LAYER_PYTHON).parts[0] == "msgspec" for p in extensions), extensions
    for extension in extensions:
        assert extension.name.endswith(expected_suffix), extension.name
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", extension.name
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[machine()], extension.name


def test_the_makefile_builds_for_the_constants_runtime_and_architecture() -> None:
    # Given the recipe make would run, then its flags name the runtime and architecture of
    # stacks/constants.py, and its paths are the ones synth reads.
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", constants.DEPENDENCIES_LAYER_STAMP],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    (install,) = [line for line in recipe.splitlines() if "--target" in line]
    words = shlex.split(install)

    def flag(name: str) -> str:
        return words[words.index(name) + 1]

    assert flag("--target") == f"{constants.DEPENDENCIES_LAYER_DIR}/python"
    assert flag("--python-version") == python_version()
    assert flag("--implementation") == "cp"
    assert flag("--platform").startswith("manylinux")
    assert flag("--platform").endswith(f"_{machine()}")
    assert flag("-r") == constants.DEPENDENCIES_REQUIREMENTS
    assert "--only-binary=:all:" in words
    assert f"rm -rf {constants.DEPENDENCIES_LAYER_DIR} " in recipe
    assert (
        f"cp {constants.DEPENDENCIES_REQUIREMENTS} {constants.DEPENDENCIES_LAYER_STAMP}" in recipe
    )


def fake_checkout(root: Path, *, built: bool, stamp: str | None) -> None:
    (root / constants.DEPENDENCIES_REQUIREMENTS).write_text("msgspec==0.22.0\n")
    if built:
        (root / constants.DEPENDENCIES_LAYER_DIR / "python").mkdir(parents=True)
    if stamp is not None:
        (root / constants.DEPENDENCIES_LAYER_STAMP).parent.mkdir(parents=True, exist_ok=True)
        (root / constants.DEPENDENCIES_LAYER_STAMP).write_text(stamp)


def test_synth_without_the_built_layer_says_run_make_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_checkout(tmp_path, built=False, stamp=None)
    monkeypatch.setattr(function, "REPO_ROOT", tmp_path)
    with pytest.raises(LayerNotBuiltError) as error:
        dependencies_layer(Stack(App(), "Missing"))
    message = str(error.value)
    assert "`make install`" in message
    assert str(tmp_path / constants.DEPENDENCIES_LAYER_DIR / "python") in message


@pytest.mark.parametrize("stamp", [None, "msgspec==0.21.0\n"])
def test_synth_with_a_layer_built_from_other_requirements_says_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp: str | None
) -> None:
    # Given requirements-lambda.txt changed (or the build never finished) since the layer was
    # built, then synth refuses rather than deploy functions without what they import.
    fake_checkout(tmp_path, built=True, stamp=stamp)
    monkeypatch.setattr(function, "REPO_ROOT", tmp_path)
    with pytest.raises(LayerNotBuiltError, match="not built from the current requirements-lambda"):
        dependencies_layer(Stack(App(), "Stale"))


def test_a_current_build_gives_one_layer_per_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_checkout(tmp_path, built=True, stamp="msgspec==0.22.0\n")
    monkeypatch.setattr(function, "REPO_ROOT", tmp_path)
    stack = Stack(App(), "Current")
    assert dependencies_layer(stack) is dependencies_layer(stack)
