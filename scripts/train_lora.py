import os

from realfake import plan
from realfake.distributed import launch
from realfake.jobs import start_job, worker_geometry
from realfake.lora import train_lora_job
from realfake.lora_validation import LoraValidation
from realfake.records import plot_curves
from realfake.trackers import job_tracker

log = start_job(snakemake.log[0], snakemake.threads)
runtime, out, wc = snakemake.config["runtime"], snakemake.output, snakemake.wildcards
# runtime.tracker (runtime only): rank 0 of the workers opens it; closed below, or at exit if training raises
tracker = job_tracker(runtime, snakemake.rule, wc, {"model": snakemake.params.model, "lora": snakemake.params.lora})
# runtime.lora_validation_* and the finetune's variants (read here, not params: they retrain nothing)
validation = LoraValidation(out.validation, **plan.lora_validation(snakemake.config, wc.dataset, wc.finetune),
                            title=f"LoRA {wc.dataset} / {wc.finetune}")
# one worker per GPU (gpu: N), or per task over nodes (mpi, tasks, nodes): set in the profile
stats = launch(train_lora_job, **worker_geometry(snakemake.resources), workdir=os.path.dirname(out.lora),
               model=snakemake.params.model,
               manifest_path=snakemake.input.manifest, params=snakemake.params.lora, out_path=out.lora,
               captions_path=snakemake.input.captions or None, guidance_path=snakemake.input.guidance or None,
               device=runtime["device"], num_workers=runtime["num_workers"],
               checkpoint_every=runtime["lora_checkpoint_every"], checkpoint_minutes=runtime["checkpoint_minutes"],
               runtime_minutes=snakemake.resources.get("runtime"),
               margin_minutes=runtime["time_limit_margin_minutes"], summary_path=out.summary,
               log_every=runtime["lora_log_every"], cpu_dtype=runtime["cpu_dtype"], tracker=tracker,
               validation=validation)
tracker.close()
log.info("LoRA trained: %s", stats)
plot_curves(out.summary, out.curves, f"LoRA {wc.dataset} / {wc.finetune}")
