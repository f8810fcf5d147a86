"""Shard storage and reading, measured: what a 300-epoch classifier pays per image and per start.

    python bench/shard_io.py [--images 48] [--shards 1000] [--samples-per-shard 20]

1. Per image format (png, jpeg q95, jpeg q75, webp q95): bytes and encode time of a 512-px
   image, and the classifier's input pipeline on ONE CPU core: read from an indexed shard,
   decode, random-resized crop to 224, flip, to tensor (timm's training transform).
2. Opening ``--shards`` shards as the classifier does at start (every rank, every run):
   from their indexes (a JSON read and a stat per shard) against scanning every tar header.
Prints a table; nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from realfake.shards import ShardSamples, ShardWriter, encode_image

FORMATS = [("png", 95), ("jpeg", 95), ("jpeg", 75), ("webp", 95)]


def photo_like(seed: int, size: int = 512) -> Image.Image:
    """Smooth colour fields with fine texture: compresses like a photograph, not like noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((8, 8, 3)) * 255
    image = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.BICUBIC), float)
    image += rng.normal(0, 6, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def pipeline_rate(folder: Path, image_format: str, quality: int, images: list) -> dict:
    from timm.data import create_transform

    path = folder / f"{image_format}{quality}.tar"
    start = time.perf_counter()
    with ShardWriter(path, image_format, quality) as sink:
        for i, image in enumerate(images):
            sink.write(f"{i:09d}", image, i % 10, {"index": i})
    encode_ms = (time.perf_counter() - start) / len(images) * 1e3
    transform = create_transform(224, is_training=True, hflip=0.5)
    samples = ShardSamples([path])
    start = time.perf_counter()
    for i in range(len(samples)):
        tensor = transform(samples[i][0])
    seconds = time.perf_counter() - start
    assert tensor.shape == (3, 224, 224)
    return {"format": f"{image_format} q{quality}" if image_format != "png" else "png",
            "KiB/image": path.stat().st_size / len(images) / 1024, "encode ms": encode_ms,
            "images/s/core": len(samples) / seconds}


def open_shards(folder: Path, count: int, per_shard: int) -> dict:
    tiny = Image.new("RGB", (8, 8))
    paths = []
    for s in range(count):
        paths.append(folder / f"{s:05d}.tar")
        with ShardWriter(paths[-1], "png") as sink:
            for i in range(per_shard):
                sink.write(f"{s * per_shard + i:09d}", tiny, i % 10, {"index": i})
    start = time.perf_counter()
    indexed = ShardSamples(paths)
    with_index = time.perf_counter() - start
    start = time.perf_counter()
    scanned = 0
    for path in paths:  # what reading without an index costs: every member's header
        with tarfile.open(path) as tar:
            scanned += sum(m.name.endswith(".png") for m in tar.getmembers())
    without_index = time.perf_counter() - start
    assert scanned == len(indexed)
    return {"shards": count, "members": count * per_shard * 3, "with index s": with_index,
            "scanning headers s": without_index}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--samples-per-shard", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = [photo_like(i) for i in range(args.images)]
    decode = {}
    for image_format, quality in FORMATS:
        data = encode_image(images[0], image_format, quality)
        start = time.perf_counter()
        for _ in range(20):
            Image.open(__import__("io").BytesIO(data)).convert("RGB")
        decode[(image_format, quality)] = (time.perf_counter() - start) / 20 * 1e3
    with tempfile.TemporaryDirectory() as tmp:
        rows = [pipeline_rate(Path(tmp), f, q, images) for f, q in FORMATS]
        for row, key in zip(rows, FORMATS, strict=True):
            row["decode ms"] = decode[key]
        opened = open_shards(Path(tmp) / "many", args.shards, args.samples_per_shard)
    print(f"512-px photo-like images, {args.images} per format, one CPU core (torch threads = 1)")
    print(f"{'format':<10}{'KiB/image':>10}{'encode ms':>11}{'decode ms':>11}{'images/s/core':>15}")
    for r in rows:
        print(f"{r['format']:<10}{r['KiB/image']:>10.1f}{r['encode ms']:>11.2f}{r['decode ms']:>11.2f}"
              f"{r['images/s/core']:>15.1f}")
    print(f"\nopening {opened['shards']} shards ({opened['members']:,} tar members, page cache warm):")
    print(f"  from indexes:          {opened['with index s']:.3f} s")
    print(f"  scanning tar headers:  {opened['scanning headers s']:.3f} s")


if __name__ == "__main__":
    main()
