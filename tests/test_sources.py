"""The published layouts of CUB-200-2011, Oxford-IIIT Pet and EuroSAT, in miniature."""

import pytest
from PIL import Image

from realfake.data import DataError
from realfake.sources import build_manifest, cars_manifest, cub_manifest, eurosat_manifest, pet_manifest


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)


def test_cub_layout(tmp_path):
    files = ["001.Black_footed_Albatross/a.jpg", "001.Black_footed_Albatross/b.jpg", "002.Laysan_Albatross/c.jpg"]
    for f in files:
        _image(tmp_path / "images" / f)
    (tmp_path / "images.txt").write_text("".join(f"{i + 1} {f}\n" for i, f in enumerate(files)))
    (tmp_path / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n")
    (tmp_path / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (tmp_path / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    m = cub_manifest(tmp_path)
    assert m.groupby("split").size().to_dict() == {"test": 1, "train": 2}
    train = m[m.split == "train"]
    assert train.class_name.tolist() == ["Black footed Albatross", "Laysan Albatross"]
    assert train.label.tolist() == [0, 1] and m[m.split == "test"].path.iloc[0].endswith("b.jpg")


def test_pet_layout(tmp_path):
    for name in ("Abyssinian_1", "Abyssinian_2", "great_pyrenees_7"):
        _image(tmp_path / "images" / f"{name}.jpg")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/trainval.txt").write_text("Abyssinian_1 1 1 1\ngreat_pyrenees_7 2 2 1\n")
    (tmp_path / "annotations/test.txt").write_text("Abyssinian_2 1 1 1\n")
    m = pet_manifest(tmp_path)
    assert m[m.split == "train"].class_name.tolist() == ["Abyssinian", "great pyrenees"]
    assert m[m.split == "test"].label.tolist() == [0]


def test_eurosat_split_is_stratified_and_seeded(tmp_path):
    for cls in ("AnnualCrop", "Forest"):
        for i in range(10):
            _image(tmp_path / cls / f"{cls}_{i}.jpg")
    m = eurosat_manifest(tmp_path, test_fraction=0.2, seed=0)
    assert m[m.split == "test"].label.value_counts().to_dict() == {0: 2, 1: 2}
    assert m.class_name.unique().tolist() == ["annual crop", "forest"]
    assert m.equals(eurosat_manifest(tmp_path, test_fraction=0.2, seed=0))


def test_missing_layout_files_are_named(tmp_path):
    with pytest.raises(DataError, match="images.txt does not exist"):
        cub_manifest(tmp_path)
    with pytest.raises(DataError, match="unknown data set source 'planes'"):
        build_manifest("planes", {}, tmp_path)


def test_cars_devkit_layout(tmp_path):
    import numpy as np
    from scipy.io import savemat

    def annotations(items):
        return np.array(items, dtype=[("bbox_x1", "O"), ("class", "O"), ("fname", "O")])

    (tmp_path / "devkit").mkdir()
    savemat(tmp_path / "devkit/cars_meta.mat",
            {"class_names": np.array(["AM General Hummer SUV 2000", "Acura RL Sedan 2012"], dtype=object)})
    savemat(tmp_path / "devkit/cars_train_annos.mat",
            {"annotations": annotations([(1, 2, "00001.jpg"), (1, 1, "00002.jpg")])})
    savemat(tmp_path / "cars_test_annos_withlabels.mat", {"annotations": annotations([(1, 2, "00001.jpg")])})
    for f in ("cars_train/00001.jpg", "cars_train/00002.jpg", "cars_test/00001.jpg"):
        _image(tmp_path / f)
    m = cars_manifest(tmp_path)
    train = m[m.split == "train"]
    assert train.label.tolist() == [1, 0] and train.class_name.iloc[0] == "Acura RL Sedan 2012"
    assert m[m.split == "test"].path.iloc[0].endswith("cars_test/00001.jpg")
