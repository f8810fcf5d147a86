import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from PIL import Image

from realfake.atomic import atomic_path, write_text
from realfake.config import ConfigError, check_references, parse_trainset
from realfake.data import DataError, image_folder_manifest, read_manifest, write_manifest
from realfake.models import ModelPathError, resolve_model
from realfake.plan import shards_for_scale, train_size, trainset_shards
from realfake.seeds import derive_seed
from realfake.shards import shard_range


def test_digits_manifest(digits):
    assert list(digits.columns) == ["split", "index", "path", "label", "class_name", "class_id"]
    train = digits[digits.split == "train"]
    assert len(train) == 50 and train.label.value_counts().eq(5).all()
    assert (train["index"] == np.arange(50)).all()
    assert (digits[digits.split == "test"]["index"].diff().dropna() == 1).all()
    image = Image.open(train.path.iloc[0])
    assert image.size == (8, 8)
    assert dict(zip(train.label, train.class_name, strict=True))[3] == "three"


def test_digits_train_size_is_known_before_the_manifest(digits):
    config = {"datasets": {"d": {"source": "digits", "digits": {"train_per_class": 5, "test_fraction": 0.2,
                                                                 "seed": 0}}}}
    assert train_size(config, "d") == (digits.split == "train").sum()
    config["datasets"]["d"]["digits"]["train_per_class"] = None
    assert train_size(config, "d") == 1437


def test_the_digits_split_is_counted_as_scikit_learn_draws_it():
    """Planning counts the split (no scikit-learn import at Snakemake's start): the class counts are
    the data set's, and every count is the drawn split's, on both sides of the per-class floor
    (139 images for a test fraction of 0.2, where the count falls back to drawing it)."""
    from sklearn.datasets import load_digits

    from realfake.splits import DIGITS_CLASS_COUNTS, digits_split, digits_train_size

    assert tuple(np.bincount(load_digits().target)) == DIGITS_CLASS_COUNTS
    for test_fraction in (0.1, 0.2, 0.25, 1 / 3, 0.5, 0.9):
        for per_class in (None, 1, 8, 20, 80, 139, 140, 143, 160, 200):
            for seed in (0, 1):
                drawn = len(digits_split(test_fraction, per_class, seed)[0])
                assert digits_train_size(test_fraction, per_class, seed) == drawn, (test_fraction, per_class, seed)
    for test_fraction in (0.001, 0.995):  # a side with fewer images than classes: scikit-learn's error, as before
        with pytest.raises(ValueError, match="should be greater or equal to the number of classes"):
            digits_train_size(test_fraction, 5)


def _folder(root, counts):
    for split, classes in counts.items():
        for cls, n in classes.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (4, 4), (i, 0, 0)).save(root / split / cls / f"{i}.png")


def test_image_folder_manifest_with_class_names(tmp_path):
    _folder(tmp_path, {"train": {"n01": 2, "n02": 3}, "val": {"n01": 1, "n02": 1}})
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"n01": "tench", "n02": "goldfish"}))
    m = image_folder_manifest(tmp_path, {"train": "train", "test": "val"}, names)
    assert m.groupby("split").size().to_dict() == {"test": 2, "train": 5}
    assert m[m.label == 1].class_name.unique().tolist() == ["goldfish"]
    assert m[m.label == 1].class_id.unique().tolist() == ["n02"]
    write_manifest(tmp_path / "m.parquet", m)
    pd.testing.assert_frame_equal(read_manifest(tmp_path / "m.parquet"), m)


def test_missing_root_names_the_folder(tmp_path):
    with pytest.raises(DataError, match="nowhere does not exist"):
        image_folder_manifest(tmp_path / "nowhere", {"train": "train"})


def test_empty_class_folder_is_named(tmp_path):
    _folder(tmp_path, {"train": {"a": 1, "b": 1}, "val": {"a": 1}})
    (tmp_path / "val" / "b").mkdir()
    with pytest.raises(DataError, match=r"val/b holds no images"):
        image_folder_manifest(tmp_path, {"train": "train", "test": "val"})


def test_unreadable_image_is_named(tmp_path):
    _folder(tmp_path, {"train": {"a": 1}})
    (tmp_path / "train" / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"image .*broken.jpg does not decode \(UnidentifiedImageError"):
        image_folder_manifest(tmp_path, {"train": "train"})


def test_class_name_map_missing_a_class(tmp_path):
    _folder(tmp_path, {"train": {"a": 1, "b": 1}})
    (tmp_path / "names.json").write_text(json.dumps({"a": "apple"}))
    with pytest.raises(DataError, match=r"lacks class folders \['b'\]"):
        image_folder_manifest(tmp_path, {"train": "train"}, tmp_path / "names.json")


