from realfake.data import read_manifest
from realfake.jobs import start_job
from realfake.pretrain import pretrain_tiny_sd

log = start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params.pretrain
train = read_manifest(snakemake.input.manifest, "train")
stats = pretrain_tiny_sd(snakemake.input.model, snakemake.output[0], train["path"].tolist(),
                         p["prompt"], snakemake.params.resolution, p["vae_steps"], p["unet_steps"],
                         p["batch_size"], p["learning_rate"], seed=snakemake.params.seed)
log.info("pre-trained tiny SD: %s", stats)
