"""How fast Snakemake plans the paper's full experiment matrix, against a bare Snakefile.

    .venv/bin/python bench/dag_dry_run.py [--seeds 3]

Dry-runs config/paper.yaml (placeholder data roots; nothing is read) for Tables 1, 2, 3 and 9,
then a generated Snakefile with one trivial rule and the same number of jobs, side by side,
and prints both times. Goal: the workflow's dry run within twice the bare one's.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TARGETS = ["results/table1.csv", "results/table2.csv", "results/table3.csv", "results/table9.csv"]


def dry_run(args, cwd) -> tuple[float, int]:
    start = time.perf_counter()
    run = subprocess.run([SNAKEMAKE, "-n", *args, "--quiet", "rules"], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(run.stdout[-3000:] + run.stderr[-3000:])
    total = re.search(r"^total\s+(\d+)$", run.stdout + run.stderr, re.M)
    return seconds, int(total[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="classifier seeds (Table 9 uses 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
        config["experiments"]["seeds"] = list(range(args.seeds))
        (tmp / "paper.yaml").write_text(yaml.safe_dump(config))
        ours, jobs = dry_run([*TARGETS, "-s", str(ROOT / "Snakefile"), "--configfile", "paper.yaml"], tmp)

        bare = tmp / "bare"
        bare.mkdir()
        (bare / "Snakefile").write_text(
            f"rule all:\n    input: expand('out/{{i}}.txt', i=range({jobs - 1}))\n\n"
            "rule make:\n    output: 'out/{i}.txt'\n    shell: 'touch {output}'\n")
        baseline, bare_jobs = dry_run([], bare)
    print(f"paper matrix ({args.seeds} seeds): {jobs} jobs, dry run {ours:.1f} s")
    print(f"bare Snakefile:           {bare_jobs} jobs, dry run {baseline:.1f} s")
    print(f"ratio: {ours / baseline:.2f} (goal: at most 2)")


if __name__ == "__main__":
    main()
