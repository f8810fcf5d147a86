"""Job set-up shared by the workflow's script adapters: logging to the rule's log file.

Snakemake deletes a job's log before each attempt, so a training job chunked by its time limit
(a retry, a SLURM requeue) would keep only its last chunk. Each job therefore also appends
everything to a hidden history beside its log (``.<log name>.attempts``), and an attempt that
continues a run (attempt > 1, or a SLURM restart) first copies that history back into the log:
the log holds every chunk, each headed by its attempt number, SLURM job id and host.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path


class _Tee:
    """A line-buffered text stream writing to several files (the log and its history)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


def history_path(log_path: str | os.PathLike) -> Path:
    """``logs/x/y.log`` -> ``logs/x/.y.log.attempts`` (not a Snakemake output: never deleted by it)."""
    log_path = Path(log_path)
    return log_path.with_name(f".{log_path.name}.attempts")


def continues_run(attempt: int, environ=os.environ) -> bool:
    """An attempt that goes on from an earlier one: a Snakemake retry or a SLURM requeue."""
    return attempt > 1 or int(environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def attempt_header(attempt: int, environ=os.environ) -> str:
    job = environ.get("SLURM_JOB_ID")
    slurm = f"SLURM job {job} (restart {environ.get('SLURM_RESTART_COUNT', '0')})" if job else "no SLURM job"
    return (f"===== attempt {attempt}, {slurm}, host {socket.gethostname()}, pid {os.getpid()}, "
            f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')} =====\n")


def open_job_log(log_path: str | os.PathLike, attempt: int = 1, environ=os.environ) -> _Tee:
    """The job's log stream: the log and its history, earlier attempts' lines first where this
    attempt continues them; a fresh run (attempt 1, no requeue) starts both anew."""
    log_path, history = Path(log_path), history_path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if continues_run(attempt, environ) and history.exists():
        shutil.copyfile(history, log_path)
    else:
        history.unlink(missing_ok=True)
        log_path.unlink(missing_ok=True)
    streams = [open(p, "a", buffering=1) for p in (log_path, history)]  # noqa: SIM115 (open until exit)
    tee = _Tee(*streams)
    tee.write(attempt_header(attempt, environ))
    return tee


def start_job(log_path: str, threads: int = 1, attempt: int = 1) -> logging.Logger:
    """Send stdout, stderr (progress bars) and logging to ``log_path`` (appended across the
    attempts of a chunked run); use ``threads`` CPU threads."""
    import torch

    stream = open_job_log(log_path, attempt)
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
