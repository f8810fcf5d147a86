import os

# Snakemake puts the folder of a local Snakefile on sys.path, so a clone of this repository (or a
# module: snakefile: "path/to/Snakefile") imports the package beside it; a Snakefile fetched with
# github(...) is read file by file, and the package must be installed where Snakemake runs.
try:
    import realfake
except ModuleNotFoundError as missing:
    if missing.name != "realfake":
        raise
    raise WorkflowError(
        "the realfake package cannot be imported: a local Snakefile (a clone, or a module's "
        "snakefile: path) imports the package beside it; a module fetched with github(...) "
        "needs it installed where Snakemake runs, at the same tag: pip install "
        "'realfake @ git+https://github.com/OWNER/REPO@TAG' (README.md, 'Use as a module')"
    ) from None

import realfake.plan as plan
from realfake.config import canonical, load_config, parse_trainset

# One loader: schema validation with defaults (nested too), normalisation, cross-checks;
# then what start-up can know of the file system (data roots, model folders), unless the run
# only plans (realfake-costs prices a config before its data is on the cluster).
config.update(load_config(config))
if not os.environ.get("REALFAKE_PLAN_ONLY"):
    # the stages' own checks (pandas, model folders): not imported when only planning
    from realfake.preflight import check_paths

    check_paths(config)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    variant=r"[A-Za-z0-9_-]+",
    finetune=r"[A-Za-z0-9_-]+",
    shard=r"\d{5}",
    seed=r"\d+",
    trainset=r"real|[A-Za-z0-9_-]+/x\d+(_real)?",
    oodset=r"[A-Za-z0-9_-]+",
    scale=r"\d+",


# Every path, written once: the rule that makes a file uses its template as output, and
# consumers format the same template.
MANIFEST = "data/{dataset}/manifest.parquet"
OOD_MANIFEST = "data/{dataset}/ood/{oodset}/manifest.parquet"
CAPTIONS = "results/{dataset}/captions.parquet"
GUIDANCE = "results/{dataset}/guidance.safetensors"
LORA = "results/{dataset}/finetune/{finetune}/lora.safetensors"
SHARD = "results/{dataset}/{variant}/shards/{shard}.tar"
SHARD_INDEX = "results/{dataset}/{variant}/shards/{shard}.index.json"
CLASSIFIER = "results/{dataset}/{trainset}/seed{seed}/classifier.pt"
METRICS = "results/{dataset}/{trainset}/seed{seed}/metrics.json"
OOD_METRICS = "results/{dataset}/{trainset}/seed{seed}/ood/{oodset}.json"
GAP = "results/{dataset}/{variant}/x{scale}/distribution_gap.json"
GAP_PCA = "results/{dataset}/{variant}/x{scale}/distribution_gap_pca.png"
LABEL_FIDELITY = "results/{dataset}/{variant}/x{scale}/label_fidelity.json"
LIRA_SCORES = "results/{dataset}/{trainset}/seed{seed}/lira_scores.parquet"
REAL_COPY_DESCRIPTORS = "results/{dataset}/copies/real_descriptors.safetensors"
COPIES = "results/{dataset}/{variant}/x{scale}/copies.parquet"


def model_folder(kind):
    """The model folder as a job input when the workflow builds it, else nothing to wait for."""
    return config["models"][kind] if config["models"]["build_tiny"] else []


def model_name(kind):
    """params: the model folder that is this job's input, or the configured hub id (with its
    ``@revision``, so pinning another commit reruns the jobs that load it)."""
    return lambda wildcards, input: (
        str(input.model) if input.model else config["models"][kind]
    )


def uses_captions(wildcards):
    return config["datasets"][wildcards.dataset]["captions"]


def finetune_uses_guidance(wildcards):
    return config["finetunes"][wildcards.finetune]["visual_guidance"]


def variant_uses_guidance(wildcards):
    return plan.uses_guidance(config, wildcards.variant)


def lora_of(wildcards):
    finetune = config["variants"][wildcards.variant]["finetune"]
    if finetune is None:
        return []
    return LORA.format(dataset=wildcards.dataset, finetune=finetune)


def shard_files(dataset, trainset):
    """The synthetic shards a training set reads (none for real only)."""
    variant = parse_trainset(trainset)["variant"]
    return [
        SHARD.format(dataset=dataset, variant=variant, shard=f"{shard:05d}")
        for shard in plan.trainset_shards(config, dataset, trainset)
    ]


def training_shards(wildcards):
    return shard_files(wildcards.dataset, wildcards.trainset)


def gap_shards(wildcards):
    return shard_files(wildcards.dataset, f"{wildcards.variant}/x{wildcards.scale}")


def fig1_shards(label):
    """Fig. 1's shards of one synthetic set (``baseline`` or ``ours``)."""

    def shards(wildcards):
        s = plan.fig1_sets(config)[label]
        return shard_files(s["dataset"], f"{s['variant']}/x{s['scale']}")

    return shards


def training_retries():
    """Attempts of a training job, counted by the main Snakemake process only: inside a cluster
    job an attempt that stopped at its time limit must fail the job (its allocation is ending)
    for the main process to submit it again."""
    return config["runtime"]["training_retries"] if workflow.is_main_process else 0


def metrics_of(runs):
    return [METRICS.format(**run) for run in runs]


def real_only_classifier(wildcards):
    """The real-only classifier (first seed) that judges a synthetic set's labels."""
    seed = config["experiments"]["seeds"][0]
    return CLASSIFIER.format(dataset=wildcards.dataset, trainset="real", seed=seed)


def shadow_base_manifest(wildcards):
    """A LiRA shadow's models are scored on the base data set's whole train split."""
    base = config["datasets"][wildcards.dataset]["shadow"]["dataset"]
    return MANIFEST.format(dataset=base)


def lira_scores_of(trainset_kind):
    """Every shadow's score file of one training setting (real | synthetic), in shadow order."""

    def files(wildcards):
        runs = plan.lira_runs(config)
        real = trainset_kind == "real"
        return [
            LIRA_SCORES.format(**r) for r in runs if (r["trainset"] == "real") == real
        ]

    return files


def copy_descriptor():
    """clip, or the TorchScript file as {path, sha256}: a params value, so a new hash reruns."""
    return canonical(plan.experiment(config, "copies")["descriptor"])


def copy_model_input(wildcards):
    """The CLIP folder when the copy descriptor is CLIP and the workflow builds it."""
    return model_folder("clip") if copy_descriptor() == "clip" else []


def copy_model_name(wildcards, input):
    return model_name("clip")(wildcards, input) if copy_descriptor() == "clip" else None


def copy_sets_shards():
    """Label of each copy-detection set -> its shard files."""
    return {
        f"{s['variant']}/x{s['scale']}": shard_files(
            s["dataset"], f"{s['variant']}/x{s['scale']}"
        )
        for s in plan.copy_sets(config)
    }
