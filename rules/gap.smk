rule distribution_gap:
    input:
        manifest=MANIFEST,
        shards=gap_shards,
        model=model_folder("clip"),
    output:
        gap=GAP,
        pca=report(GAP_PCA, category="Distribution gap", caption="../report/pca.rst"),
    log:
        "logs/distribution_gap/{dataset}/{variant}/x{scale}.log",
    benchmark:
        "benchmarks/distribution_gap/{dataset}/{variant}/x{scale}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        model=model_name("clip"),
        gap=canonical(config["gap"]),
        synthetic_images=lambda wc: int(wc.scale) * plan.train_size(config, wc.dataset),
    script:
        "../scripts/distribution_gap.py"


rule label_fidelity:
    input:
        classifier=real_only_classifier,
        shards=gap_shards,
    output:
        LABEL_FIDELITY,
    log:
        "logs/label_fidelity/{dataset}/{variant}/x{scale}.log",
    benchmark:
        "benchmarks/label_fidelity/{dataset}/{variant}/x{scale}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        synthetic_images=lambda wc: int(wc.scale) * plan.train_size(config, wc.dataset),
    script:
        "../scripts/label_fidelity.py"


rule gap_table:
    input:
        gaps=lambda wc: [GAP.format(**run) for run in plan.gap_runs(config)],
        fidelity=lambda wc: [
            LABEL_FIDELITY.format(**run) for run in plan.gap_runs(config)
        ],
        metrics=lambda wc: metrics_of(plan.gap_runs(config)),
    output:
        report(
            "results/gap_vs_accuracy.csv",
            category="Tables",
            caption="../report/gap.rst",
        ),
    log:
        "logs/gap_table.log",
    benchmark:
        "benchmarks/gap_table.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        variants=lambda wc: canonical(
            {
                f"{r['variant']}/x{r['scale']}": r["configured"]
                for r in plan.gap_runs(config)
            }
        ),
    script:
        "../scripts/gap_table.py"
