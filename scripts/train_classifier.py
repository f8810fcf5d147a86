import torch

from realfake.classifier import ImageList, Recipe, ShardImages, train_classifier, train_transform
from realfake.data import class_names, read_manifest
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, p = snakemake.config["runtime"], snakemake.params.classifier
recipe = Recipe(**p["recipe"])
manifest = read_manifest(snakemake.input.manifest)
train = manifest[manifest["split"] == "train"]
transform = train_transform(recipe)
parts = []
if p["real"]:
    parts.append(ImageList(train["path"], train["label"], transform))
if p["synthetic_images"]:
    parts.append(ShardImages(snakemake.input.shards, p["synthetic_images"], transform))
dataset = torch.utils.data.ConcatDataset(parts)
names = class_names(manifest)
stats = train_classifier(dataset, len(names), names, recipe, snakemake.output[0],
                         checkpoint_path=snakemake.output[0] + ".checkpoint.pt",
                         device=runtime["device"], num_workers=runtime["num_workers"])
log.info("trained on %d images: %s", len(dataset), stats)
