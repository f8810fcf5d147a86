"""The one config loader: YAML -> schema validation -> defaults and normalised types -> cross-checks.

The Snakefile, ``realfake-costs`` and the tests all load configs through ``load_config``.
Every default is written once, in ``config_schema.yaml``; nested objects get theirs too.
``canonical`` gives a value one representation (sorted keys, lists, floats where the
schema says number), so a rule's params compare equal whatever the YAML's key order,
formatting or explicitly written defaults.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).with_name("config_schema.yaml")


class ConfigError(ValueError):
    """A config that cannot run: the message names the key (and the file or folder)."""


@functools.cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_config(source: dict | str | os.PathLike) -> dict:
    """A validated config with every default filled in and numbers normalised (a new dict)."""
    where = "config"
    if not isinstance(source, dict):
        where = str(source)
        try:
            source = yaml.safe_load(Path(source).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{where}: not a readable YAML file: {err}") from err
    raw = copy.deepcopy(source)
    validate(raw, where)
    config = complete(raw, schema())
    normalise(config)
    check_references(config)
    from realfake.plan import add_replicates, add_shadows

    add_replicates(config)  # the seed replicates' variants and finetunes, derived (vary_seeds)
    add_shadows(config)  # LiRA's shadow data sets (seeded halves), derived
    return config


def validate(config: dict, where: str = "config") -> None:
    """Raise ConfigError naming the first offending key (dotted path) and what was expected."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {key}: {error.message}")


def complete(instance, node: dict, root: dict | None = None):
    """``instance`` with the schema's defaults filled in (nested objects too) and ints made
    floats where the schema says ``number``. Follows $ref, allOf and if/then/else."""
    root = root if root is not None else node
    node = _resolve(node, root)
    for sub in node.get("allOf", []):
        instance = complete(instance, sub, root)
    if "if" in node:
        branch = "then" if _matches(instance, node["if"], root) else "else"
        if branch in node:
            instance = complete(instance, node[branch], root)
    if isinstance(instance, dict):
        properties = node.get("properties", {})
        for key, sub in properties.items():
            sub = _resolve(sub, root)
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                instance[key] = complete(instance[key], sub, root)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in instance:
                if key not in properties:
                    instance[key] = complete(instance[key], extra, root)
    elif isinstance(instance, list) and isinstance(node.get("items"), dict):
        return [complete(item, node["items"], root) for item in instance]
    types = node.get("type")
    types = [types] if isinstance(types, str) else (types or [])
    if "number" in types and isinstance(instance, int) and not isinstance(instance, bool):
        return float(instance)
    return instance


def _resolve(node: dict, root: dict) -> dict:
    """A schema node with its local ``$ref`` merged in (the node's own keywords win)."""
    if "$ref" not in node:
        return node
    target = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def _matches(instance, node: dict, root: dict) -> bool:
    import jsonschema

    return jsonschema.Draft202012Validator({**node, "$defs": root.get("$defs", {})}).is_valid(instance)


def normalise(config: dict) -> None:
    """Defaults that depend on other keys (the schema cannot state them)."""
    experiments = config["experiments"]
    experiments["table1"].setdefault("datasets", list(config["datasets"]))
    for baseline in experiments["table1"]["baselines"].values():
        baseline.setdefault("datasets", experiments["table1"]["datasets"])
    table2 = experiments.get("table2")
    if table2 is not None and "datasets" not in table2:
        table2["datasets"] = list(experiments["table1"]["datasets"])
    for ds in config["datasets"].values():
        ds.setdefault("prompt_template", config["prompt_template"])


def canonical(value):
    """One representation of a value: dicts with sorted keys, tuples as lists, recursively."""
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def check_references(config: dict) -> None:
    """Cross-references the schema cannot express, each error naming its key."""
    for name, ds in config["datasets"].items():
        if ds["recipe"] not in config["recipes"]:
            raise ConfigError(f"datasets.{name}.recipe: {ds['recipe']!r} is not a key of recipes "
                              f"({sorted(config['recipes'])})")
    for name, variant in config["variants"].items():
        if variant["finetune"] is not None and variant["finetune"] not in config["finetunes"]:
            raise ConfigError(f"variants.{name}.finetune: {variant['finetune']!r} is not a key of finetunes")
    for key, value, section in _experiment_references(config):
        if value not in config.get(section, {}):
            raise ConfigError(f"{key}: {value!r} is not a key of {section} ({sorted(config.get(section, {}))})")
    if "table4" in config["experiments"] and not config.get("ood_sets"):
        raise ConfigError("experiments.table4 needs at least one entry in ood_sets")


def _experiment_references(config: dict):
    """(key, value, section it must name) for every dataset and variant the experiments name."""
    from realfake.plan import parse_trainset

    experiments = config["experiments"]
    yield "experiments.table1.variant", experiments["table1"]["variant"], "variants"
    yield from (("experiments.table1.datasets", d, "datasets") for d in experiments["table1"]["datasets"])
    for method, baseline in experiments["table1"]["baselines"].items():
        yield f"experiments.table1.baselines.{method}.variant", baseline["variant"], "variants"
        yield from ((f"experiments.table1.baselines.{method}.datasets", d, "datasets") for d in baseline["datasets"])
    if "table10" in experiments:
        yield from ((f"experiments.table10.datasets.{c}", d, "datasets")
                    for c, d in experiments["table10"]["datasets"].items())
        yield from ((f"experiments.table10.{k}", experiments["table10"][k], "variants") for k in ("baseline", "ours"))
    for name in ("lira", "copies"):
        if name in experiments:
            yield f"experiments.{name}.dataset", experiments[name]["dataset"], "datasets"
    if "lira" in experiments:
        yield "experiments.lira.variant", experiments["lira"]["variant"], "variants"
    if "copies" in experiments:
        yield from (("experiments.copies.variants", v, "variants") for v in experiments["copies"]["variants"])
    if "table2" in experiments:
        yield from (("experiments.table2.variants", v, "variants") for v in experiments["table2"]["variants"])
        yield from (("experiments.table2.datasets", d, "datasets") for d in experiments["table2"]["datasets"])
    if "table3" in experiments:
        yield "experiments.table3.variant", experiments["table3"]["variant"], "variants"
        yield "experiments.table3.dataset", experiments["table3"]["dataset"], "datasets"
    if "fig1" in experiments:
        yield "experiments.fig1.dataset", experiments["fig1"]["dataset"], "datasets"
        yield from ((f"experiments.fig1.{k}", experiments["fig1"][k], "variants") for k in ("baseline", "ours"))
    if "fig2" in experiments:
        yield "experiments.fig2.variant", experiments["fig2"]["variant"], "variants"
        yield from (("experiments.fig2.datasets", d, "datasets") for d in experiments["fig2"]["datasets"])
    if "table4" in experiments:
        yield "experiments.table4.dataset", experiments["table4"]["dataset"], "datasets"
        variants = (parse_trainset(t)["variant"] for t in experiments["table4"]["trainsets"])
        yield from (("experiments.table4.trainsets", v, "variants") for v in variants if v)
    if "gap" in experiments:
        yield "experiments.gap.dataset", experiments["gap"]["dataset"], "datasets"
        yield from (("experiments.gap.variants", v, "variants") for v in experiments["gap"]["variants"])


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
