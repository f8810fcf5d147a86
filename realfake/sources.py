"""Public data sets read from their published on-disk layouts (the user gives only the root).

- CUB-200-2011: ``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``,
  ``classes.txt`` and ``images/``.
- Oxford-IIIT Pet: ``annotations/trainval.txt``, ``annotations/test.txt`` and ``images/``.
- Stanford Cars: ``devkit/cars_meta.mat``, ``devkit/cars_train_annos.mat``,
  ``cars_test_annos_withlabels.mat`` (the labelled test annotations, distributed separately),
  ``cars_train/`` and ``cars_test/``.
- EuroSAT (RGB): one folder per class and no official split: a seeded, stratified split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.attributes import LAYOUT as CELEBA_LAYOUT
from realfake.attributes import celeba_manifest, digits_attributes_manifest
from realfake.data import (
    IMAGE_SUFFIXES,
    DataError,
    digits_manifest,
    image_folder_manifest,
    manifest_frame,
    verify_image,
)


def _table(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path} does not exist (expected the data set's published layout)")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    bad = [r for r in rows if len(r) < columns]
    if bad:
        raise DataError(f"{path}: expected {columns} columns per line, got {bad[0]!r}")
    return rows


def cub_manifest(root: str | os.PathLike, verify_images: bool = True) -> pd.DataFrame:
    root = Path(root)
    images = dict(_table(root / "images.txt", 2))
    labels = {i: int(c) - 1 for i, c in _table(root / "image_class_labels.txt", 2)}
    is_train = {i: s == "1" for i, s in _table(root / "train_test_split.txt", 2)}
    classes = {int(c) - 1: name for c, name in _table(root / "classes.txt", 2)}
    rows = []
    for image_id, rel in images.items():
        label, path = labels[image_id], root / "images" / rel
        if verify_images:
            verify_image(path)
        name = classes[label].split(".", 1)[-1].replace("_", " ")
        rows.append(("train" if is_train[image_id] else "test", str(path), label, name, classes[label]))
    return manifest_frame(sorted(rows, key=lambda r: (r[0] != "train", r[2], r[1])))


def pet_manifest(root: str | os.PathLike, verify_images: bool = True) -> pd.DataFrame:
    root = Path(root)
    rows = []
    for split, file in (("train", "trainval.txt"), ("test", "test.txt")):
        for name, class_id, *_ in _table(root / "annotations" / file, 4):
            path = root / "images" / f"{name}.jpg"
            if verify_images:
                verify_image(path)
            breed = name.rsplit("_", 1)[0]
            rows.append((split, str(path), int(class_id) - 1, breed.replace("_", " "), breed))
    return manifest_frame(rows)


def cars_manifest(root: str | os.PathLike, verify_images: bool = True) -> pd.DataFrame:
    from scipy.io import loadmat

    root = Path(root)
    names = [str(n) for n in np.atleast_1d(_mat(loadmat, root / "devkit/cars_meta.mat")["class_names"])]
    test_annos = next((p for p in (root / "cars_test_annos_withlabels.mat",
                                   root / "devkit/cars_test_annos_withlabels.mat") if p.is_file()),
                      root / "cars_test_annos_withlabels.mat")
    rows = []
    for split, annos, folder in (("train", root / "devkit/cars_train_annos.mat", "cars_train"),
                                 ("test", test_annos, "cars_test")):
        records = np.atleast_1d(_mat(loadmat, annos)["annotations"])
        for record in records:
            label, path = int(record["class"]) - 1, root / folder / str(record["fname"])
            if verify_images:
                verify_image(path)
            rows.append((split, str(path), label, names[label], names[label]))
    return manifest_frame(rows)


def _mat(loadmat, path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path} does not exist (expected Stanford Cars' devkit layout)")
    return loadmat(path, squeeze_me=True)


def eurosat_manifest(root: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0,
                     verify_images: bool = True) -> pd.DataFrame:
    from sklearn.model_selection import train_test_split

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"EuroSAT root {root} does not exist or is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, cls in enumerate(classes):
        found = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"class folder {root / cls} holds no images")
        paths += found
        labels += [label] * len(found)
    train, test = train_test_split(np.arange(len(paths)), test_size=test_fraction, stratify=labels,
                                   random_state=seed)
    rows = []
    for split, ids in (("train", np.sort(train)), ("test", np.sort(test))):
        for i in ids:
            if verify_images:
                verify_image(paths[i])
            cls = classes[labels[i]]
            rows.append((split, str(paths[i]), labels[i], _split_camel(cls), cls))
    return manifest_frame(rows)


def _split_camel(name: str) -> str:
    """'AnnualCrop' -> 'annual crop' (EuroSAT's folder names)."""
    return "".join(" " + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


BUILDERS = {"image_folder": image_folder_manifest, "cub": cub_manifest, "pet": pet_manifest,
            "cars": cars_manifest, "eurosat": eurosat_manifest, "celeba": celeba_manifest}


def build_manifest(source: str, settings: dict, images_dir: str | os.PathLike,
                   train_images: int | None = None, key: str = "train_images",
                   shadow: dict | None = None) -> pd.DataFrame:
    """The manifest of a configured data set (``settings``: its source's config block; ``shadow``:
    a LiRA shadow's half, see ``config.add_shadows``).

    ``train_images`` (the configured train split size, which sized the shards) is checked
    against what the data set holds; ``key`` names it in the error.
    """
    if source == "digits":
        frame = digits_manifest(images_dir, **settings)
    elif source == "digits_attributes":
        frame = digits_attributes_manifest(images_dir, **settings)
    elif source in BUILDERS:
        frame = BUILDERS[source](**settings)
    else:
        raise DataError(f"unknown data set source {source!r}: expected digits or one of {sorted(BUILDERS)}")
    found = int((frame["split"] == "train").sum())
    if train_images is not None and found != train_images:
        raise DataError(f"{key} is {train_images} but the data set holds {found} training images: "
                        f"set it to {found}")
    return frame if shadow is None else shadow_half(frame, shadow)


def shadow_half(frame: pd.DataFrame, shadow: dict) -> pd.DataFrame:
    """A LiRA shadow's manifest: the train rows of its half (``splits.membership``), every test row."""
    from realfake.splits import membership

    train = frame[frame["split"] == "train"]
    keep = membership(len(train), shadow["shadows"], shadow["seed"])[shadow["index"]]
    missing = sorted(set(train["class_name"]) - set(train[keep]["class_name"]))
    if missing:
        raise DataError(f"LiRA shadow {shadow['index']} of {shadow['dataset']}: its half holds no training image "
                        f"of {missing} (too few images per class for halves: use a larger data set)")
    rows = pd.concat([train[keep], frame[frame["split"] != "train"]])
    return manifest_frame(rows[["split", "path", "label", "class_name", "class_id"]].itertuples(index=False))


# Start-up checks: what must exist before any job runs (files and folders only; a dry run
# shows them). Contents (unreadable images, counts) are checked when the manifest is built.
REQUIRED = {
    "cub": ["images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images/"],
    "pet": ["annotations/trainval.txt", "annotations/test.txt", "images/"],
    "cars": ["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_train/", "cars_test/"],
    "celeba": CELEBA_LAYOUT,
}


def check_layout(source: str, settings: dict, key: str) -> None:
    """Raise DataError naming ``key`` and the path unless the source's layout is in place."""
    root = Path(settings["root"])
    if not root.is_dir():
        raise DataError(f"{key}.root: {root} does not exist or is not a folder")
    for rel in REQUIRED.get(source, []):
        path = root / rel
        if not (path.is_dir() if rel.endswith("/") else path.is_file()):
            raise DataError(f"{key}.root: {path} is missing (expected the published {source} layout)")
    if source == "cars" and not any((root / p).is_file() for p in ("cars_test_annos_withlabels.mat",
                                                                   "devkit/cars_test_annos_withlabels.mat")):
        raise DataError(f"{key}.root: {root}/cars_test_annos_withlabels.mat is missing (the labelled test "
                        f"annotations, distributed separately from the devkit)")
    if source in ("eurosat", "ood_folder"):
        _class_folders(root, key)
    if source == "image_folder":
        _check_image_folder(root, settings, key)


def _check_image_folder(root: Path, settings: dict, key: str) -> None:
    from realfake.data import class_list

    classes = _class_folders(root / settings["splits"]["train"], f"{key}.splits.train")
    wanted = class_list(settings.get("classes"))
    if wanted is not None:
        missing = sorted(set(wanted) - classes)
        if missing:
            raise DataError(f"{key}.classes: {root / settings['splits']['train']} lacks the class folders "
                            f"{missing[:5]} ({len(missing)} of the {len(wanted)} listed are missing)")
        classes = set(wanted)
    test = _class_folders(root / settings["splits"]["test"], f"{key}.splits.test")
    missing = sorted(classes - test)
    if missing:
        raise DataError(f"{key}.splits.test: {root / settings['splits']['test']} lacks the class folders "
                        f"{missing[:5]} of the train split ({len(missing)} missing)")
    names = settings.get("class_names")
    if names not in (None, "imagenet") and not Path(names).is_file():
        raise DataError(f"{key}.class_names: {names} does not exist (expected a JSON map folder -> name)")


def _class_folders(folder: Path, key: str) -> set[str]:
    if not folder.is_dir():
        raise DataError(f"{key}: {folder} does not exist (expected one folder per class)")
    found = {p.name for p in os.scandir(folder) if p.is_dir()}
    if not found:
        raise DataError(f"{key}: {folder} holds no class folders")
    return found
