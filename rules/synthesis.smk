def lora_of(wildcards):
    finetune = config["variants"][wildcards.variant]["finetune"]
    if finetune is None:
        return []
    return f"results/{wildcards.dataset}/finetune/{finetune}/lora.safetensors"


def guidance_of(wildcards):
    finetune = plan.finetune_of(config, wildcards.variant)
    if finetune is None or not finetune["visual_guidance"]:
        return []
    return f"results/{wildcards.dataset}/guidance.safetensors"


rule synthesize_shard:
    input:
        manifest=manifest,
        model=model_folder("stable_diffusion"),
        lora=lora_of,
        captions=captions_if_used,
        guidance=guidance_of,
    output:
        "results/{dataset}/{variant}/shards/{shard}.tar",
    params:
        model=config["models"]["stable_diffusion"],
        synthesis=lambda wc: plan.synthesis_params(config, wc.dataset, wc.variant),
    log:
        "logs/{dataset}/{variant}/synthesize_shard/{shard}.log",
    script:
        "../scripts/synthesize_shard.py"
