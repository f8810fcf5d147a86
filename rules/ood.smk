rule build_ood_manifest:
    input:
        manifest=manifest,
    output:
        "data/{dataset}/ood/{oodset}/manifest.parquet",
    log:
        "logs/{dataset}/ood/build_ood_manifest/{oodset}.log",
    benchmark:
        "benchmarks/{dataset}/ood/build_ood_manifest/{oodset}.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        ood=lambda wc: plan.ood_manifest_params(config, wc.oodset),
    script:
        "../scripts/build_ood_manifest.py"


rule evaluate_ood:
    input:
        manifest="data/{dataset}/ood/{oodset}/manifest.parquet",
        classifier="results/{dataset}/{trainset}/seed{seed}/classifier.pt",
    output:
        "results/{dataset}/{trainset}/seed{seed}/ood/{oodset}.json",
    log:
        "logs/{dataset}/{trainset}/seed{seed}/evaluate_ood/{oodset}.log",
    benchmark:
        "benchmarks/{dataset}/{trainset}/seed{seed}/evaluate_ood/{oodset}.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        restrict_logits=lambda wc: config["ood_sets"][wc.oodset]["restrict_logits"],
    script:
        "../scripts/evaluate_classifier.py"
