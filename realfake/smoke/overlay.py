"""The overlay that runs ``config/paper.yaml`` itself on the smoke models and data sets.

It changes paths (models, data roots; the hash of the TorchScript descriptor it writes) and
counts only: a few images and classes per data set, one LoRA step of batch 2, one classifier epoch
of batch 4, 2 inference steps, shards of 2 images, 4 LiRA shadows, the smallest lists of scales,
data sets and variants that still run every rule.
Models, resolutions, recipes, sources, the variants' and finetunes' flags stay the paper's.
Because Snakemake merges several ``--configfile`` dicts key by key, the overlay names each
finetune, variant and recipe of the paper config (YAML anchors were resolved when it was read).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from realfake.digests import file_sha256
from realfake.smoke.datasets import (
    write_cars,
    write_celeba,
    write_cub,
    write_eurosat,
    write_imagenet,
    write_ood_sets,
    write_pet,
)

# ImageNet's folders in the smoke: two of IN-10's classes (2 train images each, for LiRA's halves),
# two of IN-100's and one other class of IN-1K (1 train image each)
IN10_WNIDS = ["n01440764", "n02102040"]  # tench, English springer
IN100_WNIDS = ["n02869837", "n01749939"]  # bonnet, green mamba
OTHER_WNID = "n01443537"  # goldfish
IN1K_WNIDS = [*IN100_WNIDS, OTHER_WNID]
TRAIN_PER_CLASS = {**dict.fromkeys(IN10_WNIDS, 2), **dict.fromkeys(IN1K_WNIDS, 1)}
COUNTS = {"lora_steps": 1, "lora_batch": 2, "epochs": 1, "classifier_batch": 4, "inference_steps": 2,
          "shard_size": 2, "shadows": 4, "caption_tokens": 4}
# LiRA's fewest shadows (4) over IN-10's 4 images: seed 69 is the first whose halves (2 images
# each) all hold both classes (with 1,300 images a class, every seed does)
LIRA_SEED = 69
SCALES = [1, 2]


def write_paper_datasets(root: str | os.PathLike) -> dict[str, Path]:
    """Write every data set once under ``root``; return source -> its root."""
    root = Path(root)
    roots = {"imagenet": root / "imagenet", "cub": root / "CUB_200_2011", "cars": root / "stanford_cars",
             "pet": root / "oxford-iiit-pet", "eurosat": root / "EuroSAT/2750", "celeba": root / "celeba"}
    done = root / ".written"
    if not done.exists():
        write_imagenet(roots["imagenet"], TRAIN_PER_CLASS)
        write_cub(roots["cub"])
        write_cars(roots["cars"])
        write_pet(roots["pet"])
        write_eurosat(roots["eurosat"])
        write_celeba(roots["celeba"])
    ood = write_ood_sets(root, IN1K_WNIDS, IN100_WNIDS) if not done.exists() else _ood_roots(root)
    done.touch()
    return {**roots, **ood}


def _ood_roots(root: Path) -> dict[str, Path]:
    return {"in_v2": root / "imagenetv2-matched-frequency-format-val", "in_sketch": root / "imagenet-sketch/sketch",
            "in_r": root / "imagenet-r", "in_a": root / "imagenet-a"}


def _dataset_overlay(name: str, ds: dict, roots: dict) -> dict:
    """Root and sizes of one paper data set in the smoke."""
    source = ds["source"]
    if source == "image_folder":
        classes = {"in10": IN10_WNIDS, "in100": IN100_WNIDS}.get(name, IN1K_WNIDS)
        return {"train_images": sum(TRAIN_PER_CLASS[c] for c in classes), "test_images": len(classes),
                "image_folder": {"root": str(roots["imagenet"]), "classes": classes}}
    counts = {"cub": (2, 2), "cars": (2, 2), "pet": (2, 2), "eurosat": (2, 2), "celeba": (2, 2)}[source]
    block = {"root": str(roots[source])}
    if source == "eurosat":
        block["test_fraction"] = 0.5  # 2 images a class: one train, one test
    return {"train_images": counts[0], "test_images": counts[1], source: block}


def paper_overlay(paper: dict, models: dict[str, str], roots: dict[str, Path]) -> dict:
    """The overlay for ``paper`` (the paper config as read from YAML, not yet loaded)."""
    first = paper["experiments"]["table2"]["variants"][0]
    last = paper["experiments"]["table2"]["variants"][-1]
    recipes = {}
    for name, recipe in paper["recipes"].items():
        recipes[name] = {"epochs": COUNTS["epochs"], "batch_size": COUNTS["classifier_batch"]}
        if recipe.get("pretrained"):
            recipes[name]["pretrained"] = models["resnet50"]
    ex = paper["experiments"]
    ours = ex["table4"]["trainsets"][0].split("/")[0]
    return {
        "models": {k: models[k] for k in ("stable_diffusion", "clip", "blip2")},
        # half precision on the CPU too: generation meets the dtype casts a GPU run meets
        "runtime": {"num_workers": 2, "cpu_dtype": "bfloat16", "synthesis_batch_size": 4},
        "datasets": {name: _dataset_overlay(name, ds, roots) for name, ds in paper["datasets"].items()},
        "ood_sets": {name: {"root": str(roots[name])} for name in paper["ood_sets"]},
        "finetunes": {name: {"max_steps": COUNTS["lora_steps"], "batch_size": COUNTS["lora_batch"]}
                      for name in paper["finetunes"]},
        "variants": {name: {"num_inference_steps": COUNTS["inference_steps"]} for name in paper["variants"]},
        "synthesis": {"shard_size": COUNTS["shard_size"]},
        "recipes": recipes,
        "captioning": {"max_new_tokens": COUNTS["caption_tokens"]},
        "experiments": {
            "table1": {"baselines": {m: {"datasets": b["datasets"][:1]} for m, b in ex["table1"]["baselines"].items()}},
            # Table 2, the gap table and Figs. 1-2 on IN-100 (2 images) rather than IN-10 (6):
            # its first and last rows (vanilla SD text-to-image; ours, img2img)
            "table2": {"datasets": ["in100"], "variants": [first, last]},
            "gap": {"dataset": "in100", "variants": [first, last]},
            "fig1": {"dataset": "in100"},
            "fig2": {"datasets": ["in100"], "scales": list(SCALES)},
            "table3": {"scales": list(SCALES)},
            "table4": {"trainsets": [f"{ours}/x1", f"{ours}/x2", "real", f"{ours}/x1_real"]},
            # a merge cannot drop keys: Table 10's three columns read the first attribute's data set
            "table10": {"datasets": dict.fromkeys(ex["table10"]["datasets"], next(iter(ex["table10"]["datasets"].values())))},
            "lira": {"shadows": COUNTS["shadows"], "seed": LIRA_SEED},
            # the smoke's own random TorchScript file, with its hash (the paper config leaves it to fill in)
            "copies": {"descriptor": {"path": models["sscd"], "sha256": file_sha256(models["sscd"])}},
        },
    }


PAPER_TARGETS = ["results/table1.csv", "results/table2.csv", "results/table3.csv", "results/table4.csv",
                 "results/table9.csv", "results/table10.csv", "results/gap_vs_accuracy.csv",
                 "results/fig1_clip_pca.png", "results/fig2_scaling.png", "results/privacy/lira.csv",
                 "results/privacy/copies.csv"]


def prepare(out_dir: str | os.PathLike, paper_config: str | os.PathLike = "config/paper.yaml",
            model_kinds=None) -> Path:
    """Models, data sets and ``overlay.yaml`` under ``out_dir`` (built once, reused); returns the overlay."""
    from realfake.atomic import write_text
    from realfake.smoke.models import FOLDERS, build_paper_models

    out_dir = Path(out_dir).resolve()
    paper = yaml.safe_load(Path(paper_config).read_text())
    models = build_paper_models(out_dir / "models", model_kinds or tuple(FOLDERS))
    models = {**{k: str(out_dir / "models" / v) for k, v in FOLDERS.items()}, **models}
    roots = write_paper_datasets(out_dir / "data")
    overlay = out_dir / "overlay.yaml"
    write_text(overlay, "# written by python -m realfake.smoke prepare: paths and counts over config/paper.yaml\n"
               + yaml.safe_dump(paper_overlay(paper, models, roots), sort_keys=True))
    return overlay
