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
import re

from realfake.config import ConfigError, canonical

TRAINSET = re.compile(r"^(?:real|(?P<variant>[A-Za-z0-9_-]+)/x(?P<scale>\d+)(?P<real>_real)?)$")


def train_size(config: dict, dataset: str) -> int:
    """Number of real training images, known before the manifest exists (it sizes the shards)."""
    ds = config["datasets"][dataset]
    if ds["source"] != "digits":
        return ds["train_images"]
    from realfake.data import digits_split

    train, _ = digits_split(**ds["digits"])
    return len(train)


def shards_for_scale(scale: int, num_real: int, shard_size: int) -> list[int]:
    """Indices of the shards holding the first ``scale * num_real`` synthetic images."""
    return list(range(math.ceil(scale * num_real / shard_size)))


def manifest_params(config: dict, dataset: str) -> dict:
    """``sources.build_manifest``'s arguments: source, its settings block, expected train size."""
    ds = config["datasets"][dataset]
    return canonical({"source": ds["source"], "settings": ds.get(ds["source"], {}),
                      "train_images": ds.get("train_images")})


def lora_params(config: dict, dataset: str, finetune: str) -> dict:
    """``lora.LoraSettings``."""
    return canonical({**config["finetunes"][finetune], "prompt_template": config["prompt_template"],
                      "use_captions": config["datasets"][dataset]["captions"]})


def finetune_of(config: dict, variant: str) -> dict | None:
    name = config["variants"][variant]["finetune"]
    return None if name is None else config["finetunes"][name]


def uses_guidance(config: dict, variant: str) -> bool:
    finetune = finetune_of(config, variant)
    return finetune is not None and finetune["visual_guidance"]


def synthesis_params(config: dict, dataset: str, variant: str) -> dict:
    """``synthesis.SynthesisSettings``."""
    settings = {k: v for k, v in config["variants"][variant].items() if k != "finetune"}
    guided = uses_guidance(config, variant)
    finetune = finetune_of(config, variant)
    return canonical({**settings, **config["synthesis"], "prompt_template": config["prompt_template"],
                      "use_captions": config["datasets"][dataset]["captions"],
                      "guidance_mode": finetune["guidance_mode"] if guided else None,
                      "injection": finetune["injection"] if guided else "replace_last"})


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


def classifier_params(config: dict, dataset: str, trainset: str, seed) -> dict:
    """``classifier.Recipe`` (with the seed), and what the training set holds."""
    spec = parse_trainset(trainset)
    recipe = config["recipes"][config["datasets"][dataset]["recipe"]]
    return canonical({"recipe": {**recipe, "seed": int(seed)}, "real": spec["real"],
                      "synthetic_images": spec["scale"] * train_size(config, dataset)})


def replicate(config: dict, variant: str, seed) -> str:
    """The variant a replicate ``seed`` trains on: the variant itself when only classifier seeds
    vary (``experiments.vary_seeds: classifier``) or for seed 0, else ``{variant}-seed{seed}``,
    whose LoRA and synthesis seeds are offset by ``seed`` (``add_replicates`` defines it)."""
    if config["experiments"]["vary_seeds"] == "classifier" or int(seed) == 0:
        return variant
    return f"{variant}-seed{int(seed)}"


def add_replicates(config: dict) -> None:
    """Define the replicate variants (and their finetunes) that Tables 2 and 9 train on."""
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
    ex = config["experiments"]
    pairs = {(ex["table1"]["variant"], s) for s in ex["seeds"]}
    if "table2" in ex:
        pairs |= {(v, s) for v in ex["table2"]["variants"] for s in table2_seeds(config)}
    return pairs


def _define(config: dict, section: str, name: str, spec: dict) -> None:
    if config[section].setdefault(name, spec) != spec:
        raise ConfigError(f"{section}.{name}: this name is reserved for a seed replicate "
                          f"(experiments.vary_seeds: pipeline); rename the entry")


def table1_trainsets(config: dict, seed=0) -> dict[str, str]:
    """Setting -> training set of Table 1 for one seed."""
    t = config["experiments"]["table1"]
    base = f"{replicate(config, t['variant'], seed)}/x{t['scale']}"
    return {"synthetic_only": base, "real": "real", "real_plus_synthetic": f"{base}_real"}


def table1_settings(config: dict) -> dict[str, str]:
    """Training set -> Table 1 setting, over all seeds."""
    return canonical({trainset: setting for s in config["experiments"]["seeds"]
                      for setting, trainset in table1_trainsets(config, s).items()})


def run(dataset: str, trainset: str, seed) -> dict:
    """The wildcards of one classifier run."""
    return {"dataset": dataset, "trainset": trainset, "seed": int(seed)}


def experiment(config: dict, name: str) -> dict:
    """An optional experiment's settings, or a clear error naming its key."""
    if name not in config["experiments"]:
        raise ConfigError(f"experiments.{name} is not configured: add it to the config to build it")
    return config["experiments"][name]


def table1_runs(config: dict) -> list[dict]:
    return [run(d, t, s) for d in config["datasets"] for s in config["experiments"]["seeds"]
            for t in table1_trainsets(config, s).values()]


def table2_seeds(config: dict) -> list[int]:
    return config["experiments"]["table2"].get("seeds", config["experiments"]["seeds"][:1])


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
            for d in config["datasets"] for s in config["experiments"]["seeds"]]


def table4_runs(config: dict) -> list[dict]:
    t, seed = experiment(config, "table4"), config["experiments"]["seeds"][0]
    return [{**run(t["dataset"], trainset, seed), "oodset": name}
            for trainset in t["trainsets"] for name in config["ood_sets"]]


def gap_runs(config: dict) -> list[dict]:
    """The gap table's synthetic sets: dataset, variant, scale (and the trainset for metrics)."""
    t, seed = experiment(config, "gap"), config["experiments"]["seeds"][0]
    return [{**run(t["dataset"], f"{v}/x{t['scale']}", seed), "variant": v, "scale": t["scale"]}
            for v in t["variants"]]


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


def table_columns(config: dict) -> dict[str, str]:
    return canonical({name: ds.get("table_column", name) for name, ds in config["datasets"].items()})
