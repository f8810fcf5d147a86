"""Real data sets as manifests: one parquet row per image (path, label, class name, split).

Two sources: scikit-learn's digits (ships inside the package: the embedded demo) and any
image folder laid out as ``<root>/<split>/<class>/<image>``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.atomic import atomic_path, write_parquet
from realfake.splits import digits_split

MANIFEST_COLUMNS = ["split", "index", "path", "label", "class_name", "class_id"]  # class_id: folder name
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
IMAGENET10_INDICES = [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]  # ImageNette's classes
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


class DataError(ValueError):
    """Bad input data: the message names the file or folder and what was expected."""


def digits_manifest(image_dir: str | os.PathLike, test_fraction: float = 0.2,
                    train_per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Write scikit-learn's 8x8 digits as PNG files and return their manifest.

    The split is stratified and seeded; ``train_per_class`` trims the train split (tests).
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    train, test = digits_split(test_fraction, train_per_class, seed)
    rows = []
    image_dir = Path(image_dir)
    for split, ids in (("train", train), ("test", test)):
        for i in ids:
            label = int(digits.target[i])
            path = image_dir / split / DIGIT_NAMES[label] / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, suffix=".png") as tmp:
                Image.fromarray(pixels[i], mode="L").save(tmp)
            rows.append((split, str(path), label, DIGIT_NAMES[label], DIGIT_NAMES[label]))
    return manifest_frame(rows)


def class_list(classes) -> list[str] | None:
    """The class folders a data set takes: ``imagenet10`` (ImageNette's ten ImageNet-1K classes),
    ``imagenet100`` (the CMC list of Tian et al. 2020, shipped), a list of folder names, or
    None (every folder of the train split)."""
    if classes == "imagenet10":
        from timm.data import ImageNetInfo

        names = ImageNetInfo().label_names()
        return [names[i] for i in IMAGENET10_INDICES]
    if classes == "imagenet100":
        return (Path(__file__).parent / "reference" / "imagenet100_wnids.txt").read_text().split()
    return None if classes is None else list(classes)


def image_folder_manifest(root: str | os.PathLike, splits: dict[str, str],
                          class_names: str | os.PathLike | None = None,
                          verify_images: bool = True, classes=None) -> pd.DataFrame:
    """Manifest of ``<root>/<folder>/<class>/<image>`` for each ``{split: folder}``.

    Labels follow the sorted class folders of the train split, or of ``classes`` (see
    ``class_list``: e.g. IN-10 and IN-100 taken from an ImageNet-1K root). ``class_names`` is an
    optional JSON file mapping folder name to human class name (e.g. WordNet id to "tench").
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder")
    train_dir = root / splits["train"]
    found = {p.name for p in _subfolders(train_dir)}
    wanted = class_list(classes)
    missing = sorted(set(wanted or []) - found)
    if missing:
        raise DataError(f"{train_dir} lacks the class folders {missing[:5]} of the class list "
                        f"({len(missing)} missing)")
    classes = sorted(wanted or found)
    names = _class_name_map(class_names, classes)
    rows = []
    for split, folder in splits.items():
        split_dir = root / folder
        for label, cls in enumerate(classes):
            class_dir = split_dir / cls
            images = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
                if class_dir.is_dir() else []
            if not images:
                raise DataError(f"class folder {class_dir} holds no images "
                                f"(expected files ending in {sorted(IMAGE_SUFFIXES)})")
            for path in images:
                if verify_images:
                    verify_image(path)
                rows.append((split, str(path), label, names[cls], cls))
    return manifest_frame(rows)


def verify_image(path: str | os.PathLike) -> None:
    """Raise DataError unless ``path`` is a whole image PIL can decode.

    ``Image.verify`` decodes no JPEG data: a JPEG cut short passed it, to fail a training epoch
    later. So a JPEG must end with its end-of-image marker FFD9 (a cut anywhere after the headers
    lacks it, as 0xFF is byte-stuffed in scan data; PIL's decode fails without it); one that does not
    (bytes after the marker) is decoded at 1/8 scale, which still entropy-decodes every byte. PNG and
    WebP are verified: PNG reads every chunk through IEND checking its CRC, WebP's open parses the
    whole RIFF container; each fails when cut (bench). Other formats (BMP, GIF, TIFF: verify passes
    them cut in half) are decoded. Per 500x375 q90 JPEG on one core (``bench/manifest_check.py``):
    0.055 ms (verify alone 0.043, a decode at 1/8 scale 0.61, a full decode 1.1; at 1600x1200
    4.9 and 9.9): 1.2 min for ImageNet's 1.28 M images, against 13 and 24 min for the decodes.
    """
    from PIL import Image

    with naming_image(path), Image.open(path) as image:
        if image.format in ("PNG", "WEBP"):
            image.verify()
        elif not (image.format == "JPEG" and _ends_with(image.fp, b"\xff\xd9")):
            image.draft(None, (1, 1))  # JPEG: the smallest scale; other formats: no-op
            image.load()


def _ends_with(file, marker: bytes) -> bool:
    file.seek(-len(marker), os.SEEK_END)
    return file.read(len(marker)) == marker


@contextlib.contextmanager
def naming_image(path: str | os.PathLike):
    """Re-raise a failed read or decode of the image at ``path`` as a DataError naming it and
    the cause: PIL raises OSError (truncated, unidentified), SyntaxError and ValueError (broken
    headers, chunks) and DecompressionBombError (an image over ``Image.MAX_IMAGE_PIXELS``, not
    an OSError); otherwise a data loader's worker or a captioning batch fails naming no file."""
    try:
        yield
    except DataError:
        raise
    except decode_errors() as err:
        raise DataError(f"image {path} does not decode ({type(err).__name__}: {err})") from err


def decode_errors() -> tuple[type[Exception], ...]:
    """What PIL raises for a bad image file (the readers of files and of shard members catch these)."""
    from PIL import Image

    return OSError, SyntaxError, ValueError, Image.DecompressionBombError


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"split folder {folder} does not exist (expected <root>/<split>/<class>/)")
    found = [p for p in folder.iterdir() if p.is_dir()]
    if not found:
        raise DataError(f"split folder {folder} holds no class folders")
    return found


