"""Per-rule time and peak memory of a finished run, from the ``benchmark:`` file of every job."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def rule_table(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per rule: jobs, wall seconds (sum and the slowest job), CPU seconds, peak RSS (MB)."""
    bench = Path(run_dir) / "benchmarks"
    rows = []
    for path in sorted(bench.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        rule = path.relative_to(bench).parts[0].removesuffix(".tsv")
        rows.append({"rule": rule, "s": float(frame["s"].iloc[-1]), "cpu_s": float(frame["cpu_time"].iloc[-1]),
                     "max_rss_mb": pd.to_numeric(frame["max_rss"], errors="coerce").iloc[-1]})
    if not rows:
        raise FileNotFoundError(f"{bench} holds no benchmark files: is {run_dir} a finished run's directory?")
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(jobs=("s", "size"), wall_s=("s", "sum"), slowest_s=("s", "max"),
                                     cpu_s=("cpu_s", "sum"), peak_rss_mb=("max_rss_mb", "max"))
    return table.round(1).sort_values("wall_s", ascending=False).reset_index()
