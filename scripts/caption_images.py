from realfake.atomic import write_parquet
from realfake.captions import caption_images, captions_frame
from realfake.data import read_manifest
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime = snakemake.config["runtime"]
train = read_manifest(snakemake.input.manifest, "train")
captions = caption_images(snakemake.params.model, train["path"].tolist(),
                          snakemake.params.captioning["max_new_tokens"], runtime["caption_batch_size"],
                          runtime["device"], snakemake.params.captioning["dtype"], runtime["cpu_dtype"])
write_parquet(snakemake.output[0], captions_frame(train, captions))
log.info("captioned %d images; first: %r", len(captions), captions[:3])
