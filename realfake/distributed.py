"""One code path for 1 to N training processes (``torch.distributed``: NCCL on GPUs, gloo on CPU).

A Snakemake job runs one process (the SLURM plugin wraps ordinary rules in ``srun -n1``), so
a job with N GPUs on one node starts its N workers itself: ``launch`` runs
``torch.distributed.run --standalone`` (torchrun) on a pickled call of a library function, and
each worker joins the process group from torchrun's environment. Across nodes, the plugin's
``mpi`` path runs the job's process once, without ``srun``: ``launch`` then starts the workers
with the given launcher (``srun``) and explicit geometry, and each worker takes its rank from
``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``, rank 0's address from the first host of
``SLURM_JOB_NODELIST`` (where rank 0 runs; ``SLURM_LAUNCH_NODE_IPADDR`` is whichever host ran
``srun``, wrong when that is not a node of the job). Workers are fresh processes (not forks of the job's), so a
Snakemake script is never re-executed by them; the pickled call lies beside the job's output,
on the file system every node shares.

Inside a worker, ``context()`` says its rank, world size and device; training code asks it and
behaves as one process when no group is initialised.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
import shlex
import socket
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


def launch(fn, processes: int, *, launcher: str | None = None, nodes: int = 1, workdir=None, **kwargs):
    """``fn(**kwargs)`` in ``processes`` workers; rank 0's return value.

    One process runs ``fn`` here, without a process group. ``launcher`` (e.g. ``srun``, the rule's
    ``mpi`` resource) starts them over ``nodes`` nodes; else torchrun on this node. ``workdir``:
    a folder on the shared file system for the pickled call (default: a local temporary one).
    A failed worker stops the others and raises ``RuntimeError`` naming the exit code (its
    traceback is in the job's log).
    """
    if processes <= 1:
        return fn(**kwargs)
    Path(workdir or tempfile.gettempdir()).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".launch-", dir=workdir) as folder:
        job, result = Path(folder) / "job.pkl", Path(folder) / "result.pkl"
        job.write_bytes(pickle.dumps({"module": fn.__module__, "name": fn.__qualname__, "kwargs": kwargs,
                                      "result": str(result)}))
        worker = [sys.executable, "-m", "realfake.distributed", str(job)]
        env = dict(os.environ)
        if launcher:
            per_node, rest = divmod(processes, nodes)
            if rest:
                raise ValueError(f"{processes} workers do not split evenly over {nodes} nodes")
            cmd = [*shlex.split(launcher), f"--nodes={nodes}", f"--ntasks={processes}",
                   f"--ntasks-per-node={per_node}", *worker]
            env["MASTER_PORT"] = str(_free_port())
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={processes}", *worker[1:]]
        # the workers' lines pass through this process: the job's log stream (jobs.start_job) need not be a file
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True) as run:
            for line in run.stdout:
                sys.stdout.write(line)
        if run.returncode != 0:
            raise RuntimeError(f"{processes} workers of {fn.__qualname__} failed (exit {run.returncode})")
        return pickle.loads(result.read_bytes())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def first_host(nodelist: str) -> str:
    """The first host of a SLURM hostlist: ``gpu-[07-09,12],cpu1`` -> ``gpu-07``."""
    match = re.match(r"([^,\[]*)(?:\[([^-,\]]+))?", nodelist.strip())
    if not match or not match[1]:
        raise ValueError(f"SLURM_JOB_NODELIST {nodelist!r} is not a SLURM hostlist")
    return match[1] + (match[2] or "")


def _rank_from_slurm() -> None:
    """torch.distributed's env:// variables from an srun task's (the ``mpi`` path)."""
    if "RANK" in os.environ or "SLURM_PROCID" not in os.environ:
        return
    rank0 = first_host(os.environ["SLURM_JOB_NODELIST"]) if "SLURM_JOB_NODELIST" in os.environ else "127.0.0.1"
    os.environ.update(RANK=os.environ["SLURM_PROCID"], WORLD_SIZE=os.environ["SLURM_NTASKS"],
                      LOCAL_RANK=os.environ["SLURM_LOCALID"], MASTER_ADDR=socket.gethostbyname(rank0))


def _worker(job_path: str) -> None:
    """A worker (torchrun's or srun's): join the group, run the pickled call, rank 0 keeps the result."""
    import torch
    import torch.distributed as dist

    _rank_from_slurm()
    job = pickle.loads(Path(job_path).read_bytes())
    local_rank = int(os.environ["LOCAL_RANK"])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format=f"%(asctime)s rank {os.environ['RANK']} %(levelname)s %(name)s: %(message)s")
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    logging.getLogger(__name__).info("rank %s of %s on %s, rendezvous %s:%s, CUDA_VISIBLE_DEVICES=%s",
                                     os.environ["RANK"], os.environ["WORLD_SIZE"], socket.gethostname(),
                                     os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"],
                                     os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    try:
        fn = getattr(importlib.import_module(job["module"]), job["name"])
        result = fn(**job["kwargs"])
        if dist.get_rank() == 0:
            Path(job["result"]).write_bytes(pickle.dumps(result))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1])
