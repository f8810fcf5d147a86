"""Cost plan: what a target would run, before submitting it: per stage its jobs, GPU-hours,
sbatch submissions, wall-clock on a cluster of N GPUs and disk.

    realfake-costs [--configfile config/paper.yaml] [--all] [--gpus N] [--group-shards K | --arrays] TARGET...

Dry-runs Snakemake for TARGET (only the stale jobs; ``--all``: everything), counts each job's
images from the config (a shard's size, a classifier's epochs x training images, ...) and
multiplies by the per-image GPU seconds in ``costs`` of the config. Replace those estimates
with your own measurements: every job writes its wall time to ``benchmarks/``.

Wall-clock is per stage (captions, LoRA, shards, ... one after another, as the graph orders
them on one dataset): the longer of its longest job and its GPU-hours spread over N GPUs; a
training job spreads over ``--gpus-per-job`` GPUs (DDP, perfect scaling assumed), every other
job runs on one. Disk: shards at the measured bytes per image of their format (``bench/shard_io.py``,
512 px), classifiers and their checkpoints at 4 bytes a weight (x2 for SGD momentum).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

from realfake import plan
from realfake.config import load_config

ROOT = Path(__file__).resolve().parents[1]
JOB = re.compile(r"^rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)$", re.M)
NO_WILDCARDS = re.compile(r"^rule (\w+):\n(?:    (?!wildcards:).*\n)*(?=\S|\Z)", re.M)


def job_images(config: dict, rule: str, w: dict) -> float:
    """Images a job processes, in units its per-image cost is given in (classifiers: 224 px)."""
    ds = config["datasets"].get(w.get("dataset"), {})
    n = plan.train_size(config, w["dataset"]) if "dataset" in w else 0
    if rule in ("caption_images", "compute_guidance"):
        return n
    if rule == "train_lora":
        ft = config["finetunes"][w["finetune"]]
        return ft["max_steps"] * ft["batch_size"] if ft["max_steps"] else ft["epochs"] * n
    if rule == "synthesize_shard":
        return config["synthesis"]["shard_size"]
    if rule == "train_classifier":
        p = plan.classifier_params(config, w["dataset"], w["trainset"], w["seed"])
        recipe = p["recipe"]
        images = p["synthetic_images"] + (n if p["real"] else 0)
        return recipe["epochs"] * images * (recipe["train_resolution"] / 224) ** 2
    if rule in ("evaluate_classifier", "evaluate_ood"):
        return ds.get("test_images", 0)
    if rule == "distribution_gap":
        return 2 * config["gap"]["max_images"]
    if rule == "lira_scores":  # every image of the base data set's train split
        return plan.train_size(config, ds["shadow"]["dataset"])
    if rule == "real_copy_descriptors":
        return n + ds.get("test_images", 0)
    if rule == "copy_detection":
        return int(w["scale"]) * n
    return 0


def planned_jobs(targets: list[str], configfile: str | None, forceall: bool) -> list[tuple[str, dict]]:
    cmd = [str(Path(sys.executable).parent / "snakemake"), *targets, "-n", "-s", str(ROOT / "Snakefile")]
    cmd += ["--configfile", configfile] if configfile else []
    cmd += ["--forceall"] if forceall else []
    # planning needs no data: the start-up checks of data roots and model folders are skipped
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "REALFAKE_PLAN_ONLY": "1"})
    if run.returncode != 0:
        sys.exit((run.stdout + run.stderr)[-3000:])
    jobs = [(m[1], dict(kv.split("=", 1) for kv in m[2].split(", "))) for m in JOB.finditer(run.stdout)]
    jobs += [(m[1], {}) for m in NO_WILDCARDS.finditer(run.stdout)]
    return jobs


# bench/shard_io.py, 512-px images (2026-11-26): KiB per stored image by format (and quality)
SHARD_KIB_PER_IMAGE = {("png", None): 501.5, ("jpeg", 95): 106.0, ("jpeg", 75): 30.6, ("webp", 95): 99.8}


def shard_bytes(config: dict) -> float:
    s = config["synthesis"]
    quality = None if s["image_format"] == "png" else s["image_quality"]
    kib = SHARD_KIB_PER_IMAGE.get((s["image_format"], quality), SHARD_KIB_PER_IMAGE[("jpeg", 95)])
    return s["shard_size"] * kib * 1024


def classifier_bytes(config: dict, w: dict) -> float:
    """A classifier's output and its checkpoint (weights + momentum): 3 x 4 bytes a weight."""
    return 12.0 * weights_of(config["recipes"][config["datasets"][w["dataset"]]["recipe"]]["arch"])


