"""Resumable training: one checkpoint format for LoRA steps and classifier epochs.

A checkpoint sits beside its job's output (``<output>.checkpoint.pt``), holds the trained
weights, optimizer and grad-scaler state, how far training got (``progress``: steps or
epochs), what else a resumed run continues (``extra``: the training record's rows, ``records``),
and a fingerprint: the settings, and the content identity of every input file (the manifest,
captions, guidance, the shards' indexes, the base model's files). A checkpoint written
for other settings or other inputs is ignored, and the log says which of them differs: a run
re-queued after a config edit or a rebuilt input starts afresh instead of resuming stale weights.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from realfake.atomic import torch_save

log = logging.getLogger(__name__)


def make_fingerprint(settings: dict, inputs: dict[str, str]) -> dict:
    """What a checkpoint was written for: ``settings`` (plain values) and ``inputs`` (name -> identity)."""
    return {"settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
            "inputs": dict(sorted(inputs.items()))}


def fingerprint_differences(then, now: dict) -> list[str]:
    """What differs between a checkpoint's fingerprint and this run's, in words."""
    if not isinstance(then, dict) or set(then) != {"settings", "inputs"}:
        return ["it was written by an older realfake, without the identity of its inputs"]
    found = []
    for part, kind in (("inputs", "input"), ("settings", "setting")):
        old, new = then[part], now[part]
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                found.append(f"{kind} {name}: {_short(old.get(name))} then, {_short(new.get(name))} now")
    return found


def _short(value) -> str:
    if value is None:
        return "absent"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:12] + "..." if len(text) == 64 else (text if len(text) <= 80 else text[:77] + "...")


def save_checkpoint(path, fingerprint: dict, progress: int, weights: dict, optimizer, scaler,
                    extra: dict | None = None) -> None:
    """``extra``: plain values a resumed run continues from (the training record: ``records``)."""
    torch_save(path, {"fingerprint": fingerprint, "progress": progress, "weights": weights,
                      "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "extra": extra or {}})
    log.info("checkpoint at %d -> %s", progress, path)


def resume(path, fingerprint: dict, optimizer, scaler) -> tuple[int, dict | None, dict]:
    """(progress, weights, extra) from a checkpoint written for this fingerprint, optimizer and scaler
    restored; else (0, None, {}), and the log names what differs."""
    if not path or not Path(path).exists():
        return 0, None, {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    differences = fingerprint_differences(state.get("fingerprint"), fingerprint)
    if differences:
        shown = differences[:8] + ([f"... and {len(differences) - 8} more"] if len(differences) > 8 else [])
        log.warning("ignoring checkpoint %s (training starts from scratch): it was written for other inputs "
                    "or settings:\n  %s", path, "\n  ".join(shown))
        return 0, None, {}
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    log.info("resumed from %s at %d (same settings, same %d inputs)", path, state["progress"],
             len(fingerprint["inputs"]))
    return int(state["progress"]), state["weights"], state.get("extra") or {}
