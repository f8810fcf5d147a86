# Demo only: tiny stand-ins for SD1.5, CLIP and BLIP-2, saved in their standard layouts.
if config["models"]["build_tiny"]:

    rule build_tiny_models:
        output:
            sd=directory(config["models"]["stable_diffusion"] + "-random"),
            clip=directory(config["models"]["clip"]),
            blip2=directory(config["models"]["blip2"]),
        log:
            "logs/models/build_tiny_models.log",
        benchmark:
            "benchmarks/models/build_tiny_models.tsv"
        conda:
            "../envs/realfake.yaml"
        params:
            tiny={k: v for k, v in config["tiny_models"].items() if k != "pretrain"},
        script:
            "../scripts/build_tiny_models.py"

    rule pretrain_tiny_sd:
        input:
            model=config["models"]["stable_diffusion"] + "-random",
            manifest=lambda wc: f"data/{next(iter(config['datasets']))}/manifest.parquet",
        output:
            directory(config["models"]["stable_diffusion"]),
        log:
            "logs/models/pretrain_tiny_sd.log",
        benchmark:
            "benchmarks/models/pretrain_tiny_sd.tsv"
        conda:
            "../envs/realfake.yaml"
        threads: 2
        params:
            pretrain=config["tiny_models"]["pretrain"],
            resolution=config["tiny_models"]["resolution"],
            seed=config["tiny_models"]["seed"],
        script:
            "../scripts/pretrain_tiny_sd.py"
