import os

from realfake.distributed import launch
from realfake.jobs import start_job, worker_geometry
from realfake.lora import train_lora_job
from realfake.records import plot_curves

log = start_job(snakemake.log[0], snakemake.threads)
runtime, out, wc = snakemake.config["runtime"], snakemake.output, snakemake.wildcards
# one worker per GPU (gpu: N), or per task over nodes (mpi, tasks, nodes): set in the profile
stats = launch(train_lora_job, **worker_geometry(snakemake.resources), workdir=os.path.dirname(out.lora),
               model=snakemake.params.model,
               manifest_path=snakemake.input.manifest, params=snakemake.params.lora, out_path=out.lora,
               captions_path=snakemake.input.captions or None, guidance_path=snakemake.input.guidance or None,
               device=runtime["device"], num_workers=runtime["num_workers"],
               checkpoint_every=runtime["lora_checkpoint_every"], checkpoint_minutes=runtime["checkpoint_minutes"],
               runtime_minutes=snakemake.resources.get("runtime"),
               margin_minutes=runtime["time_limit_margin_minutes"], summary_path=out.summary,
               log_every=runtime["lora_log_every"], cpu_dtype=runtime["cpu_dtype"])
log.info("LoRA trained: %s", stats)
plot_curves(out.summary, out.curves, f"LoRA {wc.dataset} / {wc.finetune}")
