"""Shard storage and the classifier's input pipeline, measured: what a 300-epoch run pays per image.

    python bench/shard_io.py [--images 48] [--shards 1000] [--samples-per-shard 20]

1. Per image format (png, jpeg q95, jpeg q75, webp q95), 512-px images, ONE CPU core, side by side
   in one run (the paths take turns, 9 rounds, median): bytes, encode and decode time, and
   images/s of the training input path
   - today: read the member, decode whole, timm's training transform (random-resized crop to 224,
     flip, colour jitter, to tensor, normalise), as before the image pipeline;
   - drafted: ``ShardSamples.open`` (member read, crc32 checked) -> ``train_transform`` (box from
     the header, JPEG decoded at the scale the crop needs and only down to its bottom row, resized
     by torch's uint8 kernels, uint8 out, jitter factors drawn);
     "unchecked" is the same on bytes with no checksum (a file of a data set folder): the JPEG
     is decoded down to its last row;
     "+batch" adds ``finish_batch`` (jitter, normalise) run on this CPU instead of the GPU;
   - eval today / eval drafted: the center-crop evaluation transform, likewise;
   - crc32: what checking each member costs, as a share of the drafted path's time.
2. The IN-1K recipe (RandAugment) on JPEG q95, today vs drafted; a real-JPEG folder (500x375 and
   375x500 q90, ImageNet's typical sizes) through ``ImageList``.
3. The loader as ``train_classifier`` builds it (``make_loader``, ``EpochBatches``, 2 workers,
   batches of 64) over a JPEG shard: images/s of the whole process tree on this machine.
4. Opening ``--shards`` shards from their indexes against scanning every tar header.
Prints tables; nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from realfake.classifier import (
    EpochBatches,
    EpochSeeded,
    ImageList,
    Recipe,
    TransformedShards,
    eval_transform,
    make_loader,
    train_transform,
)
from realfake.data import open_image
from realfake.distributed import context
from realfake.image_pipeline import finish_batch
from realfake.shards import ShardSamples, ShardWriter

FORMATS = [("png", 95), ("jpeg", 95), ("jpeg", 75), ("webp", 95)]
RECIPE = Recipe(train_resolution=224, test_resolution=224, crop_pct=0.875, hflip=0.5)


def photo_like(seed: int, size=512) -> Image.Image:
    """Smooth colour fields with fine texture: compresses like a photograph, not like noise."""
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    coarse = rng.random((8, 8, 3)) * 255
    image = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC), float)
    image += rng.normal(0, 6, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def timm_today(training: bool):
    """The transforms before the image pipeline: timm's, whole decode, float out."""
    from timm.data import create_transform

    if training:
        return create_transform(224, is_training=True, hflip=RECIPE.hflip, scale=RECIPE.crop_scale)
    return create_transform(224, is_training=False, crop_pct=RECIPE.crop_pct, interpolation=RECIPE.interpolation)


