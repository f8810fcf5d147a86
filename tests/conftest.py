import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
LORA = "results/digits/finetune/realfake/lora.safetensors"
# At test sizes a job is mostly Python start-up, one core's work: two one-thread jobs at once
# keep both cores busy where the rules' 2 threads would run every training job alone.
ONE_THREAD = ["--set-threads", *(f"{rule}=1" for rule in ("pretrain_tiny_sd", "pretrain_tiny_clip", "train_lora",
                                                          "synthesize_shard", "train_classifier"))]


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """A random tiny Stable Diffusion folder (save_pretrained layout)."""
    from realfake.tiny_models import build_tiny_stable_diffusion

    path = tmp_path_factory.mktemp("models") / "tiny-sd"
    build_tiny_stable_diffusion(path)
    return str(path)


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """A small digits manifest (5 training images per class) with its PNG files."""
    from realfake.data import digits_manifest

    return digits_manifest(tmp_path_factory.mktemp("digits"), train_per_class=5)


def snakemake_cmd():
    return [str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile")]


def reduced_config() -> dict:
    """The checked-in reduced demo (tests/config/reduced.yaml), as written (defaults not filled)."""
    return yaml.safe_load((ROOT / "tests/config/reduced.yaml").read_text())


def snakemake(workdir, *args, config=None, text=None, timeout=900):
    """Snakemake in ``workdir`` on ``config`` (or YAML ``text``), written to its config.yaml. A
    run past ``timeout`` is killed with its jobs, and the test fails naming the jobs in flight."""
    if config is not None:
        text = yaml.safe_dump(config, sort_keys=False)
    if text is not None:
        (workdir / "config.yaml").write_text(text)
    threads = ONE_THREAD if "--cores" in args else []
    # --configfile takes several values: targets must come before it
    cmd = snakemake_cmd() + [*args, *threads, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        stdout, stderr = run.communicate()
        pytest.fail(f"snakemake {' '.join(args)} in {workdir} still running after {timeout} s; "
                    f"jobs started and not finished: {unfinished_jobs(stderr)}")
    return subprocess.CompletedProcess(cmd, run.returncode, stdout, stderr)


def unfinished_jobs(log: str) -> list[str]:
    """``rule (wildcards)`` of each job a Snakemake log shows started and not finished."""
    started = {}
    for block in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", log, re.M):
        jobid = re.search(r"jobid: (\d+)", block[2])
        wildcards = re.search(r"wildcards: (.*)", block[2])
        if jobid:
            started[jobid[1]] = f"{block[1]} ({wildcards[1] if wildcards else ''})"
    finished = set(re.findall(r"^Finished jobid: (\d+)", log, re.M))
    return [job for jobid, job in started.items() if jobid not in finished]


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    """The reduced demo up to its LoRA, built once per test run: the digits manifest, the tiny
    models (pre-trained), captions, guidance and the LoRA. ``seed_workdir`` copies it."""
    workdir = tmp_path_factory.mktemp("upstream")
    run = snakemake(workdir, "--cores", "2", LORA, config=reduced_config())
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


def seed_workdir(upstream, workdir) -> None:
    """``upstream``'s outputs with Snakemake's records of them (modification times kept), so a run
    in ``workdir`` takes them as up to date wherever its config leaves their params as they are."""
    shutil.copytree(upstream, workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("config.yaml", "log"))
