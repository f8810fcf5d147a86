rule fig1_clip_pca:
    input:
        manifest=lambda wc: MANIFEST.format(
            dataset=plan.experiment(config, "fig1")["dataset"]
        ),
        baseline=fig1_shards("baseline"),
        ours=fig1_shards("ours"),
        model=model_folder("clip"),
    output:
        report(
            "results/fig1_clip_pca.png",
            category="Figures",
            caption="../report/fig1.rst",
        ),
    log:
        "logs/fig1_clip_pca.log",
    benchmark:
        "benchmarks/fig1_clip_pca.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        model=model_name("clip"),
        gap=canonical(config["gap"]),
        sets=lambda wc: canonical(
            {
                label: {
                    **s,
                    "images": s["scale"] * plan.train_size(config, s["dataset"]),
                }
                for label, s in plan.fig1_sets(config).items()
            }
        ),
    script:
        "../scripts/fig1_clip_pca.py"


rule fig2_scaling:
    input:
        lambda wc: metrics_of(plan.fig2_runs(config)),
    output:
        report(
            "results/fig2_scaling.png",
            category="Figures",
            caption="../report/fig2.rst",
        ),
    log:
        "logs/fig2_scaling.log",
    benchmark:
        "benchmarks/fig2_scaling.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        columns=plan.table_columns(config),
    script:
        "../scripts/fig2_scaling.py"
