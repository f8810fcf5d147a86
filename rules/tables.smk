rule table1:
    input:
        table1_metrics,
    output:
        "results/table1.csv",
    log:
        "logs/table1.log",
    benchmark:
        "benchmarks/table1.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        columns={
            name: ds.get("table_column", name)
            for name, ds in config["datasets"].items()
        },
        settings=lambda wc: {v: k for k, v in plan.table1_trainsets(config).items()},
    script:
        "../scripts/table1.py"
