from realfake.atomic import write_parquet
from realfake.jobs import start_job
from realfake.privacy import model_scores

log = start_job(snakemake.log[0], snakemake.threads)
runtime = snakemake.config["runtime"]
scores = model_scores(snakemake.input.classifier, snakemake.input.manifest, runtime["eval_batch_size"],
                      runtime["num_workers"], runtime["device"])
write_parquet(snakemake.output[0], scores)
log.info("scores of %d training images: mean %.3f", len(scores), scores["score"].mean())
