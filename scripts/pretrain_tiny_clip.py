from realfake.data import read_manifest
from realfake.jobs import start_job
from realfake.pretrain import pretrain_tiny_clip

log = start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params.pretrain
train = read_manifest(snakemake.input.manifest, "train")
names = train.drop_duplicates("label").sort_values("label").class_name
prompts = [p["prompt_template"].format(classname=name) for name in names]
stats = pretrain_tiny_clip(snakemake.input.model, snakemake.output[0], train["path"].tolist(), train["label"],
                           prompts, p["steps"], p["batch_size"], p["learning_rate"], seed=snakemake.params.seed)
log.info("pre-trained tiny CLIP on %s: %s", prompts, stats)