def per_second(count: int, runs: dict, rounds: int = 9) -> dict:
    """Images/s of each ``runs[name](i)`` over ``count`` images, seeded per image as ``EpochSeeded``
    does; the paths take turns round by round and each reports its median round, so a neighbour's
    burst or a clock change falls on all of them alike."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for i in range(count):
                random.seed(i)
                torch.default_generator.manual_seed(i)
                run(i)
            times[name].append(time.perf_counter() - start)
    return {name: count / statistics.median(t) for name, t in times.items()}


def write_shard(path: Path, images: list, image_format: str = "jpeg", quality: int = 95) -> Path:
    """``images`` as one shard, labels i % 10."""
    with ShardWriter(path, image_format, quality) as sink:
        for i, image in enumerate(images):
            sink.write(f"{i:09d}", image, i % 10, {"index": i})
    return path


def raw_member(samples: ShardSamples, i: int) -> bytes:
    number, offset, size, _ = (int(v) for v in samples.locations[i])
    with open(samples.paths[number], "rb") as f:  # today's read: no checksum
        f.seek(offset)
        return f.read(size)


def finish_one(out) -> torch.Tensor:
    images, jitter = out
    return finish_batch(images[None], jitter[None])


def pipeline_rates(folder: Path, image_format: str, quality: int, images: list) -> dict:
    path = folder / f"{image_format}{quality}.tar"
    start = time.perf_counter()
    write_shard(path, images, image_format, quality)
    encode_ms = (time.perf_counter() - start) / len(images) * 1e3
    samples, n = ShardSamples([path]), len(images)
    today, today_eval = timm_today(True), timm_today(False)
    train, evaluation = train_transform(RECIPE), eval_transform(RECIPE)
    members = [raw_member(samples, i) for i in range(n)]
    start = time.perf_counter()
    for _ in range(20):
        for data in members:
            zlib.crc32(data)
    crc_ms = (time.perf_counter() - start) / (20 * n) * 1e3
    rates = per_second(n, {
        "decode": lambda i: open_image(members[i]).convert("RGB"),
        "today": lambda i: today(open_image(raw_member(samples, i)).convert("RGB")),
        "drafted": lambda i: train(samples.open(i)),
        "unchecked": lambda i: train(open_image(raw_member(samples, i))),
        "+batch": lambda i: finish_one(train(samples.open(i))),
        "eval today": lambda i: today_eval(open_image(raw_member(samples, i)).convert("RGB")),
        "eval drafted": lambda i: evaluation(samples.open(i))})
    row = {"format": f"{image_format} q{quality}" if image_format != "png" else "png",
           "KiB/image": path.stat().st_size / n / 1024, "encode ms": encode_ms,
           "decode ms": 1e3 / rates.pop("decode"), **rates}
    row["crc32 %"] = 100 * crc_ms / (1e3 / row["drafted"])
    return row


def randaugment_rates(folder: Path, images: list) -> dict:
    """The IN-1K recipe (RandAugment rand-m7-mstd0.5, no jitter) on JPEG q95: timm's PIL ops run
    on the crop in both paths, so only the decode and the resize can gain."""
    from timm.data import create_transform

    samples = ShardSamples([write_shard(folder / "randaugment.tar", images)])
    recipe = Recipe(auto_augment="rand-m7-mstd0.5")
    today = create_transform(224, is_training=True, hflip=recipe.hflip, auto_augment=recipe.auto_augment,
                             scale=tuple(recipe.crop_scale))
    train = train_transform(recipe)
    return per_second(len(images), {"today": lambda i: today(open_image(raw_member(samples, i)).convert("RGB")),
                                    "drafted": lambda i: train(samples.open(i))})


def jpeg_folder_rates(folder: Path, count: int) -> dict:
    """ImageNet-like files: q90, landscape 500x375 and portrait 375x500."""
    paths = []
    for i in range(count):
        paths.append(folder / f"{i:05d}.JPEG")
        photo_like(i, (500, 375) if i % 4 else (375, 500)).save(paths[-1], quality=90)
    today, train = timm_today(True), train_transform(RECIPE)
    files = ImageList(paths, np.zeros(count), train)
    return per_second(count, {"today": lambda i: today(Image.open(paths[i]).convert("RGB")),
                               "drafted": lambda i: files[i],
                               "+batch": lambda i: finish_one(files[i][0])})


def loader_rate(folder: Path, images: list, finish: bool, workers: int = 2, batch_size: int = 64,
                epochs: int = 2) -> float:
    """Images/s of the loader ``train_classifier`` builds; ``finish``: batches finished on the CPU
    (else they are what a GPU would receive)."""
    path = write_shard(folder / "loader.tar", images * 4)
    samples = EpochSeeded(TransformedShards(ShardSamples([path]), train_transform(RECIPE)), seed=0)
    batches = EpochBatches(len(samples), batch_size, 0, context())
    loader = make_loader(samples, workers, torch.device("cpu"), batch_sampler=batches)
    seen, start = 0, None
    for epoch in range(epochs + 1):  # epoch 0 starts the workers: not timed
        for (batch, jitter), _labels in loader if batches.start(epoch) else ():
            if finish:
                finish_batch(batch, jitter)
            seen += len(batch) if start else 0
        start = start or time.perf_counter()
    return seen / (time.perf_counter() - start)


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
    with tempfile.TemporaryDirectory() as tmp:
        rows = [pipeline_rates(Path(tmp), f, q, images) for f, q in FORMATS]
        augmented = randaugment_rates(Path(tmp), images)
        folder = jpeg_folder_rates(Path(tmp), args.images)
        loader = {finish: loader_rate(Path(tmp), images, finish) for finish in (False, True)}
        opened = open_shards(Path(tmp) / "many", args.shards, args.samples_per_shard)
    print(f"512-px photo-like images, {args.images} per format, one CPU core (torch threads = 1); images/s/core")
    columns = ["KiB/image", "encode ms", "decode ms", "today", "drafted", "unchecked", "+batch", "eval today",
               "eval drafted", "crc32 %"]
    print(f"{'format':<10}" + "".join(f"{c:>13}" for c in columns))
    for r in rows:
        print(f"{r['format']:<10}" + "".join(f"{r[c]:>13.2f}" for c in columns))
    print(f"\nIN-1K recipe (RandAugment), jpeg q95: today {augmented['today']:.1f}, drafted "
          f"{augmented['drafted']:.1f} images/s/core")
    print(f"real-JPEG folder (500x375 / 375x500 q90, ImageList): today {folder['today']:.1f}, "
          f"drafted {folder['drafted']:.1f}, +batch {folder['+batch']:.1f} images/s/core")
    print(f"train_classifier's loader, 2 workers, batches of 64, 512-px JPEG q95 shard: {loader[False]:.1f} "
          f"images/s of uint8 batches; {loader[True]:.1f} finished (jitter, normalise) in the main process")
    print(f"\nopening {opened['shards']} shards ({opened['members']:,} tar members, page cache warm):")
    print(f"  from indexes:          {opened['with index s']:.3f} s")
    print(f"  scanning tar headers:  {opened['scanning headers s']:.3f} s")


if __name__ == "__main__":
    main()
