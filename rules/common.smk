from snakemake.utils import validate

import realfake.plan as plan


validate(config, workflow.source_path("../config/schema.yaml"))
plan.check_config(config)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    variant=r"[A-Za-z0-9_-]+",
    finetune=r"[A-Za-z0-9_-]+",
    shard=r"\d{5}",
    seed=r"\d+",
    trainset=r"real|[A-Za-z0-9_-]+/x\d+(_real)?",


def model_folder(kind):
    """The model folder as a job input when the workflow builds it, else nothing to wait for."""
    return config["models"][kind] if config["models"]["build_tiny"] else []


def manifest(wildcards):
    return f"data/{wildcards.dataset}/manifest.parquet"


def captions_if_used(wildcards):
    used = config["datasets"][wildcards.dataset]["captions"]
    return f"results/{wildcards.dataset}/captions.parquet" if used else []
