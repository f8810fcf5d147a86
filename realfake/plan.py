"""What each job needs, derived from the loaded config (``realfake.config.load_config``).

Each ``*_params`` returns exactly the settings that job's output depends on, in canonical
form (``config.canonical``): the fields of the library's settings dataclass, so an adapter
is ``Settings(**params)``. Snakemake compares params by value, so key order, formatting and
explicitly written defaults rerun nothing, while every value edit reruns exactly its
dependents. Experiments are returned as wildcards (dataset, trainset, seed, ...), never as
paths: the rules own the path templates (``rules/common.smk``).

Planning is torch-free and pandas-free: a dry run of the paper's 3,000-job matrix stays fast.
"""

from __future__ import annotations

import math

from realfake.config import (
    ConfigError,
    canonical,
    gap_seeds,
    parse_trainset,
    replicate,
    shadow_name,
    table2_seeds,
)


def train_size(config: dict, dataset: str) -> int:
    """Number of real training images, known before the manifest exists (it sizes the shards)."""
    ds = config["datasets"][dataset]
    if "shadow" in ds:
        return int(shadow_members(config, ds["shadow"]).sum())
    if ds["source"] == "digits":
        from realfake.splits import digits_split

        return len(digits_split(**ds["digits"])[0])
    if ds["source"] == "digits_attributes":
        from realfake.splits import digits_split

        settings = ds["digits_attributes"]
        return settings["train_subset"] or len(digits_split(settings["test_fraction"], None, settings["seed"])[0])
    return ds["train_images"]


def shadow_members(config: dict, shadow: dict):
    """Which of the base data set's training images a LiRA shadow trains on (bool array)."""
    from realfake.splits import membership

    n = train_size(config, shadow["dataset"])
    return membership(n, shadow["shadows"], shadow["seed"])[shadow["index"]]


def shards_for_scale(scale: int, num_real: int, shard_size: int) -> list[int]:
    """Indices of the shards holding the first ``scale * num_real`` synthetic images."""
    return list(range(math.ceil(scale * num_real / shard_size)))


def manifest_params(config: dict, dataset: str) -> dict:
    """``sources.build_manifest``'s arguments: source, its settings block, expected train size."""
    ds = config["datasets"][dataset]
    return canonical({"source": ds["source"], "settings": ds.get(ds["source"], {}),
                      "train_images": ds.get("train_images"), **({"shadow": ds["shadow"]} if "shadow" in ds else {})})


def lora_params(config: dict, dataset: str, finetune: str) -> dict:
    """``lora.LoraSettings``."""
    ds = config["datasets"][dataset]
    return canonical({**config["finetunes"][finetune], "prompt_template": ds["prompt_template"],
                      "use_captions": ds["captions"]})


def finetune_of(config: dict, variant: str) -> dict | None:
    name = config["variants"][variant]["finetune"]
    return None if name is None else config["finetunes"][name]


def uses_guidance(config: dict, variant: str) -> bool:
    finetune = finetune_of(config, variant)
    return finetune is not None and finetune["visual_guidance"]


def synthesis_params(config: dict, dataset: str, variant: str) -> dict:
    """``synthesis.SynthesisSettings``."""
    settings = {k: v for k, v in config["variants"][variant].items() if k not in ("finetune", "prompt_templates")}
    guided = uses_guidance(config, variant)
    finetune = finetune_of(config, variant)
    ds = config["datasets"][dataset]
    # one template stays a string (the params of existing shards are unchanged); several: a list
    template = config["variants"][variant]["prompt_templates"] or ds["prompt_template"]
    return canonical({**settings, **config["synthesis"], "prompt_template": template,
                      # a method's own prompts (FakeIt) are its whole prompt: no captions appended
                      "use_captions": ds["captions"] and not config["variants"][variant]["prompt_templates"],
                      "guidance_mode": finetune["guidance_mode"] if guided else None,
                      "injection": finetune["injection"] if guided else "replace_last"})


def trainset_shards(config: dict, dataset: str, trainset: str) -> list[int]:
    spec = parse_trainset(trainset)
    if spec["variant"] is None:
        return []
    return shards_for_scale(spec["scale"], train_size(config, dataset), config["synthesis"]["shard_size"])


