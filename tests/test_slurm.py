"""The SLURM profile against a real single-node SLURM cluster (tests/slurm/cluster.sh).

Runs the reduced demo through ``snakemake --profile`` (a copy of profiles/slurm with memory,
time and CPUs scaled to this machine, partitions and GPUs as they are), then reads SLURM's
own job records. Needs root and Debian's SLURM packages (installed on first use); where the
machine cannot, the test is skipped and says why.
"""

import copy
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, reduced_config, seed_workdir, snakemake_cmd

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
pytestmark = pytest.mark.slow
GPU_RULES = {"pretrain_tiny_sd", "pretrain_tiny_clip", "caption_images", "compute_guidance", "train_lora", "synthesize_shard",
             "train_classifier", "evaluate_classifier"}  # the rules that declare resources: gpu=1


FOREIGN_SLURM = 3  # cluster.sh start's exit code where the machine has a SLURM of its own


def bring_up(script, what: str):
    """Start a test cluster with ``script`` (root only; else skip, saying why), yield what its
    start printed, stop it by the PIDs it started. On a machine with its own SLURM configuration
    cluster.sh refuses, touching nothing, and the tests are skipped with its reason."""
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root to run slurmctld/slurmd ({script.relative_to(ROOT)})")
    start = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=600)
    if start.returncode == FOREIGN_SLURM and "not started: " in start.stderr:
        pytest.skip(start.stderr.split("not started: ", 1)[1].strip() + "; skipped")
    if start.returncode != 0:
        pytest.skip(f"could not bring up {what}: {start.stderr.strip()[-500:]}")
    yield start.stdout
    subprocess.run([str(script), "stop"], timeout=120)


@pytest.fixture(scope="module")
def cluster():
    yield from bring_up(CLUSTER, "the one-node SLURM cluster")


def site_profile(folder, arrays=False, classifier_runtime=None, spread=None, classifier_gpus=None):
    """profiles/slurm with this machine's sizes: same partitions and GPU requests. ``arrays``:
    its documented switch from synthesis groups to job arrays. ``spread``: rule -> (tasks, nodes)
    through the plugin's mpi path (the job's process starts its workers with srun)."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    if arrays:
        for key in ("groups", "group-components", "set-resource-scopes", "resources"):
            del profile[key]
        profile["slurm-array-jobs"] = "synthesize_shard"
    profile.update({"slurm-status-command": "squeue", "slurm-no-account": True, "latency-wait": 5,
                    "slurm-init-seconds-before-status-checks": 3})  # the plugin waits 40 s by default
    profile["default-resources"].update(mem_mb=500, runtime=10, cpus_per_task=1)
    for resources in profile["set-resources"].values():
        resources.update(mem_mb=900, runtime="7 * attempt", cpus_per_gpu=1)
    if classifier_runtime is not None:
        profile["set-resources"]["train_classifier"]["runtime"] = classifier_runtime
    if classifier_gpus:
        profile["set-resources"]["train_classifier"]["gpu"] = classifier_gpus
    for rule, (tasks, nodes) in (spread or {}).items():
        profile["set-resources"][rule].update(mpi="srun", tasks=tasks, nodes=nodes, tasks_per_gpu=0, gpu=0,
                                              cpus_per_task=1)
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return profile


def slurm_jobs(workdir, client=()) -> list[dict]:
    """SLURM's records (scontrol, kept an hour by MinJobAge) of the jobs run from ``workdir``.
    ``client``: the prefix that runs a command where the cluster is (two_nodes.sh run)."""
    out = subprocess.run([*client, "scontrol", "-o", "show", "job"], capture_output=True, text=True,
                         check=True).stdout
    jobs = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]
    return [j for j in jobs if j.get("WorkDir") == str(workdir)]


def rule_of(job) -> str:
    comment = job["Comment"]
    return "synthesize_shard" if comment.startswith("rule_synthesis") else \
        re.match(r"rule_(.+?)(_wildcards_|$)", comment)[1]


def profile_command(workdir, profile_dir, config, *targets, client=()) -> list[str]:
    """Snakemake on ``config`` (written to workdir) with ``profile_dir``, or here on 2 cores (None)."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = ["--profile", str(profile_dir)] if profile_dir else ["--cores", "2"]
    return [*client, *snakemake_cmd(), *targets, "--directory", str(workdir), "--configfile",
            str(workdir / "config.yaml"), *cmd]


