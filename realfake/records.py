"""Training records that survive time limits: a timm-style ``summary.csv`` per training job, and its curves.

A classifier gets a row per epoch (train loss, learning rate, validation top-1/top-5 where it
validated, images/s, wall seconds), a LoRA a row every ``runtime.lora_log_every`` steps (loss,
L_simple, L_MMD, the weighted ratio, learning rate, images/s, wall seconds). Snakemake deletes a
job's outputs before every attempt, and a retry after a time limit is a new attempt: so the rows
live in memory and in the job's checkpoint (``TrainingRecord.state``), and the whole CSV is
rewritten atomically from them at every row. An attempt resumed at step k starts from the rows of
its checkpoint, all of them at or before k: no gap, no row twice. ``wall_s`` counts the training
time of every attempt up to the row (the time after a killed attempt's last checkpoint, trained
again, counts once). ``plot_curves`` draws a summary as ``training_curves.png``. With a tracker
(``trackers``, ``runtime.tracker``), every row's numeric cells go to it too, at the row's step.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import time

from realfake.atomic import atomic_path, write_text

log = logging.getLogger(__name__)

CLASSIFIER_COLUMNS = ["epoch", "step", "train_loss", "lr", "val_top1", "val_top5", "images_per_s", "wall_s"]
LORA_COLUMNS = ["step", "loss", "l_simple", "l_mmd", "weighted_mmd_ratio", "lr", "images_per_s", "wall_s"]
_FORMATS = {"images_per_s": ".1f", "wall_s": ".1f", "val_top1": ".2f", "val_top5": ".2f"}  # else 6 digits


def _cell(name: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return format(value, _FORMATS.get(name, ".6g"))
    return str(value)


class TrainingRecord:
    """The rows of one training run's ``summary.csv`` (``path``; None: kept, never written, as on
    ranks other than 0), continued from a checkpoint's ``state`` (rows at or before ``resumed_at``).
    ``tracker`` (``trackers.Tracker``) gets each added row's numeric cells but ``step``, at its step;
    told ``continue_after(resumed_at)`` first, so that it can hide what a killed attempt logged later."""

    def __init__(self, path: str | os.PathLike | None, columns: list[str], state: dict | None = None,
                 resumed_at: int = 0, tracker=None):
        self.path, self.columns, self.tracker = path, columns, tracker
        if tracker is not None:
            tracker.continue_after(resumed_at)
        state = state or {}
        self.rows = [dict(row) for row in state.get("rows", []) if row["step"] <= resumed_at]
        self.wall_before = float(state.get("wall_s", 0.0)) if resumed_at else 0.0
        if resumed_at and not state:
            log.warning("the checkpoint holds no summary rows (written by an older realfake): %s starts at "
                        "step %d", path, resumed_at)
        self.started = time.monotonic()
        self.write()  # Snakemake deleted it before this attempt: the rows so far, at once

    def wall_s(self) -> float:
        """Training seconds up to now, over every attempt of this run."""
        return self.wall_before + time.monotonic() - self.started

    def add(self, **row) -> dict:
        """Append a row (``wall_s`` filled in) and rewrite the CSV."""
        row = {**row, "wall_s": self.wall_s()}
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"summary columns {sorted(unknown)} are not among {self.columns}")
        self.rows.append(row)
        self.write()
        if self.tracker is not None:
            self.tracker.log_scalars(row["step"], {name: value for name, value in row.items()
                                                   if name != "step" and isinstance(value, (int, float))})
        return row

    def state(self) -> dict:
        """What a checkpoint keeps, so that a resumed attempt continues the record (plain values)."""
        return {"rows": [dict(row) for row in self.rows], "wall_s": self.wall_s()}

    def text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_cell(name, row.get(name)) for name in self.columns])
        return out.getvalue()

    def write(self) -> None:
        if self.path is not None:
            write_text(self.path, self.text())


def summed_over_ranks(values: list[float]) -> list[float]:
    """``values`` summed over the ranks of the process group (as they are without one). Every rank
    must call it at the same point (each step), so each rank's record holds the same sums."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    import torch

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def progress_line(logger: logging.Logger, message: str, *args) -> None:
    """A log line that starts a line of its own in a log file that progress bars also write to."""
    from tqdm import tqdm

    with tqdm.external_write_mode():
        logger.info(message, *args)


def duration(seconds: float) -> str:
    """``3h12m``, ``4m05s``, ``12s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Pace:
    """This attempt's training speed: images/s over a stretch, and the time left at its rate."""

    def __init__(self, step: int):
        self.first_step, self.started = step, time.monotonic()
        self.mark(step)

    def mark(self, step: int) -> None:
        """Start a stretch (an epoch, a logging interval) at ``step``."""
        self.stretch_step, self.stretch_started = step, time.monotonic()

    def images_per_s(self, images: float) -> float:
        return images / max(time.monotonic() - self.stretch_started, 1e-9)

    def left(self, step: int, total_steps: int) -> str:
        done = step - self.first_step
        if done <= 0:
            return "unknown time"
        return duration((total_steps - step) * (time.monotonic() - self.started) / done)


def read_summary(path: str | os.PathLike):
    import pandas as pd

    return pd.read_csv(path)


def plot_curves(summary_path: str | os.PathLike, out_path: str | os.PathLike, title: str = "") -> None:
    """``training_curves.png`` from a ``summary.csv`` (a classifier's or a LoRA's, told by its columns):
    losses, learning rate, and validation accuracy (classifier) or the weighted L_MMD ratio (LoRA),
    against epoch or step. Any number of rows, empty validation cells included."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    frame = read_summary(summary_path)
    classifier = "epoch" in frame.columns
    axis = "epoch" if classifier else "step"
    dots = "." if len(frame) < 40 else None
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharex=True)
    losses = ["train_loss"] if classifier else ["loss", "l_simple", "l_mmd"]
    for name in losses:
        axes[0].plot(frame[axis], frame[name], marker=dots, label=name)
    values = frame[losses].to_numpy()
    if len(frame) and (values > 0).all() and values.max() / values.min() > 10:
        axes[0].set_yscale("log")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    axes[1].plot(frame[axis], frame["lr"], color="tab:gray", drawstyle="steps-post" if classifier else "default")
    axes[1].set_ylabel("learning rate")
    if classifier:
        validated = frame.dropna(subset=["val_top1"])
        for name, label in (("val_top1", "top-1"), ("val_top5", "top-5")):
            axes[2].plot(validated["epoch"], validated[name], marker="o", label=label)
        axes[2].set_ylabel("validation accuracy (%)")
        axes[2].set_ylim(0, 102)  # a point at 100 % stays in sight
        if len(validated):
            axes[2].legend(fontsize=8, loc="lower right")
        else:
            axes[2].text(0.5, 0.5, "not validated", ha="center", va="center", transform=axes[2].transAxes)
    else:
        axes[2].plot(frame["step"], frame["weighted_mmd_ratio"], marker=dots, color="tab:red")
        axes[2].set_ylabel("gamma * L_MMD / L_simple")
    for ax in axes:
        ax.set_xlabel(axis)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if len(frame):
        last = frame.iloc[-1]
        speed = f"last {axis}: {last['images_per_s']:.0f} images/s; {last['wall_s'] / 60:.1f} min of training"
        title = f"{title} ({speed})" if title else speed
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
