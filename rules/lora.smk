rule train_lora:
    input:
        manifest=MANIFEST,
        model=model_folder("stable_diffusion"),
        captions=branch(uses_captions, then=CAPTIONS),
        guidance=branch(finetune_uses_guidance, then=GUIDANCE),
    output:
        LORA,
    log:
        main="logs/train_lora/{dataset}/{finetune}.log",
        losses="logs/train_lora/{dataset}/{finetune}.losses.csv",
    benchmark:
        "benchmarks/train_lora/{dataset}/{finetune}.tsv"
    # Each attempt stops before its time limit with a checkpoint; a retry resumes from it.
    retries: training_retries()
    conda:
        "../envs/realfake.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        model=model_name("stable_diffusion"),
        lora=lambda wc: plan.lora_params(config, wc.dataset, wc.finetune),
    script:
        "../scripts/train_lora.py"
