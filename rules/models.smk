# Demo only: tiny stand-ins for SD1.5, CLIP and BLIP-2, saved in their standard layouts.
if config["models"]["build_tiny"]:

    rule build_tiny_models:
        output:
            sd=directory(config["models"]["stable_diffusion"] + "-random"),
            clip=directory(config["models"]["clip"] + "-random"),
            blip2=directory(config["models"]["blip2"]),
        log:
            "logs/build_tiny_models.log",
        benchmark:
            "benchmarks/build_tiny_models.tsv"
        conda:
            "../envs/realfake.yaml"
        params:
            tiny=canonical(
                {
                    k: v
                    for k, v in config["tiny_models"].items()
                    if k not in ("pretrain", "pretrain_clip", "dataset")
                }
            ),
        script:
            "../scripts/build_tiny_models.py"

    # The tiny CLIP learns the digits (all of the train split) contrastively, as CLIP has seen the web.
    rule pretrain_tiny_clip:
        input:
            model=rules.build_tiny_models.output.clip,
        output:
            directory(config["models"]["clip"]),
        log:
            "logs/pretrain_tiny_clip.log",
        benchmark:
            "benchmarks/pretrain_tiny_clip.tsv"
        conda:
            "../envs/realfake.yaml"
        threads: 2
        resources:
            gpu=1,
        params:
            pretrain=canonical(
                {
                    **config["tiny_models"]["pretrain_clip"],
                    "prompt_template": config["prompt_template"],
                }
            ),
            corpus=canonical(
                {
                    k: plan.pretraining_corpus(config)[k]
                    for k in ("test_fraction", "seed")
                }
            ),
            resolution=config["tiny_models"]["resolution"],
            seed=config["tiny_models"]["seed"],
        script:
            "../scripts/pretrain_tiny_clip.py"

    # The tiny SD knows the classes, not the real digits: it learns "photo of {digit}" from the
    # digits Table 1's data set does not hold, restyled, with the tiny CLIP's text tower.
    rule pretrain_tiny_sd:
        input:
            model=rules.build_tiny_models.output.sd,
            clip=rules.pretrain_tiny_clip.output[0],
        output:
            directory(config["models"]["stable_diffusion"]),
        log:
            "logs/pretrain_tiny_sd.log",
        benchmark:
            "benchmarks/pretrain_tiny_sd.tsv"
        conda:
            "../envs/realfake.yaml"
        threads: 2
        resources:
            gpu=1,
        params:
            pretrain=canonical(config["tiny_models"]["pretrain"]),
            corpus=plan.pretraining_corpus(config),
            resolution=config["tiny_models"]["resolution"],
            seed=config["tiny_models"]["seed"],
        script:
            "../scripts/pretrain_tiny_sd.py"
