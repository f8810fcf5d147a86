"""The experiment tracker (``runtime.tracker``) with the real tensorboard and wandb packages (W&B
offline): what they write, read back with their own readers, and that switching it reruns nothing."""

import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import LORA, planned_jobs, reduced_config, seed_workdir, snakemake
from PIL import Image

from realfake.records import CLASSIFIER_COLUMNS, LORA_COLUMNS, TrainingRecord
from realfake.trackers import job_tracker, open_tracker

RUNTIME = {"tracker": "tensorboard", "tracker_dir": "tracking"}
CONFIG = {"lora": {"rank": 4, "learning_rate": 1e-3}}
REAL_CLASSIFIER = "results/digits/real/seed0/classifier.pt"


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B as on a compute node without internet: offline, quiet, its settings and caches in tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def tensorboard_events(folder):
    """TensorBoard's own reader on a run's folder (every point kept)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def scalars(events, tag) -> dict[int, float]:
    points = events.Scalars(tag)
    assert len({p.step for p in points}) == len(points), f"{tag}: a step shown twice: {points}"
    return {p.step: p.value for p in points}


def wandb_records(run_folder) -> list[dict]:
    """W&B's own reader of an offline run's transaction log (``wandb beta leet inspect --json``)."""
    (log,) = Path(run_folder).glob("run-*.wandb")
    wandb = Path(sys.executable).parent / "wandb"
    done = subprocess.run([str(wandb), "beta", "leet", "inspect", "--json", str(log)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def lora_rows(record, steps, loss):
    for step in steps:
        record.add(step=step, loss=loss(step), l_simple=loss(step) / 2, l_mmd=0.1, weighted_mmd_ratio=None, lr=1e-3,
                   images_per_s=float("nan"))


def test_tensorboard_gets_each_summary_row_and_an_image_read_back_by_its_own_reader(tmp_path):
    digit = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(digit).save(tmp_path / "digit.png")
    tracker = job_tracker(RUNTIME, "train_lora", {"dataset": "digits", "finetune": "realfake"}, CONFIG, tmp_path)
    with tracker:
        lora_rows(TrainingRecord(tmp_path / "summary.csv", LORA_COLUMNS, tracker=tracker), [2, 4, 6], lambda s: 1 / s)
        tracker.log_image("validation", tmp_path / "digit.png", 6)
        tracker.log_image("validation_array", digit.astype(np.float32) / 255, 6)

    events = tensorboard_events(tmp_path / "tracking/tensorboard/train_lora/digits/realfake")
    assert sorted(events.Tags()["scalars"]) == ["l_mmd", "l_simple", "loss", "lr", "wall_s"]  # None, NaN skipped
    assert scalars(events, "loss") == pytest.approx({2: 0.5, 4: 0.25, 6: 1 / 6})
    assert scalars(events, "l_simple") == pytest.approx({2: 0.25, 4: 0.125, 6: 1 / 12})
    wall = scalars(events, "wall_s")
    assert list(wall) == [2, 4, 6] and all(v >= 0 for v in wall.values())
    for tag in ("validation", "validation_array"):
        (image,) = events.Images(tag)
        assert (image.step, image.width, image.height) == (6, 4, 4)
        decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))
        np.testing.assert_array_equal(decoded, digit)


def test_a_resumed_attempt_hides_what_the_killed_one_logged_after_its_checkpoint(tmp_path):
    """Attempt 1 logs steps 2 and 4, checkpoints at 4, logs step 6 and is killed; attempt 2 resumes
    at 4 and logs 6 and 8 again: TensorBoard shows each step once, step 6 from attempt 2."""
    name = {"dataset": "digits", "finetune": "realfake"}
    first = job_tracker(RUNTIME, "train_lora", name, CONFIG, tmp_path)
    record = TrainingRecord(None, LORA_COLUMNS, tracker=first)
    lora_rows(record, [2, 4], lambda s: 10.0)
    checkpoint = record.state()
    lora_rows(record, [6], lambda s: 99.0)  # after the checkpoint: trained again by attempt 2
    first.close()  # its events on disk, as a killed attempt's flushed ones are
    with job_tracker(RUNTIME, "train_lora", name, CONFIG, tmp_path) as second:
        lora_rows(TrainingRecord(None, LORA_COLUMNS, checkpoint, resumed_at=4, tracker=second), [6, 8], lambda s: 1.0)

    folder = tmp_path / "tracking/tensorboard/train_lora/digits/realfake"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2  # one file per attempt, both kept
    assert scalars(tensorboard_events(folder), "loss") == {2: 10.0, 4: 10.0, 6: 1.0, 8: 1.0}


def test_wandb_offline_run_holds_the_rows_config_and_image_and_a_retry_resumes_its_id(tmp_path, offline_wandb):
    import time

    wildcards = {"dataset": "digits", "finetune": "realfake"}
    started = time.monotonic()
    with job_tracker({**RUNTIME, "tracker": "wandb"}, "train_lora", wildcards, CONFIG, tmp_path) as tracker:
        lora_rows(TrainingRecord(None, LORA_COLUMNS, tracker=tracker), [2, 4], lambda s: 1 / s)
        tracker.log_image("validation", np.zeros((4, 4), dtype=np.uint8), 4)
    print(f"W&B offline run opened, logged and closed in {time.monotonic() - started:.1f} s")

    (run,) = (tmp_path / "tracking/wandb").glob("offline-run-*")
    assert run.name.endswith("-" + tracker.run_id())
    records = wandb_records(run)
    (started_run,) = [r["run"] for r in records if r["type"] == "run"]
    assert (started_run["display_name"], started_run["run_group"], started_run["job_type"]) == (
        "train_lora/digits/realfake", "digits", "train_lora")
    config = started_run["config"]["update"]
    assert config["lora"] == CONFIG["lora"] and config["wildcards"] == wildcards and config["rule"] == "train_lora"
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    rows = [h for h in history if "loss" in h]
    assert [h["step"] for h in rows] == [2, 4] and [h["loss"] for h in rows] == pytest.approx([0.5, 0.25])
    assert "weighted_mmd_ratio" not in rows[0] and "images_per_s" not in rows[0]  # None, NaN skipped
    (image,) = [h for h in history if "validation._type" in h]
    assert (image["step"], image["validation._type"], image["validation.width"]) == (4, "image-file", 4)
    assert (run / "files" / image["validation.path"]).is_file()

    retry = job_tracker({**RUNTIME, "tracker": "wandb"}, "train_lora", wildcards, CONFIG, tmp_path)
    other_params = job_tracker({**RUNTIME, "tracker": "wandb"}, "train_lora", wildcards, {"lora": {"rank": 8}},
                               tmp_path)
    assert retry.run_id() == tracker.run_id() != other_params.run_id()


def test_no_tracker_writes_nothing_and_a_bad_kind_names_the_key(tmp_path):
    from realfake.config import schema
    from realfake.trackers import KINDS

    assert schema()["properties"]["runtime"]["properties"]["tracker"]["enum"] == list(KINDS)
    with job_tracker({**RUNTIME, "tracker": "none"}, "train_lora", {"dataset": "digits"}, CONFIG, tmp_path) as none:
        lora_rows(TrainingRecord(None, LORA_COLUMNS, tracker=none), [2], lambda s: 1.0)
        none.log_image("validation", np.zeros((4, 4, 3), dtype=np.uint8), 2)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="runtime.tracker is 'mlflow'; expected one of none, tensorboard, wandb"):
        open_tracker("mlflow", tmp_path, "run", "group", {})


@pytest.mark.parametrize("kind", ["tensorboard", "wandb"])
def test_a_missing_tracker_package_fails_at_once_naming_the_key_and_the_extra(kind, tmp_path):
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == {kind!r}:
                    raise ImportError(name + " is blocked")

        sys.meta_path.insert(0, Blocked())
        from realfake.trackers import open_tracker

        open_tracker({kind!r}, {str(tmp_path)!r}, "run", "group", {{}})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"runtime.tracker is {kind} but the {kind} package is not installed" in done.stderr
    assert "pip install 'realfake[trackers]'" in done.stderr and not (tmp_path / kind).exists()


def test_a_classifier_stopped_and_resumed_logs_one_point_per_summary_row(digits, tmp_path):
    """A real tiny classifier (3 epochs, validated every 2) stopped by its budget after step 4 and
    resumed: TensorBoard holds one point per summary.csv row and column, equal to the row."""
    import pandas as pd
    from conftest import StopAfter

    from realfake.budget import BudgetExhausted
    from realfake.classifier import ImageList, Recipe, eval_transform, train_classifier, train_transform

    recipe = Recipe(arch="resnet10t", epochs=3, batch_size=16, lr=0.05, decay_milestones=(2,), hflip=0.5,
                    crop_scale=(0.5, 1.0), train_resolution=32, test_resolution=32, crop_pct=1.0)
    train, test = digits[digits.split == "train"], digits[digits.split == "test"].iloc[:20]
    data = ImageList(train.path, train.label, train_transform(recipe))
    run = dict(device="cpu", summary_path=tmp_path / "summary.csv", validate_every=2,
               validation=ImageList(test.path, test.label, eval_transform(recipe)))
    names, ckpt = [str(i) for i in range(10)], tmp_path / "c.pt.checkpoint.pt"
    wildcards = {"dataset": "digits", "trainset": "real", "seed": 0}

    def attempt(budget):
        with job_tracker(RUNTIME, "train_classifier", wildcards, {"classifier": {}}, tmp_path) as tracker:
            train_classifier(data, 10, names, recipe, tmp_path / "c.pt", ckpt, budget=budget, tracker=tracker, **run)

    with pytest.raises(BudgetExhausted, match="stopped at step 4 of 9"):
        attempt(StopAfter(4))
    attempt(StopAfter(99))

    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.step.tolist() == [3, 6, 9]
    events = tensorboard_events(tmp_path / "tracking/tensorboard/train_classifier/digits/real/0")
    for column in CLASSIFIER_COLUMNS:
        if column == "step":
            continue
        logged = scalars(events, column)
        rows = {int(r["step"]): r[column] for r in summary.to_dict("records") if not math.isnan(r[column])}
        assert list(logged) == list(rows), column  # validation rows only for val_top1/val_top5
        assert list(logged.values()) == pytest.approx(list(rows.values()), rel=1e-3, abs=0.06), column


def test_two_ranks_log_once_through_rank_0s_copy_of_the_adapters_tracker(digits, tmp_path):
    """``distributed.launch`` pickles the adapter's tracker into 2 gloo ranks (torchrun): one event
    file (rank 0's copy; the adapter's copy and rank 1 open none), one point per summary row."""
    from dataclasses import asdict

    import pandas as pd

    from realfake.classifier import Recipe, train_classifier_job
    from realfake.data import write_manifest
    from realfake.distributed import launch

    write_manifest(tmp_path / "manifest.parquet", digits)
    recipe = Recipe(arch="resnet10t", epochs=2, batch_size=16, lr=0.05, decay_milestones=(1,), hflip=0.0,
                    crop_scale=(0.5, 1.0), train_resolution=32, test_resolution=32, crop_pct=1.0, amp=False)
    wildcards = {"dataset": "digits", "trainset": "real", "seed": 0}
    with job_tracker(RUNTIME, "train_classifier", wildcards, {"classifier": {}}, tmp_path) as tracker:
        launch(train_classifier_job, 2, manifest_path=str(tmp_path / "manifest.parquet"), shard_paths=[],
               params={"recipe": asdict(recipe), "real": True, "synthetic_images": 0}, out_path=str(tmp_path / "c.pt"),
               summary_path=str(tmp_path / "summary.csv"), device="cpu", tracker=tracker)
    folder = tmp_path / "tracking/tensorboard/train_classifier/digits/real/0"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    summary = pd.read_csv(tmp_path / "summary.csv")
    logged = scalars(tensorboard_events(folder), "train_loss")
    assert list(logged) == summary.step.tolist() == [3, 6]
    assert list(logged.values()) == pytest.approx(summary.train_loss.tolist(), rel=1e-5)


def test_switching_the_tracker_reruns_nothing_and_both_training_rules_log_to_it(upstream, tmp_path, offline_wandb):
    """The reduced demo's real-only classifier trained with TensorBoard, then its LoRA retrained with
    W&B: each job's run is there, one point per summary row, and a dry run with the tracker off and
    its folder moved has nothing to do."""
    seed_workdir(upstream, tmp_path)
    config = reduced_config()
    for kind, forced in (("tensorboard", []), ("wandb", ["--forcerun", "train_lora"])):
        config["runtime"]["tracker"] = kind
        run = snakemake(tmp_path, "--cores", "2", LORA, REAL_CLASSIFIER, *forced, config=config, timeout=600)
        assert run.returncode == 0, run.stderr[-5000:]
    config["runtime"].update(tracker="none", tracker_dir="elsewhere")
    assert planned_jobs(tmp_path, config, None, LORA, REAL_CLASSIFIER) == {}

    classifier = tensorboard_events(tmp_path / "tracking/tensorboard/train_classifier/digits/real/0")
    epochs = len((tmp_path / "results/digits/real/seed0/summary.csv").read_text().splitlines()) - 1
    assert epochs >= 1 and len(classifier.Scalars("train_loss")) == epochs
    (lora_run,) = (tmp_path / "tracking/wandb").glob("offline-run-*")
    records = wandb_records(lora_run)
    assert [r["run"]["display_name"] for r in records if r["type"] == "run"] == ["train_lora/digits/realfake"]
    lora_summary = (tmp_path / "results/digits/finetune/realfake/summary.csv").read_text().splitlines()
    logged = [r["history"]["item"] for r in records if r["type"] == "history" and "loss" in r["history"]["item"]]
    assert len(logged) == len(lora_summary) - 1 >= 1
