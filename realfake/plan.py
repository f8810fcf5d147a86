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
    complete,
    experiment_seeds,
    parse_trainset,
    replicate,
    replicate_trainset,
    schema,
    shadow_name,
)
from realfake.splits import digits_train_size, membership


def train_size(config: dict, dataset: str) -> int:
    """Number of real training images, known before the manifest exists (it sizes the shards)."""
    ds = config["datasets"][dataset]
    if "shadow" in ds:
        return int(shadow_members(config, ds["shadow"]).sum())
    if ds["source"] == "digits":
        return digits_train_size(**ds["digits"])
    if ds["source"] == "digits_attributes":
        settings = ds["digits_attributes"]
        return settings["train_subset"] or digits_train_size(settings["test_fraction"], None, settings["seed"])
    return ds["train_images"]


def shadow_members(config: dict, shadow: dict):
    """Which of the base data set's training images a LiRA shadow trains on (bool array)."""
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


def lora_validation(config: dict, dataset: str, finetune: str) -> dict:
    """What the LoRA's validation grid draws (``lora_validation.LoraValidation``): the classes, seeds
    and frequency (``runtime.lora_validation_*``) and its rows, each the synthesis settings
    (``synthesis.SynthesisSettings``) of a variant that uses this finetune, first by name: text-to-image
    (a text-to-image variant, else a latent-prior one as text-to-image, else the variant defaults), then
    the latent prior where a variant uses it. Not a rule's params: the adapter reads it from the config,
    so editing these keys, or a variant's sampling settings, retrains no LoRA."""
    runtime = config["runtime"]
    users = sorted(v for v, spec in config["variants"].items() if spec["finetune"] == finetune)
    priors = [v for v in users if config["variants"][v]["latent_prior"]]
    text_to_image = ([v for v in users if v not in priors] or priors or [None])[0]
    if text_to_image is None:  # a finetune no variant uses yet: the variant defaults at its resolution
        text_to_image = f"{finetune} (variant defaults)"
        spec = {"finetune": finetune, "resolution": config["finetunes"][finetune]["resolution"]}
        config = {**config, "variants": {**config["variants"],
                                         text_to_image: complete(spec, schema()["$defs"]["variant"], schema())}}
    rows = [("text-to-image", text_to_image, False)] + [("latent prior", v, True) for v in priors[:1]]
    steps = runtime["lora_validation_steps"]
    return canonical({"every": runtime["lora_validation_every"], "classes": runtime["lora_validation_classes"],
                      "seeds": runtime["lora_validation_seeds"],
                      "rows": [{"label": label, "variant": v,
                                "synthesis": {**synthesis_params(config, dataset, v), "latent_prior": prior,
                                              **({"num_inference_steps": steps} if steps else {})}}
                               for label, v, prior in rows]})


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
    t, seeds = config["experiments"]["table1"], experiment_seeds(config, "table1")
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
            for s in experiment_seeds(config, "table2")]


def table2_rows(config: dict) -> dict[str, dict]:
    """Training variant (replicates too) -> its Table 2 row: the configured variant and its flags."""
    t = experiment(config, "table2")
    return canonical({replicate(config, v, s): {"variant": v, **variant_flags(config["variants"][v],
                                                                             config["finetunes"])}
                      for v in t["variants"] for s in experiment_seeds(config, "table2")})


def scaling_runs(config: dict, name: str, dataset: str) -> list[dict]:
    """Experiment ``name``'s (Table 3, Fig. 2) synthetic-only runs at each scale, then the
    real-only run beside them, at each of its seeds."""
    t = experiment(config, name)
    return [run(dataset, f"{replicate(config, t['variant'], s)}/x{k}", s) for s in experiment_seeds(config, name)
            for k in t["scales"]] + [run(dataset, "real", s) for s in experiment_seeds(config, name)]


def table3_runs(config: dict) -> list[dict]:
    return scaling_runs(config, "table3", experiment(config, "table3")["dataset"])


def fig2_runs(config: dict) -> list[dict]:
    return [r for d in experiment(config, "fig2")["datasets"] for r in scaling_runs(config, "fig2", d)]


def fig1_sets(config: dict) -> dict[str, dict]:
    """Fig. 1's synthetic sets: label -> dataset, variant, scale."""
    t = experiment(config, "fig1")
    return {label: {"dataset": t["dataset"], "variant": t[key], "scale": t["scale"]}
            for key, label in (("baseline", "baseline"), ("ours", "ours"))}


def table9_runs(config: dict) -> list[dict]:
    return [run(d, table1_trainsets(config, s)["synthetic_only"], s)
            for d in config["experiments"]["table1"]["datasets"] for s in experiment_seeds(config, "table1")]


