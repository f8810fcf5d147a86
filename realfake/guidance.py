"""Intra-class visual guidance (Sec. 3.2): CLIP image embeddings, class means and per image.

Stored as safetensors: ``class_mean`` [classes, width] (the paper) and ``per_image``
[train images, width] (the authors' released code conditions on each image's own embedding).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from realfake.atomic import atomic_path
from realfake.data import rgb_batches
from realfake.devices import pick_device
from realfake.models import pretrained_source

GUIDANCE_MODES = ("class_mean", "per_image")


@torch.no_grad()
def clip_image_embeddings(model: str, images: list, batch_size: int = 64,
                          device: str = "auto") -> torch.Tensor:
    """Projected CLIP image embeddings (768-d for ViT-L/14: SD1.5's text width), float32.

    ``images``: file paths or PIL images.
    """
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    model, pin = pretrained_source(model, "CLIP")
    dev = pick_device(device)
    processor = CLIPImageProcessor.from_pretrained(model, **pin)
    encoder = CLIPVisionModelWithProjection.from_pretrained(model, **pin).to(dev).eval()
    chunks = []
    for batch in tqdm(rgb_batches(images, batch_size), total=-(-len(images) // batch_size), desc="CLIP embeddings"):
        pixels = processor(images=batch, return_tensors="pt").pixel_values.to(dev)
        chunks.append(encoder(pixel_values=pixels).image_embeds.float().cpu())
    return torch.cat(chunks)


def class_means(embeddings: torch.Tensor, labels: np.ndarray, num_classes: int,
                samples_per_class: int | None = None, seed: int = 0) -> torch.Tensor:
    """Mean embedding of (a seeded random sample of) each class's images."""
    rng = np.random.default_rng(seed)
    means = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            raise ValueError(f"class {c} has no training images: cannot form its visual guidance")
        if samples_per_class is not None and samples_per_class < len(members):
            members = rng.choice(members, samples_per_class, replace=False)
        means.append(embeddings[members].mean(dim=0))
    return torch.stack(means)


def save_guidance(path, class_mean: torch.Tensor, per_image: torch.Tensor | None) -> None:
    from safetensors.torch import save_file

    tensors = {"class_mean": class_mean.contiguous()}
    if per_image is not None:
        tensors["per_image"] = per_image.contiguous()
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))


def guidance_rows(path, mode: str, labels, indices) -> torch.Tensor:
    """The guidance vector for each image (its class mean, or its own embedding)."""
    from safetensors.torch import load_file

    if mode not in GUIDANCE_MODES:
        raise ValueError(f"guidance mode must be one of {GUIDANCE_MODES}, got {mode!r}")
    tensors = load_file(str(path))
    if mode == "per_image" and "per_image" not in tensors:
        raise ValueError(f"guidance file {path} holds no per_image embeddings: set guidance.per_image")
    if mode == "class_mean":
        return tensors["class_mean"][torch.tensor(np.array(labels), dtype=torch.long)]  # a copy: columns are read-only
    return tensors["per_image"][torch.tensor(np.array(indices), dtype=torch.long)]
