def table1_metrics(wildcards):
    return [
        f"results/{dataset}/{trainset}/seed{seed}/metrics.json"
        for dataset in config["datasets"]
        for trainset in plan.table1_trainsets(config).values()
        for seed in config["experiments"]["seeds"]
    ]


rule table1:
    input:
        table1_metrics,
    output:
        "results/table1.csv",
    params:
        columns={
            name: ds.get("table_column", name) for name, ds in config["datasets"].items()
        },
        settings=lambda wc: {v: k for k, v in plan.table1_trainsets(config).items()},
    log:
        "logs/table1.log",
    script:
        "../scripts/table1.py"
