rule compute_guidance:
    input:
        manifest=manifest,
        model=model_folder("clip"),
    output:
        "results/{dataset}/guidance.safetensors",
    params:
        model=config["models"]["clip"],
        guidance=config["guidance"],
    log:
        "logs/{dataset}/compute_guidance.log",
    script:
        "../scripts/compute_guidance.py"
