# Sample grids: real training images beside synthetic ones, per class (realfake.grids). They read
# only the x1 shards' indexes and the cells they draw: seconds, once the shards exist.
# params.sets: each column group's title, images and shard files, in column order.
SAMPLE_GRID = "results/{dataset}/{variant}/samples.png"
COMPARISON_GRID = "results/grids/{comparison}.png"


rule sample_grid:
    input:
        manifest=MANIFEST,
        shards=lambda wc: shard_files(
            wc.dataset, plan.grid_set(config, wc.dataset, wc.variant)["trainset"]
        ),
    output:
        report(
            SAMPLE_GRID,
            category="Samples",
            subcategory="{dataset}",
            caption="../report/samples.rst",
            labels={"data set": "{dataset}", "variant": "{variant}"},
        ),
    log:
        "logs/sample_grid/{dataset}/{variant}.log",
    benchmark:
        "benchmarks/sample_grid/{dataset}/{variant}.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        grid=lambda wc: plan.grid_settings(config),
        sets=lambda wc: canonical(
            [
                {**s, "shards": shard_files(s["dataset"], s["trainset"])}
                for s in [plan.grid_set(config, wc.dataset, wc.variant)]
            ]
        ),
        title=lambda wc: f"{wc.dataset}: real training images | {wc.variant} (x1)",
    script:
        "../scripts/sample_grid.py"


rule comparison_grid:
    input:
        manifest=lambda wc: MANIFEST.format(
            dataset=plan.grid_comparison(config, wc.comparison)["dataset"]
        ),
        shards=lambda wc: [
            shard
            for s in plan.grid_comparison(config, wc.comparison)["columns"]
            for shard in shard_files(s["dataset"], s["trainset"])
        ],
    output:
        report(
            COMPARISON_GRID,
            category="Samples",
            subcategory="comparisons",
            caption="../report/comparison.rst",
            labels=lambda wc: {
                "comparison": wc.comparison,
                "data set": plan.grid_comparison(config, wc.comparison)["dataset"],
            },
        ),
    log:
        "logs/comparison_grid/{comparison}.log",
    benchmark:
        "benchmarks/comparison_grid/{comparison}.tsv"
    wildcard_constraints:
        comparison=r"[A-Za-z0-9_-]+",
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        grid=lambda wc: plan.grid_settings(config, wc.comparison),
        sets=lambda wc: canonical(
            [
                {**s, "shards": shard_files(s["dataset"], s["trainset"])}
                for s in plan.grid_comparison(config, wc.comparison)["columns"]
            ]
        ),
        title=lambda wc: "{dataset}: real training images | synthetic (x1), {name}".format(
            dataset=plan.grid_comparison(config, wc.comparison)["dataset"],
            name=wc.comparison,
        ),
    script:
        "../scripts/sample_grid.py"


# What Table 1's shards alone can draw: a grid per Table 1 synthetic set and the comparisons
# whose columns are all Table 1 sets (make demo builds it beside Table 1).
rule table1_grids:
    input:
        lambda wc: [SAMPLE_GRID.format(**s) for s in plan.table1_grid_sets(config)],
        lambda wc: [
            COMPARISON_GRID.format(comparison=name)
            for name in plan.table1_grid_comparisons(config)
        ],
