from realfake.distributed import launch
from realfake.jobs import start_job
from realfake.lora import train_lora_job

log = start_job(snakemake.log.main, snakemake.threads)
runtime = snakemake.config["runtime"]
# one worker per GPU the job was given (profile: set-resources train_lora: gpu: N)
stats = launch(train_lora_job, snakemake.resources.get("gpu", 1), model=snakemake.params.model,
               manifest_path=snakemake.input.manifest, params=snakemake.params.lora, out_path=snakemake.output[0],
               captions_path=snakemake.input.captions or None, guidance_path=snakemake.input.guidance or None,
               device=runtime["device"], num_workers=runtime["num_workers"],
               checkpoint_every=runtime["lora_checkpoint_every"], checkpoint_minutes=runtime["checkpoint_minutes"],
               runtime_minutes=snakemake.resources.get("runtime"),
               margin_minutes=runtime["time_limit_margin_minutes"], loss_log=snakemake.log.losses,
               log_every=runtime["lora_log_every"])
log.info("LoRA trained: %s", stats)