def table4_runs(config: dict) -> list[dict]:
    t = experiment(config, "table4")
    return [{**run(t["dataset"], replicate_trainset(config, trainset, s), s), "oodset": name}
            for s in experiment_seeds(config, "table4") for trainset in t["trainsets"] for name in config["ood_sets"]]


def gap_runs(config: dict) -> list[dict]:
    """The gap table's synthetic sets: dataset, variant (its seed replicate), scale, the trainset
    for metrics, and ``configured``: the variant as the config names it."""
    t = experiment(config, "gap")
    runs = []
    for v in t["variants"]:
        for s in experiment_seeds(config, "gap"):
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


# Claims (realfake.claims, results/claims.csv): each claim of the paper the configured experiments
# can test, as pairs of measurements, one pair per seed: the same seed and data, one factor changed.
# A claim's effect is a - b, positive where the paper's claim holds. Every measurement is one the
# experiment's own table reads (the same plan functions name its runs), so the claims add no job.

CLAIM_EXPERIMENTS = ("table1", "table2", "table3", "fig2", "table4", "gap", "lira")
FACTORS = ("latent_prior", "finetune", "visual_guidance", "distribution_matching")
# Table 2's claims: the factors two rows differ in (the others equal, as in the paper's rows) -> the claim
FACTOR_CLAIMS = {("latent_prior",): "latent prior > text-to-image", ("finetune",): "fine-tune > no fine-tune",
                 ("visual_guidance",): "visual guidance > none", ("distribution_matching",): "L_MMD > none",
                 FACTORS: "full method > vanilla SD"}
# Sec. 4.4: scaled-up synthetic data "exceeds that of real data, e.g. on ImageNet-Sketch, ImageNet-R and ImageNet-A"
OOD_STATED = ("IN-Sketch", "IN-R", "IN-A")
GAP_CLAIMS = (("distribution gap: MMD (RBF) below vanilla SD's", "gap", "mmd_rbf"),
              ("distribution gap: Frechet distance below vanilla SD's", "gap", "frechet"),
              ("label fidelity above vanilla SD's", "fidelity", "top1"))
# realfake.privacy.ATTACKS (the planning layer cannot import it; tests/test_claims.py checks they agree)
LIRA_ATTACKS = ("online", "online_fixed_variance", "offline", "offline_fixed_variance")
# "near chance": a LiRA AUC below 0.5 + this, fixed before any run (a tenth of the way to a perfect attack)
CHANCE_MARGIN = 0.05


def claims_experiments(config: dict) -> list[str]:
    """``experiments.claims.experiments``, else every experiment of CLAIM_EXPERIMENTS the config has."""
    listed = config["experiments"]["claims"].get("experiments")
    return listed or [e for e in CLAIM_EXPERIMENTS if e in config["experiments"]]


def claims(config: dict) -> list[dict]:
    """Every claim's spec: what it says, where (source, dataset, paper column, test set), what it
    compares (``a``, ``b``, ``metric``), the paper's two numbers to look up (``paper``: a reference
    table, its key columns, the rows' keys, the column) and ``pairs``: per seed a's and b's measurement."""
    builders = {"table1": table1_claims, "table2": table2_claims, "table3": scaling_claims, "fig2": scaling_claims,
                "table4": table4_claims, "gap": gap_claims, "lira": lira_claims}
    specs, seen = [], set()
    for name in claims_experiments(config):
        for spec in builders[name](config, name):
            what = (spec["claim"], spec["dataset"], spec["test_set"], spec["metric"], spec["a"], spec["b"])
            if what not in seen:  # Fig. 2 on Table 3's data set and scales: one row
                seen.add(what)
                specs.append(spec)
    return canonical(specs)


def claim_measures(specs: list[dict], kind: str) -> list[dict]:
    """The distinct measurements of one kind (metrics, ood, gap, fidelity, lira) the claims read, in order."""
    found = [m for spec in specs for pair in spec["pairs"] for m in (pair["a"], pair["b"]) if m["file"] == kind]
    return list({measure_key(m): m for m in found}.values())


def measure_key(measure: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(measure.items()))


def seed_kind(config: dict) -> str:
    """What a replicate seed re-draws in a classifier's run (``experiments.vary_seeds``)."""
    if config["experiments"]["vary_seeds"] == "pipeline":
        return "pipeline: LoRA, synthesis and classifier"
    return "classifier only: one synthetic set"


def _claim(config: dict, source: str, claim: str, dataset: str, a, b, pairs: list[dict], *, metric: str = "top1",
           test_set: str = "test", column: str | None = None, condition: str = "", paper: dict | None = None,
           kind: str | None = None) -> dict:
    return {"source": source, "claim": claim, "dataset": dataset, "column": column or table_columns(config)[dataset],
            "test_set": test_set, "metric": metric, "a": a, "b": b, "condition": condition, "paper": paper,
            "pairs": pairs, "seed_kind": kind or seed_kind(config)}


