# localrule: the rules that read small files (metrics, scores, shard indexes) and write a table or
# figure run where Snakemake runs, never through sbatch (docs/slurm.md).


rule table1:
    input:
        lambda wc: metrics_of(plan.table1_runs(config)),
    output:
        report("results/table1.csv", category="Tables", caption="../report/table1.rst"),
    log:
        "logs/table1.log",
    benchmark:
        "benchmarks/table1.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        columns=plan.table_columns(config),
        settings=plan.table1_settings(config),
    script:
        "../scripts/table1.py"


rule table2:
    input:
        lambda wc: metrics_of(plan.table2_runs(config)),
    output:
        report("results/table2.csv", category="Tables", caption="../report/table2.rst"),
    log:
        "logs/table2.log",
    benchmark:
        "benchmarks/table2.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        rows=lambda wc: plan.table2_rows(config),
        columns=plan.table_columns(config),
    script:
        "../scripts/table2.py"


rule table3:
    input:
        lambda wc: metrics_of(plan.table3_runs(config)),
    output:
        report("results/table3.csv", category="Tables", caption="../report/table3.rst"),
    log:
        "logs/table3.log",
    benchmark:
        "benchmarks/table3.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    script:
        "../scripts/table3.py"


rule table9:
    input:
        lambda wc: metrics_of(plan.table9_runs(config)),
    output:
        report("results/table9.csv", category="Tables", caption="../report/table9.rst"),
    log:
        "logs/table9.log",
    benchmark:
        "benchmarks/table9.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        columns=plan.table_columns(config),
    script:
        "../scripts/table9.py"


rule table4:
    input:
        lambda wc: [OOD_METRICS.format(**run) for run in plan.table4_runs(config)],
    output:
        report("results/table4.csv", category="Tables", caption="../report/table4.rst"),
    log:
        "logs/table4.log",
    benchmark:
        "benchmarks/table4.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        columns=lambda wc: canonical(
            {
                name: ood.get("table_column", name)
                for name, ood in config["ood_sets"].items()
            }
        ),
    script:
        "../scripts/table4.py"


rule table10:
    input:
        lambda wc: metrics_of(plan.table10_runs(config)),
    output:
        report(
            "results/table10.csv", category="Tables", caption="../report/table10.rst"
        ),
    log:
        "logs/table10.log",
    benchmark:
        "benchmarks/table10.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        runs=lambda wc: plan.table10_runs(config),
    script:
        "../scripts/table10.py"
