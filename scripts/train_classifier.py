from realfake.classifier import train_classifier_job
from realfake.distributed import launch
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime = snakemake.config["runtime"]
# one worker per GPU the job was given (profile: set-resources train_classifier: gpu: N)
stats = launch(train_classifier_job, snakemake.resources.get("gpu", 1), manifest_path=snakemake.input.manifest,
               shard_paths=list(snakemake.input.shards), params=snakemake.params.classifier,
               out_path=snakemake.output[0], device=runtime["device"], num_workers=runtime["num_workers"],
               checkpoint_minutes=runtime["checkpoint_minutes"], runtime_minutes=snakemake.resources.get("runtime"),
               margin_minutes=runtime["time_limit_margin_minutes"])
log.info("trained: %s", stats)
