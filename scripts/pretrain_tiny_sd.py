from realfake.data import DIGIT_NAMES
from realfake.jobs import start_job
from realfake.pretrain import digit_images, held_out_digits, pretrain_tiny_sd

log = start_job(snakemake.log[0], snakemake.threads)
ids, labels = held_out_digits(**snakemake.params.corpus)
stats = pretrain_tiny_sd(snakemake.input.model, snakemake.output[0], digit_images(ids, snakemake.params.resolution),
                         labels, DIGIT_NAMES, snakemake.params.pretrain, text_encoder=snakemake.input.clip,
                         seed=snakemake.params.seed)
log.info("pre-trained tiny SD on %d held-out digits: %s", len(ids), stats)
