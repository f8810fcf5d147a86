rule build_manifest:
    output:
        "data/{dataset}/manifest.parquet",
    params:
        dataset=lambda wc: plan.manifest_params(config, wc.dataset),
    log:
        "logs/{dataset}/build_manifest.log",
    script:
        "../scripts/build_manifest.py"
