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


def _table(path: Path, columns: int) -> list[tuple[int, list[str]]]:
    """``path``'s non-blank lines as (line number, fields)."""
    if not path.is_file():
        raise DataError(f"{path} does not exist (expected the data set's published layout)")
    rows = [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    for n, fields in rows:
        if len(fields) < columns:
            raise DataError(f"{path}, line {n}: expected {columns} columns, got {' '.join(fields)!r}")
    return rows


def _field(path: Path, line: int, text: str, expected: str, parse=int):
    """``parse(text)``, or a DataError naming the file, the line and what was ``expected``."""
    try:
        return parse(text)
    except (ValueError, KeyError):
        raise DataError(f"{path}, line {line}: expected {expected}, got {text!r}") from None


def _keyed(path: Path, expected: str, parse=int) -> dict[str, tuple[object, int]]:
    """A two-column file as {first column: (second column parsed, line number)}; keys are unique."""
    table = {}
    for n, (key, value, *_) in _table(path, 2):
        if key in table:
            raise DataError(f"{path}, line {n}: id {key} is on line {table[key][1]} already")
        table[key] = (_field(path, n, value, expected, parse), n)
    return table


def _lookup(table: dict, key: str, path: Path, what: str) -> tuple[object, int]:
    if key not in table:
        raise DataError(f"{path} has no line for {what}")
    return table[key]


def cub_manifest(root: str | os.PathLike, verify_images: bool = True) -> pd.DataFrame:
    root = Path(root)
    files = {name: root / name for name in ("images.txt", "image_class_labels.txt", "train_test_split.txt",
                                            "classes.txt")}
    images = _keyed(files["images.txt"], "an image path", str)
    labels = _keyed(files["image_class_labels.txt"], "a class id (an integer from 1)")
    is_train = _keyed(files["train_test_split.txt"], "1 (train) or 0 (test)", {"1": True, "0": False}.__getitem__)
    classes = _keyed(files["classes.txt"], "a class folder name", str)
    rows = []
    for image_id, (rel, n) in images.items():
        what = f"image id {image_id} (images.txt line {n})"
        class_id, m = _lookup(labels, image_id, files["image_class_labels.txt"], what)
        folder, _ = _lookup(classes, str(class_id), files["classes.txt"],
                            f"class id {class_id} (image_class_labels.txt line {m})")
        train, _ = _lookup(is_train, image_id, files["train_test_split.txt"], what)
        path = root / "images" / rel
        if verify_images:
            verify_image(path)
        name = folder.split(".", 1)[-1].replace("_", " ")
        rows.append(("train" if train else "test", str(path), class_id - 1, name, folder))
    return manifest_frame(sorted(rows, key=lambda r: (r[0] != "train", r[2], r[1])))


def pet_manifest(root: str | os.PathLike, verify_images: bool = True) -> pd.DataFrame:
    root = Path(root)
    rows = []
    for split, file in (("train", "trainval.txt"), ("test", "test.txt")):
        table = root / "annotations" / file
        for n, (name, class_id, *_) in _table(table, 4):
            label = _field(table, n, class_id, "the class id (an integer from 1) in column 2") - 1
            path = root / "images" / f"{name}.jpg"
            if verify_images:
                verify_image(path)
            breed = name.rsplit("_", 1)[0]
            rows.append((split, str(path), label, breed.replace("_", " "), breed))
    return manifest_frame(rows)


def cars_manifest(root: str | os.PathLike, verify_images: bool = True) -> pd.DataFrame:
    root = Path(root)
    meta = root / "devkit/cars_meta.mat"
    names = [str(n) for n in np.atleast_1d(_mat(meta, "class_names"))]
    test_annos = next((p for p in (root / "cars_test_annos_withlabels.mat",
                                   root / "devkit/cars_test_annos_withlabels.mat") if p.is_file()),
                      root / "cars_test_annos_withlabels.mat")
    rows = []
    for split, annos, folder in (("train", root / "devkit/cars_train_annos.mat", "cars_train"),
                                 ("test", test_annos, "cars_test")):
        records = np.atleast_1d(_mat(annos, "annotations"))
        lacking = {"class", "fname"} - set(records.dtype.names or ())
        if lacking:
            raise DataError(f"{annos}: its annotations lack the fields {sorted(lacking)} (expected class and fname)")
        for i, record in enumerate(records, 1):
            try:
                label = int(record["class"]) - 1
            except (TypeError, ValueError):
                raise DataError(f"{annos}, annotation {i}: expected an integer class, got {record['class']!r}") from None
            if not 0 <= label < len(names):
                raise DataError(f"{annos}, annotation {i}: class {label + 1} is not one of the {len(names)} "
                                f"classes of {meta} (1 to {len(names)})")
            path = root / folder / str(record["fname"])
            if verify_images:
                verify_image(path)
            rows.append((split, str(path), label, names[label], names[label]))
    return manifest_frame(rows)


def _mat(path: Path, variable: str):
    """``variable`` of the MATLAB file at ``path``."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise DataError(f"{path} does not exist (expected Stanford Cars' devkit layout)")
    try:
        contents = loadmat(path, squeeze_me=True)
    except (OSError, ValueError, MatReadError) as err:
        raise DataError(f"{path} is not a readable MATLAB file ({err})") from err
    if variable not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DataError(f"{path} has no variable {variable!r} (it has {found}; expected Stanford Cars' devkit)")
    return contents[variable]


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
        if len(found) < 2:
            raise DataError(f"class folder {root / cls} holds {len(found)} images (a stratified split needs 2)")
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
    check_classes(frame, f"{source} data set" + (f" at {settings['root']}" if "root" in settings else ""))
    found = int((frame["split"] == "train").sum())
    if train_images is not None and found != train_images:
        raise DataError(f"{key} is {train_images} but the data set holds {found} training images: "
                        f"set it to {found}")
    return frame if shadow is None else shadow_half(frame, shadow)


def check_classes(frame: pd.DataFrame, where: str) -> None:
    """Labels run 0..K-1, each is one class (name and id) with train images, and every test label
    is a train class. Else the classifier is built with too few outputs and fails epochs later
    ("Target N is out of bounds") or, for the last class, never: its test images are all wrong."""
    if frame.empty:
        raise DataError(f"{where} holds no images")
    classes = frame.drop_duplicates(["label", "class_name", "class_id"]).sort_values("label")
    for column in ("label", "class_id"):
        twice = classes[classes[column].duplicated(keep=False)]
        if len(twice):
            same = twice[twice[column] == twice[column].iloc[0]]
            raise DataError(f"{where}: {column} {same[column].iloc[0]} is on images of several classes: "
                            f"{list(zip(same['label'], same['class_id'], same['class_name'], strict=True))} "
                            f"(label, class_id, class_name)")
    first, labels = classes.iloc[0], set(classes["label"])
    if first["label"] < 0:
        raise DataError(f"{where}: class {first['class_name']!r} (class_id {first['class_id']}) has label "
                        f"{first['label']}: labels must run 0..K-1")
    gaps = sorted(set(range(max(labels) + 1)) - labels)
    if gaps:
        raise DataError(f"{where}: labels must run 0..K-1, but no image has label {gaps[0]} "
                        f"({len(gaps)} of 0..{max(labels)} unused)")
    untrained = classes[~classes["label"].isin(set(frame.loc[frame["split"] == "train", "label"]))]
    if len(untrained):
        c = untrained.iloc[0]
        held = frame.loc[frame["label"] == c["label"], "split"].value_counts()
        raise DataError(f"{where}: class {c['class_name']!r} (class_id {c['class_id']}, label {c['label']}) has no "
                        f"image in the train split ({', '.join(f'{k}: {v}' for k, v in held.items())}; "
                        f"{len(untrained)} of {len(classes)} classes have none)")


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
