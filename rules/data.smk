rule build_manifest:
    output:
        "data/{dataset}/manifest.parquet",
    log:
        "logs/{dataset}/build_manifest.log",
    benchmark:
        "benchmarks/{dataset}/build_manifest.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        dataset=lambda wc: plan.manifest_params(config, wc.dataset),
    script:
        "../scripts/build_manifest.py"
