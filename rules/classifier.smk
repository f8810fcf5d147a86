def training_shards(wildcards):
    variant = plan.parse_trainset(wildcards.trainset)["variant"]
    return [
        f"results/{wildcards.dataset}/{variant}/shards/{shard:05d}.tar"
        for shard in plan.trainset_shards(config, wildcards.dataset, wildcards.trainset)
    ]


rule train_classifier:
    input:
        manifest=manifest,
        shards=training_shards,
    output:
        "results/{dataset}/{trainset}/seed{seed}/classifier.pt",
    params:
        classifier=lambda wc: plan.classifier_params(
            config, wc.dataset, wc.trainset, wc.seed
        ),
    log:
        "logs/{dataset}/{trainset}/seed{seed}/train_classifier.log",
    threads: 2
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
    script:
        "../scripts/evaluate_classifier.py"
