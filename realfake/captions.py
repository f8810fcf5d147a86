"""BLIP-2 captions of the real training images (Sec. 3.2, following CiP)."""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from realfake.data import load_rgb
from realfake.devices import inference_dtype, pick_device
from realfake.models import pretrained_source


@torch.no_grad()
def caption_images(model: str, image_paths: list[str], max_new_tokens: int = 16,
                   batch_size: int = 32, device: str = "auto", dtype: str = "float16",
                   cpu_dtype: str = "float32") -> list[str]:
    """One greedy caption per image, no text prompt (the paper's BLIP-2 settings)."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    model, pin = pretrained_source(model, "BLIP-2")
    dev = pick_device(device)
    processor = Blip2Processor.from_pretrained(model, **pin)
    captioner = Blip2ForConditionalGeneration.from_pretrained(
        model, dtype=inference_dtype(dev, dtype, cpu_dtype), **pin).to(dev).eval()
    captions = []
    for start in tqdm(range(0, len(image_paths), batch_size), desc="captions"):
        images = [load_rgb(p) for p in image_paths[start:start + batch_size]]
        inputs = processor(images=images, return_tensors="pt").to(dev, captioner.dtype)
        tokens = captioner.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        captions += [c.strip() for c in processor.batch_decode(tokens, skip_special_tokens=True)]
    return captions


def captions_frame(train: pd.DataFrame, captions: list[str]) -> pd.DataFrame:
    """captions.parquet: one row per training image, keyed by its index in the train split."""
    return pd.DataFrame({"index": train["index"].to_numpy(), "path": train["path"].to_numpy(),
                         "caption": captions})


def read_captions(path, expected_rows: int) -> list[str]:
    frame = pd.read_parquet(path)
    if "caption" not in frame.columns or len(frame) != expected_rows:
        raise ValueError(f"captions file {path} must hold a 'caption' column with one row per "
                         f"training image ({expected_rows}); found {len(frame)} rows")
    return frame.sort_values("index")["caption"].tolist()