def start_profile(workdir, profile_dir, config, *targets, client=()) -> subprocess.Popen:
    """Snakemake started in the background, its output in ``workdir/snakemake.out``."""
    with open(workdir / "snakemake.out", "w") as out:
        return subprocess.Popen(profile_command(workdir, profile_dir, config, *targets, client=client),
                                stdout=out, stderr=subprocess.STDOUT)


def finish(run: subprocess.Popen, timeout=1500):
    """Wait for a ``start_profile`` run; fail with the end of its output unless it succeeded."""
    try:
        run.wait(timeout=timeout)
    finally:
        if run.poll() is None:
            run.kill()
    workdir = run.args[run.args.index("--directory") + 1]
    assert run.returncode == 0, (Path(workdir) / "snakemake.out").read_text()[-4000:]


def run_profile(workdir, profile_dir, config, *targets, client=()):
    finish(start_profile(workdir, profile_dir, config, *targets, client=client))


def test_profile_submits_every_job_as_asked_and_reruns_only_dependents(cluster, tmp_path):
    profile = site_profile(tmp_path / "profile")
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = reduced_config()
    config["runtime"]["time_limit_margin_minutes"] = 1  # of the 7 minutes the site profile gives
    run_profile(workdir, tmp_path / "profile", config)

    jobs = slurm_jobs(workdir)
    rules = [rule_of(j) for j in jobs]
    assert sorted(set(rules)) == sorted(GPU_RULES | {"build_manifest", "build_tiny_models"})  # table1: a local rule
    assert rules.count("synthesize_shard") == 1  # 2 shards bundled into one submission
    for job, rule in zip(jobs, rules, strict=True):
        assert job["JobState"] == "COMPLETED", job
        if rule in GPU_RULES:
            assert job["Partition"] == "gpu" and job["TresPerJob"] == "gres:gpu:1", job
            assert job["MinMemoryNode"] == "900M"
            # the synthesis group stacks its 2 shards in series on its one GPU
            assert job["TimeLimit"] == ("00:14:00" if rule == "synthesize_shard" else "00:07:00")
        else:
            assert job["Partition"] == "cpu" and "TresPerJob" not in job, job
            assert job["MinMemoryNode"] == "500M" and job["TimeLimit"] == "00:10:00"

    # A config edit, with shards submitted as a job array (the profile's documented switch):
    # only the dependents run again, the 2 shards as one array; an array task's shard equals the
    # same shard made locally.
    edited = copy.deepcopy(config)
    edited["variants"]["realfake"]["guidance_scale"] = 3.0
    first = {j["JobId"] for j in jobs}
    site_profile(tmp_path / "arrays", arrays=True)
    run_profile(workdir, tmp_path / "arrays", edited)
    new = [j for j in slurm_jobs(workdir) if j["JobId"] not in first]
    again = sorted(rule_of(j) for j in new)
    assert again == ["evaluate_classifier", "evaluate_classifier", "synthesize_shard", "synthesize_shard",
                     "train_classifier", "train_classifier"]
    arrays = {j.get("ArrayJobId") for j in new if rule_of(j) == "synthesize_shard"}
    assert len(arrays) == 1 and None not in arrays  # one submission, two array tasks
    assert all("gpu" not in r for r in profile["set-resources"].values())  # GPUs come from the rules
    shards = sorted((workdir / "results/digits/realfake/shards").glob("*.tar"))
    assert len(shards) == 2
    shard = shards[1]  # the second task's (the two run the same code on their own images)
    from_array = shard.read_bytes()
    shard.unlink()
    run_profile(workdir, None, edited, str(shard.relative_to(workdir)))
    assert shard.read_bytes() == from_array

    # Three single-job checks at once, each in its own copy of this folder (Snakemake's records
    # kept): their SLURM jobs queue on the one node, their status polls overlap.
    import torch

    target = "results/digits/real/seed0/classifier.pt"
    uninterrupted = torch.load(workdir / target, weights_only=True)["state_dict"]
    copies = {name: tmp_path / f"work-{name}" for name in ("short", "mpi", "gpu2", "local")}
    for copy_dir in copies.values():
        seed_workdir(workdir, copy_dir)
    (copies["short"] / target).unlink()

    # A time limit too short for the job: each attempt stops after a step, writes its checkpoint
    # and fails; the retries resume it, and it ends with the weights of the uninterrupted run.
    site_profile(tmp_path / "short", classifier_runtime=1)
    chunked = copy.deepcopy(edited)
    chunked["runtime"].update(time_limit_margin_minutes=1.0, training_retries=5)
    # Two tasks through the plugin's mpi path (srun from the job's process), on a model without
    # BatchNorm: the weights of one process (run here, locally) with the same global batch.
    two_tasks = copy.deepcopy(edited)
    two_tasks["recipes"]["demo"]["arch"] = "convnext_atto"
    site_profile(tmp_path / "mpi", spread={"train_classifier": (2, 1)})
    # gpu: 2 on one node: one task (plugins before 2.7.1 started the script once per GPU, their
    # issues #316/#459), whose job starts 2 torchrun ranks that both see the job's 2 GPUs. With
    # the synthesis groups' cap (resources: gpu: 1) sbatch would get 1 GPU and the step ask for 2,
    # so N-GPU training goes with the job-array switch (docs/slurm.md, "From 1 GPU to 8")
    site_profile(tmp_path / "gpu2", arrays=True, classifier_gpus=2)
    runs = [start_profile(copies["short"], tmp_path / "short", chunked, target),
            start_profile(copies["mpi"], tmp_path / "mpi", two_tasks, target),
            start_profile(copies["gpu2"], tmp_path / "gpu2", two_tasks, target),
            start_profile(copies["local"], None, two_tasks, target)]
    for run in runs:
        finish(run)

    attempts = sorted(slurm_jobs(copies["short"]), key=lambda j: int(j["JobId"]))
    assert [j["JobState"] for j in attempts] == ["FAILED", "COMPLETED"]  # 80 images, batches of 32: 2 steps
    assert {j["TimeLimit"] for j in attempts} == {"00:01:00"}
    resumed = torch.load(copies["short"] / target, weights_only=True)["state_dict"]
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], rtol=0, atol=0, msg=key)

    [job] = slurm_jobs(copies["mpi"])
    assert job["JobState"] == "COMPLETED" and job["NumTasks"] == "2", job
    log = (copies["mpi"] / "logs/train_classifier/digits/real/seed0.log").read_text()
    assert "rank 0 INFO" in log and "rank 1 INFO" in log
    ranks = torch.load(copies["mpi"] / target, weights_only=True)["state_dict"]
    single = torch.load(copies["local"] / target, weights_only=True)["state_dict"]  # one process
    for key in single:
        torch.testing.assert_close(ranks[key], single[key], rtol=1e-4, atol=1e-6, msg=key)

    [job] = slurm_jobs(copies["gpu2"])
    print({k: job[k] for k in ("JobId", "JobState", "NumNodes", "NumTasks", "TresPerJob")})
    assert (job["JobState"], job["NumNodes"], job["NumTasks"], job["TresPerJob"]) == \
        ("COMPLETED", "1", "1", "gres:gpu:2")
    log = (copies["gpu2"] / "logs/train_classifier/digits/real/seed0.log").read_text()
    assert log.count("rank 0 of 2 on ") == log.count("rank 1 of 2 on ") == 1, log[-3000:]
    assert log.count("CUDA_VISIBLE_DEVICES=0,1") == 2, log[-3000:]
