rule caption_images:
    input:
        manifest=manifest,
        model=model_folder("blip2"),
    output:
        "results/{dataset}/captions.parquet",
    log:
        "logs/{dataset}/caption_images.log",
    benchmark:
        "benchmarks/{dataset}/caption_images.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        model=model_name("blip2"),
        captioning=config["captioning"],
    script:
        "../scripts/caption_images.py"
