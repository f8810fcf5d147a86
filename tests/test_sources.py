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


CUB_FILES = {"images.txt": "1 001.Black_footed_Albatross/a.jpg\n2 001.Black_footed_Albatross/b.jpg\n"
                           "3 002.Laysan_Albatross/c.jpg\n",
             "image_class_labels.txt": "1 1\n2 1\n3 2\n", "train_test_split.txt": "1 1\n2 0\n3 1\n",
             "classes.txt": "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n"}


def _cub(root, **files):
    for rel in ("001.Black_footed_Albatross/a.jpg", "001.Black_footed_Albatross/b.jpg", "002.Laysan_Albatross/c.jpg"):
        _image(root / "images" / rel)
    for name, text in {**CUB_FILES, **files}.items():
        (root / name.replace("__", ".")).write_text(text)


@pytest.mark.parametrize("file, text, match", [
    ("image_class_labels__txt", "1 1\n2 x\n3 2\n",
     r"image_class_labels.txt, line 2: expected a class id \(an integer from 1\), got 'x'"),
    ("image_class_labels__txt", "1 1\n3 2\n", r"image_class_labels.txt has no line for image id 2 \(images.txt line 2\)"),
    ("train_test_split__txt", "1 1\n\n2 yes\n3 1\n", r"train_test_split.txt, line 3: expected 1 \(train\) or 0 \(test\), got 'yes'"),
    ("classes__txt", "1 001.Black_footed_Albatross\n",
     r"classes.txt has no line for class id 2 \(image_class_labels.txt line 3\)"),
    ("images__txt", "1 001.Black_footed_Albatross/a.jpg\n1 001.Black_footed_Albatross/b.jpg\n",
     "images.txt, line 2: id 1 is on line 1 already"),
    ("images__txt", "1\n", "images.txt, line 1: expected 2 columns, got '1'"),
])
def test_cub_malformed_lines_name_their_file_and_line(tmp_path, file, text, match):
    _cub(tmp_path, **{file: text})
    with pytest.raises(DataError, match=match):
        cub_manifest(tmp_path)


def _pet(root, trainval, test="Abyssinian_2 1 1 1\n"):
    for name in ("Abyssinian_1", "Abyssinian_2", "great_pyrenees_7"):
        _image(root / "images" / f"{name}.jpg")
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations/trainval.txt").write_text(trainval)
    (root / "annotations/test.txt").write_text(test)


def test_pet_malformed_line_names_its_file_and_line(tmp_path):
    _pet(tmp_path, "Abyssinian_1 1 1 1\ngreat_pyrenees_7 two 2 1\n")
    with pytest.raises(DataError, match=r"trainval.txt, line 2: expected the class id \(an integer from 1\) in column 2, "
                                        r"got 'two'"):
        pet_manifest(tmp_path)


@pytest.mark.parametrize("meta, train, match", [
    ({"names": ["A", "B"]}, [(2, "00001.jpg")], r"cars_meta.mat has no variable 'class_names' \(it has \['names'\]"),
    ({"class_names": ["A", "B"]}, [(3, "00001.jpg")], "cars_train_annos.mat, annotation 1: class 3 is not one of the 2"),
    ({"class_names": ["A", "B"]}, [("x", "00001.jpg")], "cars_train_annos.mat, annotation 1: expected an integer class"),
    ({"class_names": ["A", "B"]}, None, r"cars_train_annos.mat: its annotations lack the fields \['class'\]"),
])
def test_cars_malformed_mat_files_name_file_and_record(tmp_path, meta, train, match):
    import numpy as np
    from scipy.io import savemat

    def annotations(items):
        return np.array(items, dtype=[("class", "O"), ("fname", "O")])

    (tmp_path / "devkit").mkdir()
    savemat(tmp_path / "devkit/cars_meta.mat", {k: np.array(v, dtype=object) for k, v in meta.items()})
    savemat(tmp_path / "devkit/cars_train_annos.mat", {"annotations": annotations(train) if train else
                                                       np.array([("00001.jpg",)], dtype=[("fname", "O")])})
    savemat(tmp_path / "cars_test_annos_withlabels.mat", {"annotations": annotations([(1, "00001.jpg")])})
    for f in ("cars_train/00001.jpg", "cars_test/00001.jpg"):
        _image(tmp_path / f)
    with pytest.raises(DataError, match=match):
        cars_manifest(tmp_path)


@pytest.mark.parametrize("attributes, match", [
    ("3\nSmiling Young\n1.jpg 1 -1\n2.jpg 0 1\n3.jpg -1 1\n", r"list_attr_celeba.txt, line 4: expected a file name and "
                                                              r"2 of \['-1', '1'\], got '2.jpg 0 1'"),
    ("5\nSmiling Young\n1.jpg 1 -1\n2.jpg -1 1\n3.jpg -1 1\n", r"list_attr_celeba.txt, line 1: expected the image count, "
                                                               r"3 \(the rows that follow\), got '5'"),
])
def test_celeba_malformed_lines_name_their_file_and_line(tmp_path, attributes, match):
    from realfake.attributes import celeba_manifest

    for name in ("1.jpg", "2.jpg", "3.jpg"):
        _image(tmp_path / "img_align_celeba" / name)
    (tmp_path / "list_eval_partition.txt").write_text("1.jpg 0\n2.jpg 0\n3.jpg 2\n")
    (tmp_path / "list_attr_celeba.txt").write_text(attributes)
    with pytest.raises(DataError, match=match):
        celeba_manifest(tmp_path, "Smiling")


def test_a_class_without_train_images_is_named_when_the_manifest_is_built(tmp_path):
    _cub(tmp_path / "cub", **{"train_test_split.txt": "1 1\n2 0\n3 0\n"})
    with pytest.raises(DataError, match=rf"cub data set at {tmp_path}/cub: class 'Laysan Albatross' \(class_id "
                                        r"002.Laysan_Albatross, label 1\) has no image in the train split \(test: 1; "
                                        r"1 of 2 classes have none\)"):
        build_manifest("cub", {"root": str(tmp_path / "cub")}, tmp_path)
    _pet(tmp_path / "pet", "Abyssinian_1 1 1 1\n", "Abyssinian_2 1 1 1\ngreat_pyrenees_7 2 2 1\n")
    with pytest.raises(DataError, match=r"class 'great pyrenees' \(class_id great_pyrenees, label 1\) has no image in "
                                        r"the train split"):
        build_manifest("pet", {"root": str(tmp_path / "pet")}, tmp_path)
    _pet(tmp_path / "gap", "Abyssinian_1 1 1 1\ngreat_pyrenees_7 3 2 1\n")
    with pytest.raises(DataError, match=r"labels must run 0..K-1, but no image has label 1 \(1 of 0..2 unused\)"):
        build_manifest("pet", {"root": str(tmp_path / "gap")}, tmp_path)


def test_digits_have_every_class_in_both_splits(digits):
    from realfake.sources import check_classes

    check_classes(digits, "digits")
