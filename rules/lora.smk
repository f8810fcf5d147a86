def guidance_if_used(wildcards):
    used = config["finetunes"][wildcards.finetune]["visual_guidance"]
    return f"results/{wildcards.dataset}/guidance.safetensors" if used else []


rule train_lora:
    input:
        manifest=manifest,
        model=model_folder("stable_diffusion"),
        captions=captions_if_used,
        guidance=guidance_if_used,
    output:
        "results/{dataset}/finetune/{finetune}/lora.safetensors",
    params:
        model=config["models"]["stable_diffusion"],
        lora=lambda wc: plan.lora_params(config, wc.dataset, wc.finetune),
    log:
        "logs/{dataset}/train_lora/{finetune}.log",
    threads: 2
    script:
        "../scripts/train_lora.py"
