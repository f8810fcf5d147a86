rule synthesize_shard:
    input:
        manifest=manifest,
        model=model_folder("stable_diffusion"),
        lora=lora_of,
        captions=captions_if_used,
        guidance=guidance_of,
    output:
        "results/{dataset}/{variant}/shards/{shard}.tar",
    log:
        "logs/{dataset}/{variant}/synthesize_shard/{shard}.log",
    benchmark:
        "benchmarks/{dataset}/{variant}/synthesize_shard/{shard}.tsv"
    conda:
        "../envs/realfake.yaml"
    params:
        model=model_name("stable_diffusion"),
        synthesis=lambda wc: plan.synthesis_params(config, wc.dataset, wc.variant),
    script:
        "../scripts/synthesize_shard.py"
