rule build_manifest:
    output:
        MANIFEST,
    log:
        "logs/build_manifest/{dataset}.log",
    benchmark:
        "benchmarks/build_manifest/{dataset}.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        manifest=lambda wc: plan.manifest_params(config, wc.dataset),
    script:
        "../scripts/build_manifest.py"
