rule distribution_gap:
    input:
        manifest=manifest,
        shards=gap_shards,
        model=model_folder("clip"),
    output:
        gap="results/{dataset}/{variant}/x{scale}/distribution_gap.json",
        pca=report(
            "results/{dataset}/{variant}/x{scale}/distribution_gap_pca.png",
            category="Distribution gap",
            caption="../report/pca.rst",
        ),
    log:
        "logs/{dataset}/{variant}/x{scale}/distribution_gap.log",
    benchmark:
        "benchmarks/{dataset}/{variant}/x{scale}/distribution_gap.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        model=model_name("clip"),
        gap=config["gap"],
        synthetic_images=lambda wc: int(wc.scale) * plan.train_size(config, wc.dataset),
    script:
        "../scripts/distribution_gap.py"


rule gap_table:
    input:
        unpack(lambda wc: plan.gap_inputs(config)),
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
    conda:
        "../envs/realfake.yaml"
    script:
        "../scripts/gap_table.py"
