import contextlib
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
# FakeIt (the paper's baseline) as a variant of the reduced config: base SD, no latent prior, two prompt templates
FAKEIT_VARIANT = {"finetune": None, "latent_prior": False, "resolution": 32, "num_inference_steps": 10,
                  "negative_prompt": "", "prompt_templates": ["a photo of a {classname}", "an image of a {classname}"]}
# At test sizes a job is mostly Python start-up, one core's work: two one-thread jobs at once
# keep both cores busy where the rules' 2 threads would run every training job alone.
ONE_THREAD = ["--set-threads", *(f"{rule}=1" for rule in ("pretrain_tiny_sd", "pretrain_tiny_clip", "train_lora",
                                                          "synthesize_shard", "train_classifier"))]


# OpenMP threads waiting at a barrier sleep at once instead of spinning: with a SLURM job's and a
# local job's threads on the same 2 cores, spinning made a job take 4.7x its CPU time (measured)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ``make test`` runs four pytest-xdist workers (``-n 4``), one queue each: the tests that bring up
# a real SLURM cluster (marked slow), which mostly wait on its queue and the executor plugin's
# status checks; the end-to-end workflow tests, which share one folder built target by target; the
# models' and the privacy analysis' training tests; every other test. The last three use the CPU
# and split it about evenly (a queue left running alone uses about one core of the two). The SLURM
# queue runs at a higher CPU priority than anything else on the machine.
SLURM_TEST_FILES = ("tests/test_slurm.py", "tests/test_slurm_two_nodes.py")
WORKFLOW_TEST_FILE = "tests/test_workflow.py"
TRAINING_TEST_FILES = ("tests/test_models.py", "tests/test_privacy.py")
SLURM_NICENESS = -10


def is_slurm_test(nodeid: str) -> bool:
    return nodeid.split("::")[0] in SLURM_TEST_FILES


def queue_of(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    if is_slurm_test(nodeid):
        return "slurm"
    if path == WORKFLOW_TEST_FILE:
        return "workflow"
    return "training" if path in TRAINING_TEST_FILES else "local"


def pytest_configure(config):
    # registered here, beside pyproject.toml's markers: builds an image and runs a workflow slice in it
    config.addinivalue_line("markers", "container: builds the OCI image with podman and runs the demo's cheapest "
                                       "slice in it (minutes; not in make test: pytest -m container tests/test_container.py)")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scope scheduling over ``queue_of``: a worker takes a whole queue, so module
    and session fixtures are built once per queue, and the four run side by side."""
    from xdist.scheduler import LoadScopeScheduling

    class Queues(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return queue_of(nodeid)

    return Queues(config, log)


def pytest_collection_modifyitems(items):
    misplaced = [item.nodeid for item in items if (item.get_closest_marker("slow") is not None) != is_slurm_test(item.nodeid)]
    if misplaced:
        raise pytest.UsageError(f"tests marked slow (a real SLURM cluster) and SLURM_TEST_FILES in "
                                f"tests/conftest.py disagree on: {misplaced}")


@pytest.hookimpl(tryfirst=True)  # before the fixtures: the SLURM cluster's daemons inherit it
def pytest_runtest_setup(item):
    """Under several workers, the SLURM queue (and the cluster and jobs it starts) runs ahead of the
    other queues and of whatever else the machine runs: a SLURM job's run time decides when the
    executor plugin next polls (3 s, then 10 s more each empty round), so a job slowed by a
    neighbour costs the SLURM test a whole round. The other queues keep the default priority, so on
    a loaded machine they slow down as any process would, never starve."""
    parallel = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1
    if parallel and is_slurm_test(item.nodeid) and os.geteuid() == 0:  # root only, as the SLURM tests
        with contextlib.suppress(PermissionError):  # root without CAP_SYS_NICE (a container): as is
            os.setpriority(os.PRIO_PROCESS, 0, SLURM_NICENESS)


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


def planned_jobs(workdir, config=None, text=None, *targets) -> dict:
    """Rule -> job count of a dry run (empty: nothing to do)."""
    run = snakemake(workdir, "-n", *targets, config=config, text=text)
    assert run.returncode == 0, run.stderr + run.stdout
    text = run.stdout + run.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


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
def upstream(tmp_path_factory, worker_id):
    """The reduced demo up to its LoRA, built once per test run: the digits manifest, the tiny
    models (pre-trained), captions, guidance and the LoRA. ``seed_workdir`` copies it. Under
    pytest-xdist the first worker to ask builds it in the run's shared folder, the other waits."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    workdir, built = shared / "upstream", shared / "upstream.built"
    with FileLock(shared / "upstream.lock"):
        if not built.exists():
            shutil.rmtree(workdir, ignore_errors=True)  # a build that failed in the other worker
            workdir.mkdir()
            run = snakemake(workdir, "--cores", "2", LORA, config=reduced_config())
            assert run.returncode == 0, run.stderr[-5000:]
            built.touch()
    return workdir


class StopAfter:
    """A time budget that runs out after ``steps`` steps (the training loop asks once a step)."""

    def __init__(self, steps):
        self.steps, self.asked = steps, 0

    def stop_requested(self):
        self.asked += 1
        return self.asked >= self.steps


def seed_workdir(upstream, workdir) -> None:
    """``upstream``'s outputs with Snakemake's records of them (modification times kept), so a run
    in ``workdir`` takes them as up to date wherever its config leaves their params as they are."""
    shutil.copytree(upstream, workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("config.yaml", "log"))
