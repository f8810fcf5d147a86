"""Start-up checks of a loaded config against the file system, before any job is queued.

Apart from the loader (``realfake.config``) because it reads the stages' own checks (model
folders, data set layouts): the planning layer stays free of torch, pandas and the stages.
"""

from __future__ import annotations

from pathlib import Path

from realfake.config import ConfigError


def check_paths(config: dict) -> None:
    """What start-up can know about the file system, all of it in one pass: model folders or
    hub-cache entries (compute nodes are offline), pretrained classifier weights, data set roots
    with their split and class folders, OOD roots, the copy descriptor. One ConfigError lists
    every problem, each naming its key and path, so a config is fixed in one go."""
    from realfake.data import DataError
    from realfake.models import check_model, check_pretrained_weights
    from realfake.sources import check_layout

    problems = []
    if not config["models"]["build_tiny"]:
        problems += [check_model(config["models"][kind], f"models.{kind}", kind)
                     for kind in ("stable_diffusion", "clip", "blip2")]
    used_recipes = sorted({ds["recipe"] for ds in config["datasets"].values()})
    problems += [check_pretrained_weights(config["recipes"][r]["pretrained"], config["recipes"][r]["arch"],
                                          f"recipes.{r}.pretrained") for r in used_recipes]
    layouts = [(ds["source"], ds[ds["source"]], f"datasets.{name}.{ds['source']}")
               for name, ds in config["datasets"].items()
               if ds["source"] not in ("digits", "digits_attributes") and "shadow" not in ds]
    layouts += [("ood_folder", ood, f"ood_sets.{name}") for name, ood in config.get("ood_sets", {}).items()
                if ood["source"] == "image_folder"]
    for source, settings, key in layouts:
        try:
            check_layout(source, settings, key)
        except DataError as err:
            problems.append(str(err))
    descriptor = config["experiments"].get("copies", {}).get("descriptor", "clip")
    if descriptor != "clip" and not Path(descriptor).is_file():
        problems.append(f"experiments.copies.descriptor: {descriptor} does not exist (expected clip or the "
                        f"path of a TorchScript copy-detection model such as sscd_disc_large.torchscript.pt)")
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) found before any job runs:\n- " + "\n- ".join(problems))
