"""The one config loader: YAML -> schema validation -> defaults and normalised types -> cross-checks.

The Snakefile, ``realfake-costs`` and the tests all load configs through ``load_config``.
Every default is written once, in ``config_schema.yaml``; nested objects get theirs too.
``canonical`` gives a value one representation (sorted keys, lists, floats where the
schema says number), so a rule's params compare equal whatever the YAML's key order,
formatting or explicitly written defaults. The loader also defines the entries a config implies
(seed replicates, LiRA shadows) and owns the training-set names (``parse_trainset``).

Planning layer: imports nothing of ``realfake`` (``tests/test_imports.py``), so the planner and
``realfake-costs`` load without torch or pandas; file-system checks live in ``realfake.preflight``.
"""

from __future__ import annotations

import copy
import functools
import os
import re
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
        # "is not valid under any of the given schemas" says nothing: the key's description does
        hint = f" (expected {error.schema['description']})" if error.validator in ("oneOf", "anyOf") \
            and "description" in error.schema else ""
        raise ConfigError(f"{where}: {key}: {error.message}{hint}")


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
    # the claims of an experiment that is not configured cannot be tested: name it
    yield from (("experiments.claims.experiments", name, "experiments")
                for name in experiments.get("claims", {}).get("experiments", []))


# Derived entries: the seed replicates and LiRA shadows a config defines implicitly, and the
# training-set names the experiments use. The loader adds them, so every rule sees them.


TRAINSET = re.compile(r"^(?:real|(?P<variant>[A-Za-z0-9_-]+)/x(?P<scale>\d+)(?P<real>_real)?)$")


def parse_trainset(trainset: str) -> dict:
    """``real`` | ``{variant}/x{scale}`` | ``{variant}/x{scale}_real``."""
    m = TRAINSET.match(trainset)
    if not m:
        raise ConfigError(f"training set {trainset!r} is not real, VARIANT/xSCALE or VARIANT/xSCALE_real")
    if m["variant"] is None:
        return {"variant": None, "scale": 0, "real": True}
    return {"variant": m["variant"], "scale": int(m["scale"]), "real": bool(m["real"])}


def replicate(config: dict, variant: str, seed) -> str:
    """The variant a replicate ``seed`` trains on: the variant itself when only classifier seeds
    vary (``experiments.vary_seeds: classifier``) or for seed 0, else ``{variant}-seed{seed}``,
    whose LoRA and synthesis seeds are offset by ``seed`` (``add_replicates`` defines it)."""
    if config["experiments"]["vary_seeds"] == "classifier" or int(seed) == 0:
        return variant
    return f"{variant}-seed{int(seed)}"


def add_replicates(config: dict) -> None:
    """Define the replicate variants (and their finetunes) the replicated experiments train on."""
    for variant, seed in sorted(_replicated_variants(config)):
        name = replicate(config, variant, seed)
        if name == variant:
            continue
        spec = dict(config["variants"][variant], seed=config["variants"][variant]["seed"] + seed)
        if spec["finetune"] is not None:
            finetune = f"{spec['finetune']}-seed{seed}"
            base = config["finetunes"][spec["finetune"]]
            _define(config, "finetunes", finetune, {**base, "seed": base["seed"] + seed})
            spec["finetune"] = finetune
        _define(config, "variants", name, spec)


def _replicated_variants(config: dict) -> set[tuple[str, int]]:
    return {(v, s) for name, variants in replicated_experiments(config).items() for v in variants
            for s in experiment_seeds(config, name)}


def replicated_experiments(config: dict) -> dict[str, list[str]]:
    """The configured experiments that replicate over seeds -> the variants they train on."""
    ex = config["experiments"]
    found = {"table1": [ex["table1"]["variant"], *table1_baselines(config).values()]}
    found |= {name: ex[name]["variants"] for name in ("table2", "gap") if name in ex}
    found |= {name: [ex[name]["variant"]] for name in ("table3", "fig2") if name in ex}
    if "table4" in ex:
        found["table4"] = [v for v in (parse_trainset(t)["variant"] for t in ex["table4"]["trainsets"]) if v]
    return found


def _define(config: dict, section: str, name: str, spec: dict,
            purpose: str = "a seed replicate (experiments.vary_seeds: pipeline)") -> None:
    if config[section].setdefault(name, spec) != spec:
        raise ConfigError(f"{section}.{name}: this name is reserved for {purpose}; rename the entry")


def table1_baselines(config: dict) -> dict[str, str]:
    """Method -> variant of the other methods' synthetic-only rows (e.g. FakeIt) we run ourselves."""
    return {m: b["variant"] for m, b in config["experiments"]["table1"]["baselines"].items()}


def experiment_seeds(config: dict, name: str) -> list[int]:
    """An experiment's replicate seeds: ``experiments.seeds``, unless the experiment lists its own
    (``experiments.table2.seeds``, ``experiments.gap.seeds``). Every replicated experiment draws
    them from here, so two experiments name the same run at the same seed and the DAG shares it."""
    return config["experiments"][name].get("seeds", config["experiments"]["seeds"])


def replicate_trainset(config: dict, trainset: str, seed) -> str:
    """A training set's name at replicate ``seed``: its variant replaced by the replicate's."""
    spec = parse_trainset(trainset)
    if spec["variant"] is None:
        return trainset
    return f"{replicate(config, spec['variant'], seed)}/x{spec['scale']}{'_real' if spec['real'] else ''}"


def shadow_name(dataset: str, index: int) -> str:
    return f"{dataset}-shadow{index}"


def add_shadows(config: dict) -> None:
    """Define LiRA's shadow data sets: the base data set restricted to a seeded half of its train
    split (``splits.membership``: each image in exactly half of the shadows), test split whole."""
    t = config["experiments"].get("lira")
    if t is None:
        return
    for k in range(t["shadows"]):
        shadow = {"dataset": t["dataset"], "index": k, "shadows": t["shadows"], "seed": t["seed"]}
        _define(config, "datasets", shadow_name(t["dataset"], k), {**config["datasets"][t["dataset"]], "shadow": shadow},
                "a LiRA shadow (experiments.lira)")
