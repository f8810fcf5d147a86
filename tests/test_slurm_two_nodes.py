"""Training across two SLURM nodes (tests/slurm/two_nodes.sh: two slurmd, each in its own network
namespace with its own address and hostname), through the real Snakemake SLURM plugin and the
profile's ``mpi`` path. Needs root; skipped elsewhere, saying why."""

import copy
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, reduced_config, seed_workdir
from safetensors.torch import load_file
from test_slurm import bring_up, profile_command, run_profile, site_profile, slurm_jobs

CLUSTER = ROOT / "tests" / "slurm" / "two_nodes.sh"
CLIENT = (str(CLUSTER), "run")  # client commands run where the cluster's controller is
pytestmark = pytest.mark.slow
LORA = "results/digits/finetune/realfake/lora.safetensors"
CLASSIFIER = "results/digits/real/seed0/classifier.pt"


@pytest.fixture(scope="module")
def two_nodes():
    yield from bring_up(CLUSTER, "the two-node SLURM cluster (network namespaces)")


def spread_config() -> dict:
    """The reduced demo with a classifier without BatchNorm (ranks normalise their own share) and
    a LoRA batch of 16 = one L_MMD group of 8 per rank, so 2 ranks and 1 process see the same draws."""
    config = reduced_config()
    config["recipes"]["demo"]["arch"] = "convnext_atto"
    config["finetunes"]["realfake"].update(batch_size=16, mmd_group_size=8)
    config["runtime"]["time_limit_margin_minutes"] = 1  # of the 7 minutes the site profile gives
    return config


