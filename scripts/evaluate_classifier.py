from realfake.atomic import write_json
from realfake.classifier import ImageList, eval_transform, evaluate, load_classifier
from realfake.data import read_manifest
from realfake.jobs import start_job
from realfake.ood import kept_classes

log = start_job(snakemake.log[0], snakemake.threads)
runtime, wc = snakemake.config["runtime"], snakemake.wildcards
model, recipe = load_classifier(snakemake.input.classifier, runtime["device"])
test = read_manifest(snakemake.input.manifest, "test")
metrics = evaluate(model, ImageList(test["path"], test["label"], eval_transform(recipe)),
                   runtime["eval_batch_size"], runtime["num_workers"],
                   kept_classes(test["label"], snakemake.params.restrict_logits))
metrics.update(dataset=wc.dataset, trainset=wc.trainset, seed=int(wc.seed))
if "oodset" in wc.keys():  # noqa: SIM118 (wildcards are a list: `in` would test values)
    metrics["oodset"] = wc.oodset
write_json(snakemake.output[0], metrics)
log.info("metrics: %s", metrics)