def _reference(table: str, keys, a, b, column: str) -> dict:
    """Where the paper's numbers of a and b are: ``realfake/reference/{table}_reference.csv``."""
    return {"table": table, "keys": list(keys), "a": list(a), "b": list(b), "column": column}


def _run_pairs(config: dict, seeds, dataset: str, a: str, b: str, **ood) -> list[dict]:
    """Per seed the metrics of training sets a and b (their replicates at that seed)."""
    def metrics(trainset, s):
        return {"file": "ood" if ood else "metrics", **run(dataset, replicate_trainset(config, trainset, s), s), **ood}

    return [{"seed": int(s), "a": metrics(a, s), "b": metrics(b, s)} for s in seeds]


def table1_claims(config: dict, name: str = "table1") -> list[dict]:
    """Real-Fake above each baseline (synthetic only); real + synthetic above real only."""
    t, seeds, columns = config["experiments"]["table1"], experiment_seeds(config, "table1"), table_columns(config)
    ours, keys = f"{t['variant']}/x{t['scale']}", ("setting", "method")
    specs = []
    for method, baseline in t["baselines"].items():
        theirs = f"{baseline['variant']}/x{t['scale']}"
        specs += [_claim(config, "Table 1", f"Real-Fake > {method} (synthetic only)", d, ours, theirs,
                         _run_pairs(config, seeds, d, ours, theirs),
                         paper=_reference("table1", keys, ("synthetic_only", "Real-Fake"), ("synthetic_only", method),
                                          columns[d]))
                  for d in baseline["datasets"] if d in t["datasets"]]
    specs += [_claim(config, "Table 1", "real + synthetic > real only", d, f"{ours}_real", "real",
                     _run_pairs(config, seeds, d, f"{ours}_real", "real"),
                     paper=_reference("table1", keys, ("real_plus_synthetic", "Real-Fake+real"), ("real", "real_only"),
                                      columns[d]))
              for d in t["datasets"]]
    return specs


def factor_pairs(config: dict, variants: list[str]) -> list[tuple[str, str, str, dict]]:
    """(claim, a, b, a's flags) for every two variants whose Table 2 flags differ in exactly the
    factors of a claim (FACTOR_CLAIMS), a having them on; in FACTOR_CLAIMS' order."""
    flags = {v: variant_flags(config["variants"][v], config["finetunes"]) for v in variants}
    return [(claim, a, b, flags[a]) for factors, claim in FACTOR_CLAIMS.items() for a in variants for b in variants
            if tuple(f for f in FACTORS if flags[a][f] != flags[b][f]) == factors and all(flags[a][f] for f in factors)]


def table2_claims(config: dict, name: str = "table2") -> list[dict]:
    """A row per two Table 2 variants that differ in one claim's factors; a claim that no two
    configured variants test: a row with no pairs (``not tested``)."""
    t, seeds, columns = experiment(config, "table2"), experiment_seeds(config, "table2"), table_columns(config)
    found = factor_pairs(config, t["variants"])
    specs = []
    for d in t["datasets"]:
        for claim, a, b, flags in found:
            factors = next(f for f, c in FACTOR_CLAIMS.items() if c == claim)
            off = {**flags, **dict.fromkeys(factors, 0)}
            specs.append(_claim(config, "Table 2", claim, d, a, b, _run_pairs(config, seeds, d, f"{a}/x1", f"{b}/x1"),
                                condition=", ".join(f"{f}={flags[f]}" for f in FACTORS if f not in factors),
                                paper=_reference("table2_ablation", FACTORS, [flags[f] for f in FACTORS],
                                                 [off[f] for f in FACTORS], columns[d])))
        tested = {claim for claim, *_ in found}
        specs += [_claim(config, "Table 2", claim, d, None, None, []) for claim in FACTOR_CLAIMS.values()
                  if claim not in tested]
    return specs


def scaling_claims(config: dict, name: str) -> list[dict]:
    """Accuracy does not fall with more synthetic data: each scale against the next smaller one.
    The paper's numbers are Table 3's (IN-1K), set beside whatever stands for it, as in table3.csv."""
    t, seeds = experiment(config, name), experiment_seeds(config, name)
    scales = sorted(t["scales"])
    datasets = [t["dataset"]] if name == "table3" else t["datasets"]
    specs = []
    for d in datasets:
        for small, large in zip(scales, scales[1:], strict=False):
            a, b = f"{t['variant']}/x{large}", f"{t['variant']}/x{small}"
            paper = _reference("table3_scaling", ("scale", "real_data"), (large, 0), (small, 0), "top1")
            specs.append(_claim(config, {"table3": "Table 3", "fig2": "Fig. 2"}[name],
                                "more synthetic data: higher accuracy", d, a, b, _run_pairs(config, seeds, d, a, b),
                                paper=paper if name == "table3" else None))
    return specs


