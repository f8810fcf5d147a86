"""Every data set of ``config/paper.yaml`` in its published on-disk layout, a few images each.

The files carry the quirks real downloads have, spread over the splits and data sets:
ImageNet's PNG named ``.JPEG`` and its CMYK JPEGs, grayscale JPEGs (ImageNet, CUB, Cars),
EXIF-rotated photographs, very large (4,288 x 2,848, ImageNet's largest) and very small
images, panoramas and tall strips, file names with spaces (ImageNet-A). Pixels are seeded noise
over a per-class colour: the models have random weights, so content does not matter; shapes,
modes, formats and layouts do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

# (width, height, quirk) in turn for the images of a folder; ImageNet's photographs are ~500 px
IMAGENET_SHAPES = [(500, 333, "png_named_jpeg"), (375, 500, "exif_rotated"), (500, 500, "cmyk"),
                   (4288, 2848, None), (640, 480, "grayscale"), (500, 375, None), (1600, 200, None),
                   (150, 900, None), (32, 21, None)]
VAL_OFFSET = 5  # the val split's images start further along the list
QUIRKS = ("png_named_jpeg", "cmyk", "grayscale", "exif_rotated")
EXIF_ORIENTATION = 0x0112
CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young"]


def write_image(path: str | os.PathLike, width: int, height: int, seed: int, quirk: str | None = None) -> Path:
    """A seeded noise image of ``width`` x ``height`` as displayed (after EXIF rotation), with a quirk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colour = rng.integers(0, 256, 3)
    # noise at 1/8 scale, upsampled: a large image costs little to make and compresses like a photo
    small = rng.normal(colour, 40, size=(max(1, height // 8), max(1, width // 8), 3)).clip(0, 255)
    image = Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.BILINEAR)
    if quirk == "png_named_jpeg":
        image.save(path, format="PNG")
    elif quirk == "cmyk":
        image.convert("CMYK").save(path, format="JPEG", quality=90)
    elif quirk == "grayscale":
        image.convert("L").save(path, format="JPEG", quality=90)
    elif quirk == "exif_rotated":  # stored landscape, shown portrait: Orientation 6 (rotate 90 clockwise)
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(path, format="JPEG", quality=90, exif=exif.tobytes())
    elif quirk == "rgba_png":
        image.convert("RGBA").save(path, format="PNG")
    else:
        image.save(path, format="JPEG", quality=90)
    return path


def _shape(i: int, shapes=IMAGENET_SHAPES):
    return shapes[i % len(shapes)]


def write_imagenet(root: Path, train: dict[str, int], val_per_class: int = 1) -> None:
    """``<root>/train/<wnid>/<wnid>_<n>.JPEG`` and ``<root>/val/<wnid>/ILSVRC2012_val_<n>.JPEG``
    (val sorted into class folders, as docs/paper_config.md asks), the quirks spread over both splits."""
    serial = val_serial = 0
    for wnid, count in train.items():
        for n in range(count):
            w, h, quirk = _shape(serial)
            write_image(root / "train" / wnid / f"{wnid}_{n + 1}.JPEG", w, h, serial, quirk)
            serial += 1
        for _ in range(val_per_class):
            w, h, quirk = _shape(VAL_OFFSET + val_serial)
            val_serial += 1
            write_image(root / "val" / wnid / f"ILSVRC2012_val_{val_serial:08d}.JPEG", w, h, 1000 + val_serial, quirk)


def write_ood_sets(root: Path, wnids: list[str], restricted: list[str]) -> dict[str, Path]:
    """ImageNet-V2 (index folders), -Sketch, -R and -A (wnid folders; R and A a subset of classes)."""
    roots = {"in_v2": root / "imagenetv2-matched-frequency-format-val", "in_sketch": root / "imagenet-sketch/sketch",
             "in_r": root / "imagenet-r", "in_a": root / "imagenet-a"}
    for label, wnid in enumerate(wnids):
        write_image(roots["in_v2"] / str(label) / f"{label:04d}a1b2c3.jpeg", 500, 375, 100 + label)
        write_image(roots["in_sketch"] / wnid / "sketch_0.JPEG", 800, 600, 200 + label, "grayscale")
    for label, wnid in enumerate(restricted):
        write_image(roots["in_r"] / wnid / f"art_{label}.jpg", 400, 500, 300 + label)
        write_image(roots["in_a"] / wnid / f"0.000116_digital clock _ digital clock_0.8{label}.jpg", 300, 200,
                    400 + label)
    return roots


def write_cub(root: Path, classes=("001.Black_footed_Albatross", "002.Laysan_Albatross"), per_class=(1, 1)) -> None:
    """CUB-200-2011: images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, images/."""
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "classes.txt": []}
    image_id = 0
    for c, folder in enumerate(classes, start=1):
        lines["classes.txt"].append(f"{c} {folder}")
        bird = folder.split(".", 1)[1].replace("footed", "Footed")
        for is_train, count in zip((1, 0), per_class, strict=True):
            for _ in range(count):
                image_id += 1
                rel = f"{folder}/{bird}_{image_id:04d}_{700 + image_id}.jpg"
                write_image(root / "images" / rel, 500, 331 + image_id, image_id, "grayscale" if image_id == 2 else None)
                lines["images.txt"].append(f"{image_id} {rel}")
                lines["image_class_labels.txt"].append(f"{image_id} {c}")
                lines["train_test_split.txt"].append(f"{image_id} {is_train}")
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")


def write_cars(root: Path, used_classes=(1, 2), num_classes: int = 196) -> None:
    """Stanford Cars: devkit/cars_meta.mat (196 class names), devkit/cars_train_annos.mat and
    cars_test_annos_withlabels.mat (struct arrays: bbox_x1..y2, class, fname), cars_train/, cars_test/."""
    from scipy.io import savemat

    names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"] + [f"Car Model {i} 2012" for i in range(3, 197)]
    (root / "devkit").mkdir(parents=True, exist_ok=True)
    savemat(root / "devkit/cars_meta.mat", {"class_names": np.array([names[:num_classes]], dtype=object)})
    fields = [("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"), ("bbox_y2", "O"), ("class", "O"), ("fname", "O")]
    for split, annos, folder in (("train", "devkit/cars_train_annos.mat", "cars_train"),
                                 ("test", "cars_test_annos_withlabels.mat", "cars_test")):
        records = []
        for n, cls in enumerate(used_classes, start=1):
            fname = f"{n:05d}.jpg"
            w, h = (600, 400) if split == "train" else (1024, 576)
            write_image(root / folder / fname, w, h, 500 + n + 10 * (split == "test"),
                        "grayscale" if (split, n) == ("test", 2) else None)
            records.append((np.uint8(10), np.uint8(20), np.uint16(w - 10), np.uint16(h - 20), np.uint8(cls), fname))
        savemat(root / annos, {"annotations": np.array([records], dtype=fields)})


def write_pet(root: Path, breeds=(("Abyssinian", 1), ("american_bulldog", 2))) -> None:
    """Oxford-IIIT Pet: annotations/trainval.txt and test.txt ("Name_N class species breed"), images/."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, first, quirk in (("trainval", 100, "cmyk"), ("test", 200, "rgba_png")):
        rows = []
        for breed, class_id in breeds:
            name = f"{breed}_{first + class_id}"
            species = 1 if breed[0].isupper() else 2  # cats are capitalised
            write_image(root / "images" / f"{name}.jpg", 500, 375 - class_id, first + class_id,
                        quirk if class_id == 1 else None)
            rows.append(f"{name} {class_id} {species} {class_id}")
        (root / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")


def write_eurosat(root: Path, classes=("AnnualCrop", "Forest"), per_class: int = 2) -> None:
    """EuroSAT RGB: one folder per class of 64 x 64 JPEGs (``AnnualCrop/AnnualCrop_1.jpg``)."""
    for c, cls in enumerate(classes):
        for n in range(1, per_class + 1):
            write_image(root / cls / f"{cls}_{n}.jpg", 64, 64, 600 + 10 * c + n)


def write_celeba(root: Path, partitions=(0, 0, 1, 2, 2)) -> None:
    """CelebA: list_eval_partition.txt, list_attr_celeba.txt (count, 40 names, -1/1 rows), img_align_celeba/
    (178 x 218 JPEGs); every attribute has both values in the train partition."""
    partition_rows, attribute_rows = [], []
    for i, part in enumerate(partitions, start=1):
        name = f"{i:06d}.jpg"
        write_image(root / "img_align_celeba" / name, 178, 218, 700 + i)
        partition_rows.append(f"{name} {part}")
        values = ["1" if (i + a) % 2 else "-1" for a in range(len(CELEBA_ATTRIBUTES))]
        attribute_rows.append(f"{name} " + " ".join(f"{v:>2}" for v in values))
    (root / "list_eval_partition.txt").write_text("\n".join(partition_rows) + "\n")
    (root / "list_attr_celeba.txt").write_text(
        f"{len(partitions)}\n{' '.join(CELEBA_ATTRIBUTES)}\n" + "\n".join(attribute_rows) + "\n")


def exif_size(path) -> tuple[int, int]:
    """(width, height) as displayed: after the EXIF orientation."""
    from PIL import ImageOps

    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size

