from realfake.atomic import write_json
from realfake.data import read_manifest
from realfake.gap import distribution_gap, pca_plot
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, wc, g = snakemake.config["runtime"], snakemake.wildcards, snakemake.params.gap
train = read_manifest(snakemake.input.manifest, "train")
gap, real, synthetic = distribution_gap(snakemake.params.model, train["path"].tolist(), snakemake.input.shards,
                                        snakemake.params.synthetic_images, g["max_images"], g["seed"],
                                        runtime["clip_batch_size"], runtime["device"])
gap.update(dataset=wc.dataset, trainset=f"{wc.variant}/x{wc.scale}")
write_json(snakemake.output.gap, gap)
pca_plot({"real": real, "synthetic": synthetic}, snakemake.output.pca,
         f"{wc.dataset}: {wc.variant} x{wc.scale}")
log.info("distribution gap: %s", gap)
