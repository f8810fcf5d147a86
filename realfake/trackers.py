"""An experiment tracker for training jobs (``runtime.tracker``: none, tensorboard or wandb).

A runtime setting: what a job writes to its tracker changes none of its outputs, so switching
it reruns nothing. Each Snakemake job is one tracked run, named ``<rule>/<wildcard values>``
(``job_tracker``). TensorBoard writes event files under ``<folder>/tensorboard/<run name>``;
W&B writes under ``<folder>/wandb`` and runs offline unless ``WANDB_MODE`` says otherwise
(compute nodes often have no internet: ``wandb sync`` the ``offline-run-*`` folders afterwards).

A tracker opens its writer at its first use, in the process that uses it, and only on rank 0
(``distributed.context().main``): the job's adapter makes it, ``distributed.launch`` pickles it
into each worker (a copy starts unopened), and the other ranks never open it. A copy opened in a
worker is closed when that worker exits.

A resumed attempt continues the run: ``continue_after(step)`` (``records.TrainingRecord`` calls it
with the checkpoint's step) hides from TensorBoard what earlier attempts logged after that step
(their event files stay; ``SessionLog.START`` at step + 1 purges those points on reading), so each
step shows the values of the attempt that finished it. W&B cannot hide logged points: the steps a
killed attempt logged after its last checkpoint appear twice, once per attempt, at the same
``step`` (a custom x axis, so no point is dropped as out of order).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
from pathlib import Path

from realfake.distributed import context

KINDS = ("none", "tensorboard", "wandb")
EXTRA = "pip install 'realfake[trackers]'"
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


class Tracker:
    """``runtime.tracker: none``: every method does nothing. The base of the real trackers."""

    kind = "none"

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """Scalars at ``step`` (None and NaN skipped)."""

    def log_image(self, tag: str, path_or_array, step: int) -> None:
        """An image at ``step``: a file, a PIL image, or an HxW / HxWxC (or CxHxW) array, uint8 or floats in [0, 1]."""

    def continue_after(self, step: int) -> None:
        """This attempt resumes the run from a checkpoint at ``step``."""

    def close(self) -> None:
        """Finish writing (idempotent)."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _OpenedOnRank0(Tracker):
    """A real tracker: its writer opens at the first use on rank 0 and never on the other ranks."""

    def __init__(self, folder, run_name: str, group: str, config: dict):
        self.folder, self.run_name, self.group = Path(folder).resolve(), run_name, group
        self.config = json.loads(json.dumps(config, default=str))  # plain values: logged, and picklable
        self._writer, self._closed = None, False

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_writer": None}  # a copy in another process opens its own

    def _open(self):
        if self._closed:
            raise RuntimeError(f"the {self.kind} tracker of {self.run_name} is closed")
        if self._writer is None:
            self._writer = self._start()
            atexit.register(self.close)  # a worker's copy: closed when the worker exits
        return self._writer

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        values = {k: float(v) for k, v in values.items() if v is not None and not math.isnan(float(v))}
        if values and context().main:
            self._scalars(self._open(), int(step), values)

    def log_image(self, tag: str, path_or_array, step: int) -> None:
        if context().main:
            self._image(self._open(), tag, image_array(path_or_array), int(step))

    def continue_after(self, step: int) -> None:
        if context().main:
            self._continue(self._open(), int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._finish(self._writer)
        self._writer, self._closed = None, True

    def _continue(self, writer, step: int) -> None:
        pass


class TensorBoardTracker(_OpenedOnRank0):
    """``torch.utils.tensorboard.SummaryWriter`` under ``<folder>/tensorboard/<run name>``."""

    kind = "tensorboard"

    def _start(self):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(self.folder / "tensorboard" / self.run_name))
        writer.add_text("config", f"```\n{json.dumps(self.config, indent=2)}\n```", 0)
        return writer

    def _scalars(self, writer, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            writer.add_scalar(name, value, step)

    def _image(self, writer, tag: str, array, step: int) -> None:
        writer.add_image(tag, array, step, dataformats="HWC")

    def _continue(self, writer, step: int) -> None:
        # what SummaryWriter(purge_step=step + 1) writes: on reading, points at or after it from
        # earlier event files are dropped (the rows at or before the checkpoint's step are kept)
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        writer._get_file_writer().add_event(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def _finish(self, writer) -> None:
        writer.close()


class WandbTracker(_OpenedOnRank0):
    """A W&B run under ``<folder>/wandb``: offline unless ``WANDB_MODE`` is set, project ``WANDB_PROJECT``
    (default realfake); its id is derived from the run name and config, so a retried attempt (same job,
    same params) resumes the same run and a job rerun with other params starts a new one."""

    kind = "wandb"

    def run_id(self) -> str:
        text = json.dumps([self.run_name, self.config], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _start(self):
        import wandb

        self.folder.mkdir(parents=True, exist_ok=True)
        run = wandb.init(dir=str(self.folder), project=os.environ.get("WANDB_PROJECT", "realfake"),
                         name=self.run_name, group=self.group, job_type=self.run_name.split("/")[0],
                         config=self.config, id=self.run_id(), resume="allow",
                         mode=None if os.environ.get("WANDB_MODE") else "offline",
                         settings=wandb.Settings(console="off"))  # the job's log keeps the output, its fds stay
        # the training step as every chart's x axis: an attempt resumed from a checkpoint logs steps
        # at or below the last one logged, which W&B's own step would drop
        run.define_metric("step")
        run.define_metric("*", step_metric="step")
        return run

    def _scalars(self, run, step: int, values: dict[str, float]) -> None:
        run.log({**values, "step": step})

    def _image(self, run, tag: str, array, step: int) -> None:
        import wandb

        run.log({tag: wandb.Image(array), "step": step})

    def _finish(self, run) -> None:
        run.finish()


def image_array(image):
    """An HxWxC uint8 array from a file, a PIL image, or an array (HxW, HxWxC or CxHxW; uint8 or [0, 1])."""
    import numpy as np

    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as opened:
            image = opened.convert("RGB")
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().float().numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"an image is HxW, HxWxC or CxHxW, not an array of shape {array.shape}")
    if array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def open_tracker(kind: str, folder, run_name: str, group: str, config: dict) -> Tracker:
    """A tracker of ``kind`` (``runtime.tracker``) writing under ``folder``; its package is imported
    now, so that a missing one fails the job at its start."""
    trackers = {"none": Tracker, "tensorboard": TensorBoardTracker, "wandb": WandbTracker}
    if kind not in trackers:
        raise ValueError(f"runtime.tracker is {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "none":
        return Tracker()
    try:
        __import__(PACKAGES[kind])
    except ImportError as err:
        raise ImportError(f"runtime.tracker is {kind} but the {PACKAGES[kind]} package is not installed "
                          f"({EXTRA}, or set runtime.tracker: none)") from err
    return trackers[kind](folder, run_name, group, config)


def job_tracker(runtime: dict, rule: str, wildcards: dict, config: dict, workdir=".") -> Tracker:
    """The tracker of one Snakemake job (``runtime``: the config's runtime block): the run is named
    ``<rule>/<wildcard values>`` (``train_classifier/digits/real/0``) and grouped by its data set,
    the one grouping each training job has exactly one of (a classifier can serve several
    experiments); ``config`` (the job's params) is logged with the rule and wildcards."""
    wildcards = {name: str(value) for name, value in dict(wildcards).items()}
    name = "/".join([rule, *wildcards.values()])
    folder = Path(workdir) / runtime["tracker_dir"]
    return open_tracker(runtime["tracker"], folder, name, wildcards.get("dataset", rule),
                        {"rule": rule, "wildcards": wildcards, **config})
