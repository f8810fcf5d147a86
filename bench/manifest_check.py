"""The manifest's image check, measured: what each way of catching a truncated file costs per image.

    python bench/manifest_check.py [--images 40] [--rounds 5]

1. Cost on whole files, ONE core, the methods taking turns (median round): ``Image.verify`` (the
   check before: reads no JPEG data), the end-of-image marker (header parse + the last 2 bytes), a
   decode at 1/8 scale (``draft``: every byte still entropy-decoded), a full decode, and
   ``data.verify_image`` (what the manifest runs), on JPEG q90 at ImageNet's typical 500x375 and
   at 1600x1200, and on PNG and WebP at 500x375; with the time for 1.28 M images on one core.
2. What each method catches: each format cut at 10 %, 50 %, 99 % and 2 bytes short.
Images are written to a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from realfake.data import DataError, verify_image

IMAGENET_IMAGES = 1_281_167
END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}  # PNG: the IEND chunk


def photo_like(seed: int, size: tuple[int, int]) -> Image.Image:
    """Smooth colour fields with fine texture: compresses like a photograph, not like noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize(size, Image.BICUBIC)
    return Image.fromarray(np.clip(np.asarray(coarse, float) + rng.normal(0, 6, (size[1], size[0], 3)), 0, 255)
                           .astype(np.uint8))


def verify(path):
    with Image.open(path) as image:
        image.verify()


def end_marker(path):
    with Image.open(path) as image:
        marker = END_MARKERS.get(image.format, b"")
        image.fp.seek(-len(marker), 2)
        if marker and image.fp.read(len(marker)) != marker:
            raise OSError(f"no end marker {marker!r}")


def draft_decode(path):
    with Image.open(path) as image:
        image.draft(None, (1, 1))
        image.load()


def full_decode(path):
    with Image.open(path) as image:
        image.load()


METHODS = {"verify": verify, "end marker": end_marker, "decode 1/8": draft_decode, "full decode": full_decode,
           "verify_image": verify_image}


def ms_per_image(paths: list[Path], rounds: int) -> dict[str, float]:
    times = {name: [] for name in METHODS}
    for _ in range(rounds):
        for name, method in METHODS.items():
            start = time.perf_counter()
            for path in paths:
                method(path)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) / len(paths) for name, t in times.items()}


def caught(method, data: bytes, folder: Path, suffix: str) -> bool:
    path = folder / f"cut{suffix}"
    path.write_bytes(data)
    try:
        method(path)
    except (OSError, SyntaxError, ValueError, DataError):
        return True
    return False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    cases = {"JPEG q90 500x375": ("JPEG", (500, 375)), "JPEG q90 1600x1200": ("JPEG", (1600, 1200)),
             "PNG 500x375": ("PNG", (500, 375)), "WebP q90 500x375": ("WEBP", (500, 375))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"1. ms per image (one core, median of {args.rounds} rounds of {args.images} images); "
              f"in brackets: minutes for {IMAGENET_IMAGES:,} images")
        print(f"{'':20}{'kB':>6}" + "".join(f"{name:>20}" for name in METHODS))
        samples = {}
        for case, (fmt, size) in cases.items():
            paths = []
            for i in range(args.images):
                paths.append(folder / f"{fmt}{size[0]}_{i}.{fmt.lower()}")
                photo_like(i, size).save(paths[-1], fmt, **({} if fmt == "PNG" else {"quality": 90}))
            samples[case] = paths[0].read_bytes()
            kb = statistics.mean(p.stat().st_size for p in paths) / 1e3
            ms = ms_per_image(paths, args.rounds)
            print(f"{case:20}{kb:6.0f}" + "".join(f"{f'{v:.3f} ({v * IMAGENET_IMAGES / 6e4:.0f})':>20}"
                                                  for v in ms.values()))
        print("\n2. caught when cut (cut at 10 %, 50 %, 99 %, 2 bytes short)")
        print(f"{'':20}" + "".join(f"{name:>20}" for name in METHODS))
        for case, data in samples.items():
            cuts = [data[:int(len(data) * f)] for f in (0.1, 0.5, 0.99)] + [data[:-2]]
            suffix = "." + cases[case][0].lower()
            print(f"{case:20}" + "".join(f"{' '.join('yes' if caught(m, c, folder, suffix) else 'NO' for c in cuts):>20}"
                                         for m in METHODS.values()))
        trailing = samples["JPEG q90 500x375"] + bytes(64)
        print("(a PNG 2 bytes short is cut in its IEND chunk's CRC: its pixel data is whole and decodes)")
        print(f"JPEG with 64 bytes after its end marker: passes verify_image "
              f"{not caught(verify_image, trailing, folder, '.jpg')}")


if __name__ == "__main__":
    main()
