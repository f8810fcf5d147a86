"""Start-up checks of a loaded config against the file system, before any job is queued.

Apart from the loader (``realfake.config``) because it reads the stages' own checks (model
folders, data set layouts, timm's registries): the planning layer stays free of torch, pandas
and the stages.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from realfake.config import ConfigError

# the schedules timm 1.0's create_scheduler_v2 builds that the classifier can step (its "none" builds
# none; "plateau" needs a metric): for the message, the check itself is timm's own call
SCHEDULERS = ("cosine", "tanh", "step", "multistep", "poly", "wsd", "rsqrt", "constant")
PASSED_RECIPES = Path(".snakemake/realfake-recipes-checked.json")  # in the working directory
AUTO_AUGMENT_FORMS = ("rand-m9-mstd0.5 (RandAugment)", "augmix-m5-w4-d2 (AugMix)",
                      "original-mstd0.5 or v0 (AutoAugment)")


def check_paths(config: dict) -> None:
    """What start-up can know about the file system, all of it in one pass: model folders or
    hub-cache entries (compute nodes are offline), the folders ``build_tiny`` would delete,
    pretrained classifier weights and the names of the recipes' timm parts, data set roots with
    their split and class folders, OOD roots, the copy descriptor and its hash. One ConfigError
    lists every problem, each naming its key and path, so a config is fixed in one go."""
    from realfake.data import DataError
    from realfake.models import check_file_sha256, check_model, check_pretrained_weights, check_tiny_target
    from realfake.sources import check_layout

    problems = []
    models = config["models"]
    if models["build_tiny"]:  # the folders rules/models.smk writes, each deleted before its job: one problem a key
        written = {"stable_diffusion": ("", "-random"), "clip": ("", "-random"), "blip2": ("",)}
        problems += [next(filter(None, (check_tiny_target(models[kind] + suffix, f"models.{kind}")
                                        for suffix in suffixes)), None) for kind, suffixes in written.items()]
    else:
        problems += [check_model(models[kind], f"models.{kind}", kind) for kind in ("stable_diffusion", "clip", "blip2")]
    used_recipes = sorted({ds["recipe"] for ds in config["datasets"].values()})
    problems += [check_pretrained_weights(config["recipes"][r]["pretrained"], config["recipes"][r]["arch"],
                                          f"recipes.{r}.pretrained") for r in used_recipes]
    problems += recipe_name_problems({r: config["recipes"][r] for r in used_recipes})
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
    if descriptor != "clip":
        problems.append(check_file_sha256(descriptor["path"], descriptor["sha256"], "experiments.copies.descriptor"))
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) found before any job runs:\n- " + "\n- ".join(problems))


def recipe_name_problems(recipes: dict[str, dict]) -> list[str]:
    """``check_recipe_names`` of each recipe. Importing timm takes seconds, at every start-up and in
    every cluster job: recipes that passed under this timm version are remembered in .snakemake/."""
    import hashlib
    import importlib.metadata
    import json

    from realfake.atomic import write_text
    from realfake.config import canonical

    version = importlib.metadata.version("timm")
    digests = {name: hashlib.sha256(json.dumps([version, canonical(r)]).encode()).hexdigest()
               for name, r in recipes.items()}
    try:
        passed = set(json.loads(PASSED_RECIPES.read_text()))
    except (OSError, ValueError):
        passed = set()
    todo = {name: r for name, r in recipes.items() if digests[name] not in passed}
    problems = [p for name, r in todo.items() for p in check_recipe_names(r, f"recipes.{name}")]
    if todo and not problems:
        write_text(PASSED_RECIPES, json.dumps(sorted(passed | set(digests.values()))))
    return problems


def check_recipe_names(recipe: dict, key: str) -> list[str]:
    """What of a recipe's ``arch``, ``optimizer``, ``scheduler`` and ``auto_augment`` timm would
    not build, each naming its key and what timm knows: otherwise a typo fails only when the
    classifier job starts, after the GPU-hours of synthesis before it."""
    import dataclasses

    import timm
    import timm.optim
    import torch

    from realfake.classifier import Recipe, _optimizer_and_scheduler, train_transform

    problems = []
    if not timm.is_model(recipe["arch"]):
        close = difflib.get_close_matches(recipe["arch"], timm.list_models(), n=5, cutoff=0.6)
        problems.append(f"{key}.arch: {recipe['arch']!r} is not a timm model ("
                        + (f"close: {', '.join(close)}; " if close else "") + "all: timm.list_models())")
    # create_optimizer_v2's own parsing: an optional lookahead_ prefix, then a registered name
    optimizers = timm.optim.list_optimizers()
    *prefix, name = recipe["optimizer"].lower().split("_")
    if name not in optimizers or prefix not in ([], ["lookahead"]):
        close = difflib.get_close_matches(name, optimizers, n=5, cutoff=0.6)
        known = f"close: {', '.join(close)}; all: timm.optim.list_optimizers()" if close else \
            f"one of {', '.join(optimizers)}"
        problems.append(f"{key}.optimizer: {recipe['optimizer']!r} is not a timm optimizer, optionally "
                        f"prefixed lookahead_ ({known})")
    # the schedule as the classifier job builds it, with a plain SGD in place of the recipe's optimizer
    fields = {k: v for k, v in recipe.items() if k in {f.name for f in dataclasses.fields(Recipe)}}
    fields["optimizer"] = "sgd"
    if recipe["scheduler"] in ("none", "plateau"):
        problems.append(f"{key}.scheduler: {recipe['scheduler']!r} is not for this classifier, which steps the "
                        f"schedule every epoch without a metric; one of {', '.join(SCHEDULERS)}")
    else:
        try:
            _optimizer_and_scheduler(Recipe(**fields), torch.nn.Linear(1, 1))
        except (ValueError, AssertionError) as err:
            problems.append(f"{key}.scheduler: timm's create_scheduler_v2 refuses {recipe['scheduler']!r} ({err}); "
                            f"one of {', '.join(SCHEDULERS)}")
    if recipe["auto_augment"]:
        try:  # the training transform as the job builds it: timm's own parser of the policy string
            train_transform(Recipe(**fields))
        except (ValueError, AssertionError, KeyError, TypeError) as err:
            problems.append(f"{key}.auto_augment: timm does not parse {recipe['auto_augment']!r} "
                            f"({type(err).__name__}{': ' + str(err) if str(err) else ''}); its forms: "
                            + ", ".join(AUTO_AUGMENT_FORMS))
    return problems
