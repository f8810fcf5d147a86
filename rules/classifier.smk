rule train_classifier:
    input:
        manifest=manifest,
        shards=training_shards,
    output:
        "results/{dataset}/{trainset}/seed{seed}/classifier.pt",
    log:
        "logs/{dataset}/{trainset}/seed{seed}/train_classifier.log",
    benchmark:
        "benchmarks/{dataset}/{trainset}/seed{seed}/train_classifier.tsv"
    conda:
        "../envs/realfake.yaml"
    threads: 2
    params:
        classifier=lambda wc: plan.classifier_params(
            config, wc.dataset, wc.trainset, wc.seed
        ),
    script:
        "../scripts/train_classifier.py"


rule evaluate_classifier:
    input:
        manifest=manifest,
        classifier="results/{dataset}/{trainset}/seed{seed}/classifier.pt",
    output:
        "results/{dataset}/{trainset}/seed{seed}/metrics.json",
    log:
        "logs/{dataset}/{trainset}/seed{seed}/evaluate_classifier.log",
    benchmark:
        "benchmarks/{dataset}/{trainset}/seed{seed}/evaluate_classifier.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        restrict_logits=False,
    script:
        "../scripts/evaluate_classifier.py"
