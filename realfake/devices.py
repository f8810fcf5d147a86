"""Device and precision choice shared by every GPU stage."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available on this node")
    return torch.device(requested)


def inference_dtype(device: torch.device, requested: str = "float16") -> torch.dtype:
    """Half precision on GPUs as the paper ran; CPUs compute in float32."""
    if device.type == "cpu":
        return torch.float32
    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[requested]