@functools.cache
def weights_of(arch: str) -> int:
    import timm

    return sum(p.numel() for p in timm.create_model(arch, pretrained=False).parameters())


def job_bytes(config: dict, rule: str, w: dict) -> float:
    if rule == "synthesize_shard":
        return shard_bytes(config)
    if rule == "train_classifier":
        return classifier_bytes(config, w)
    return 0.0


TRAINING_RULES = ("train_lora", "train_classifier")


def cost_table(config: dict, jobs: list[tuple[str, dict]], gpus: int = 64, group_shards: int = 8,
               arrays: bool = False, array_size: int = 200, gpus_per_job: int = 8):
    """Per rule: jobs, images, GPU-hours, sbatch submissions, wall-clock hours on ``gpus``, disk TB.

    Submissions: shards in groups of ``group_shards`` or, with ``arrays``, ``array_size`` per
    sbatch (Snakemake hands the plugin at most ``jobs`` at once; the profile's is 200).
    """
    import math

    import pandas as pd

    rows = []
    for rule, w in jobs:
        images = job_images(config, rule, w)
        rows.append({"rule": rule, "jobs": 1, "images": images,
                     "gpu_hours": images * config["costs"].get(rule, 0.0) / 3600,
                     "disk_tb": job_bytes(config, rule, w) / 1e12})
    table = pd.DataFrame(rows, columns=["rule", "jobs", "images", "gpu_hours", "disk_tb"])
    longest = table.groupby("rule").gpu_hours.max()
    table = table.groupby("rule").sum()
    per_submission = {"synthesize_shard": array_size if arrays else group_shards}
    table.insert(3, "submissions", [math.ceil(n / per_submission.get(r, 1)) for r, n in table.jobs.items()])
    spread = {r: min(gpus_per_job, gpus) if r in TRAINING_RULES else 1 for r in table.index}
    table.insert(4, f"wall_hours_{gpus}gpu", [max(longest[r] / spread[r], h / gpus) for r, h in table.gpu_hours.items()])
    table = table.sort_values("gpu_hours", ascending=False)
    table.loc["total"] = table.sum()
    return table


def check_profile_limits(profile_dir) -> None:
    """Exit naming every job or group of the profile that sbatch would reject (plugin issue #456)."""
    import shutil

    from realfake.slurm_limits import ProfileError, check_profile

    if not shutil.which("sinfo"):
        print(f"{profile_dir}: no sinfo here, time limits not checked (run this on the cluster)", file=sys.stderr)
        return
    try:
        check_profile(profile_dir)
    except ProfileError as error:
        sys.exit(str(error))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="realfake-costs", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["all"])
    parser.add_argument("--configfile", help="default: the Snakefile's (config/config.yaml)")
    parser.add_argument("--all", action="store_true", help="every job of the targets, not only the stale ones")
    parser.add_argument("--gpus", type=int, default=64, help="GPUs the cluster gives this run (wall-clock)")
    parser.add_argument("--group-shards", type=int, default=8, help="shards per submission (the profile's groups)")
    parser.add_argument("--arrays", action="store_true", help="shards as job arrays instead of groups")
    parser.add_argument("--gpus-per-job", type=int, default=8, help="GPUs of one training job (DDP)")
    parser.add_argument("--profile", help="a SLURM profile folder: check its time limits against sinfo's partitions")
    args = parser.parse_args(argv)
    if args.profile:
        check_profile_limits(args.profile)
    config = load_config(args.configfile or ROOT / "config/config.yaml")
    table = cost_table(config, planned_jobs(args.targets, args.configfile, args.all), args.gpus,
                       args.group_shards, args.arrays, gpus_per_job=args.gpus_per_job)
    formats = {"disk_tb": lambda v: f"{v:,.3f}"}
    print(table.to_string(formatters=formats, float_format=lambda v: f"{v:,.1f}"))


if __name__ == "__main__":
    main()
