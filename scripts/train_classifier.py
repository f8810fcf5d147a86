import os

from realfake.classifier import train_classifier_job
from realfake.distributed import launch
from realfake.jobs import start_job, worker_geometry

log = start_job(snakemake.log[0], snakemake.threads)
runtime = snakemake.config["runtime"]
# one worker per GPU (gpu: N), or per task over nodes (mpi, tasks, nodes): set in the profile
stats = launch(train_classifier_job, **worker_geometry(snakemake.resources), workdir=os.path.dirname(snakemake.output[0]),
               manifest_path=snakemake.input.manifest,
               shard_paths=list(snakemake.input.shards), params=snakemake.params.classifier,
               out_path=snakemake.output[0], device=runtime["device"], num_workers=runtime["num_workers"],
               checkpoint_minutes=runtime["checkpoint_minutes"], runtime_minutes=snakemake.resources.get("runtime"),
               margin_minutes=runtime["time_limit_margin_minutes"], decode_on_device=runtime["decode_on_device"])
log.info("trained: %s", stats)
