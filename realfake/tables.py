"""Results tables: our numbers beside the paper's (realfake/reference/*.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).parent / "reference"


def load_reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / f"{name}_reference.csv")


def read_metrics(paths) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]


def table1(results: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """Rows setting x method, per paper column our mean top-1 over seeds and the paper's.

    ``results``: metrics records with dataset, setting, method (the paper's row: Real-Fake,
    real_only, Real-Fake+real, or a baseline we ran, e.g. FakeIt), seed and top1.
    ``columns``: our data set -> the paper column it reports in (digits -> IN-10 in the demo).
    """
    reference = load_reference("table1")
    ours = pd.DataFrame(results)
    ours["column"] = ours["dataset"].map(columns)
    slots = list(dict.fromkeys(ours["column"]))
    ours = ours.pivot_table(index=["setting", "method"], columns="column", values="top1", aggfunc="mean")
    paper = reference.set_index(["setting", "method"])[slots].add_suffix("_paper")
    table = paper.join(ours.reindex(columns=slots), how="outer")
    order = [c for slot in slots for c in (slot, f"{slot}_paper")]
    return table[order].round(2).reset_index()


def table2(results: list[dict], rows: dict[str, dict], columns: dict[str, str]) -> pd.DataFrame:
    """Ablation: one row per module combination, our top-1 (mean over seeds, and their std where
    there are several) beside the paper's.

    ``rows``: training variant (seed replicates too) -> its row: configured variant and flags.
    """
    keys = ["latent_prior", "visual_guidance", "distribution_matching", "finetune"]
    reference = load_reference("table2_ablation")
    slots = [s for s in dict.fromkeys(columns.values()) if s in reference.columns]
    ours = pd.DataFrame([{**rows[r["variant"]], "column": columns[r["dataset"]], "top1": r["top1"]}
                         for r in results])
    grouped = ours.groupby(keys + ["variant", "column"]).top1
    stats = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0), "n": grouped.size()})
    stats.loc[stats.n < 2, "std"] = float("nan")  # one run has no spread to report
    stats = stats.unstack("column")
    ours = pd.concat({s: stats["mean"][s] for s in slots if s in stats["mean"]}, axis=1)
    spread = {f"{s}_std": stats["std"][s] for s in slots if s in stats["std"]}
    ours = ours.join(pd.DataFrame(spread)).reindex(columns=[c for s in slots for c in (s, f"{s}_std")])
    ours["seeds"] = stats["n"].max(axis=1)
    paper = reference[keys + slots].rename(columns={s: f"{s}_paper" for s in slots})
    table = paper.merge(ours.reset_index(), on=keys, how="outer")
    order = [c for s in slots for c in (s, f"{s}_std", f"{s}_paper")]
    return table[keys + ["variant", "seeds"] + order].round(2)


def table3(results: list[dict]) -> pd.DataFrame:
    """Scaling: top-1/top-5 per synthetic scale, plus the real-data row; the paper's beside."""
    reference = load_reference("table3_scaling")
    ours = pd.DataFrame(results).groupby(["scale", "real_data"])[["top1", "top5"]].mean().reset_index()
    table = reference.merge(ours, on=["scale", "real_data"], how="outer", suffixes=("_paper", ""))
    return table[["scale", "real_data", "images", "top1", "top1_paper", "top5", "top5_paper"]].round(2)


