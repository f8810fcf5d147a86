rule caption_images:
    input:
        manifest=manifest,
        model=model_folder("blip2"),
    output:
        "results/{dataset}/captions.parquet",
    params:
        model=config["models"]["blip2"],
        captioning=config["captioning"],
    log:
        "logs/{dataset}/caption_images.log",
    script:
        "../scripts/caption_images.py"
