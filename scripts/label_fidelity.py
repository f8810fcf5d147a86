from realfake.atomic import write_json
from realfake.classifier import label_fidelity
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, wc = snakemake.config["runtime"], snakemake.wildcards
metrics = label_fidelity(snakemake.input.classifier, snakemake.input.shards, snakemake.params.synthetic_images,
                         runtime["eval_batch_size"], runtime["num_workers"], runtime["device"])
metrics.update(dataset=wc.dataset, trainset=f"{wc.variant}/x{wc.scale}")
write_json(snakemake.output[0], metrics)
log.info("label fidelity: %s", metrics)
