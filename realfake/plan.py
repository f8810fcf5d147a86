"""What each job needs, derived from the validated config: plain functions the rules call.

Each ``*_params`` returns exactly the settings that job's output depends on, so Snakemake's
params trigger reruns precisely its dependents after a config edit.
"""

from __future__ import annotations

import re

from realfake.models import resolve_model
from realfake.shards import shards_for_scale

TRAINSET = re.compile(r"^(?:real|(?P<variant>[A-Za-z0-9_-]+)/x(?P<scale>\d+)(?P<real>_real)?)$")


class ConfigError(ValueError):
    pass


def check_config(config: dict) -> None:
    """Cross-references the JSON schema cannot express, each error naming its key."""
    for name, ds in config["datasets"].items():
        if ds["recipe"] not in config["recipes"]:
            raise ConfigError(f"datasets.{name}.recipe: {ds['recipe']!r} is not a key of recipes "
                              f"({sorted(config['recipes'])})")
        if ds["source"] != "digits" and (ds["source"] not in ds or "train_images" not in ds):
            raise ConfigError(f"datasets.{name}: a {ds['source']} source needs {ds['source']}.root and "
                              f"train_images (the train split size; the manifest is checked against it)")
    for name, variant in config["variants"].items():
        if variant["finetune"] is not None and variant["finetune"] not in config["finetunes"]:
            raise ConfigError(f"variants.{name}.finetune: {variant['finetune']!r} is not a key of finetunes")
    if not config["models"].get("build_tiny", False):
        for kind in ("stable_diffusion", "clip", "blip2"):
            resolve_model(config["models"][kind], f"models.{kind}")
    for key, value, section in _experiment_references(config):
        if value not in config[section]:
            raise ConfigError(f"{key}: {value!r} is not a key of {section} ({sorted(config[section])})")
    if "table4" in config["experiments"] and not config.get("ood_sets"):
        raise ConfigError("experiments.table4 needs at least one entry in ood_sets")


def _experiment_references(config: dict):
    """(key, value, section it must name) for every dataset and variant the experiments name."""
    experiments = config["experiments"]
    yield "experiments.table1.variant", experiments["table1"]["variant"], "variants"
    if "table2" in experiments:
        experiments["table2"].setdefault("datasets", list(config["datasets"]))
        yield from (("experiments.table2.variants", v, "variants") for v in experiments["table2"]["variants"])
        yield from (("experiments.table2.datasets", d, "datasets") for d in experiments["table2"]["datasets"])
    if "table3" in experiments:
        yield "experiments.table3.variant", experiments["table3"].get("variant", "realfake"), "variants"
        yield "experiments.table3.dataset", experiments["table3"]["dataset"], "datasets"
    if "table4" in experiments:
        yield "experiments.table4.dataset", experiments["table4"]["dataset"], "datasets"
        variants = (parse_trainset(t)["variant"] for t in experiments["table4"]["trainsets"])
        yield from (("experiments.table4.trainsets", v, "variants") for v in variants if v)
    if "gap" in experiments:
        yield "experiments.gap.dataset", experiments["gap"]["dataset"], "datasets"
        yield from (("experiments.gap.variants", v, "variants") for v in experiments["gap"]["variants"])


def train_size(config: dict, dataset: str) -> int:
    """Number of real training images, known before the manifest exists (it sizes the shards)."""
    ds = config["datasets"][dataset]
    if ds["source"] != "digits":
        return ds["train_images"]
    from realfake.data import digits_split

    d = ds.get("digits", {})
    train, _ = digits_split(d.get("test_fraction", 0.2), d.get("train_per_class"), d.get("seed", 0))
    return len(train)


def manifest_params(config: dict, dataset: str) -> dict:
    ds = config["datasets"][dataset]
    params = {"source": ds["source"]}
    params.update(ds.get(ds["source"], {}))
    if ds["source"] != "digits":
        params["train_images"] = ds["train_images"]
    return params


def lora_params(config: dict, dataset: str, finetune: str) -> dict:
    return {**config["finetunes"][finetune], "prompt_template": config["prompt_template"],
            "use_captions": config["datasets"][dataset]["captions"]}


def finetune_of(config: dict, variant: str) -> dict | None:
    name = config["variants"][variant]["finetune"]
    return None if name is None else config["finetunes"][name]


