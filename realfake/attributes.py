"""Binary attribute tasks (Table 10): CelebA read from its published layout, and the demo's
stand-in, the digits written in that same layout and read by the same reader.

CelebA's layout: ``list_eval_partition.txt`` (``000001.jpg 0``: 0 train, 1 val, 2 test),
``list_attr_celeba.txt`` (the image count, the 40 attribute names, then one row of -1/1 per
image) and ``img_align_celeba/``. Each configured data set is one attribute: label 1 with it,
0 without; the validation partition is not used (the paper reports train and test only).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.data import DataError, manifest_frame, verify_image

PARTITIONS = {"train": "0", "test": "2"}
LAYOUT = ["list_eval_partition.txt", "list_attr_celeba.txt", "img_align_celeba/"]


def attribute_names(attribute: str, names: list[str] | None = None) -> list[str]:
    """[without, with] the attribute as prompts use them: ``Heavy_Makeup`` -> not heavy makeup,
    heavy makeup (the paper's template is ``A [attribute] person``; it does not say how the
    negative class is prompted: we prompt it as ``not [attribute]``)."""
    if names is not None:
        return list(names)
    phrase = attribute.replace("_", " ").lower()
    return [f"not {phrase}", phrase]


def celeba_manifest(root: str | os.PathLike, attribute: str, names: list[str] | None = None,
                    train_subset: int | None = None, test_subset: int | None = None, seed: int = 0,
                    verify_images: bool = True) -> pd.DataFrame:
    """The manifest of one CelebA attribute as a two-class task, optionally on seeded subsets."""
    root = Path(root)
    partition = dict(_rows(root / "list_eval_partition.txt", 2))
    header, rows = _attribute_table(root / "list_attr_celeba.txt")
    if attribute not in header:
        raise DataError(f"{root / 'list_attr_celeba.txt'}: no attribute {attribute!r} (it has {header})")
    column = header.index(attribute)
    has = {row[0]: row[1 + column] == "1" for row in rows}
    class_names = attribute_names(attribute, names)
    class_ids = [f"not_{attribute}", attribute]
    frame_rows = []
    for split, code in PARTITIONS.items():
        files = sorted(f for f, p in partition.items() if p == code)
        subset = train_subset if split == "train" else test_subset
        files = _subset(files, subset, seed, split, root)
        for name in files:
            if name not in has:
                raise DataError(f"{root / 'list_attr_celeba.txt'} has no row for {name}")
            path = root / "img_align_celeba" / name
            if verify_images:
                verify_image(path)
            label = int(has[name])
            frame_rows.append((split, str(path), label, class_names[label], class_ids[label]))
    frame = manifest_frame(frame_rows)
    train_labels = set(frame.loc[frame.split == "train", "label"])
    if train_labels != {0, 1}:
        raise DataError(f"{root}: attribute {attribute} has one class only in the train split ({train_labels})")
    return frame


def _rows(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path} does not exist (expected CelebA's published layout)")
    return _rows_of(path.read_text().splitlines(), columns, path, 1, {"0", "1", "2"})  # 1: validation


def _attribute_table(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"{path} does not exist (expected CelebA's published layout)")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected the image count, the attribute names, then one row per image")
    header = lines[1].split()
    rows = _rows_of(lines[2:], len(header) + 1, path, 3, {"1", "-1"})
    if lines[0].strip() != str(len(rows)):
        raise DataError(f"{path}, line 1: expected the image count, {len(rows)} (the rows that follow), "
                        f"got {lines[0].strip()!r}: a file cut short?")
    return header, rows


def _rows_of(lines: list[str], columns: int, path: Path, first: int, values: set[str]) -> list[list[str]]:
    """The non-blank lines (numbered from ``first``), each a name and ``columns - 1`` of ``values``."""
    rows = []
    for n, line in enumerate(lines, first):
        fields = line.split()
        if fields and (len(fields) != columns or not values.issuperset(fields[1:])):
            raise DataError(f"{path}, line {n}: expected a file name and {columns - 1} of {sorted(values)}, "
                            f"got {line[:80]!r}")
        if fields:
            rows.append(fields)
    return rows


def _subset(files: list[str], size: int | None, seed: int, split: str, root: Path) -> list[str]:
    if size is None:
        return files
    if size > len(files):
        raise DataError(f"{root}: a {split} subset of {size} images asked for, the split holds {len(files)}")
    keep = np.random.default_rng([seed, len(split)]).choice(len(files), size, replace=False)
    return [files[i] for i in np.sort(keep)]


# The demo's three attributes of a digit, standing in for Smiling, Attractive, Heavy_Makeup.
DIGIT_ATTRIBUTES = {"Even": lambda d: d % 2 == 0, "Round": lambda d: d in (0, 6, 8, 9),
                    "Large": lambda d: d >= 5}


def write_digits_as_celeba(root: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0) -> None:
    """scikit-learn's digits in CelebA's layout (PNG images, attributes of DIGIT_ATTRIBUTES)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from realfake.atomic import atomic_path, write_text
    from realfake.splits import digits_split

    digits = load_digits()
    pixels = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    train, _ = digits_split(test_fraction, None, seed)
    root = Path(root)
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.png" for i in range(len(pixels))]
    for name, image in zip(names, pixels, strict=True):
        with atomic_path(root / "img_align_celeba" / name, suffix=".png") as tmp:
            Image.fromarray(image, mode="L").save(tmp)
    in_train = set(train.tolist())
    write_text(root / "list_eval_partition.txt",
               "".join(f"{n} {PARTITIONS['train'] if i in in_train else PARTITIONS['test']}\n"
                       for i, n in enumerate(names)))
    rows = ["  ".join([n, *("1" if has(int(d)) else "-1" for has in DIGIT_ATTRIBUTES.values())])
            for n, d in zip(names, digits.target, strict=True)]
    write_text(root / "list_attr_celeba.txt", "\n".join([str(len(names)), " ".join(DIGIT_ATTRIBUTES), *rows]) + "\n")


def digits_attributes_manifest(image_dir: str | os.PathLike, attribute: str, names: list[str] | None = None,
                               train_subset: int | None = None, test_subset: int | None = None, seed: int = 0,
                               test_fraction: float = 0.2) -> pd.DataFrame:
    """The demo's attribute task: write the digits as CelebA, then read them as CelebA."""
    write_digits_as_celeba(image_dir, test_fraction, seed)
    return celeba_manifest(image_dir, attribute, names, train_subset, test_subset, seed)
