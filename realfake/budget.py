"""Training that fits a job's time limit: stop early, checkpoint, and let a retry resume.

A SLURM job dies at its time limit without warning (the executor plugin has no ``--signal``
support), so training watches the clock itself: ``TimeBudget`` says when to stop, a margin
(``runtime.time_limit_margin_minutes``) before the limit, or as soon as SIGTERM arrives (preemption; best effort). The training
loop then writes its checkpoint and raises ``BudgetExhausted``: the job fails, Snakemake's
retries submit it again, and the next attempt resumes from the checkpoint. Checkpoints are
also written every ``Checkpointing.every_steps`` steps or ``every_minutes`` minutes, so a node
failure loses at most that much. Under ``torch.distributed`` every rank stops at the same step.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time

log = logging.getLogger(__name__)


class BudgetExhausted(RuntimeError):
    """Training stopped before the job's time limit; its checkpoint lets a retry resume."""


class TimeBudget:
    """``stop_requested()`` turns true ``margin_minutes`` before ``limit_minutes`` from now
    (no limit: never, unless SIGTERM arrives)."""

    def __init__(self, limit_minutes: float | None = None, margin_minutes: float = 10.0,
                 handle_sigterm: bool = True):
        self.deadline = None
        if limit_minutes is not None:
            if margin_minutes >= limit_minutes:
                log.warning("the job's runtime (%s min) is within the margin (%s min): each attempt stops "
                            "after one step; give the job more time or a smaller margin",
                            limit_minutes, margin_minutes)
            self.deadline = time.monotonic() + 60.0 * max(limit_minutes - margin_minutes, 0.0)
        self.signalled = False
        if handle_sigterm:
            with contextlib.suppress(ValueError):  # not the main thread: the clock alone decides
                signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        log.warning("SIGTERM: stopping at the next step and writing a checkpoint")
        self.signalled = True

    def _local_stop(self) -> bool:
        return self.signalled or (self.deadline is not None and time.monotonic() >= self.deadline)

    def stop_requested(self) -> bool:
        """This process's verdict, agreed by every rank (any rank's stop stops all)."""
        stop = self._local_stop()
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            import torch

            flag = torch.tensor([float(stop)], device=_collective_device())
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop


def _collective_device():
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class Checkpointing:
    """When to write a periodic checkpoint: every ``every_steps`` steps and/or ``every_minutes``."""

    def __init__(self, every_steps: int = 0, every_minutes: float = 0.0):
        self.every_steps, self.every_minutes = every_steps, every_minutes
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        by_steps = self.every_steps and step % self.every_steps == 0
        by_clock = self.every_minutes and time.monotonic() - self.last >= 60.0 * self.every_minutes
        return bool(by_steps or by_clock)

    def saved(self) -> None:
        self.last = time.monotonic()
