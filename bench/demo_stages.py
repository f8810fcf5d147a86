"""Time the embedded demo end to end and per stage, from a clean working folder.

    .venv/bin/python bench/demo_stages.py [--keep DIR]

Runs ``snakemake --cores 2 results/table1.csv`` on config/config.yaml in a fresh folder,
then prints the wall time of the whole run and, per rule, the jobs' summed seconds and
peak memory from Snakemake's own ``benchmark:`` files.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="realfake-bench-"))
    snakemake = Path(sys.executable).parent / "snakemake"
    start = time.perf_counter()
    subprocess.run([str(snakemake), "results/table1.csv", "-s", str(ROOT / "Snakefile"), "--directory",
                    str(workdir), "--configfile", str(ROOT / "config/config.yaml"), "--cores", "2",
                    "--quiet", "all"], check=True)
    wall = time.perf_counter() - start
    rules = set(subprocess.check_output([str(snakemake), "-s", str(ROOT / "Snakefile"), "--directory",
                                         str(workdir), "--configfile", str(ROOT / "config/config.yaml"),
                                         "--list-rules"], text=True).split())
    rows = []
    for tsv in (workdir / "benchmarks").rglob("*.tsv"):
        b = pd.read_csv(tsv, sep="\t")
        rule = next(p for p in tsv.relative_to(workdir / "benchmarks").with_suffix("").parts if p in rules)
        rows.append({"rule": rule, "seconds": b["s"].iloc[0], "max_rss_mb": b["max_rss"].iloc[0]})
    stages = pd.DataFrame(rows).groupby("rule").agg(jobs=("seconds", "size"), seconds=("seconds", "sum"),
                                                    max_rss_mb=("max_rss_mb", "max"))
    print(stages.sort_values("seconds", ascending=False).round(1).to_string())
    print(f"\ndemo wall time: {wall:.1f} s on {subprocess.check_output(['nproc']).decode().strip()} cores")
    print((workdir / "results/table1.csv").read_text())


if __name__ == "__main__":
    main()
