"""Two ways in: `pip install .` into the user's own environment (pyproject.toml's ranges) and
`make install` (requirements.lock's exact pins); envs/realfake.yaml is the lock's rendering."""

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements.lock"
# the workflow's runtime, which realfake/ itself never imports
WORKFLOW_RUNTIME = {"snakemake", "snakemake-executor-plugin-slurm"}
# a torch of another release than the lock's (2.14.1), in range: a CPU build in this machine's wheels
SITE_TORCH = ["torch==2.13.0+cpu", "torchvision==0.28.0", "pillow==12.3.0"]


def lock_tool():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import lock
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return lock


def requirements(section: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, section)}


def locked() -> dict[str, str]:
    """The lock's pins for Python 3.11 on Linux (the tested platform): name -> version."""
    pins = {}
    for line in lock_tool().lock_requirements(LOCK.read_text()):
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"python_full_version": "3.11.7", "sys_platform": "linux"}):
            pins[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    return pins


def test_the_conda_environment_is_the_lock_as_tools_lock_renders_it():
    """envs/realfake.yaml is made from requirements.lock by `make lock`: the same pins, line for line."""
    tool = lock_tool()
    assert (ROOT / "envs/realfake.yaml").read_text() == tool.render_conda_env(LOCK.read_text()), (
        "envs/realfake.yaml is not the lock's: run `make lock` (or python3 tools/lock.py)")
    env = yaml.safe_load((ROOT / "envs/realfake.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == tool.lock_requirements(LOCK.read_text()) and len(pip) > 100
    assert f"python ={tool.PYTHON}" in env["dependencies"]
    assert PYPROJECT["requires-python"] == f">={tool.PYTHON}"


def test_the_lock_pins_every_requirement_of_pyproject_within_its_range():
    """Edited pyproject.toml without `make lock`: a range the lock's pin falls outside, or a new name."""
    pins = locked()
    declared = [PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"].values()]
    for name, req in {k: v for section in declared for k, v in requirements(section).items()}.items():
        assert name in pins, f"{name} is in pyproject.toml, not in requirements.lock: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"exact pin outside the lock: {req}"
    assert {"tensorboard", "wandb", "pytest", "ruff", "snakefmt"} <= set(pins)


def third_party_imports(folder: Path) -> set[str]:
    """Top-level modules imported anywhere in ``folder``'s Python files (in functions too)."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"realfake", "__future__"}


def test_pyproject_declares_what_the_library_imports_and_nothing_it_does_not():
    """Every import of realfake/ and scripts/ is a declared dependency (trackers: their extra),
    and every dependency is imported somewhere (or is the workflow's runtime: Snakemake)."""
    distributions = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(distributions[module][0])
                for module in third_party_imports(ROOT / "realfake") | third_party_imports(ROOT / "scripts")}
    runtime = set(requirements(PYPROJECT["dependencies"]))
    trackers = set(requirements(PYPROJECT["optional-dependencies"]["trackers"]))
    assert imported - runtime - trackers == set()
    assert runtime - imported == WORKFLOW_RUNTIME
    assert {"numpy", "scipy", "pillow", "pyyaml", "jsonschema"} <= runtime
    assert not {"webdataset", "accelerate"} & runtime  # tests read shards with webdataset; peft requires accelerate


def site_with_torch(folder: Path) -> Path:
    """A Python environment holding SITE_TORCH: what a cluster's module or container provides."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", folder / "bin/python", "install", "-q",
                                "--no-compile", *SITE_TORCH], capture_output=True, text=True)
    if installed.returncode != 0:
        pytest.skip(f"{SITE_TORCH[0]} is not where pip looks on this machine: {installed.stderr[-300:]}")
    return next((folder / "lib").glob("python3.*/site-packages"))


@pytest.mark.install
def test_pip_install_of_the_package_keeps_the_environments_own_in_range_torch(tmp_path):
    """`pip install .` into a venv made with --system-site-packages over a site holding torch 2.13
    (the lock has 2.14.1): pip's resolver (--dry-run --report) installs neither torch nor torchvision
    nor Pillow, and installs the rest (the site's packages follow the venv's own on sys.path, as a
    .pth file puts them here)."""
    start = time.monotonic()
    site = site_with_torch(tmp_path / "site")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    venv_python = tmp_path / "venv/bin/python"
    (next((tmp_path / "venv/lib").glob("python3.*/site-packages")) / "site.pth").write_text(f"{site}\n")
    built = time.monotonic()
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "--python", venv_python, "install", "-q", "--dry-run",
                    "--report", report, ROOT], check=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    install = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    print(f"site built in {built - start:.0f} s, pip resolved in {time.monotonic() - built:.0f} s: "
          f"{len(install)} to install")
    assert not {"torch", "torchvision", "pillow", "numpy"} & set(install), install
    assert {"realfake", "diffusers", "timm", "snakemake"} <= set(install)
