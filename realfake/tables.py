"""Results tables: our numbers beside the paper's (realfake/reference/*.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).parent / "reference"
OUR_METHOD = {"synthetic_only": "Real-Fake", "real": "real_only", "real_plus_synthetic": "Real-Fake+real"}


def load_reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / f"{name}_reference.csv")


def read_metrics(paths) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]


def table1(results: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """Rows setting x method, per paper column our mean top-1 over seeds and the paper's.

    ``results``: metrics records with dataset, setting, seed and top1.
    ``columns``: our data set -> the paper column it reports in (digits -> IN-10 in the demo).
    """
    reference = load_reference("table1")
    slots = list(dict.fromkeys(columns.values()))
    ours = pd.DataFrame(results)
    ours["column"] = ours["dataset"].map(columns)
    ours["method"] = ours["setting"].map(OUR_METHOD)
    ours = ours.pivot_table(index=["setting", "method"], columns="column", values="top1", aggfunc="mean")
    paper = reference.set_index(["setting", "method"])[slots].add_suffix("_paper")
    table = paper.join(ours.reindex(columns=slots), how="outer")
    order = [c for slot in slots for c in (slot, f"{slot}_paper")]
    return table[order].round(2).reset_index()
