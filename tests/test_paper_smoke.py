"""config/paper.yaml at the paper's shapes: the smoke data sets in their published layouts, the
start-up checks of an offline cluster, and the cheapest slice of `make paper-smoke` (one data set
through to a classifier: a 224-px ResNet-50 from a local ImageNet weights file)."""

import copy
import json
import os
import subprocess

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, snakemake_cmd

from realfake.config import ConfigError, load_config
from realfake.preflight import check_paths
from realfake.smoke.overlay import paper_overlay, write_paper_datasets


def merged(base: dict, overlay: dict) -> dict:
    """Snakemake's merge of several --configfile dicts: key by key, the later file wins."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def paper_yaml() -> dict:
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def stub_models(folder) -> dict[str, str]:
    """Model folders holding only their marker file, and the weights files: for what start-up
    checks and for jobs that never load them."""
    from realfake.models import MODEL_FILES

    paths = {}
    for kind, (marker, _) in MODEL_FILES.items():
        (folder / kind).mkdir(parents=True, exist_ok=True)
        (folder / kind / marker).touch()
        paths[kind] = str(folder / kind)
    for kind, name in (("resnet50", "model.safetensors"), ("sscd", "sscd.torchscript.pt")):
        paths[kind] = str(folder / name)
    (folder / "sscd.torchscript.pt").touch()  # the overlay pins its sha256
    return paths


@pytest.fixture(scope="module")
def smoke_roots(tmp_path_factory):
    return write_paper_datasets(tmp_path_factory.mktemp("smoke-data"))


@pytest.fixture
def smoke_config(smoke_roots, tmp_path):
    """paper.yaml + the smoke overlay, as written (not loaded), with stub models."""
    models = stub_models(tmp_path / "models")
    overlay = paper_overlay(paper_yaml(), models, smoke_roots)
    from realfake.smoke.models import build_resnet50_weights

    build_resnet50_weights(tmp_path / "models")
    (tmp_path / "models/sscd.torchscript.pt").touch()
    return merged(paper_yaml(), overlay), overlay


def test_every_paper_data_set_reads_its_published_layout(smoke_config, tmp_path):
    from realfake.sources import build_manifest

    config = load_config(smoke_config[0])
    check_paths(config)
    for name, ds in config["datasets"].items():
        if "shadow" in ds:
            continue
        frame = build_manifest(ds["source"], ds[ds["source"]], tmp_path / name, ds["train_images"])
        train = frame[frame.split == "train"]
        assert len(frame[frame.split == "test"]) == ds["test_images"], name
        assert sorted(train.label.unique()) == list(range(train.label.nunique())), name  # labels 0..k-1
    cars = build_manifest("cars", config["datasets"]["cars"]["cars"], tmp_path)
    assert cars.class_name.unique().tolist() == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"]


def test_quirky_files_load_upright_as_rgb(smoke_roots):
    """ImageNet's PNG named .JPEG, CMYK and grayscale JPEGs, an EXIF-rotated photograph."""
    from realfake.data import load_rgb

    train = smoke_roots["imagenet"] / "train"
    rotated = train / "n01440764/n01440764_2.JPEG"  # stored 500 x 375, Orientation 6
    assert load_rgb(rotated).size == (375, 500)
    with open(train / "n01440764/n01440764_1.JPEG", "rb") as f:  # the PNG named .JPEG
        assert f.read(4) == b"\x89PNG"
    for path in sorted(train.rglob("*.JPEG")):
        image = load_rgb(path)
        assert image.mode == "RGB" and min(image.size) >= 21
    cmyk = load_rgb(train / "n02102040/n02102040_1.JPEG")
    assert 20 < np.asarray(cmyk).mean() < 235  # not inverted to black or white


def test_start_up_lists_every_problem_in_one_message(smoke_config, tmp_path):
    config, _ = smoke_config
    config = copy.deepcopy(config)
    config["datasets"]["cub"]["cub"]["root"] = str(tmp_path / "no-cub")
    config["ood_sets"]["in_r"]["root"] = str(tmp_path / "no-imagenet-r")
    config["models"]["clip"] = str(tmp_path / "no-clip")
    with pytest.raises(ConfigError) as err:
        check_paths(load_config(config))
    message = str(err.value)
    assert message.startswith("3 problem(s)")
    for key in ("datasets.cub.cub.root", "ood_sets.in_r", "models.clip"):
        assert key in message


def run_dry(config: dict, tmp_path, env: dict):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(snakemake_cmd() + ["-n", "--directory", str(tmp_path / "work"), "--configfile",
                                             str(tmp_path / "config.yaml")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_offline_hub_id_not_in_the_cache_fails_the_dry_run(smoke_config, tmp_path):
    config = copy.deepcopy(smoke_config[0])
    config["models"]["stable_diffusion"] = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    run = run_dry(config, tmp_path, {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")})
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert "models.stable_diffusion: stable-diffusion-v1-5/stable-diffusion-v1-5 is neither a local folder" in text
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5" in text


def test_a_prefilled_hub_cache_passes_the_start_up_check(tmp_path, monkeypatch):
    """The cache layout huggingface_hub writes: models--owner--name/refs/main -> snapshots/<commit>/."""
    from realfake.models import check_model

    repo = tmp_path / "hub" / "models--openai--clip-vit-large-patch14"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs/main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert "neither a local folder" in check_model("openai/clip-vit-large-patch14", "models.clip", "clip")
    (repo / "snapshots" / ("0" * 40) / "preprocessor_config.json").write_text("{}")
    assert check_model("openai/clip-vit-large-patch14", "models.clip", "clip") is None


def test_pretrained_true_without_local_weights_fails_at_start_up(smoke_config, tmp_path):
    config = copy.deepcopy(smoke_config[0])
    config["recipes"]["finegrained_224"]["pretrained"] = True
    config["recipes"]["finegrained_448"]["pretrained"] = str(tmp_path / "missing.safetensors")
    run = run_dry(config, tmp_path, {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")})
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert "recipes.finegrained_224.pretrained: true would download timm's resnet50 weights" in text
    assert f"recipes.finegrained_448.pretrained: the weights file {tmp_path}/missing.safetensors" in text


def test_paper_shapes_slice_trains_a_pretrained_448px_classifier(smoke_config, tmp_path):
    """CUB at the paper's shapes, offline: published layout (a grayscale JPEG among its images) ->
    manifest -> ResNet-50 from the local ImageNet weights file at 448 px -> evaluation."""
    config, overlay = smoke_config
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/cub/real/seed0/metrics.json"
    run = subprocess.run(snakemake_cmd() + [target, "--cores", "2", "--directory", str(tmp_path / "work"),
                                            "--configfile", str(tmp_path / "config.yaml")],
                         capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    state = torch.load(tmp_path / "work/results/cub/real/seed0/classifier.pt", weights_only=True)
    assert state["recipe"]["train_resolution"] == 448 and state["recipe"]["pretrained"] == overlay["recipes"][
        "finegrained_448"]["pretrained"]
    assert state["num_classes"] == 2 and state["state_dict"]["fc.weight"].shape == (2, 2048)
    metrics = json.loads((tmp_path / "work" / target).read_text())
    assert metrics["images"] == 2
