# Beside each LoRA: its training record (a row every runtime.lora_log_every steps, continued
# across time-limit retries from the checkpoint) and the curves drawn from it.
LORA_SUMMARY = "results/{dataset}/finetune/{finetune}/summary.csv"
LORA_CURVES = "results/{dataset}/finetune/{finetune}/training_curves.png"
# What the LoRA draws as it trains (runtime.lora_validation_*): one block per validation, stacked
# from the undeclared validation/stepNNNNNN.png files beside it (kept across retries that resume).
LORA_VALIDATION = "results/{dataset}/finetune/{finetune}/validation.png"


rule train_lora:
    input:
        manifest=MANIFEST,
        model=model_folder("stable_diffusion"),
        captions=branch(uses_captions, then=CAPTIONS),
        guidance=branch(finetune_uses_guidance, then=GUIDANCE),
    output:
        lora=LORA,
        summary=LORA_SUMMARY,
        curves=report(
            LORA_CURVES,
            category="Training",
            subcategory="LoRA",
            labels={"data set": "{dataset}", "finetune": "{finetune}"},
            caption="../report/training.rst",
        ),
        validation=report(
            LORA_VALIDATION,
            category="Training",
            subcategory="LoRA",
            labels={"data set": "{dataset}", "finetune": "{finetune}"},
            caption="../report/lora_validation.rst",
        ),
    log:
        "logs/train_lora/{dataset}/{finetune}.log",
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
