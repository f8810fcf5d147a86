# Sec. 4.5: membership inference (LiRA over shadow runs on seeded halves, Fig. 3) and copy
# detection (nearest real training images of each synthetic image, Fig. 4).


rule lira_scores:
    input:
        classifier=CLASSIFIER,
        manifest=shadow_base_manifest,
    output:
        LIRA_SCORES,
    log:
        "logs/lira_scores/{dataset}/{trainset}/seed{seed}.log",
    benchmark:
        "benchmarks/lira_scores/{dataset}/{trainset}/seed{seed}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    script:
        "../scripts/lira_scores.py"


rule lira:
    input:
        real=lira_scores_of("real"),
        synthetic=lira_scores_of("synthetic"),
    output:
        table=report(
            "results/privacy/lira.csv",
            category="Privacy",
            caption="../report/lira.rst",
        ),
        roc=report(
            "results/privacy/lira_roc.png",
            category="Privacy",
            caption="../report/lira.rst",
        ),
    log:
        "logs/lira.log",
    benchmark:
        "benchmarks/lira.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        lira=lambda wc: canonical(plan.experiment(config, "lira")),
    script:
        "../scripts/lira.py"


rule real_copy_descriptors:
    input:
        manifest=MANIFEST,
        model=copy_model_input,
    output:
        REAL_COPY_DESCRIPTORS,
    log:
        "logs/real_copy_descriptors/{dataset}.log",
    benchmark:
        "benchmarks/real_copy_descriptors/{dataset}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        descriptor=lambda wc: copy_descriptor(),
        model=copy_model_name,
    script:
        "../scripts/real_copy_descriptors.py"


rule copy_detection:
    input:
        real=REAL_COPY_DESCRIPTORS,
        shards=gap_shards,
        model=copy_model_input,
    output:
        COPIES,
    log:
        "logs/copy_detection/{dataset}/{variant}/x{scale}.log",
    benchmark:
        "benchmarks/copy_detection/{dataset}/{variant}/x{scale}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        descriptor=lambda wc: copy_descriptor(),
        model=copy_model_name,
        copies=lambda wc: plan.copy_detection_params(config),
        latent_prior=lambda wc: config["variants"][wc.variant]["latent_prior"],
        synthetic_images=lambda wc: int(wc.scale) * plan.train_size(config, wc.dataset),
    script:
        "../scripts/copy_detection.py"


rule copies:
    input:
        sets=lambda wc: [COPIES.format(**s) for s in plan.copy_sets(config)],
        real=lambda wc: REAL_COPY_DESCRIPTORS.format(
            dataset=plan.experiment(config, "copies")["dataset"]
        ),
        manifest=lambda wc: MANIFEST.format(
            dataset=plan.experiment(config, "copies")["dataset"]
        ),
    output:
        table=report(
            "results/privacy/copies.csv",
            category="Privacy",
            caption="../report/copies.rst",
        ),
        grid=report(
            "results/privacy/copies_grid.png",
            category="Privacy",
            caption="../report/copies.rst",
        ),
    log:
        "logs/copies.log",
    benchmark:
        "benchmarks/copies.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        copies=lambda wc: canonical(plan.experiment(config, "copies")),
        labels=lambda wc: list(copy_sets_shards()),
        shards=lambda wc: copy_sets_shards(),
    script:
        "../scripts/copies.py"
