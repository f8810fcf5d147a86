rule synthesize_shard:
    input:
        manifest=MANIFEST,
        model=model_folder("stable_diffusion"),
        lora=lora_of,
        captions=branch(uses_captions, then=CAPTIONS),
        guidance=branch(variant_uses_guidance, then=GUIDANCE),
    output:
        # the index is renamed into place before the shard: a shard that exists has one
        shard=SHARD,
        index=SHARD_INDEX,
    log:
        "logs/synthesize_shard/{dataset}/{variant}/{shard}.log",
    benchmark:
        "benchmarks/synthesize_shard/{dataset}/{variant}/{shard}.tsv"
    conda:
        "../envs/realfake.yaml"
    # the demo's shards are on the critical path alone; on a GPU node the profile sizes the CPUs
    threads: 2
    resources:
        gpu=1,
    params:
        model=model_name("stable_diffusion"),
        synthesis=lambda wc: plan.synthesis_params(config, wc.dataset, wc.variant),
    script:
        "../scripts/synthesize_shard.py"
