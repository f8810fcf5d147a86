"""Table 10 (CelebA attributes) end to end through Snakemake, on the digits stand-in: its own folder
seeded from the shared upstream, beside test_workflow.py's (so it runs in another queue)."""

import json

import pandas as pd
import pytest
from conftest import FAKEIT_VARIANT, LORA, planned_jobs, reduced_config, seed_workdir, snakemake


def attribute_config() -> dict:
    """The reduced config with Table 10 on one stand-in attribute (even digits as "Smiling") and
    FakeIt as its baseline."""
    config = reduced_config()
    config["datasets"]["digits_even"] = {
        "source": "digits_attributes", "recipe": "demo", "captions": False,
        "prompt_template": "a photo of a {classname} digit",
        "digits_attributes": {"attribute": "Even", "names": ["odd", "even"], "train_subset": 32, "test_subset": 60}}
    config["variants"]["fakeit"] = dict(FAKEIT_VARIANT)
    config["experiments"]["table10"] = {"datasets": {"Smiling": "digits_even"}, "baseline": "fakeit"}
    return config


def test_celeba_attribute_table(upstream, tmp_path):
    from sklearn.datasets import load_digits

    from realfake.shards import ShardSamples

    config = attribute_config()
    seed_workdir(upstream, tmp_path)
    assert planned_jobs(tmp_path, config, None, LORA) == {}  # the shared upstream holds for this config
    run = snakemake(tmp_path, "--cores", "2", "results/table10.csv", config=config)
    assert run.returncode == 0, run.stderr[-5000:]
    manifest = pd.read_parquet(tmp_path / "data/digits_even/manifest.parquet")
    assert manifest.groupby("split").size().to_dict() == {"test": 60, "train": 32}  # x1: 32 images, one shard
    assert (tmp_path / "data/digits_even/images/list_attr_celeba.txt").read_text().splitlines()[1] == "Even Round Large"
    digit = manifest.path.str.extract(r"(\d+)\.png$")[0].astype(int) - 1  # CelebA's 1-based file names
    assert (manifest.label == (load_digits().target[digit] % 2 == 0)).all()
    samples = ShardSamples([tmp_path / "results/digits_even/realfake/shards/00000.tar"])
    prompts = {samples.meta(i)["prompt"] for i in range(len(samples))}
    assert prompts <= {"a photo of a odd digit", "a photo of a even digit"} and len(prompts) == 2
    t10 = pd.read_csv(tmp_path / "results/table10.csv").set_index("row")
    assert list(t10.index) == ["real_data", "baseline", "realfake", "realfake_real"]
    assert t10.loc["baseline", "Smiling_paper"] == 76.9 and pd.isna(t10.loc["realfake_real", "Smiling_paper"])
    metrics = json.loads((tmp_path / "results/digits_even/fakeit/x1/seed0/metrics.json").read_text())
    assert t10.loc["baseline", "Smiling"] == pytest.approx(metrics["top1"], abs=0.01) and metrics["images"] == 60
    report = snakemake(tmp_path, "results/table10.csv", "--report", str(tmp_path / "report.html"), config=config)
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    assert "table10.csv" in (tmp_path / "report.html").read_text(errors="replace")
