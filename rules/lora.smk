rule train_lora:
    input:
        manifest=manifest,
        model=model_folder("stable_diffusion"),
        captions=captions_if_used,
        guidance=guidance_if_used,
    output:
        "results/{dataset}/finetune/{finetune}/lora.safetensors",
    log:
        "logs/{dataset}/train_lora/{finetune}.log",
    benchmark:
        "benchmarks/{dataset}/train_lora/{finetune}.tsv"
    conda:
        "../envs/realfake.yaml"
    threads: 2
    params:
        model=model_name("stable_diffusion"),
        lora=lambda wc: plan.lora_params(config, wc.dataset, wc.finetune),
    script:
        "../scripts/train_lora.py"