def classifier_params(config: dict, dataset: str, trainset: str, seed) -> dict:
    """``classifier.Recipe`` (with the seed), and what the training set holds."""
    spec = parse_trainset(trainset)
    recipe = config["recipes"][config["datasets"][dataset]["recipe"]]
    return canonical({"recipe": {**recipe, "seed": int(seed)}, "real": spec["real"],
                      "synthetic_images": spec["scale"] * train_size(config, dataset)})


def table1_trainsets(config: dict, seed=0) -> dict[str, str]:
    """Setting -> training set of Table 1 for one seed."""
    t = config["experiments"]["table1"]
    base = f"{replicate(config, t['variant'], seed)}/x{t['scale']}"
    return {"synthetic_only": base, "real": "real", "real_plus_synthetic": f"{base}_real"}


OUR_METHOD = {"synthetic_only": "Real-Fake", "real": "real_only", "real_plus_synthetic": "Real-Fake+real"}


def table1_rows(config: dict) -> list[dict]:
    """Every Table 1 run: its wildcards, setting and method (our three rows, then the baselines)."""
    t, seeds = config["experiments"]["table1"], config["experiments"]["seeds"]
    rows = [{**run(d, trainset, s), "setting": setting, "method": OUR_METHOD[setting]}
            for d in t["datasets"] for s in seeds for setting, trainset in table1_trainsets(config, s).items()]
    for method, b in t["baselines"].items():
        rows += [{**run(d, f"{replicate(config, b['variant'], s)}/x{t['scale']}", s), "setting": "synthetic_only",
                  "method": method} for d in b["datasets"] for s in seeds]
    return rows


def table1_settings(config: dict) -> dict[str, list[str]]:
    """Training set -> [setting, method] of its Table 1 row, over all seeds."""
    return canonical({r["trainset"]: [r["setting"], r["method"]] for r in table1_rows(config)})


def run(dataset: str, trainset: str, seed) -> dict:
    """The wildcards of one classifier run."""
    return {"dataset": dataset, "trainset": trainset, "seed": int(seed)}


def experiment(config: dict, name: str) -> dict:
    """An optional experiment's settings, or a clear error naming its key."""
    if name not in config["experiments"]:
        raise ConfigError(f"experiments.{name} is not configured: add it to the config to build it")
    return config["experiments"][name]


def table1_runs(config: dict) -> list[dict]:
    return [run(r["dataset"], r["trainset"], r["seed"]) for r in table1_rows(config)]


def table2_runs(config: dict) -> list[dict]:
    t = experiment(config, "table2")
    return [run(d, f"{replicate(config, v, s)}/x1", s) for d in t["datasets"] for v in t["variants"]
            for s in table2_seeds(config)]


def table2_rows(config: dict) -> dict[str, dict]:
    """Training variant (replicates too) -> its Table 2 row: the configured variant and its flags."""
    t = experiment(config, "table2")
    return canonical({replicate(config, v, s): {"variant": v, **variant_flags(config["variants"][v],
                                                                             config["finetunes"])}
                      for v in t["variants"] for s in table2_seeds(config)})


def scaling_runs(config: dict, dataset: str, variant: str, scales: list[int]) -> list[dict]:
    """Synthetic-only runs at each scale, and the real-only run beside them (first seed)."""
    seed = config["experiments"]["seeds"][0]
    return [run(dataset, f"{variant}/x{k}", seed) for k in scales] + [run(dataset, "real", seed)]


def table3_runs(config: dict) -> list[dict]:
    t = experiment(config, "table3")
    return scaling_runs(config, t["dataset"], t["variant"], t["scales"])


def fig2_runs(config: dict) -> list[dict]:
    t = experiment(config, "fig2")
    return [r for d in t["datasets"] for r in scaling_runs(config, d, t["variant"], t["scales"])]


def fig1_sets(config: dict) -> dict[str, dict]:
    """Fig. 1's synthetic sets: label -> dataset, variant, scale."""
    t = experiment(config, "fig1")
    return {label: {"dataset": t["dataset"], "variant": t[key], "scale": t["scale"]}
            for key, label in (("baseline", "baseline"), ("ours", "ours"))}


