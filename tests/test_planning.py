"""Snakemake's planner on the paper config and on bad input: what a login node plans for the
whole matrix, and what it refuses before any job runs; the cost plan of a target."""

import hashlib
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT, reduced_config, snakemake, snakemake_cmd


def paper_config_on_skeletons(folder) -> dict:
    """config/paper.yaml with every data root pointed at an empty skeleton of its layout
    (folders and annotation files, no images) and every model at a folder holding only its marker
    file: what start-up checks, not what jobs read."""
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    layout_files = {"cub": ["images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt"],
                    "pet": ["annotations/trainval.txt", "annotations/test.txt"],
                    "cars": ["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat"]}
    layout_files["celeba"] = ["list_eval_partition.txt", "list_attr_celeba.txt"]
    layout_dirs = {"cub": ["images"], "pet": ["images"], "cars": ["cars_train", "cars_test"],
                   "eurosat": ["AnnualCrop"], "celeba": ["img_align_celeba"]}
    from realfake.data import class_list

    for name, ds in config["datasets"].items():
        block = ds[ds["source"]]
        block["root"] = str(folder / name)
        if (folder / name).exists():  # the CelebA attributes share one root
            continue
        classes = class_list(block.get("classes")) or ["n01440764"]
        dirs = [f"{s}/{c}" for s in ("train", "val") for c in classes] if ds["source"] == "image_folder" \
            else layout_dirs[ds["source"]]
        for rel in dirs:
            (folder / name / rel).mkdir(parents=True)
        for rel in layout_files.get(ds["source"], []):
            (folder / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / name / rel).touch()
    for name, ood in config["ood_sets"].items():
        ood["root"] = str(folder / "ood" / name)
        (folder / "ood" / name / "n01440764").mkdir(parents=True)
    (folder / "sscd_disc_large.torchscript.pt").touch()
    config["experiments"]["copies"]["descriptor"] = {"path": str(folder / "sscd_disc_large.torchscript.pt"),
                                                     "sha256": hashlib.sha256(b"").hexdigest()}
    from realfake.models import MODEL_FILES

    for kind, (marker, _) in MODEL_FILES.items():  # model folders: their marker file only
        config["models"][kind] = str(folder / "models" / kind)
        (folder / "models" / kind).mkdir(parents=True)
        (folder / "models" / kind / marker).touch()
    for recipe in config["recipes"].values():
        if isinstance(recipe.get("pretrained"), str):
            recipe["pretrained"] = str(folder / "resnet50.safetensors")
    (folder / "resnet50.safetensors").touch()
    return config


