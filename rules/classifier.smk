# Beside each classifier: its training record (a row per epoch, continued across time-limit
# retries from the checkpoint) and the curves drawn from it.
CLASSIFIER_SUMMARY = "results/{dataset}/{trainset}/seed{seed}/summary.csv"
CLASSIFIER_CURVES = "results/{dataset}/{trainset}/seed{seed}/training_curves.png"


rule train_classifier:
    input:
        manifest=MANIFEST,
        shards=training_shards,
    output:
        classifier=CLASSIFIER,
        summary=CLASSIFIER_SUMMARY,
        curves=report(
            CLASSIFIER_CURVES,
            category="Training",
            subcategory="classifiers",
            labels={
                "data set": "{dataset}",
                "training set": "{trainset}",
                "seed": "{seed}",
            },
            caption="../report/training.rst",
        ),
    log:
        "logs/train_classifier/{dataset}/{trainset}/seed{seed}.log",
    benchmark:
        "benchmarks/train_classifier/{dataset}/{trainset}/seed{seed}.tsv"
    # Each attempt stops before its time limit with a checkpoint; a retry resumes from it.
    retries: training_retries()
    conda:
        "../envs/realfake.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        classifier=lambda wc: plan.classifier_params(
            config, wc.dataset, wc.trainset, wc.seed
        ),
    script:
        "../scripts/train_classifier.py"


rule evaluate_classifier:
    input:
        manifest=MANIFEST,
        classifier=CLASSIFIER,
    output:
        METRICS,
    log:
        "logs/evaluate_classifier/{dataset}/{trainset}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_classifier/{dataset}/{trainset}/seed{seed}.tsv"
    conda:
        "../envs/realfake.yaml"
    resources:
        gpu=1,
    params:
        restrict_logits=False,
    script:
        "../scripts/evaluate_classifier.py"