def imagenet_class_names() -> dict[str, str]:
    """WordNet id -> CLIP's curated ImageNet class name (timm ships the ids, open_clip the names)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    from timm.data import ImageNetInfo

    return dict(zip(ImageNetInfo().label_names(), IMAGENET_CLASSNAMES, strict=True))


def _class_name_map(path, classes: list[str]) -> dict[str, str]:
    """Folder name -> human class name: folder names themselves, ``imagenet``, or a JSON map."""
    if path is None:
        return {c: c.replace("_", " ") for c in classes}
    if path == "imagenet":
        names = imagenet_class_names()
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise DataError(f"class folders {unknown[:5]} are not ImageNet WordNet ids (class_names: imagenet)")
        return {c: names[c] for c in classes}
    try:
        mapping = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"class-name map {path} is not a readable JSON object: {err}") from err
    missing = [c for c in classes if c not in mapping]
    if missing:
        raise DataError(f"class-name map {path} lacks class folders {missing[:5]}")
    return {c: mapping[c] for c in classes}


def manifest_frame(rows) -> pd.DataFrame:
    """Rows of (split, path, label, class name, class id) as a manifest, indexed within each split."""
    frame = pd.DataFrame(rows, columns=["split", "path", "label", "class_name", "class_id"])
    frame["index"] = frame.groupby("split").cumcount()
    return frame[MANIFEST_COLUMNS]


def read_manifest(path: str | os.PathLike, split: str | None = None) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    missing = set(MANIFEST_COLUMNS) - set(frame.columns)
    if missing:
        raise DataError(f"manifest {path} lacks columns {sorted(missing)}")
    if split is not None:
        frame = frame[frame["split"] == split].reset_index(drop=True)
        if frame.empty:
            raise DataError(f"manifest {path} has no rows of split {split!r}")
    return frame


def class_names(manifest: pd.DataFrame) -> list[str]:
    """Class names ordered by label."""
    pairs = manifest[["label", "class_name"]].drop_duplicates().sort_values("label")
    return pairs["class_name"].tolist()


# PIL info key of an opened image whose bytes matched, on read, the checksum of when they were
# written (a shard member): such a JPEG may be decoded only down to the rows a crop needs
CHECKED = "realfake.checked"


def open_image(source):
    """A lazily opened image (header read, pixels not yet decoded) from a path or bytes."""
    import io

    from PIL import Image

    return Image.open(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)


def upright_rgb(image):
    """The image decoded as RGB, as displayed: a camera's EXIF orientation applied (rotated
    photographs in ImageNet, CUB, ...). May return ``image`` itself, transposed in place."""
    from PIL import ImageOps

    ImageOps.exif_transpose(image, in_place=True)  # decodes; no copy when nothing to rotate
    return image if image.mode == "RGB" else image.convert("RGB")


def load_rgb(path: str | os.PathLike, size: int | None = None):
    """Open an image as RGB, upright, optionally resized (bicubic) to ``size`` x ``size``."""
    from PIL import Image

    with naming_image(path), Image.open(path) as opened:
        image = upright_rgb(opened)
        image = image.copy() if image is opened else image  # closing ``opened`` frees its pixels
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return image


def rgb_batches(images, batch_size: int):
    """``images`` (file paths or PIL images, any sliceable sequence) as lists of RGB images."""
    for start in range(0, len(images), batch_size):
        yield [load_rgb(im) if isinstance(im, (str, os.PathLike)) else im.convert("RGB")
               for im in images[start:start + batch_size]]


def write_manifest(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    write_parquet(path, frame)
