from realfake.data import DIGIT_NAMES
from realfake.jobs import start_job
from realfake.pretrain import digit_images, pretrain_tiny_clip, train_split_digits

log = start_job(snakemake.log[0], snakemake.threads)
p, corpus = snakemake.params.pretrain, snakemake.params.corpus
ids, labels = train_split_digits(corpus["test_fraction"], corpus["seed"])
prompts = [p["prompt_template"].format(classname=name) for name in DIGIT_NAMES]
stats = pretrain_tiny_clip(snakemake.input.model, snakemake.output[0], digit_images(ids, snakemake.params.resolution),
                           labels, prompts, p["steps"], p["batch_size"], p["learning_rate"], seed=snakemake.params.seed)
log.info("pre-trained tiny CLIP on %s (%d digits): %s", prompts, len(ids), stats)
