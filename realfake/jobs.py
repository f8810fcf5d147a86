"""Job set-up shared by the workflow's script adapters: logging to the rule's log file."""

from __future__ import annotations

import logging
import os
import sys


def start_job(log_path: str, threads: int = 1) -> logging.Logger:
    """Send stdout, stderr (progress bars) and logging to ``log_path``; use ``threads`` CPU threads."""
    import torch

    stream = open(log_path, "w", buffering=1)  # noqa: SIM115 (the job's log, open until it exits)
    sys.stdout = sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TQDM_MININTERVAL", "5")  # progress lines, not a flood, in log files
    torch.set_num_threads(max(1, threads))
    return logging.getLogger("realfake")


def worker_geometry(resources) -> dict:
    """``distributed.launch``'s geometry from a job's resources (set per rule in the profile):
    ``gpu: N`` on one node (torchrun), or with the plugin's ``mpi`` launcher ``tasks`` workers
    over ``nodes`` nodes."""
    if resources.get("mpi"):
        return {"processes": int(resources.get("tasks", 1)), "launcher": str(resources.get("mpi")),
                "nodes": int(resources.get("nodes", 1))}
    return {"processes": int(resources.get("gpu", 1))}