def test_shard_ranges_per_scale_share_shards():
    assert shard_range(2, 100) == range(200, 300)
    n, size = 1437, 512
    x1, x2, x10 = (shards_for_scale(k, n, size) for k in (1, 2, 10))
    assert x1 == [0, 1, 2] and x2 == list(range(6)) and x10 == list(range(29))
    assert set(x1) <= set(x2) <= set(x10)  # 10x costs 10 units of synthesis, not 18
    covered = [i for s in x10 for i in shard_range(s, size)]
    assert covered[: 10 * n] == list(range(10 * n))
    assert len({derive_seed(0, "synthesis", i) for i in covered}) == len(covered)


def test_trainset_parsing():
    assert parse_trainset("real") == {"variant": None, "scale": 0, "real": True}
    assert parse_trainset("realfake/x5_real") == {"variant": "realfake", "scale": 5, "real": True}
    assert parse_trainset("base/x2") == {"variant": "base", "scale": 2, "real": False}
    with pytest.raises(ConfigError):
        parse_trainset("realfake/5x")
    config = {"datasets": {"d": {"source": "image_folder", "train_images": 1000}},
              "synthesis": {"shard_size": 300}}
    assert trainset_shards(config, "d", "v/x2") == list(range(7))
    assert trainset_shards(config, "d", "real") == []


def test_config_cross_references_name_their_key():
    config = {"datasets": {"d": {"source": "digits", "recipe": "missing"}}, "recipes": {"r": {}},
              "models": {"build_tiny": True},
              "variants": {}, "finetunes": {}, "experiments": {"table1": {"variant": "v"}}}
    with pytest.raises(ConfigError, match=r"datasets.d.recipe: 'missing'"):
        check_references(config)
    config["datasets"]["d"]["recipe"] = "r"
    config["variants"]["v"] = {"finetune": "nope"}
    with pytest.raises(ConfigError, match=r"variants.v.finetune: 'nope'"):
        check_references(config)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelPathError, match="does not exist"):
        resolve_model(str(tmp_path / "no-such-model"))
    assert resolve_model("stable-diffusion-v1-5/stable-diffusion-v1-5") == \
        "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_atomic_write_leaves_nothing_when_killed(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    write_text(target, "whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_imagenet_wnid_folders_get_clip_names(tmp_path):
    _folder(tmp_path, {"train": {"n01440764": 1, "n03888257": 1}})
    m = image_folder_manifest(tmp_path, {"train": "train"}, "imagenet")
    assert m.class_name.tolist() == ["tench", "parachute"]
    _folder(tmp_path, {"train": {"cat": 1}})
    with pytest.raises(DataError, match="not ImageNet WordNet ids"):
        image_folder_manifest(tmp_path, {"train": "train"}, "imagenet")


def test_ood_folders_map_to_training_labels(tmp_path):
    from realfake.ood import kept_classes, ood_manifest

    train = pd.DataFrame({"label": [0, 1, 2], "class_name": ["tench", "goldfish", "shark"],
                          "class_id": ["n01", "n02", "n03"]})
    _folder(tmp_path / "r", {"": {"n03": 2, "n01": 1}})
    m = ood_manifest(tmp_path / "r", train)
    assert sorted(zip(m.class_id, m.label, m.class_name, strict=True)) == [("n01", 0, "tench"), ("n03", 2, "shark"),
                                                              ("n03", 2, "shark")]
    assert kept_classes(m.label, True) == [0, 2] and kept_classes(m.label, False) is None
    _folder(tmp_path / "v2", {"": {"1": 1}})
    assert ood_manifest(tmp_path / "v2", train, folder_labels="index").label.tolist() == [1]
    _folder(tmp_path / "bad", {"": {"n99": 1}})
    with pytest.raises(DataError, match="n99 names no class"):
        ood_manifest(tmp_path / "bad", train)


def test_shifted_digits_keep_labels_and_subset(digits, tmp_path):
    from realfake.ood import shifted_digits_manifest

    test = digits[digits.split == "test"]
    m = shifted_digits_manifest(tmp_path, test, "invert", labels=[1, 3])
    assert set(m.label) == {1, 3} and len(m) == test.label.isin([1, 3]).sum()
    original = np.asarray(Image.open(test[test.label == 1].path.iloc[0]).convert("RGB"))
    shifted = np.asarray(Image.open(m.path.iloc[0]))
    assert (shifted.astype(int) + original == 255).all()


