"""LiRA, copy detection, CelebA attributes and the new tables, on the library directly; and LiRA's
shadow pipelines end to end through Snakemake."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import LORA, ROOT, planned_jobs, reduced_config, seed_workdir, snakemake

from realfake.data import DataError


def test_membership_puts_each_image_in_half_the_models():
    from realfake.splits import membership

    members = membership(1000, 8, seed=3)
    assert members.shape == (8, 1000) and (members.sum(0) == 4).all()
    assert 400 < members[0].sum() < 600 and (membership(1000, 8, seed=3) == members).all()
    assert not (membership(1000, 8, seed=4) == members).all()
    with pytest.raises(ValueError, match="even"):
        membership(10, 5)


def test_logit_confidence_is_the_log_odds_of_the_true_class():
    from realfake.privacy import logit_confidence

    logits = np.random.default_rng(0).normal(size=(50, 10)) * 5
    labels = np.arange(50) % 10
    p = torch.softmax(torch.as_tensor(logits), 1).numpy()[np.arange(50), labels]
    assert np.allclose(logit_confidence(logits, labels), np.log(p) - np.log1p(-p))
    assert np.isfinite(logit_confidence(np.array([[100.0, -100.0]]), np.array([0]))).all()  # p = 1 - 1e-87


def _scores(models=16, images=3000, shift=0.0, seed=0):
    """Scores with a large per-image difficulty (what LiRA's per-image fit removes), unit noise,
    and ``shift`` added where the model trained on the image."""
    from realfake.splits import membership

    rng = np.random.default_rng(seed)
    members = membership(images, models, seed)
    difficulty = rng.normal(0, 4, size=images)
    return difficulty + rng.normal(size=(models, images)) + shift * members, members


def test_lira_finds_members_a_global_threshold_misses():
    from sklearn.metrics import roc_auc_score

    from realfake.privacy import lira

    scores, members = _scores(shift=2.0)
    rows = {r["attack"]: r for r in lira(scores, members)[0]}
    naive = roc_auc_score(members.ravel(), scores.ravel())  # one threshold for all images
    assert naive < 0.70
    for attack in ("online", "online_fixed_variance", "offline", "offline_fixed_variance"):
        assert rows[attack]["auc"] > 0.85, rows[attack]  # the oracle's: Phi(2 / sqrt 2) = 0.92
    assert rows["online"]["tpr_at_1pct_fpr"] > 0.1


@pytest.mark.parametrize("models", [4, 8])
def test_lira_on_non_members_is_chance(models):
    """No signal, no attack: also with 4 models, where a member of the target has one IN shadow
    fewer than a non-member (a fit that differed with the count would leak membership)."""
    from realfake.privacy import lira

    scores, members = _scores(models=models, shift=0.0, seed=1)
    for row in lira(scores, members)[0]:
        assert 0.46 < row["auc"] < 0.54, row
        assert row["tpr_at_1pct_fpr"] < 0.03


def test_lira_table_sets_the_papers_numbers_beside(tmp_path):
    from PIL import Image

    from realfake.privacy import lira_table

    scores, _ = _scores(models=4, images=200, shift=1.0)
    files = {}
    for setting in ("trained_on_real", "trained_on_synthetic"):
        files[setting] = []
        for k, row in enumerate(scores):
            path = tmp_path / f"{setting}{k}.parquet"
            pd.DataFrame({"index": range(200), "label": 0, "score": row}).to_parquet(path)
            files[setting].append(path)
    table = lira_table(files, 4, 0, tmp_path / "roc.png")
    assert len(table) == 8 and table.groupby("setting")["paper_tpr_at_0.1pct_fpr"].first().to_dict() == \
        {"trained_on_real": 0.0001, "trained_on_synthetic": 0.00001}
    assert Image.open(tmp_path / "roc.png").size[0] > 600


def test_nearest_real_reports_the_source_apart():
    from realfake.copies import copies_table, nearest_real

    real = torch.nn.functional.normalize(torch.randn(20, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    # query 0 copies real 3 and came from real 3; query 1 copies real 5 but came from real 7
    queries = torch.stack([real[3], real[5], torch.nn.functional.normalize(real[7] + real[9], dim=0)])
    frame = nearest_real(queries, real, np.array([3, 7, 9]), top_k=2)
    assert frame.source_similarity.tolist()[:2] == pytest.approx([1.0, float(real[5] @ real[7])], abs=1e-5)
    assert frame.nearest_1[1] == 5 and frame.similarity_1[1] == pytest.approx(1.0)
    assert frame.nearest_1[0] != 3  # the source is never its own nearest "other" image
    assert frame.nearest_1[2] == 7  # the other half of the blend
    table = copies_table({"ours": frame}, {"train": real, "test": real[:4] * 0.5 + real[4:8] * 0.5}, 0.9)
    ours = table.set_index("set").loc["ours"]
    assert ours.nearest_above_threshold == pytest.approx(1 / 3, abs=1e-3)
    assert ours.source_above_threshold == pytest.approx(1 / 3, abs=1e-3)


def test_torchscript_descriptor_is_loaded_and_normalised(tmp_path):
    """SSCD is a TorchScript file: any scripted model taking a 320-px batch loads the same way."""
    from PIL import Image

    from realfake.copies import SSCD_SIZE, descriptors
    from realfake.digests import file_sha256

    model = torch.jit.script(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten()))
    path = str(tmp_path / "sscd.torchscript.pt")
    model.save(path)
    images = [Image.new("RGB", (40, 30), (i * 50, 20, 200 - i * 40)) for i in range(3)]
    feats = descriptors({"path": path, "sha256": file_sha256(path)}, "", images, batch_size=2, device="cpu")
    assert feats.shape == (3, 48) and torch.allclose(feats.norm(dim=1), torch.ones(3))
    assert SSCD_SIZE == 320


def _celeba(root, rows, attributes=("Smiling", "Young")):
    """A CelebA layout holding ``rows``: (file, partition, attribute values)."""
    (root / "img_align_celeba").mkdir(parents=True)
    from PIL import Image

    for name, _, _ in rows:
        Image.new("RGB", (8, 10)).save(root / "img_align_celeba" / name)
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p, _ in rows))
    body = [f"{n}  " + " ".join(f"{v:2d}" for v in values) for n, _, values in rows]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(rows)), " ".join(attributes), *body]) + "\n")


def test_celeba_reads_the_official_split_and_attribute(tmp_path):
    from realfake.attributes import celeba_manifest

    rows = [("000001.jpg", 0, (1, -1)), ("000002.jpg", 0, (-1, 1)), ("000003.jpg", 1, (1, 1)),
            ("000004.jpg", 2, (-1, -1)), ("000005.jpg", 2, (1, 1)), ("000006.jpg", 0, (1, 1))]
    _celeba(tmp_path, rows)
    frame = celeba_manifest(tmp_path, "Smiling")
    train = frame[frame.split == "train"]
    assert train.path.str[-10:].tolist() == ["000001.jpg", "000002.jpg", "000006.jpg"]  # validation left out
    assert train.label.tolist() == [1, 0, 1] and frame[frame.split == "test"].label.tolist() == [0, 1]
    assert sorted(frame.class_name.unique()) == ["not smiling", "smiling"]
    assert celeba_manifest(tmp_path, "Smiling", names=["serious", "smiling"]).class_name.iloc[1] == "serious"
    subset = celeba_manifest(tmp_path, "Smiling", train_subset=2, seed=0)
    assert (subset.split == "train").sum() == 2
    with pytest.raises(DataError, match="no attribute 'Heavy_Makeup'"):
        celeba_manifest(tmp_path, "Heavy_Makeup")
    with pytest.raises(DataError, match="one class only"):
        _one_class(tmp_path)
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="list_eval_partition.txt does not exist"):
        celeba_manifest(tmp_path, "Smiling")


def _one_class(root):
    from realfake.attributes import celeba_manifest

    text = (root / "list_attr_celeba.txt").read_text().replace("-1", " 1")
    (root / "list_attr_celeba.txt").write_text(text)
    celeba_manifest(root, "Smiling")


def test_digits_attributes_run_through_the_celeba_reader(tmp_path):
    from sklearn.datasets import load_digits

    from realfake.attributes import digits_attributes_manifest

    frame = digits_attributes_manifest(tmp_path, "Round", train_subset=100, seed=0)
    assert (tmp_path / "list_attr_celeba.txt").read_text().splitlines()[1] == "Even Round Large"
    assert frame.groupby("split").size().to_dict() == {"test": 360, "train": 100}
    digit = load_digits().target[frame.path.str.extract(r"(\d+)\.png$")[0].astype(int) - 1]
    assert (frame.label == np.isin(digit, [0, 6, 8, 9])).all()
    assert set(frame.class_name) == {"not round", "round"}


def test_shadow_half_keeps_its_members_and_names_a_class_it_lacks():
    from realfake.sources import shadow_half
    from realfake.splits import membership

    rows = [("train", f"/x/{i}.png", i % 3, f"c{i % 3}", f"c{i % 3}") for i in range(30)]
    rows += [("test", f"/y/{i}.png", i % 3, f"c{i % 3}", f"c{i % 3}") for i in range(6)]
    from realfake.data import manifest_frame

    frame = manifest_frame(rows)
    half = shadow_half(frame, {"dataset": "toy", "index": 1, "shadows": 4, "seed": 0})
    keep = membership(30, 4, 0)[1]
    assert half[half.split == "train"].path.tolist() == [f"/x/{i}.png" for i in np.flatnonzero(keep)]
    assert half[half.split == "train"]["index"].tolist() == list(range(keep.sum())) and (half.split == "test").sum() == 6
    tiny = manifest_frame(rows[:3] + rows[30:])  # one image per class: some half lacks a class
    with pytest.raises(DataError, match="shadow .* of toy: its half holds no training image"):
        for k in range(4):
            shadow_half(tiny, {"dataset": "toy", "index": k, "shadows": 4, "seed": 0})


def test_table10_and_table1_baselines():
    from realfake.tables import table1, table10

    results = [{"row": r, "column": c, "top1": v} for r, v in (("real_data", 90.0), ("baseline", 60.0),
                                                            ("realfake", 80.0), ("realfake_real", 91.0))
               for c in ("Smiling", "Heavy_Makeup")]
    t10 = table10(results).set_index("row")
    assert list(t10.index) == ["real_data", "baseline", "realfake", "realfake_real"]
    assert list(t10.columns) == ["Smiling", "Smiling_paper", "Heavy_Makeup", "Heavy_Makeup_paper"]
    assert t10.loc["realfake", "Heavy_Makeup_paper"] == 82.55 and t10.loc["baseline", "Smiling"] == 60.0
    runs = [{"dataset": "cub", "setting": "synthetic_only", "method": m, "seed": 0, "top1": v}
            for m, v in (("Real-Fake", 60.0), ("FakeIt", 30.0))]
    t1 = table1(runs, {"cub": "CUB", "digits": "IN-10"}).set_index("method")
    assert t1.loc["FakeIt", "CUB"] == 30.0 and t1.loc["FakeIt", "CUB_paper"] == 33.7
    assert list(t1.columns) == ["setting", "CUB", "CUB_paper"]  # only the columns run


def test_config_plans_baselines_shadows_and_table10():
    from realfake import plan
    from realfake.config import ConfigError, load_config

    config = load_config(ROOT / "config/config.yaml")
    rows = plan.table1_rows(config)
    assert {(r["trainset"], r["method"]) for r in rows} >= {("fakeit/x1", "FakeIt"), ("realfake/x1", "Real-Fake")}
    assert plan.synthesis_params(config, "digits", "fakeit")["prompt_template"] == [
        "a photo of a {classname}", "an image of a {classname}"]
    assert plan.synthesis_params(config, "digits", "realfake")["prompt_template"] == "photo of {classname}"
    assert plan.lora_params(config, "digits_even", "realfake")["prompt_template"] == "a photo of a {classname} digit"
    assert plan.train_size(config, "digits_even") == 400 and plan.train_size(config, "digits_lira") == 300
    sizes = [plan.train_size(config, f"digits_lira-shadow{k}") for k in range(8)]
    assert min(sizes) > 120 and max(sizes) < 180 and sum(sizes) == 4 * 300
    assert {r["row"] for r in plan.table10_runs(config)} == {"real_data", "baseline", "realfake", "realfake_real"}
    raw = yaml.safe_load(ROOT.joinpath("config/config.yaml").read_text())
    raw["experiments"]["table10"]["datasets"]["Smiling"] = "celeba"
    with pytest.raises(ConfigError, match="experiments.table10.datasets.Smiling: 'celeba' is not a key of datasets"):
        load_config(raw)
    raw = yaml.safe_load(ROOT.joinpath("config/config.yaml").read_text())
    raw["datasets"]["digits_lira-shadow0"] = raw["datasets"]["digits"]
    with pytest.raises(ConfigError, match="datasets.digits_lira-shadow0: this name is reserved"):
        load_config(raw)


def test_lira_over_shadow_runs(upstream, tmp_path):
    """LiRA through Snakemake: 4 shadow pipelines on halves of a 60-digit base set, each shadow's
    classifiers scoring every base image, the table, the ROC, and the report holding both. Its own
    folder beside test_workflow.py's (seeded from the shared upstream), so it runs in this queue.
    The shadows draw with the latent prior alone: a LoRA per shadow (the paper's) is
    test_planning's to check, dry (8 jobs fewer here)."""
    from PIL import Image

    from realfake.splits import membership

    config = reduced_config()
    config["datasets"]["digits_lira"] = {"source": "digits", "recipe": "demo", "captions": False,
                                         "digits": {"train_per_class": 6}}
    config["experiments"]["lira"] = {"dataset": "digits_lira", "shadows": 4, "variant": "lp1_base"}
    seed_workdir(upstream, tmp_path)
    assert planned_jobs(tmp_path, config, None, LORA) == {}  # the shared upstream holds for this config
    run = snakemake(tmp_path, "--cores", "2", "results/privacy/lira.csv", config=config)
    assert run.returncode == 0, run.stderr[-5000:]
    members = membership(60, 4, 0)
    for k in range(4):  # each shadow's manifest: its half of the base train split, the whole test split
        shadow = pd.read_parquet(tmp_path / f"data/digits_lira-shadow{k}/manifest.parquet")
        assert (shadow.split == "train").sum() == members[k].sum() and (shadow.split == "test").sum() == 360
        for trainset in ("real", "lp1_base/x1"):
            scores = pd.read_parquet(tmp_path / f"results/digits_lira-shadow{k}/{trainset}/seed0/lira_scores.parquet")
            assert len(scores) == 60 and scores.score.notna().all()  # every base training image
    table = pd.read_csv(tmp_path / "results/privacy/lira.csv")
    assert len(table) == 8 and set(table.setting) == {"trained_on_real", "trained_on_synthetic"}
    assert table.auc.between(0, 1).all() and (table.tpr_at_1pct_fpr >= table["tpr_at_0.1pct_fpr"]).all()
    assert table.set_index("setting").loc["trained_on_real", "paper_tpr_at_0.1pct_fpr"].iloc[0] == 0.0001
    assert Image.open(tmp_path / "results/privacy/lira_roc.png").size[0] > 600
    report = snakemake(tmp_path, "results/privacy/lira.csv", "--report", str(tmp_path / "report.html"), config=config)
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "lira.csv" in html and "lira_roc.png" in html
