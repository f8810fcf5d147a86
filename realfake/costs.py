"""Cost plan: the jobs a target would run and their GPU-hours per stage, before submitting.

    realfake-costs [--configfile config/paper.yaml] [--all] TARGET...

Dry-runs Snakemake for TARGET (only the stale jobs; ``--all``: everything), counts each job's
images from the config (a shard's size, a classifier's epochs x training images, ...) and
multiplies by the per-image GPU seconds in ``costs`` of the config. Replace those estimates
with your own measurements: every job writes its wall time to ``benchmarks/``.
"""

from __future__ import annotations

import argparse
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
    return 0


def planned_jobs(targets: list[str], configfile: str | None, forceall: bool) -> list[tuple[str, dict]]:
    cmd = [str(Path(sys.executable).parent / "snakemake"), *targets, "-n", "-s", str(ROOT / "Snakefile")]
    cmd += ["--configfile", configfile] if configfile else []
    cmd += ["--forceall"] if forceall else []
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit((run.stdout + run.stderr)[-3000:])
    jobs = [(m[1], dict(kv.split("=", 1) for kv in m[2].split(", "))) for m in JOB.finditer(run.stdout)]
    jobs += [(m[1], {}) for m in NO_WILDCARDS.finditer(run.stdout)]
    return jobs


def cost_table(config: dict, jobs: list[tuple[str, dict]]):
    import pandas as pd

    rows = []
    for rule, w in jobs:
        images = job_images(config, rule, w)
        seconds = images * config["costs"].get(rule, 0.0)
        rows.append({"rule": rule, "jobs": 1, "images": images, "gpu_hours": seconds / 3600})
    table = pd.DataFrame(rows, columns=["rule", "jobs", "images", "gpu_hours"])
    table = table.groupby("rule").sum().sort_values("gpu_hours", ascending=False)
    table.loc["total"] = table.sum()
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(prog="realfake-costs", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["all"])
    parser.add_argument("--configfile", help="default: the Snakefile's (config/config.yaml)")
    parser.add_argument("--all", action="store_true", help="every job of the targets, not only the stale ones")
    args = parser.parse_args(argv)
    config = load_config(args.configfile or ROOT / "config/config.yaml")
    table = cost_table(config, planned_jobs(args.targets, args.configfile, args.all))
    print(table.to_string(float_format=lambda v: f"{v:,.1f}"))


if __name__ == "__main__":
    main()
