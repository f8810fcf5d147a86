from realfake.data import class_names, read_manifest
from realfake.guidance import class_means, clip_image_embeddings, save_guidance
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, g = snakemake.config["runtime"], snakemake.params.guidance
manifest = read_manifest(snakemake.input.manifest)
train = manifest[manifest["split"] == "train"]
embeddings = clip_image_embeddings(snakemake.params.model, train["path"].tolist(),
                                   runtime["clip_batch_size"], runtime["device"])
means = class_means(embeddings, train["label"].to_numpy(), len(class_names(manifest)),
                    g["samples_per_class"], g["seed"])
save_guidance(snakemake.output[0], means, embeddings if g["per_image"] else None)
log.info("guidance: %d classes x %d, per image: %s", *means.shape, g["per_image"])
