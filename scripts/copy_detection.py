from safetensors.torch import load_file

from realfake.atomic import write_parquet
from realfake.copies import copy_detection
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, p = snakemake.config["runtime"], snakemake.params
frame = copy_detection(p.descriptor, p.model, load_file(snakemake.input.real), snakemake.input.shards,
                       p.synthetic_images, p.latent_prior, p.copies["top_k"], p.copies["center"], runtime["clip_batch_size"],
                       runtime["device"])
write_parquet(snakemake.output[0], frame)
log.info("nearest similarity: median %.3f, max %.3f", frame["similarity_1"].median(), frame["similarity_1"].max())