def table9_runs(config: dict) -> list[dict]:
    return [run(d, table1_trainsets(config, s)["synthetic_only"], s)
            for d in config["experiments"]["table1"]["datasets"] for s in config["experiments"]["seeds"]]


def table4_runs(config: dict) -> list[dict]:
    t, seed = experiment(config, "table4"), config["experiments"]["seeds"][0]
    return [{**run(t["dataset"], trainset, seed), "oodset": name}
            for trainset in t["trainsets"] for name in config["ood_sets"]]


def gap_runs(config: dict) -> list[dict]:
    """The gap table's synthetic sets: dataset, variant (its seed replicate), scale, the trainset
    for metrics, and ``configured``: the variant as the config names it."""
    t = experiment(config, "gap")
    runs = []
    for v in t["variants"]:
        for s in gap_seeds(config):
            name = replicate(config, v, s)
            runs.append({**run(t["dataset"], f"{name}/x{t['scale']}", s), "variant": name, "scale": t["scale"],
                         "configured": v})
    return runs


def variant_flags(variant: dict, finetunes: dict) -> dict:
    """Table 2's module flags of a variant, from its own settings."""
    ft = finetunes.get(variant["finetune"]) if variant["finetune"] else None
    return {"latent_prior": int(variant["latent_prior"]),
            "visual_guidance": int(bool(ft and ft["visual_guidance"])),
            "distribution_matching": int(bool(ft and ft["distribution_matching"])),
            "finetune": int(ft is not None)}


def ood_manifest_params(config: dict, oodset: str) -> dict:
    """``ood.build_ood_manifest``'s settings: the set's source block without its reporting keys."""
    return canonical({k: v for k, v in config["ood_sets"][oodset].items()
                      if k not in ("table_column", "restrict_logits")})


def table10_trainsets(config: dict) -> dict[str, str]:
    """Table 10's row -> training set: real data, the baseline's and our synthetic set, ours + real."""
    t = experiment(config, "table10")
    ours = f"{t['ours']}/x{t['scale']}"
    return {"real_data": "real", "baseline": f"{t['baseline']}/x{t['scale']}", "realfake": ours,
            "realfake_real": f"{ours}_real"}


def table10_runs(config: dict) -> list[dict]:
    """Every Table 10 run, with its column (the attribute) and row."""
    t, seed = experiment(config, "table10"), config["experiments"]["seeds"][0]
    return [{**run(d, trainset, seed), "column": column, "row": row}
            for column, d in t["datasets"].items() for row, trainset in table10_trainsets(config).items()]


def lira_runs(config: dict) -> list[dict]:
    """Every shadow's two classifiers: on its real half, and on the synthetic set made from it."""
    t, seed = experiment(config, "lira"), config["experiments"]["seeds"][0]
    return [run(shadow_name(t["dataset"], k), trainset, seed) for k in range(t["shadows"])
            for trainset in ("real", f"{t['variant']}/x1")]


def copy_sets(config: dict) -> list[dict]:
    """The synthetic sets copy detection searches: dataset, variant, scale."""
    t = experiment(config, "copies")
    return [{"dataset": t["dataset"], "variant": v, "scale": t["scale"]} for v in t["variants"]]


def copy_detection_params(config: dict) -> dict:
    """What a set's nearest-neighbour search depends on (not the summary's threshold or grid)."""
    t = experiment(config, "copies")
    return canonical({"top_k": t["top_k"], "center": t["center"]})


def tiny_models_dataset(config: dict) -> str:
    """The data set the demo's tiny models pre-train on: ``tiny_models.dataset``, else Table 1's
    first (never the mapping's first key: reordering the config must rerun nothing)."""
    return config["tiny_models"].get("dataset") or config["experiments"]["table1"]["datasets"][0]


def pretraining_corpus(config: dict) -> dict:
    """The digits settings (split, subset) of the data set the tiny models pre-train around: the
    base SD learns from the train-split digits that this data set does not hold."""
    name = tiny_models_dataset(config)
    dataset = config["datasets"].get(name)
    if dataset is None or dataset["source"] != "digits":
        raise ConfigError(f"tiny_models.dataset: {name!r} must be a data set of source digits (the tiny models "
                          "pre-train on the digits it does not hold)")
    return canonical(dataset["digits"])