def test_the_cluster_has_two_nodes_each_with_its_own_address(two_nodes):
    print(two_nodes)  # sinfo, for the record
    header, *nodes = two_nodes.splitlines()
    assert header.split() == ["NODELIST", "PARTITION", "STATE", "GRES"]
    assert sorted(nodes) == [f"{n} {p} idle gpu:fake:1" for n in ("n1", "n2") for p in ("cpu*", "gpu")]
    hosts = subprocess.run([*CLIENT, "srun", "-N2", "-n2", "-l", "sh", "-c", "echo $(hostname) $(hostname -i)"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert sorted(hosts.splitlines()) == ["0: n1 10.87.0.11", "1: n2 10.87.0.12"]


def test_lora_and_classifier_train_as_two_nodes_equal_to_one_process(two_nodes, upstream, tmp_path):
    workdir = tmp_path / "work"
    seed_workdir(upstream, workdir)  # the models, manifest, captions and guidance of the reduced demo
    config = spread_config()
    # one process here: the reference weights, and every input of the two jobs
    run_profile(workdir, None, config, LORA, CLASSIFIER)
    single = {LORA: load_file(workdir / LORA), CLASSIFIER: torch.load(workdir / CLASSIFIER)["state_dict"]}
    for target in single:
        (workdir / target).unlink()

    site_profile(tmp_path / "profile", spread={"train_lora": (2, 2), "train_classifier": (2, 2)})
    run_profile(workdir, tmp_path / "profile", copy.deepcopy(config), LORA, CLASSIFIER, client=CLIENT)
    jobs = slurm_jobs(workdir, client=CLIENT)
    assert sorted(j["Comment"].split("_wildcards")[0] for j in jobs) == ["rule_train_classifier", "rule_train_lora"]
    for job in jobs:
        print({k: job[k] for k in ("JobId", "JobState", "NumNodes", "NumTasks", "NodeList", "BatchHost", "RunTime")})
        assert (job["JobState"], job["NumNodes"], job["NumTasks"], job["NodeList"]) == ("COMPLETED", "2", "2", "n[1-2]")

    for log in ("logs/train_lora/digits/realfake.log", "logs/train_classifier/digits/real/seed0.log"):
        text = (workdir / log).read_text()
        # each rank on its own node, both meeting at rank 0's address (n1's, the first of the job's nodes)
        assert "rank 0 of 2 on n1, rendezvous 10.87.0.11:" in text, text[-2000:]
        assert "rank 1 of 2 on n2, rendezvous 10.87.0.11:" in text, text[-2000:]
    spread = {LORA: load_file(workdir / LORA), CLASSIFIER: torch.load(workdir / CLASSIFIER)["state_dict"]}
    for target, atol in ((LORA, 5e-4), (CLASSIFIER, 1e-6)):  # the tolerances of the one-node rank tests
        assert spread[target].keys() == single[target].keys()
        worst = max((spread[target][k].float() - single[target][k].float()).abs().max().item() for k in single[target])
        print(f"{target}: max |2 nodes - 1 process| = {worst:.3g}")
        for key in single[target]:
            torch.testing.assert_close(spread[target][key], single[target][key], rtol=1e-4, atol=atol, msg=key)


def test_a_group_over_the_partitions_time_limit_is_named_before_submission(two_nodes, tmp_path):
    """sbatch would reject the synthesis group (8 shards x 7 min x attempt 3 in series = 168 min)
    and the plugin would not say so (its issue #456): the check reads the real sinfo and says so."""
    site_profile(tmp_path / "profile")
    check = [*CLIENT, sys.executable, "-m", "realfake.slurm_limits", str(tmp_path / "profile")]
    assert subprocess.run(check, capture_output=True, text=True, timeout=60).returncode == 0
    subprocess.run([*CLIENT, "scontrol", "update", "PartitionName=gpu", "MaxTime=01:00:00"], check=True, timeout=30)
    try:
        run = subprocess.run(check, capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run([*CLIENT, "scontrol", "update", "PartitionName=gpu", "MaxTime=INFINITE"], check=True, timeout=30)
    print(run.stderr)
    assert run.returncode == 1
    assert ("synthesize_shard (group synthesis: 8 jobs in series x 21 min = 168 min at attempt 3) exceeds "
            "partition gpu's MaxTime of 60 min") in run.stderr
    assert "train_lora" not in run.stderr  # 21 min: fits


def wait_for(condition, timeout: float, what: str) -> float:
    """Poll ``condition`` every 0.5 s; the seconds it took (fails naming ``what`` on timeout)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.5)
    return time.monotonic() - start


def node_state(node: str) -> str:
    return subprocess.run([*CLIENT, "sinfo", "-h", "-n", node, "-p", "cpu", "-o", "%T"], capture_output=True,
                          text=True, timeout=30).stdout.strip()


@pytest.mark.node_failure
def test_a_node_that_dies_mid_training_costs_a_retry_not_the_run(two_nodes, upstream, tmp_path):
    """n2's slurmd and rank 1 killed mid-job: the job fails, Snakemake's retries resubmit it, it
    waits for two nodes, resumes from the last checkpoint and ends with the weights of a run that
    was never interrupted."""
    workdir = tmp_path / "work"
    seed_workdir(upstream, workdir)
    config = spread_config()
    config["recipes"]["demo"].update(epochs=40, decay_milestones=[30])  # about a minute on 2 ranks
    config["runtime"].update(checkpoint_minutes=0.01, training_retries=8)  # a checkpoint every epoch
    site_profile(tmp_path / "profile", spread={"train_classifier": (2, 2)})
    run_profile(workdir, tmp_path / "profile", config, CLASSIFIER, client=CLIENT)
    uninterrupted = torch.load(workdir / CLASSIFIER)["state_dict"]
    (workdir / CLASSIFIER).unlink()
    log = workdir / "logs/train_classifier/digits/real/seed0.log"
    log.unlink()

    before = {j["JobId"] for j in slurm_jobs(workdir, client=CLIENT)}
    with open(tmp_path / "snakemake.log", "w") as console:
        run = subprocess.Popen(profile_command(workdir, tmp_path / "profile", config, CLASSIFIER, client=CLIENT),
                               stdout=console, stderr=subprocess.STDOUT)
        wait_for(lambda: log.exists() and "checkpoint at" in log.read_text(), 300, "a first checkpoint")
        subprocess.run([str(CLUSTER), "kill-node", "n2"], check=True, timeout=30)
        noticed = wait_for(lambda: node_state("n2").endswith("*") or "down" in node_state("n2"), 120,
                           "SLURM noticing n2 is gone")
        down = wait_for(lambda: "down" in node_state("n2"), 120, "n2 marked DOWN")
        subprocess.run([str(CLUSTER), "revive-node", "n2"], check=True, timeout=60)
        back = wait_for(lambda: node_state("n2") in ("idle", "allocated", "mixed"), 120, "n2 back in service")
        assert run.wait(timeout=900) == 0, (tmp_path / "snakemake.log").read_text()[-4000:]
    print(f"n2 not responding after {noticed:.0f} s, DOWN after {noticed + down:.0f} s, "
          f"back {back:.0f} s after its slurmd restarted")
    attempts = sorted((j for j in slurm_jobs(workdir, client=CLIENT) if j["JobId"] not in before),
                      key=lambda j: int(j["JobId"]))
    for job in attempts:
        print({k: job.get(k) for k in ("JobId", "JobState", "Reason", "NodeList", "Restarts", "RunTime", "ExitCode")})
    # with the profile's slurm-requeue, SLURM may rerun the job under its id (Restarts) rather than
    # Snakemake submitting another: either way more than one run, the last one complete
    assert len(attempts) + sum(int(j["Restarts"]) for j in attempts) >= 2
    assert attempts[-1]["JobState"] == "COMPLETED"
    assert "resumed from" in log.read_text()
    resumed = torch.load(workdir / CLASSIFIER)["state_dict"]
    worst = max((resumed[k].float() - uninterrupted[k].float()).abs().max().item() for k in uninterrupted)
    print(f"max |resumed - uninterrupted| = {worst:.3g}")
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], rtol=0, atol=1e-6, msg=key)
