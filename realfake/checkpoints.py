"""Resumable training: one checkpoint format for LoRA steps and classifier epochs.

A checkpoint sits beside its job's output (``<output>.checkpoint.pt``), holds the trained
weights, optimizer and grad-scaler state and how far training got (``progress``: steps or
epochs), and a fingerprint of the settings: one written with other settings is ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from realfake.atomic import torch_save

log = logging.getLogger(__name__)


def save_checkpoint(path, fingerprint: str, progress: int, weights: dict, optimizer, scaler) -> None:
    torch_save(path, {"fingerprint": fingerprint, "progress": progress, "weights": weights,
                      "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()})
    log.info("checkpoint at %d -> %s", progress, path)


def resume(path, fingerprint: str, optimizer, scaler) -> tuple[int, dict | None]:
    """(progress, weights) from a matching checkpoint, optimizer and scaler restored; else (0, None)."""
    if not path or not Path(path).exists():
        return 0, None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: it was written with other settings", path)
        return 0, None
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    log.info("resumed from %s at %d", path, state["progress"])
    return int(state["progress"]), state["weights"]