def table9(results: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """Seeds: synthetic-only top-1 per run, mean and standard deviation, the paper's beside."""
    reference = load_reference("table9_multiseed").set_index("run")
    ours = pd.DataFrame(results)
    ours["column"] = ours["dataset"].map(columns)
    per_seed = ours.pivot_table(index="seed", columns="column", values="top1", aggfunc="mean")
    per_seed.index = [str(i + 1) for i in range(len(per_seed))]
    summary = pd.DataFrame({"mean": per_seed.mean(), "std": per_seed.std(ddof=0)}).T
    ours = pd.concat([per_seed, summary])
    slots = [s for s in ours.columns if s in reference.columns]
    table = ours[slots].join(reference[slots].add_suffix("_paper"), how="outer")
    runs = sorted({i for i in [*per_seed.index, *reference.index] if i not in ("mean", "std")}, key=int)
    table = table.reindex(index=[*runs, "mean", "std"])  # runs 1..n (ours or the paper's), then the summary
    order = [c for s in slots for c in (s, f"{s}_paper")]
    return table[order].round(2).rename_axis("run").reset_index()


def plot_scaling(results: list[dict], columns: dict[str, str], path) -> None:
    """Fig. 2: synthetic-only top-1 against synthetic scale, one panel per data set, with the
    real-only accuracy as a dashed line (``results`` carry dataset, scale, real_data, top1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realfake.atomic import atomic_path

    points = pd.DataFrame(results).groupby(["dataset", "scale", "real_data"]).top1.mean().reset_index()
    datasets = list(dict.fromkeys(points.dataset))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        mine = points[points.dataset == dataset]
        synthetic, real = mine[mine.real_data == 0], mine[mine.real_data == 1]
        ax.plot(synthetic.scale, synthetic.top1, "o-", color="tab:blue", label="synthetic only")
        if len(real):
            ax.axhline(real.top1.iloc[0], linestyle="--", color="tab:red", label="real only")
        ax.set_xscale("log")
        ax.set_xticks(list(synthetic.scale), [f"{k}x" for k in synthetic.scale])
        ax.set_title(f"{dataset} ({columns.get(dataset, dataset)})", fontsize=9)
        ax.set_xlabel("synthetic data (times the real training set)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def with_trainset_fields(records: list[dict]) -> list[dict]:
    """Add variant, scale and real_data (Table 3's flag: real images only) from each trainset."""
    from realfake.config import parse_trainset

    out = []
    for r in records:
        spec = parse_trainset(r["trainset"])
        out.append({**r, "variant": spec["variant"], "scale": spec["scale"] or 1,
                    "real_data": int(spec["variant"] is None)})
    return out


def table4_method(trainset: str) -> tuple[str, str]:
    """(setting, method) of Table 4's rows for a training set."""
    from realfake.config import parse_trainset

    spec = parse_trainset(trainset)
    if spec["variant"] is None:
        return "real", "real_only"
    if spec["real"]:
        return "real_plus_synthetic", "Real-Fake+real"
    return "synthetic_only", f"Real-Fake x{spec['scale']}"


def table4(results: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """OOD top-1/top-5 per training set and OOD set (``columns``: OOD set -> paper column)."""
    reference = load_reference("table4_ood").set_index(["setting", "method"])
    rows = []
    for r in results:
        setting, method = table4_method(r["trainset"])
        for metric in ("top1", "top5"):
            rows.append({"setting": setting, "method": method, "value": r[metric],
                         "column": f"{columns[r['oodset']]}_{metric}"})
    ours = pd.DataFrame(rows).pivot_table(index=["setting", "method"], columns="column", values="value",
                                          aggfunc="mean")
    order = [f"{c}_{m}" for c in dict.fromkeys(columns.values()) for m in ("top1", "top5")]
    paper = reference.reindex(columns=order).add_suffix("_paper")
    table = paper.join(ours.reindex(columns=order), how="outer")
    return table[[c for col in order for c in (col, f"{col}_paper")]].round(2).reset_index()


GAP_COLUMNS = ["mmd_rbf", "frechet", "label_fidelity_top1", "label_fidelity_top5", "top1"]


def gap_table(gaps: list[dict], metrics: list[dict], fidelity: list[dict], variants: dict[str, str]) -> pd.DataFrame:
    """Distribution gap, label fidelity (the real-only classifier's accuracy on the synthetic
    images) and synthetic-only accuracy, one row per variant: the mean over its seed replicates,
    and their std where there are several. ``variants``: trainset -> the configured variant."""
    # with experiments.vary_seeds: classifier the seeds share one synthetic set: one gap, several classifiers
    accuracy = pd.DataFrame(metrics).groupby("trainset").top1.mean().to_dict()
    faithful = {f["trainset"]: f for f in fidelity}
    gaps = list({g["trainset"]: g for g in gaps}.values())
    runs = pd.DataFrame([{"variant": variants[g["trainset"]], "mmd_rbf": g["mmd_rbf"], "frechet": g["frechet"],
                          "label_fidelity_top1": faithful[g["trainset"]]["top1"],
                          "label_fidelity_top5": faithful[g["trainset"]]["top5"], "top1": accuracy[g["trainset"]]}
                         for g in gaps])
    grouped = runs.groupby("variant")[GAP_COLUMNS]
    table = grouped.mean().join(grouped.std(ddof=0).add_suffix("_std"))
    table["seeds"] = grouped.size()
    table.loc[table.seeds < 2, [f"{c}_std" for c in GAP_COLUMNS]] = float("nan")  # one run: no spread
    order = ["seeds"] + [c for col in GAP_COLUMNS for c in (col, f"{col}_std")]
    return table[order].sort_values("mmd_rbf").round(4).reset_index()


def table10(results: list[dict]) -> pd.DataFrame:
    """CelebA attributes: per row (real_data, baseline, realfake, realfake_real) and attribute
    column our top-1 beside the paper's. ``results``: metrics records with row, column, top1."""
    reference = load_reference("table10_celeba").rename(columns={"method": "row"}).set_index("row")
    ours = pd.DataFrame(results).pivot_table(index="row", columns="column", values="top1", aggfunc="mean")
    slots = [c for c in reference.columns if c in ours.columns] + [c for c in ours.columns if c not in reference]
    paper = reference.reindex(columns=slots).add_suffix("_paper")
    table = ours.join(paper, how="outer")
    order = [r for r in ("real_data", "baseline", "realfake", "realfake_real") if r in table.index]
    table = table.reindex(order + [r for r in table.index if r not in order])
    return table[[c for s in slots for c in (s, f"{s}_paper")]].round(2).rename_axis("row").reset_index()
