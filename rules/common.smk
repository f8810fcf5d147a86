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
    oodset=r"[A-Za-z0-9_-]+",
    scale=r"\d+",


def model_folder(kind):
    """The model folder as a job input when the workflow builds it, else nothing to wait for."""
    return config["models"][kind] if config["models"]["build_tiny"] else []


def manifest(wildcards):
    return f"data/{wildcards.dataset}/manifest.parquet"


def captions_if_used(wildcards):
    used = config["datasets"][wildcards.dataset]["captions"]
    return f"results/{wildcards.dataset}/captions.parquet" if used else []


def guidance_if_used(wildcards):
    used = config["finetunes"][wildcards.finetune]["visual_guidance"]
    return f"results/{wildcards.dataset}/guidance.safetensors" if used else []


def lora_of(wildcards):
    finetune = config["variants"][wildcards.variant]["finetune"]
    if finetune is None:
        return []
    return f"results/{wildcards.dataset}/finetune/{finetune}/lora.safetensors"


def guidance_of(wildcards):
    finetune = plan.finetune_of(config, wildcards.variant)
    if finetune is None or not finetune["visual_guidance"]:
        return []
    return f"results/{wildcards.dataset}/guidance.safetensors"


def shard_files(dataset, trainset):
    """The synthetic shards a training set reads (none for real only)."""
    variant = plan.parse_trainset(trainset)["variant"]
    return [
        f"results/{dataset}/{variant}/shards/{shard:05d}.tar"
        for shard in plan.trainset_shards(config, dataset, trainset)
    ]


def training_shards(wildcards):
    return shard_files(wildcards.dataset, wildcards.trainset)


def gap_shards(wildcards):
    return shard_files(wildcards.dataset, f"{wildcards.variant}/x{wildcards.scale}")


def table1_metrics(wildcards):
    return [
        plan.metrics_path(dataset, trainset, seed)
        for dataset in config["datasets"]
        for trainset in plan.table1_trainsets(config).values()
        for seed in config["experiments"]["seeds"]
    ]


def model_name(kind):
    """params: the model folder that is this job's input, or the configured hub id."""
    return lambda wildcards, input: (
        str(input.model) if input.model else config["models"][kind]
    )


def table_columns():
    return {
        name: ds.get("table_column", name) for name, ds in config["datasets"].items()
    }