def test_paper_config_plans_the_whole_matrix(tmp_path):
    """config/paper.yaml validates and plans (the roots hold only their layout's skeleton)."""
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(paper_config_on_skeletons(tmp_path / "data")))
    # from the repository root, where the demo's config/config.yaml also lies: it must not be merged in
    run = subprocess.run(snakemake_cmd() + ["results/table1.csv", "results/table2.csv", "results/table3.csv",
                                            "results/fig1_clip_pca.png", "results/fig2_scaling.png",
                                            "--configfile", str(tmp_path / "paper.yaml"), "-n", "--forceall"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    text = run.stdout + run.stderr
    assert "dataset=in1k" in text and "dataset=digits" not in text and "build_tiny_models" not in text
    shards = int(re.search(r"^synthesize_shard\s+(\d+)$", text, re.M)[1])
    # IN-1K at 10x in shards of 5,000 (2,563) dominates; every other dataset adds its own, and
    # Fig. 2 IN-10's and IN-100's up to 10x
    assert 2563 + 254 < shards < 3200
    # one realfake LoRA per dataset (7), plus the plain, guided and matched ones on IN-10 and IN-100
    assert re.search(r"^train_lora\s+(\d+)$", text, re.M)[1] == "13"
    assert re.search(r"^fig1_clip_pca\s+1$", text, re.M) and re.search(r"^fig2_scaling\s+1$", text, re.M)
    # Table 1's FakeIt row: vanilla SD, text-to-image, on the four fine-grained sets
    assert "shards/00000.tar" in text and re.search(r"variant=fakeit", text)


def test_paper_config_plans_table10_and_the_privacy_analysis(tmp_path):
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(paper_config_on_skeletons(tmp_path / "data")))
    run = subprocess.run(snakemake_cmd() + ["results/table10.csv", "results/privacy/lira.csv",
                                            "results/privacy/copies.csv", "--configfile", str(tmp_path / "paper.yaml"),
                                            "-n", "--forceall"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    text = run.stdout + run.stderr
    jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", text.split("Job stats:")[1], re.M)}
    # a LoRA per CelebA attribute (3) and per IN-10 half (16); the IN-10 LoRA for copy detection
    assert jobs["train_lora"] == 3 + 16 + 1 and jobs["lira_scores"] == 32
    # Table 10: 4 classifiers per attribute; LiRA: 2 per shadow
    assert jobs["train_classifier"] == 12 + 32 and jobs["copy_detection"] == 1
    assert "dataset=in10-shadow15" in text and "dataset=celeba_heavy_makeup" in text


@pytest.mark.parametrize("dataset, missing, key", [
    ("in10", "", "datasets.in10.image_folder.root"),
    ("in100", "val/n02869837", "datasets.in100.image_folder.splits.test"),
    ("in10", "train/n03888257", "datasets.in10.image_folder.classes"),
    ("cub", "classes.txt", "datasets.cub.cub.root"),
])
def test_missing_data_fails_the_dry_run_naming_key_and_path(tmp_path, dataset, missing, key):
    config = paper_config_on_skeletons(tmp_path / "data")
    gone = tmp_path / "data" / dataset / missing
    shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(snakemake_cmd() + ["-n", "--configfile", str(tmp_path / "paper.yaml")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode != 0
    named = gone.parent if "/" in missing else gone  # a missing class: its split folder is named
    assert key in run.stdout + run.stderr and str(named) in run.stdout + run.stderr


def test_untrusted_descriptor_and_unknown_timm_names_fail_the_dry_run_in_one_message(tmp_path):
    """A TorchScript file runs code when loaded: a hash that is not the file's stops the run, as do
    a recipe's timm names that the classifier job would fail on after the GPU-hours before it."""
    config = paper_config_on_skeletons(tmp_path / "data")
    config["experiments"]["copies"]["descriptor"]["sha256"] = "0" * 64
    config["recipes"]["in1k"].update(arch="resnet5O", optimizer="lamb2", scheduler="cosinus",
                                     auto_augment="rand-m7-mstd0.5-x3")
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(snakemake_cmd() + ["-n", "--configfile", str(tmp_path / "paper.yaml")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "5 problem(s) found before any job runs" in text, text[-3000:]
    descriptor = tmp_path / "data" / "sscd_disc_large.torchscript.pt"
    assert (f"experiments.copies.descriptor: {descriptor} has SHA-256 {hashlib.sha256(b'').hexdigest()}, "
            f"not the {'0' * 64} that experiments.copies.descriptor.sha256 expects") in text
    assert "recipes.in1k.arch: 'resnet5O' is not a timm model (close: resnet50" in text
    assert "recipes.in1k.optimizer: 'lamb2' is not a timm optimizer" in text and "close: lamb" in text
    assert "recipes.in1k.scheduler: timm's create_scheduler_v2 refuses 'cosinus'" in text and "multistep" in text
    assert "recipes.in1k.auto_augment: timm does not parse 'rand-m7-mstd0.5-x3'" in text


def test_the_paper_configs_unfilled_descriptor_hash_says_how_to_fill_it_in(tmp_path):
    from realfake.config import ConfigError, load_config
    from realfake.preflight import check_paths

    config = paper_config_on_skeletons(tmp_path / "data")
    config["experiments"]["copies"]["descriptor"]["sha256"] = None  # as config/paper.yaml ships
    with pytest.raises(ConfigError) as err:
        check_paths(load_config(config))
    path = tmp_path / "data" / "sscd_disc_large.torchscript.pt"
    assert f"experiments.copies.descriptor.sha256 is not set for {path}" in str(err.value)
    assert f"run `sha256sum {path}`" in str(err.value)


@pytest.mark.parametrize("where", ["outside", "unmarked"])
def test_build_tiny_never_deletes_a_folder_it_did_not_build(tmp_path, where):
    """Snakemake deletes a directory() output before its job: a user's own model folder named by
    models.* with build_tiny would be lost. Start-up refuses, naming the key, and touches nothing."""
    work = tmp_path / "work"
    work.mkdir()
    mine = tmp_path / "my-sd" if where == "outside" else work / "models/my-sd"
    (mine / "unet").mkdir(parents=True)
    (mine / "unet/weights.bin").write_text("the user's weights")
    config = reduced_config()
    config["models"]["stable_diffusion"] = str(mine) if where == "outside" else "models/my-sd"
    run = snakemake(work, "--cores", "1", config=config)
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "build_tiny_models" not in text, text[-3000:]
    why = "is outside the working directory" if where == "outside" else "was not built by the tiny-model builders"
    assert f"models.stable_diffusion: {config['models']['stable_diffusion']}" in text and why in text
    assert (mine / "unet/weights.bin").read_text() == "the user's weights"


def test_cost_plan_counts_jobs_and_gpu_hours(tmp_path, capsys):
    from realfake.costs import main

    config = reduced_config()
    config["costs"] = {"synthesize_shard": 36.0, "train_classifier": 0.5}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    main(["results/table1.csv", "--configfile", str(tmp_path / "config.yaml"), "--all", "--gpus", "2"])
    table = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    # 2 shards x 40 images x 36 s = 0.8 GPU-hours, in one group of 8, 0.4 hours on 2 GPUs, 40 PNGs each
    assert rows["synthesize_shard"][:5] == ["2", "80.0", "0.8", "1", "0.4"]
    assert float(rows["synthesize_shard"][5]) == pytest.approx(2 * 40 * 501.5 * 1024 / 1e12, abs=0.001)
    # 1 epoch over 80 (real), 80 (synthetic) and 160 (both) images at 32 px, 0.5 s per 224-px image
    classifier_hours = 320 * (32 / 224) ** 2 * 0.5 / 3600
    assert rows["train_classifier"][0] == "3" and float(rows["train_classifier"][2]) == \
        pytest.approx(classifier_hours, abs=0.05)
    assert rows["total"][0] == str(sum(int(r[0]) for k, r in rows.items() if k != "total"))


def test_grids_add_only_their_own_jobs_to_the_tables(tmp_path):
    """The demo's grids read shards Tables 1 and 2 already build: no synthesis of their own."""
    from conftest import planned_jobs

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    tables = planned_jobs(tmp_path, config, None, "results/table1.csv", "results/table2.csv")
    with_grids = planned_jobs(tmp_path, config, None, "results/table1.csv", "results/table2.csv", "table1_grids",
                              "results/grids/table2.png")
    assert with_grids == {**tables, "sample_grid": 2, "comparison_grid": 2, "table1_grids": 1}


def test_paper_config_plans_its_grids(tmp_path):
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(paper_config_on_skeletons(tmp_path / "data")))
    run = subprocess.run(snakemake_cmd() + ["table1_grids", "results/grids/table2.png", "--configfile",
                                            str(tmp_path / "paper.yaml"), "-n", "--forceall"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    text = run.stdout + run.stderr
    # a grid per Table 1 set (7 data sets, FakeIt on 4), the table1 (CUB) and table2 (IN-10) comparisons
    assert re.search(r"^sample_grid\s+11$", text, re.M) and re.search(r"^comparison_grid\s+2$", text, re.M)
    assert "results/in1k/realfake/samples.png" in text and "results/grids/table2.png" in text