def synthesis_params(config: dict, dataset: str, variant: str) -> dict:
    v = {k: val for k, val in config["variants"][variant].items() if k != "finetune"}
    ft = finetune_of(config, variant)
    guided = ft is not None and ft["visual_guidance"]
    return {**v, "prompt_template": config["prompt_template"],
            "use_captions": config["datasets"][dataset]["captions"],
            "guidance_mode": ft["guidance_mode"] if guided else None,
            "injection": ft["injection"] if guided else "replace_last",
            "shard_size": config["synthesis"]["shard_size"]}


def parse_trainset(trainset: str) -> dict:
    """``real`` | ``{variant}/x{scale}`` | ``{variant}/x{scale}_real``."""
    m = TRAINSET.match(trainset)
    if not m:
        raise ConfigError(f"training set {trainset!r} is not real, VARIANT/xSCALE or VARIANT/xSCALE_real")
    if m["variant"] is None:
        return {"variant": None, "scale": 0, "real": True}
    return {"variant": m["variant"], "scale": int(m["scale"]), "real": bool(m["real"])}


def trainset_shards(config: dict, dataset: str, trainset: str) -> list[int]:
    spec = parse_trainset(trainset)
    if spec["variant"] is None:
        return []
    return shards_for_scale(spec["scale"], train_size(config, dataset), config["synthesis"]["shard_size"])


def classifier_params(config: dict, dataset: str, trainset: str, seed: int) -> dict:
    spec = parse_trainset(trainset)
    recipe = config["recipes"][config["datasets"][dataset]["recipe"]]
    return {"recipe": {**recipe, "seed": int(seed)},
            "synthetic_images": spec["scale"] * train_size(config, dataset), "real": spec["real"]}


def table1_trainsets(config: dict) -> dict[str, str]:
    t = config["experiments"]["table1"]
    base = f"{t['variant']}/x{t['scale']}"
    return {"synthetic_only": base, "real": "real", "real_plus_synthetic": f"{base}_real"}


def metrics_path(dataset: str, trainset: str, seed) -> str:
    return f"results/{dataset}/{trainset}/seed{seed}/metrics.json"


def experiment(config: dict, name: str) -> dict:
    """An optional experiment's settings, or a clear error naming its key."""
    if name not in config["experiments"]:
        raise ConfigError(f"experiments.{name} is not configured: add it to the config to build it")
    return config["experiments"][name]


def table2_metrics(config: dict) -> list[str]:
    t = experiment(config, "table2")
    return [metrics_path(d, f"{v}/x1", config["experiments"]["seeds"][0])
            for d in t["datasets"] for v in t["variants"]]


def table3_metrics(config: dict) -> list[str]:
    t, seed = experiment(config, "table3"), config["experiments"]["seeds"][0]
    paths = [metrics_path(t["dataset"], f"{t['variant']}/x{k}", seed) for k in t["scales"]]
    return paths + [metrics_path(t["dataset"], "real", seed)]


def table9_metrics(config: dict) -> list[str]:
    t1 = config["experiments"]["table1"]
    return [metrics_path(d, f"{t1['variant']}/x{t1['scale']}", s)
            for d in config["datasets"] for s in config["experiments"]["seeds"]]


def variant_flags(variant: dict, finetunes: dict) -> dict:
    """Table 2's module flags of a variant, from its own settings."""
    ft = finetunes.get(variant["finetune"]) if variant["finetune"] else None
    return {"latent_prior": int(variant["latent_prior"]),
            "visual_guidance": int(bool(ft and ft["visual_guidance"])),
            "distribution_matching": int(bool(ft and ft["distribution_matching"])),
            "finetune": int(ft is not None)}


def table4_metrics(config: dict) -> list[str]:
    t, seed = experiment(config, "table4"), config["experiments"]["seeds"][0]
    return [f"results/{t['dataset']}/{trainset}/seed{seed}/ood/{name}.json"
            for trainset in t["trainsets"] for name in config["ood_sets"]]


def ood_manifest_params(config: dict, oodset: str) -> dict:
    return {k: v for k, v in config["ood_sets"][oodset].items() if k not in ("table_column", "restrict_logits")}


def gap_inputs(config: dict) -> dict[str, list[str]]:
    """The distribution gaps and synthetic-only metrics of the gap table's variants."""
    t, seed = experiment(config, "gap"), config["experiments"]["seeds"][0]
    trainsets = [f"{v}/x{t['scale']}" for v in t["variants"]]
    return {"gaps": [f"results/{t['dataset']}/{ts}/distribution_gap.json" for ts in trainsets],
            "metrics": [metrics_path(t["dataset"], ts, seed) for ts in trainsets]}
