from realfake.data import read_manifest
from realfake.gap import pca_plot, sampled_features
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, g, sets = snakemake.config["runtime"], snakemake.params.gap, snakemake.params.sets
train = read_manifest(snakemake.input.manifest, "train")
synthetic = {f"{label} ({s['variant']})": (snakemake.input[label], s["images"]) for label, s in sets.items()}
features = sampled_features(snakemake.params.model, train["path"].tolist(), synthetic, g["max_images"],
                            g["seed"], runtime["clip_batch_size"], runtime["device"])
pca_plot(features, snakemake.output[0], f"{sets['ours']['dataset']}: CLIP image features, first two PCs")
log.info("plotted %s", {label: len(f) for label, f in features.items()})
