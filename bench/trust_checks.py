"""What the checks of issue 31 cost at the paper's scale, measured on this machine.

    python bench/trust_checks.py [--rows 1281167] [--shards 5000] [--samples 2560] [--model-gib 1.0]

1. A checkpoint's fingerprint (``classifier_inputs``, ``lora_inputs``): the sha256 of an
   IN-1K-sized manifest (``--rows`` rows: ImageNet's paths, labels, class names), the identity of
   ``--shards`` shards of ``--samples`` images (the sha256 of each index), and the sha256 of
   ``--model-gib`` GiB of weights, scaled to SD1.5's folder (4.3 GB: fp32 UNet, VAE, text encoder).
2. A shard index's checks on open (``read_index``: counts, labels' digest, member bounds) against
   the read without them, per shard, and ``ShardSamples`` over all ``--shards`` shards.
Prints a table; writes only into a temporary folder (the shard tars are sparse files).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import zlib
from pathlib import Path

SD15_BYTES = 4.3e9  # unet 3.44 GB + vae 0.33 GB + text encoder 0.49 GB (fp32 safetensors)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_manifest(path: Path, rows: int) -> None:
    import pandas as pd

    from realfake.data import manifest_frame

    wnids = [f"n{k:08d}" for k in range(1000)]
    frame = manifest_frame(("train", f"/datasets/imagenet/train/{wnids[i % 1000]}/{wnids[i % 1000]}_{i}.JPEG",
                             i % 1000, f"class {i % 1000}", wnids[i % 1000]) for i in range(rows))
    pd.DataFrame(frame).to_parquet(path, index=False)


def write_shards(folder: Path, shards: int, samples: int) -> list[Path]:
    """Indexes as ``ShardWriter`` writes them, beside sparse tars of the size they name."""
    from realfake.shards import INDEX_KIND, index_path, labels_sha256

    rng, paths = random.Random(0), []
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        keys = [f"{s * samples + i:09d}" for i in range(samples)]
        labels = [rng.randrange(1000) for _ in keys]
        images = [[1536 * (3 * i) + 512, 60_000, zlib.crc32(str(i).encode())] for i in range(samples)]
        metas = [[1536 * (3 * i + 2) + 512, 120, 7] for i in range(samples)]
        filesize = 1536 * 3 * samples + 70_000
        entry = {"url": f"{s:05d}.tar", "nsamples": samples, "filesize": filesize, "md5sum": "0" * 32,
                 "image_format": "jpeg", "keys": keys, "labels": labels, "labels_sha256": labels_sha256(labels),
                 "images": images, "metas": metas}
        path = folder / f"{s:05d}.tar"
        with open(path, "wb") as f:
            f.truncate(filesize)
        index_path(path).write_text(json.dumps({"__kind__": INDEX_KIND, "wids_version": 1, "shardlist": [entry]}))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_281_167)
    parser.add_argument("--shards", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=2560)
    parser.add_argument("--model-gib", type=float, default=1.0)
    args = parser.parse_args()

    from realfake.digests import content_sha256, file_sha256
    from realfake.shards import ShardSamples, check_entry, index_path, read_index, shard_identity

    with tempfile.TemporaryDirectory(prefix="trust-checks-") as tmp:
        tmp = Path(tmp)
        write_manifest(tmp / "manifest.parquet", args.rows)
        size = (tmp / "manifest.parquet").stat().st_size
        print(f"manifest: {args.rows} rows, {size / 1e6:.1f} MB parquet: sha256 "
              f"{timed(lambda: file_sha256(tmp / 'manifest.parquet')):.3f} s")

        weights = tmp / "model" / "unet" / "diffusion_pytorch_model.safetensors"
        weights.parent.mkdir(parents=True)
        with open(weights, "wb") as f:
            for _ in range(int(args.model_gib * 64)):
                f.write(os.urandom(16 << 20))
        seconds = timed(lambda: content_sha256(tmp / "model"), repeat=2)
        rate = weights.stat().st_size / seconds
        print(f"model folder: {weights.stat().st_size / 2**30:.2f} GiB hashed in {seconds:.2f} s "
              f"({rate / 1e9:.2f} GB/s, page cache warm); SD1.5's 4.3 GB: {SD15_BYTES / rate:.1f} s")
        weights.unlink()

        shards = write_shards(tmp / "shards", args.shards, args.samples)
        index_mb = sum(index_path(p).stat().st_size for p in shards) / 1e6
        identity = timed(lambda: [shard_identity(p) for p in shards], repeat=1)
        print(f"{args.shards} shards x {args.samples} samples ({index_mb:.0f} MB of indexes): identities "
              f"{identity:.2f} s ({1e3 * identity / args.shards:.2f} ms a shard)")

        sample = shards[: min(200, len(shards))]
        plain = timed(lambda: [json.loads(index_path(p).read_text()) for p in sample])
        checked = timed(lambda: [read_index(p) for p in sample])
        entries = [read_index(p) for p in sample]
        checks = timed(lambda: [check_entry(e, p) for e, p in zip(entries, sample, strict=True)])
        print(f"index open per shard: parse {1e3 * plain / len(sample):.2f} ms, read_index with its checks "
              f"{1e3 * checked / len(sample):.2f} ms (the checks alone {1e3 * checks / len(sample):.2f} ms)")
        opened = timed(lambda: ShardSamples(shards, num_classes=1000), repeat=1)
        print(f"ShardSamples over {args.shards} shards ({args.shards * args.samples / 1e6:.1f} M images, "
              f"labels < 1000): {opened:.1f} s")


if __name__ == "__main__":
    main()
