"""A SLURM profile's time limits against the cluster's partitions, before anything is submitted.

sbatch rejects a job longer than its partition's ``MaxTime``, and a group of jobs run in series
(the profile's synthesis groups) asks for the sum of its members' runtimes; the SLURM plugin
shows no error for such a rejection (plugin issue #456), so the run stalls without a word. This
checks every rule of ``set-resources`` at its last attempt (runtimes may grow with ``attempt``)
and every group at its size, against ``sinfo``'s limits:

    python -m realfake.slurm_limits profiles/slurm
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import yaml


class ProfileError(ValueError):
    """A profile asks for more time than its partitions allow."""


def slurm_minutes(text: str) -> float:
    """Minutes of a SLURM time (``infinite``, ``D-HH:MM:SS``, ``HH:MM:SS``, ``MM:SS``, ``MM``)."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited"):
        return math.inf
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ProfileError(f"{text!r} is not a SLURM time limit")
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if days is not None or third is not None:  # [D-]HH:MM:SS or D-HH[:MM]
        return (days or 0) * 1440 + first * 60 + (second or 0) + (third or 0) / 60
    return first + (second or 0) / 60  # MM or MM:SS


def partition_limits(sinfo: str) -> dict[str, float]:
    """Partition -> MaxTime in minutes, from ``sinfo -h -o "%P %l"`` (the default's ``*`` dropped)."""
    return {name.rstrip("*"): slurm_minutes(limit) for name, limit in (line.split() for line in sinfo.splitlines()
                                                                        if line.strip())}


def runtime_minutes(value, attempt: int) -> float:
    """A profile's ``runtime``: minutes, or a Python expression of ``attempt`` (as Snakemake reads it)."""
    if isinstance(value, int | float):
        return float(value)
    return float(eval(str(value), {"__builtins__": {}}, {"attempt": attempt}))  # noqa: S307 (the profile's own)


def over_limit(profile: dict, limits: dict[str, float]) -> list[str]:
    """What ``profile`` (a parsed config.yaml) submits over its partition's limit, one line each."""
    defaults = profile.get("default-resources", {})
    attempt = 1 + int(profile.get("retries", 0))
    groups, sizes = profile.get("groups", {}), profile.get("group-components", {})
    problems = []
    for rule, resources in sorted(profile.get("set-resources", {}).items()):
        partition = resources.get("slurm_partition", defaults.get("slurm_partition"))
        minutes = runtime_minutes(resources.get("runtime", defaults.get("runtime", 0)), attempt)
        group = groups.get(rule)
        jobs = int(sizes.get(group, 1)) if group else 1
        if jobs * minutes > limits.get(partition, math.inf):
            asked = f"group {group}: {jobs} jobs in series x {minutes:g} min = " if group else ""
            problems.append(f"{rule} ({asked}{jobs * minutes:g} min at attempt {attempt}) exceeds partition "
                            f"{partition}'s MaxTime of {limits[partition]:g} min")
    return problems


def check_profile(profile_dir: str | Path, sinfo: str | None = None) -> None:
    """Raise ``ProfileError`` naming every rule and group of ``profile_dir`` over its limit.
    ``sinfo``: its output (default: run it here)."""
    path = Path(profile_dir) / "config.yaml"
    profile = yaml.safe_load(path.read_text())
    if sinfo is None:
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%P %l"], capture_output=True, text=True, check=True).stdout
    problems = over_limit(profile, partition_limits(sinfo))
    if problems:
        raise ProfileError(f"{path}: sbatch would reject these jobs, and the SLURM plugin would not say so:\n  "
                           + "\n  ".join(problems) + "\nlower their runtime or group-components, submit the "
                           "shards as job arrays, or ask for a partition with a longer limit")


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m realfake.slurm_limits PROFILE_DIR", file=sys.stderr)
        return 2
    try:
        check_profile(args[0])
    except ProfileError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args[0]}: every job and group fits its partition's time limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