def test_experiment_references_name_their_key():
    config = {"datasets": {"d": {"source": "digits", "recipe": "r"}}, "recipes": {"r": {}},
              "models": {"build_tiny": True}, "finetunes": {}, "variants": {"v": {"finetune": None}},
              "experiments": {"table1": {"variant": "v", "datasets": ["d"], "baselines": {}}, "gap": {"dataset": "d", "variants": ["v", "w"]}}}
    with pytest.raises(ConfigError, match=r"experiments.gap.variants: 'w' is not a key of variants"):
        check_references(config)
    config["experiments"] = {"table1": {"variant": "v", "datasets": ["d"], "baselines": {}}, "table4": {"dataset": "d", "trainsets": ["real"]}}
    with pytest.raises(ConfigError, match="needs at least one entry in ood_sets"):
        check_references(config)


def test_imagenet_subsets_are_the_papers_class_lists():
    from realfake.data import class_list

    in10 = class_list("imagenet10")
    assert in10 == ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
                    "n03425413", "n03445777", "n03888257"]  # tench ... parachute: IN-1K 0, 217, ..., 701
    in100 = class_list("imagenet100")
    assert len(set(in100)) == 100 and in100[:2] == ["n02869837", "n01749939"]
    shared = ROOT.parent / "shared/paper/imagenet100_wnids.txt"
    if shared.exists():
        assert in100 == shared.read_text().split()
    assert class_list(None) is None and class_list(["b", "a"]) == ["b", "a"]


def test_class_list_takes_a_subset_and_names_a_missing_class(tmp_path):
    from realfake.sources import check_layout

    _folder(tmp_path, {"train": {"n01": 2, "n02": 1, "n03": 1}, "val": {"n01": 1, "n02": 1, "n03": 1}})
    m = image_folder_manifest(tmp_path, {"train": "train", "test": "val"}, classes=["n03", "n01"])
    assert sorted(m.class_id.unique()) == ["n01", "n03"] and m[m.class_id == "n03"].label.unique().tolist() == [1]
    settings = {"root": str(tmp_path), "splits": {"train": "train", "test": "val"}, "classes": ["n01", "n09"]}
    with pytest.raises(DataError, match=r"d.image_folder.classes: .*train lacks the class folders \['n09'\]"):
        check_layout("image_folder", settings, "d.image_folder")
    with pytest.raises(DataError, match=r"lacks the class folders \['n09'\]"):
        image_folder_manifest(tmp_path, {"train": "train", "test": "val"}, classes=["n01", "n09"])


def test_worker_geometry_from_a_jobs_resources():
    from realfake.jobs import worker_geometry

    assert worker_geometry({"gpu": 8}) == {"processes": 8}
    assert worker_geometry({"gpu": 8, "mpi": "srun", "tasks": 32, "nodes": 4}) == \
        {"processes": 32, "launcher": "srun", "nodes": 4}


def test_rendezvous_is_the_first_host_of_the_jobs_nodelist(monkeypatch):
    import realfake.distributed as distributed

    assert distributed.first_host("n[1-2]") == "n1"
    assert distributed.first_host("gpu-[07-09,12],cpu1") == "gpu-07"
    assert distributed.first_host("node17") == "node17"
    assert distributed.first_host("a[3],b[1-4]") == "a3"
    with pytest.raises(ValueError, match="not a SLURM hostlist"):
        distributed.first_host("[1-2]")
    # in an srun task on the mpi path: rank 0's host, not the address of whoever ran srun
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.setenv(key, "")  # recorded, so that teardown removes what _rank_from_slurm sets
        monkeypatch.delenv(key)
    monkeypatch.setattr(distributed.socket, "gethostbyname", {"n1": "10.87.0.11"}.__getitem__)
    for key, value in {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0",
                       "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_LAUNCH_NODE_IPADDR": "10.87.0.1"}.items():
        monkeypatch.setenv(key, value)
    distributed._rank_from_slurm()
    assert [os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")] == ["1", "2", "0", "10.87.0.11"]


def test_images_load_upright_whatever_their_exif_orientation(tmp_path):
    from realfake.data import load_rgb
    from realfake.smoke.datasets import write_image

    rotated = write_image(tmp_path / "photo.JPEG", 375, 500, seed=0, quirk="exif_rotated")
    from PIL import Image

    with Image.open(rotated) as raw:
        assert raw.size == (500, 375)  # stored landscape
    assert load_rgb(rotated).size == (375, 500)  # shown portrait, as the camera meant
    assert load_rgb(rotated, 32).size == (32, 32)