def table4_claims(config: dict, name: str = "table4") -> list[dict]:
    """OOD (Sec. 4.4): the largest synthetic-only set above real only on the OOD sets the paper
    says so of (OOD_STATED), and real + synthetic above real only on every OOD set."""
    t, seeds = experiment(config, "table4"), experiment_seeds(config, "table4")
    if "real" not in t["trainsets"]:
        return []
    kinds = {x: parse_trainset(x) for x in t["trainsets"]}
    synthetic = sorted((k["scale"], x) for x, k in kinds.items() if k["variant"] and not k["real"])
    with_real = [x for x, k in kinds.items() if k["variant"] and k["real"]]
    specs = []
    for oodset, ood in config["ood_sets"].items():
        column = ood.get("table_column", oodset)
        compared = [(f"synthetic only x{synthetic[-1][0]} > real only (OOD)", synthetic[-1][1],
                     ("synthetic_only", f"Real-Fake x{synthetic[-1][0]}"))] if synthetic and column in OOD_STATED else []
        compared += [("real + synthetic > real only (OOD)", x, ("real_plus_synthetic", "Real-Fake+real"))
                     for x in with_real]
        specs += [_claim(config, "Table 4", claim, t["dataset"], a, "real",
                         _run_pairs(config, seeds, t["dataset"], a, "real", oodset=oodset), test_set=oodset,
                         column=column, paper=_reference("table4_ood", ("setting", "method"), row, ("real", "real_only"),
                                                         f"{column}_top1"))
                  for claim, a, row in compared]
    return specs


def gap_claims(config: dict, name: str = "gap") -> list[dict]:
    """The full method's synthetic set nearer the real one than vanilla SD's (MMD, FD: a is vanilla
    SD's) and more faithful to its labels. One pair per distinct pair of synthetic sets: with
    ``vary_seeds: classifier`` every seed has the same sets, so one pair."""
    t, seeds = experiment(config, "gap"), experiment_seeds(config, "gap")
    kind = "pipeline: LoRA and synthesis" if config["experiments"]["vary_seeds"] == "pipeline" \
        else "none: one synthetic set per variant (vary_seeds: classifier)"

    def measure(kind_of_file, variant, s):
        return {"file": kind_of_file, "dataset": t["dataset"], "variant": replicate(config, variant, s),
                "scale": t["scale"]}

    specs = []
    for _, ours, vanilla, _ in [p for p in factor_pairs(config, t["variants"]) if p[0] == FACTOR_CLAIMS[FACTORS]]:
        for claim, kind_of_file, metric in GAP_CLAIMS:
            a, b = (ours, vanilla) if kind_of_file == "fidelity" else (vanilla, ours)  # distances: lower is better
            pairs = {replicate(config, ours, s): {"seed": int(s), "a": measure(kind_of_file, a, s),
                                                  "b": measure(kind_of_file, b, s)} for s in seeds}
            specs.append(_claim(config, "Gap", claim, t["dataset"], f"{a}/x{t['scale']}", f"{b}/x{t['scale']}",
                                list(pairs.values()), metric=metric, test_set="train (real vs synthetic)", kind=kind))
    return specs


def lira_claims(config: dict, name: str = "lira") -> list[dict]:
    """Fig. 3, per attack: synthetic-trained models leak less than real-trained ones (AUC), and
    their AUC is near chance (below 0.5 + CHANCE_MARGIN). Paired over the target models: model k
    trained on half k, or on the synthetic set made from half k; the other models are its shadows."""
    t = experiment(config, "lira")
    kind, chance = "LiRA target model (its half; the others its shadows)", {"file": "constant",
                                                                           "value": 0.5 + CHANCE_MARGIN}
    specs = []
    for attack in LIRA_ATTACKS:
        def auc(setting, k, attack=attack):
            return {"file": "lira", "setting": setting, "target": k, "attack": attack}

        targets = range(t["shadows"])
        specs += [_claim(config, "Fig. 3", f"LiRA {attack}: synthetic-trained AUC below real-trained", t["dataset"],
                         "trained on real", "trained on synthetic",
                         [{"seed": k, "a": auc("real", k), "b": auc("synthetic", k)} for k in targets],
                         metric="auc", test_set="train split (members)", kind=kind),
                  _claim(config, "Fig. 3", f"LiRA {attack}: synthetic-trained AUC near chance", t["dataset"],
                         f"{0.5 + CHANCE_MARGIN:g} (chance + margin)", "trained on synthetic",
                         [{"seed": k, "a": chance, "b": auc("synthetic", k)} for k in targets],
                         metric="auc", test_set="train split (members)", kind=kind)]
    return specs
