from realfake.budget import Checkpointing, TimeBudget
from realfake.classifier import Recipe, train_classifier, train_transform, training_set
from realfake.data import class_names, read_manifest
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime, p = snakemake.config["runtime"], snakemake.params.classifier
budget = TimeBudget(snakemake.resources.get("runtime"), runtime["time_limit_margin_minutes"])
recipe = Recipe(**p["recipe"])
manifest = read_manifest(snakemake.input.manifest)
dataset = training_set(manifest[manifest["split"] == "train"], snakemake.input.shards, p["synthetic_images"],
                       p["real"], train_transform(recipe))
names = class_names(manifest)
stats = train_classifier(dataset, len(names), names, recipe, snakemake.output[0],
                         checkpoint_path=snakemake.output[0] + ".checkpoint.pt",
                         checkpointing=Checkpointing(every_minutes=runtime["checkpoint_minutes"]), budget=budget,
                         device=runtime["device"], num_workers=runtime["num_workers"])
log.info("trained on %d images: %s", len(dataset), stats)
