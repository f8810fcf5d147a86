rule build_ood_manifest:
    input:
        manifest=MANIFEST,
    output:
        OOD_MANIFEST,
    log:
        "logs/build_ood_manifest/{dataset}/{oodset}.log",
    benchmark:
        "benchmarks/build_ood_manifest/{dataset}/{oodset}.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        ood=lambda wc: plan.ood_manifest_params(config, wc.oodset),
    script:
        "../scripts/build_ood_manifest.py"


rule evaluate_ood:
    input:
        manifest=OOD_MANIFEST,
        classifier=CLASSIFIER,
    output:
        OOD_METRICS,
    log:
        "logs/evaluate_ood/{dataset}/{trainset}/seed{seed}/{oodset}.log",
    benchmark:
        "benchmarks/evaluate_ood/{dataset}/{trainset}/seed{seed}/{oodset}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        restrict_logits=lambda wc: config["ood_sets"][wc.oodset]["restrict_logits"],
    script:
        "../scripts/evaluate_classifier.py"
