"""Job set-up shared by the workflow's script adapters: logging to the rule's log file.

Snakemake deletes a job's log before each attempt, so a training job chunked by its time limit
(a retry, a SLURM requeue) would keep only its last chunk. Each job therefore also appends
everything to a hidden history beside its log (``.<log name>.attempts``) and marks it finished when
it exits cleanly. An attempt that finds an unfinished history (the last one failed, timed out or
was killed) continues it: it first copies the history back into the log, so the log holds every
chunk, each headed by its attempt number, SLURM job id and host. A run after a finished one (a
config edit) starts both anew.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path

ATTEMPT = "===== attempt "
FINISHED = "===== finished"


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


def attempts_before(history: Path) -> int:
    """How many attempts of an unfinished run the history holds (0: none, or its run finished)."""
    if not history.exists():
        return 0
    lines = history.read_text(errors="replace").splitlines()
    if any(line.startswith(FINISHED) for line in lines[-1:]):
        return 0
    return sum(line.startswith(ATTEMPT) for line in lines)


def attempt_header(attempt: int, environ=os.environ) -> str:
    job = environ.get("SLURM_JOB_ID")
    slurm = f"SLURM job {job} (restart {environ.get('SLURM_RESTART_COUNT', '0')})" if job else "no SLURM job"
    return (f"{ATTEMPT}{attempt}, {slurm}, host {socket.gethostname()}, pid {os.getpid()}, "
            f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')} =====\n")


def open_job_log(log_path: str | os.PathLike, environ=os.environ) -> tuple[_Tee, int]:
    """The job's log stream and its attempt number: the log and its history, the earlier attempts'
    lines first where this attempt continues an unfinished run."""
    log_path, history = Path(log_path), history_path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    attempt = attempts_before(history) + 1
    if attempt > 1:
        shutil.copyfile(history, log_path)
    else:
        history.unlink(missing_ok=True)
        log_path.unlink(missing_ok=True)
    tee = _Tee(*(open(p, "a", buffering=1) for p in (log_path, history)))  # noqa: SIM115 (open until exit)
    tee.write(attempt_header(attempt, environ))
    return tee, attempt


def finish_job_log(stream: _Tee, attempt: int) -> None:
    """Mark the run finished (a later run starts a fresh log): at a clean exit only."""
    stream.write(f"{FINISHED} after attempt {attempt} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')} =====\n")
    stream.flush()


def start_job(log_path: str, threads: int = 1) -> logging.Logger:
    """Send stdout, stderr (progress bars) and logging to ``log_path`` (kept across the attempts
    of a chunked run); use ``threads`` CPU threads."""
    import torch

    stream, attempt = open_job_log(log_path)
    sys.stdout = sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    failed = []
    hook = sys.excepthook
    sys.excepthook = lambda *exc: (failed.append(exc), hook(*exc))
    atexit.register(lambda: failed or finish_job_log(stream, attempt))
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
