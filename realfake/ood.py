"""Out-of-distribution evaluation sets (Table 4), labelled in a classifier's class space.

ImageNet-Sketch, -R and -A keep one folder per class named by WordNet id; ImageNet-V2 names
its folders by class index. Either way the label is the training set's label of that class,
so a 1000-way classifier scores them directly; for R and A (200 classes) only those classes'
logits are kept (``restrict_logits``), as the paper does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter, ImageOps

from realfake.atomic import atomic_path
from realfake.data import IMAGE_SUFFIXES, DataError, load_rgb, manifest_frame, verify_image

SHIFTS = {  # the demo's stand-in domain shifts of digits
    "invert": ImageOps.invert,
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(1.2)),
    "rotate": lambda im: im.rotate(25, resample=Image.BILINEAR),
}


def ood_manifest(root: str | os.PathLike, train: pd.DataFrame, folder_labels: str = "class_id",
                 verify_images: bool = True) -> pd.DataFrame:
    """Manifest of ``<root>/<class folder>/<image>``; folders are class ids or label indices."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"OOD root {root} does not exist or is not a folder")
    classes = train[["label", "class_name", "class_id"]].drop_duplicates().set_index("class_id")
    names = dict(zip(classes["label"], classes["class_name"], strict=True))
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = _label_of(folder, classes, folder_labels, len(names))
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            if verify_images:
                verify_image(path)
            rows.append(("test", str(path), label, names[label], folder.name))
    if not rows:
        raise DataError(f"OOD root {root} holds no images in class folders")
    return manifest_frame(rows)


def shifted_digits_manifest(out_dir: str | os.PathLike, test: pd.DataFrame, shift: str,
                            labels: list[int] | None = None) -> pd.DataFrame:
    """The demo's OOD stand-in: the real test images under a domain shift, optionally fewer classes."""
    if shift not in SHIFTS:
        raise DataError(f"unknown shift {shift!r}: expected one of {sorted(SHIFTS)}")
    rows = []
    for row in test.itertuples():
        if labels is not None and row.label not in labels:
            continue
        path = Path(out_dir) / row.class_id / Path(row.path).name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".png") as tmp:
            SHIFTS[shift](load_rgb(row.path)).save(tmp)
        rows.append(("test", str(path), row.label, row.class_name, row.class_id))
    return manifest_frame(rows)


def kept_classes(labels, restrict_logits: bool) -> list[int] | None:
    """The classes whose logits an OOD set is scored on: its own (R, A) or all (None)."""
    return sorted(int(c) for c in np.unique(labels)) if restrict_logits else None


def _label_of(folder: Path, classes: pd.DataFrame, folder_labels: str, num_classes: int) -> int:
    if folder_labels == "index":
        if not folder.name.isdigit() or int(folder.name) >= num_classes:
            raise DataError(f"OOD class folder {folder} is not a class index below {num_classes}")
        return int(folder.name)
    if folder.name not in classes.index:
        raise DataError(f"OOD class folder {folder} names no class of the training set "
                        f"(expected one of {list(classes.index[:3])}...)")
    return int(classes.loc[folder.name, "label"])


def build_ood_manifest(settings: dict, manifest: pd.DataFrame, images_dir: str | os.PathLike) -> pd.DataFrame:
    """The manifest of a configured OOD set (``settings``: its config block, defaults filled in)."""
    if settings["source"] == "digits_shift":
        return shifted_digits_manifest(images_dir, manifest[manifest["split"] == "test"], settings["shift"],
                                       settings.get("labels"))
    return ood_manifest(settings["root"], manifest[manifest["split"] == "train"], settings["folder_labels"],
                        settings["verify_images"])
