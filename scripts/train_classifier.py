import os

from realfake.classifier import train_classifier_job
from realfake.distributed import launch
from realfake.jobs import start_job, worker_geometry
from realfake.records import plot_curves
from realfake.trackers import job_tracker

log = start_job(snakemake.log[0], snakemake.threads)
runtime, out, wc = snakemake.config["runtime"], snakemake.output, snakemake.wildcards
# runtime.tracker (runtime only): rank 0 of the workers opens it; closed below, or at exit if training raises
tracker = job_tracker(runtime, snakemake.rule, wc, {"classifier": snakemake.params.classifier})
# one worker per GPU (gpu: N), or per task over nodes (mpi, tasks, nodes): set in the profile
stats = launch(train_classifier_job, **worker_geometry(snakemake.resources), workdir=os.path.dirname(out.classifier),
               manifest_path=snakemake.input.manifest,
               shard_paths=list(snakemake.input.shards), params=snakemake.params.classifier,
               out_path=out.classifier, device=runtime["device"], num_workers=runtime["num_workers"],
               checkpoint_minutes=runtime["checkpoint_minutes"], runtime_minutes=snakemake.resources.get("runtime"),
               margin_minutes=runtime["time_limit_margin_minutes"], decode_on_device=runtime["decode_on_device"],
               summary_path=out.summary, validate_every_epochs=runtime["validate_every_epochs"],
               eval_batch_size=runtime["eval_batch_size"], tracker=tracker)
tracker.close()
log.info("trained: %s", stats)
plot_curves(out.summary, out.curves, f"classifier {wc.dataset} / {wc.trainset} / seed {wc.seed}")
