"""Does the reproduction hold? Each claim of the paper as a paired comparison over seeds, with its
uncertainty and a verdict (``results/claims.csv``).

A claim compares two runs that differ in one factor (``realfake.plan.claims``: the same seed and
data otherwise); its effect is the mean over seeds of the paired difference a - b, positive where
the paper's claim holds. The interval is a paired t-interval: mean +- t_{(1+c)/2, n-1} * sd / sqrt(n),
sd the differences' sample standard deviation. With 3 seeds t_{0.975, 2} = 4.30: wide, and honestly
so. A paired bootstrap over 3 pairs has 10 distinct resamples, and its percentile interval lies
inside the three differences' range, so it understates the spread most where seeds are fewest.

Verdict, from the interval alone (never from the paper's number):

- ``holds``: the interval lies above 0;
- ``reversed``: it lies below 0;
- ``not resolved``: it contains 0;
- ``not resolved (1 seed)``: one pair has no spread, so no interval;
- ``not tested``: the configured experiments hold no pair of runs for the claim.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.plan import claim_measures, measure_key

CONFIDENCE = 0.95
COLUMNS = ["source", "claim", "dataset", "column", "test_set", "metric", "a", "b", "condition", "paper_a", "paper_b",
           "paper_effect", "mean_a", "mean_b", "effect", "std", "ci_low", "ci_high", "seeds", "differences",
           "seed_kind", "verdict"]


def paired_interval(differences, confidence: float = CONFIDENCE) -> dict:
    """Mean paired difference, its sample std and the t-interval over the pairs (NaN where undefined)."""
    from scipy.stats import t

    d = np.asarray(differences, dtype=np.float64)
    n, nan = len(d), float("nan")
    mean = float(d.mean()) if n else nan
    if n < 2:
        return {"effect": mean, "std": nan, "ci_low": nan, "ci_high": nan, "seeds": n}
    std = float(d.std(ddof=1))
    half = float(t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"effect": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "seeds": n}


def verdict(seeds: int, ci_low: float, ci_high: float) -> str:
    """The module docstring's rule."""
    if seeds == 0:
        return "not tested"
    if seeds == 1:
        return "not resolved (1 seed)"
    if ci_low > 0:
        return "holds"
    if ci_high < 0:
        return "reversed"
    return "not resolved"


def paper_numbers(reference: dict | None) -> tuple[float, float]:
    """The paper's numbers of a and b (``plan._reference``), NaN where the paper gives none."""
    if reference is None:
        return float("nan"), float("nan")
    from realfake.tables import load_reference

    table = load_reference(reference["table"])

    def value(keys):
        rows = table[(table[reference["keys"]] == keys).all(axis=1)]
        return float(rows[reference["column"]].iloc[0]) if len(rows) and reference["column"] in rows else float("nan")

    return value(reference["a"]), value(reference["b"])


def measured(values: dict[str, dict], measure: dict, metric: str) -> float:
    """A measurement's value: a record's metric, or a constant (a threshold a claim compares with)."""
    if measure["file"] == "constant":
        return float(measure["value"])
    return float(values[measure_key(measure)][metric])


def claim_row(spec: dict, values: dict[str, dict], confidence: float = CONFIDENCE) -> dict:
    """One claim's row of ``results/claims.csv``."""
    a = [measured(values, p["a"], spec["metric"]) for p in spec["pairs"]]
    b = [measured(values, p["b"], spec["metric"]) for p in spec["pairs"]]
    stats = paired_interval(np.subtract(a, b), confidence)
    paper_a, paper_b = paper_numbers(spec["paper"])
    return {**{k: spec[k] for k in ("source", "claim", "dataset", "column", "test_set", "metric", "a", "b",
                                     "condition", "seed_kind")},
            "paper_a": paper_a, "paper_b": paper_b, "paper_effect": paper_a - paper_b,
            "mean_a": float(np.mean(a)) if a else float("nan"), "mean_b": float(np.mean(b)) if b else float("nan"),
            **stats, "differences": " ".join(f"{x:+.4g}" for x in np.subtract(a, b)),
            "verdict": verdict(stats["seeds"], stats["ci_low"], stats["ci_high"])}


def claims_table(specs: list[dict], values: dict[str, dict], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """``results/claims.csv``: a row per claim (``plan.claims``), from the measurements' records
    (``values``: ``plan.measure_key`` -> record, as ``read_measurements`` gives them)."""
    rows = [claim_row(spec, values, confidence) for spec in specs]
    return pd.DataFrame(rows, columns=COLUMNS).round(4)


def read_measurements(specs: list[dict], files: dict[str, list], lira: dict | None = None) -> dict[str, dict]:
    """Every measurement the claims read, keyed by ``plan.measure_key``: ``files`` holds, per kind
    (metrics, ood, gap, fidelity), one JSON file per ``plan.claim_measures(specs, kind)``, in that
    order; ``lira``: the LiRA score files (``real``, ``synthetic``: one per model, in shadow order)
    with ``shadows`` and ``seed`` (the halves' draw)."""
    values = {}
    for kind, paths in files.items():
        measures = claim_measures(specs, kind)
        if len(measures) != len(paths):
            raise ValueError(f"claims: {len(paths)} {kind} files for {len(measures)} measurements")
        values |= {measure_key(m): json.loads(Path(p).read_text()) for m, p in zip(measures, paths, strict=True)}
    if claim_measures(specs, "lira"):
        aucs = {setting: target_aucs(lira[setting], lira["shadows"], lira["seed"]) for setting in ("real", "synthetic")}
        values |= {measure_key(m): {"auc": aucs[m["setting"]][m["attack"]][m["target"]]}
                   for m in claim_measures(specs, "lira")}
    return values


def target_aucs(score_files: list, shadows: int, seed: int) -> dict[str, list[float]]:
    """Per LiRA attack, each target model's ROC AUC on the base training images, its membership
    the truth and the other models its shadows (``privacy.lira`` pools the targets instead)."""
    from sklearn.metrics import roc_auc_score

    from realfake.privacy import ATTACKS, lira_scores
    from realfake.splits import membership

    scores = np.stack([pd.read_parquet(f)["score"].to_numpy() for f in score_files])
    if len(scores) != shadows:
        raise ValueError(f"claims: {len(scores)} LiRA score files for experiments.lira.shadows = {shadows}")
    members = membership(scores.shape[1], shadows, seed)
    return {attack: [float(roc_auc_score(members[k], lira_scores(scores, members, k, attack)))
                     for k in range(shadows)] for attack in ATTACKS}
