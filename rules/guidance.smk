rule compute_guidance:
    input:
        manifest=manifest,
        model=model_folder("clip"),
    output:
        "results/{dataset}/guidance.safetensors",
    log:
        "logs/{dataset}/compute_guidance.log",
    benchmark:
        "benchmarks/{dataset}/compute_guidance.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        model=model_name("clip"),
        guidance=config["guidance"],
    script:
        "../scripts/compute_guidance.py"
