"""The workflow as a Snakemake module of another project (`module realfake: snakefile: ...`), from a
scratch folder, in a Python that has every dependency but not the realfake package."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT

# The rules that read small files and write a table or figure: localrule (never through sbatch);
# those that train, generate, or read images or shards at scale: submitted.
LOCAL_RULES = {"table1", "table2", "table3", "table4", "table9", "table10", "fig2_scaling", "gap_table", "lira",
               "sample_grid", "comparison_grid"}
REMOTE_RULES = {"build_manifest", "build_ood_manifest", "caption_images", "compute_guidance", "train_lora",
                "synthesize_shard", "train_classifier", "evaluate_classifier", "evaluate_ood", "distribution_gap",
                "label_fidelity", "fig1_clip_pca", "lira_scores", "real_copy_descriptors", "copy_detection", "copies"}
TABLE1_JOBS = {"build_manifest": 1, "build_tiny_models": 1, "pretrain_tiny_sd": 1, "pretrain_tiny_clip": 1,
               "caption_images": 1, "compute_guidance": 1, "train_lora": 1, "synthesize_shard": 2,
               "train_classifier": 3, "evaluate_classifier": 3, "table1": 1}

IMPORTER = """\
configfile: "config.yaml"


module realfake:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from realfake{rename}

import realfake

print("realfake from", realfake.__file__)
print("localrules:", " ".join(sorted(workflow._localrules)))
"""


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A venv holding this venv's packages as links, less realfake (make install's editable hook
    or an installed copy): what a project that only installed the dependencies sees."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "realfake" not in entry.name and not (site / entry.name).exists():
            (site / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    probe = subprocess.run([python, "-c", "import snakemake\nimport realfake"], cwd=venv, capture_output=True, text=True)
    assert "No module named 'realfake'" in probe.stderr, probe.stderr  # else the test would prove nothing
    return python


def importer(folder: Path, snakefile: Path, rename: str = "") -> Path:
    """A scratch project: its Snakefile imports the workflow as a module, its config is the reduced demo."""
    folder.mkdir()
    (folder / "Snakefile").write_text(IMPORTER.format(snakefile=snakefile, rename=rename))
    shutil.copy(ROOT / "tests/config/reduced.yaml", folder / "config.yaml")
    return folder


def run(python, folder, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([python, "-m", "snakemake", *args], cwd=folder, capture_output=True, text=True,
                          env=env | {"PYTHONNOUSERSITE": "1"}, timeout=300)


def job_counts(out: str) -> dict:
    table = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_another_project_imports_the_workflow_as_a_module_without_installing_it(bare_python, tmp_path):
    project = importer(tmp_path / "project", ROOT / "Snakefile")
    dry = run(bare_python, project, "-n", "results/table1.csv")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert job_counts(dry.stdout + dry.stderr) == TABLE1_JOBS
    assert f"realfake from {ROOT / 'realfake' / '__init__.py'}" in dry.stdout  # the package beside the Snakefile
    # a job's own Python finds the package too, and writes into the importing project's folder
    job = run(bare_python, project, "--cores", "1", "data/digits/manifest.parquet")
    assert job.returncode == 0, job.stderr[-3000:]
    assert (project / "data/digits/manifest.parquet").is_file() and (project / "logs/build_manifest").is_dir()


def test_the_tables_and_figures_stay_local_rules_under_a_modules_prefix(bare_python, tmp_path):
    project = importer(tmp_path / "project", ROOT / "Snakefile", rename=" as realfake_*")
    listed = run(bare_python, project, "--list-rules")
    assert listed.returncode == 0, listed.stderr[-3000:]
    [line] = [line for line in listed.stdout.splitlines() if line.startswith("localrules:")]
    local = set(line.split()[1:])
    assert {f"realfake_{rule}" for rule in LOCAL_RULES} <= local
    assert not local & {f"realfake_{rule}" for rule in REMOTE_RULES}
    rules = set(re.findall(r"^(realfake_\w+)", listed.stdout, re.M))
    assert {f"realfake_{rule}" for rule in LOCAL_RULES | REMOTE_RULES} <= rules  # the names above are rules


def test_a_module_read_without_its_package_names_the_install(bare_python, tmp_path):
    """What github(...) gives: the workflow's files fetched one by one, no package beside them."""
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for name in ("Snakefile", "rules", "report", "config", "envs"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, fetched / name)
    project = importer(tmp_path / "project", fetched / "Snakefile")
    dry = run(bare_python, project, "-n", "results/table1.csv")
    out = dry.stdout + dry.stderr
    assert dry.returncode != 0
    assert "the realfake package cannot be imported" in out and "git+https://" in out, out[-2000:]
