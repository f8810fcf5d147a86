"""The real Snakemake on a reduced copy of the demo config, in a temporary folder."""

import json
import re
import subprocess
import tarfile

import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, snakemake_cmd


def reduced_config() -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"]["digits"]["digits"]["train_per_class"] = 8  # 80 training images
    config["tiny_models"]["pretrain"].update(vae_steps=10, unet_steps=10)
    config["finetunes"]["realfake"].update(epochs=1, batch_size=16)
    config["synthesis"]["shard_size"] = 32  # x1 needs 3 shards
    config["recipes"]["demo"].update(epochs=1, batch_size=32, decay_milestones=[1])
    config["runtime"]["lora_checkpoint_every"] = 2
    return config


def snakemake(workdir, *args, config=None):
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = snakemake_cmd() + ["--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def planned_jobs(workdir, config) -> dict:
    """Rule -> job count of a dry run (empty: nothing to do)."""
    run = snakemake(workdir, "-n", config=config)
    assert run.returncode == 0, run.stderr + run.stdout
    text = run.stdout + run.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    config = reduced_config()
    run = snakemake(workdir, "--cores", "2", config=config)
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir, config


def test_manifest_and_models(built):
    from diffusers import StableDiffusionImg2ImgPipeline
    from transformers import Blip2ForConditionalGeneration, CLIPVisionModelWithProjection

    workdir, _ = built
    manifest = pd.read_parquet(workdir / "data/digits/manifest.parquet")
    assert manifest.groupby("split").size().to_dict() == {"train": 80, "test": 360}
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(workdir / "models/tiny-sd")
    assert pipe.vae.config.scaling_factor != 0.18215  # fitted to the pre-trained latents
    assert CLIPVisionModelWithProjection.from_pretrained(workdir / "models/tiny-clip").config.projection_dim == 64
    Blip2ForConditionalGeneration.from_pretrained(workdir / "models/tiny-blip2")


def test_captions_guidance_and_lora(built):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    workdir, _ = built
    captions = pd.read_parquet(workdir / "results/digits/captions.parquet")
    assert len(captions) == 80 and list(captions["index"]) == list(range(80))
    guidance = load_file(workdir / "results/digits/guidance.safetensors")
    assert guidance["class_mean"].shape == (10, 64) and guidance["per_image"].shape == (80, 64)
    lora = workdir / "results/digits/finetune/realfake/lora.safetensors"
    assert all(".lora" in k for k in load_file(lora))
    pipe = StableDiffusionPipeline.from_pretrained(workdir / "models/tiny-sd")
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    assert pipe.get_list_adapters()["unet"]
    assert not (lora.parent / "lora.safetensors.checkpoint.pt").exists()  # removed once done


def test_shards_classifiers_metrics_table(built):
    workdir, _ = built
    shards = sorted((workdir / "results/digits/realfake/shards").glob("*.tar"))
    assert [s.name for s in shards] == ["00000.tar", "00001.tar", "00002.tar"]
    pngs = [n for s in shards for n in tarfile.open(s).getnames() if n.endswith(".png")]
    assert len(pngs) == 96
    for trainset in ("real", "realfake/x1", "realfake/x1_real"):
        folder = workdir / "results/digits" / trainset / "seed0"
        state = torch.load(folder / "classifier.pt", weights_only=True)
        assert state["arch"] == "resnet10t" and state["num_classes"] == 10
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["images"] == 360 and 0 <= metrics["top1"] <= metrics["top5"] <= 100
    table = pd.read_csv(workdir / "results/table1.csv")
    assert list(table.columns) == ["setting", "method", "IN-10", "IN-10_paper"]
    ours = table.dropna(subset=["IN-10"]).set_index("method")
    assert set(ours.index) == {"Real-Fake", "real_only", "Real-Fake+real"}
    assert ours.loc["Real-Fake", "IN-10_paper"] == 90.5


def test_every_rule_logged(built):
    workdir, _ = built
    logs = {p.relative_to(workdir / "logs").as_posix() for p in (workdir / "logs").rglob("*.log")}
    for expected in ("models/build_tiny_models.log", "models/pretrain_tiny_sd.log",
                     "digits/build_manifest.log", "digits/caption_images.log", "digits/compute_guidance.log",
                     "digits/train_lora/realfake.log", "digits/realfake/synthesize_shard/00000.log",
                     "digits/realfake/x1/seed0/train_classifier.log", "table1.log"):
        assert expected in logs
    assert "LoRA trained" in (workdir / "logs/digits/train_lora/realfake.log").read_text()


def test_unchanged_config_has_nothing_to_do(built):
    workdir, config = built
    assert planned_jobs(workdir, config) == {}


def test_runtime_settings_rerun_nothing(built):
    workdir, config = built
    edited = json.loads(json.dumps(config))
    edited["runtime"].update(synthesis_batch_size=7, eval_batch_size=3, device="cpu")
    assert planned_jobs(workdir, edited) == {}


def test_synthesis_edit_reruns_synthesis_and_downstream_only(built):
    workdir, config = built
    edited = json.loads(json.dumps(config))
    edited["variants"]["realfake"]["guidance_scale"] = 3.0
    assert planned_jobs(workdir, edited) == {"synthesize_shard": 3, "train_classifier": 2,
                                             "evaluate_classifier": 2, "table1": 1, "all": 1}


def test_lora_edit_reruns_lora_and_downstream_only(built):
    workdir, config = built
    edited = json.loads(json.dumps(config))
    edited["finetunes"]["realfake"]["mmd_weight"] = 0.1
    assert planned_jobs(workdir, edited) == {"train_lora": 1, "synthesize_shard": 3, "train_classifier": 2,
                                             "evaluate_classifier": 2, "table1": 1, "all": 1}


def test_classifier_edit_reruns_classifiers_evaluation_and_table_only(built):
    workdir, config = built
    edited = json.loads(json.dumps(config))
    edited["recipes"]["demo"]["lr"] = 0.01
    assert planned_jobs(workdir, edited) == {"train_classifier": 3, "evaluate_classifier": 3,
                                             "table1": 1, "all": 1}


def test_bad_config_names_the_key(built):
    workdir, config = built
    edited = json.loads(json.dumps(config))
    edited["variants"]["realfake"]["guidance_scal"] = 3.0
    run = snakemake(workdir, "-n", config=edited)
    assert run.returncode != 0 and "'guidance_scal' was unexpected" in run.stdout + run.stderr
    edited = json.loads(json.dumps(config))
    edited["synthesis"]["shard_size"] = "big"
    run = snakemake(workdir, "-n", config=edited)
    assert run.returncode != 0 and "'big' is not of type 'integer'" in run.stdout + run.stderr


def test_missing_model_folder_fails_at_once(built, tmp_path):
    workdir, config = built
    edited = json.loads(json.dumps(config))
    edited["models"].update(build_tiny=False, stable_diffusion=str(tmp_path / "no-sd"))
    run = snakemake(workdir, "-n", config=edited)
    assert run.returncode != 0 and "no-sd does not exist" in run.stdout + run.stderr


def test_lint_is_clean():
    run = subprocess.run(snakemake_cmd() + ["--lint", "--configfile", str(ROOT / "config/config.yaml")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