def table_columns(config: dict) -> dict[str, str]:
    return canonical({name: ds.get("table_column", name) for name, ds in config["datasets"].items()})


# Sample grids (realfake.grids): real training images beside synthetic ones, per class.


def grid_settings(config: dict, comparison: str | None = None) -> dict:
    """``grids.GridSettings``: what a grid's cells and drawing depend on (a comparison's own
    ``classes`` replaces ``experiments.grids.classes``)."""
    g = config["experiments"]["grids"]
    classes = g["classes"] if comparison is None else grid_comparison(config, comparison)["classes"]
    return canonical({"per_class": g["per_class"], "real_per_class": g["real_per_class"], "classes": classes,
                      "cell_size": g["cell_size"]})


def method_label(config: dict, variant: str) -> str:
    """A variant's column title by default: its Table 1 method (Real-Fake, FakeIt, ...), else its name."""
    t = config["experiments"]["table1"]
    methods = {b["variant"]: method for method, b in t["baselines"].items()}
    return OUR_METHOD["synthetic_only"] if variant == t["variant"] else methods.get(variant, variant)


def grid_set(config: dict, dataset: str, variant: str, label: str | None = None) -> dict:
    """One synthetic column group: dataset, variant, its set (``trainset``), its title (the label,
    and the variant where they differ) and the images the set holds. Grids
    draw from the x1 set (one synthetic image per real training image): its shards are the first
    shards of every scale, so a grid adds no synthesis to any table that uses the variant."""
    for value, section in ((dataset, "datasets"), (variant, "variants")):
        if value not in config[section]:
            raise ConfigError(f"sample grid: {value!r} is not a key of {section} ({sorted(config[section])})")
    label = label or method_label(config, variant)
    return {"dataset": dataset, "variant": variant, "trainset": f"{variant}/x1",
            "label": label if label == variant else f"{label} ({variant})", "images": train_size(config, dataset)}


def table1_grid_sets(config: dict) -> list[dict]:
    """Table 1's synthetic sets (ours on every data set, each baseline on its own), one grid each."""
    t = config["experiments"]["table1"]
    pairs = [(d, t["variant"]) for d in t["datasets"]]
    pairs += [(d, b["variant"]) for b in t["baselines"].values() for d in b["datasets"]]
    return [grid_set(config, d, v) for d, v in dict.fromkeys(pairs)]


def grid_comparison(config: dict, name: str) -> dict:
    """A comparison grid: its data set, its columns (``grid_set``s, in the configured order) and
    the classes it shows. Defaults: Table 1's first data set, Table 1's variant and the baselines
    run on that data set, ``experiments.grids.classes``."""
    g, t = config["experiments"]["grids"], config["experiments"]["table1"]
    if name not in g["comparisons"]:
        raise ConfigError(f"experiments.grids.comparisons.{name} is not configured "
                          f"(configured: {sorted(g['comparisons'])})")
    c = g["comparisons"][name]
    dataset = c.get("dataset") or t["datasets"][0]
    variants = c.get("variants") or [t["variant"]] + [b["variant"] for b in t["baselines"].values()
                                                      if dataset in b["datasets"]]
    key = f"experiments.grids.comparisons.{name}"
    if dataset not in config["datasets"]:
        raise ConfigError(f"{key}.dataset: {dataset!r} is not a key of datasets ({sorted(config['datasets'])})")
    unknown = [v for v in [*variants, *c["labels"]] if v not in config["variants"]]
    if unknown:
        raise ConfigError(f"{key}: {unknown} are not keys of variants ({sorted(config['variants'])})")
    return {"dataset": dataset, "classes": c.get("classes", g["classes"]),
            "columns": [grid_set(config, dataset, v, c["labels"].get(v)) for v in variants]}


def table1_grid_comparisons(config: dict) -> list[str]:
    """The comparisons drawn from Table 1's synthetic sets alone (they add no synthesis to Table 1)."""
    table1 = {(s["dataset"], s["variant"]) for s in table1_grid_sets(config)}
    return [name for name in sorted(config["experiments"]["grids"]["comparisons"])
            if all((s["dataset"], s["variant"]) in table1 for s in grid_comparison(config, name)["columns"])]
