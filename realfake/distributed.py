"""One code path for 1 to N training processes (``torch.distributed``: NCCL on GPUs, gloo on CPU).

A Snakemake job runs one process (the SLURM plugin wraps ordinary rules in ``srun -n1``), so
a job with N GPUs on one node starts its N workers itself: ``launch`` runs
``torch.distributed.run --standalone`` (torchrun) on a pickled call of a library function, and
each worker joins the process group from torchrun's environment. Workers are fresh processes
(not forks of the job's), so a Snakemake script is never re-executed by them.

Inside a worker, ``context()`` says its rank, world size and device; training code asks it and
behaves as one process when no group is initialised.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def context() -> Context:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return Context()


def rank_share(batch: list[int], ctx: Context) -> list[int]:
    """This rank's contiguous share of a global batch (equal shares where the rank count divides it)."""
    size, extra = divmod(len(batch), ctx.world_size)
    start = ctx.rank * size + min(ctx.rank, extra)
    return batch[start:start + size + (ctx.rank < extra)]


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def launch(fn, processes: int, **kwargs):
    """``fn(**kwargs)`` in ``processes`` workers on this node (torchrun); rank 0's return value.

    One process runs ``fn`` here, without a process group. A failed worker stops the others
    and raises ``RuntimeError`` naming the exit code (its traceback is in the job's log).
    """
    if processes <= 1:
        return fn(**kwargs)
    with tempfile.TemporaryDirectory(prefix="realfake-launch-") as folder:
        job, result = Path(folder) / "job.pkl", Path(folder) / "result.pkl"
        job.write_bytes(pickle.dumps({"module": fn.__module__, "name": fn.__qualname__, "kwargs": kwargs,
                                      "result": str(result)}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "realfake.distributed", str(job)]
        run = subprocess.run(cmd, stdout=sys.stdout, stderr=sys.stderr)
        if run.returncode != 0:
            raise RuntimeError(f"{processes} workers of {fn.__qualname__} failed (exit {run.returncode})")
        return pickle.loads(result.read_bytes())


def _worker(job_path: str) -> None:
    """A torchrun worker: join the group, run the pickled call, rank 0 keeps the result."""
    import torch
    import torch.distributed as dist

    job = pickle.loads(Path(job_path).read_bytes())
    local_rank = int(os.environ["LOCAL_RANK"])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format=f"%(asctime)s rank {os.environ['RANK']} %(levelname)s %(name)s: %(message)s")
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        fn = getattr(importlib.import_module(job["module"]), job["name"])
        result = fn(**job["kwargs"])
        if dist.get_rank() == 0:
            Path(job["result"]).write_bytes(pickle.dumps(result))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1])
