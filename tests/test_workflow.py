"""The real Snakemake on a reduced copy of the demo config, in a temporary folder."""

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import FAKEIT_VARIANT, LORA, ROOT, planned_jobs, reduced_config, seed_workdir, snakemake, snakemake_cmd


def experiments_config() -> dict:
    """The reduced config with Tables 2, 3, 4, 9, Figs. 1, 2 and the gap table at their smallest."""
    config = reduced_config()
    # Table 9 (and Table 1) over seeds 0 and 1; the others at seed 0 only, to keep the test's runs few
    one = [0]
    config["experiments"].update(table2={"variants": ["lp1_base", "realfake"], "seeds": one},
                                 table3={"dataset": "digits", "variant": "realfake", "scales": [1, 2], "seeds": one},
                                 fig1={"dataset": "digits", "baseline": "lp1_base", "ours": "realfake"},
                                 fig2={"datasets": ["digits"], "scales": [1, 2], "seeds": one},
                                 table4={"dataset": "digits", "trainsets": ["realfake/x1", "real"], "seeds": one},
                                 gap={"dataset": "digits", "variants": ["lp1_base", "realfake"], "seeds": one},
                                 seeds=[0, 1])
    # copy detection; FakeIt as a variant (Table 10: test_table10.py, LiRA: test_privacy.py)
    config["variants"]["fakeit"] = dict(FAKEIT_VARIANT)
    config["experiments"]["table1"]["datasets"] = ["digits"]
    config["experiments"].update(copies={"dataset": "digits", "variants": ["realfake", "fakeit"], "center": True,
                                         "grid_pairs": 4})
    return config


TABLES = ["all", "results/table2.csv", "results/table3.csv", "results/table4.csv", "results/table9.csv",
          "results/gap_vs_accuracy.csv", "results/fig1_clip_pca.png", "results/fig2_scaling.png",
          "results/privacy/copies.csv"]


class Workflow:
    """The experiments config in one folder, seeded with the shared upstream and built target by
    target as the tests ask: each test runs only the jobs it checks, each run under its own timeout."""

    def __init__(self, workdir, config, built=()):
        self.workdir, self.config, self.built = workdir, config, list(built)

    def build(self, *targets, timeout=900):
        todo = [t for t in targets if t not in self.built]
        if todo:
            run = snakemake(self.workdir, "--cores", "2", *todo, config=self.config, timeout=timeout)
            assert run.returncode == 0, f"building {todo}: " + run.stderr[-5000:]
            self.built += todo
        return self.workdir, self.config

    def restore(self):
        """Mark what was built as up to date again, after a test damaged or rebuilt some of it."""
        run = snakemake(self.workdir, "--cores", "1", "--touch", *self.built, config=self.config)
        assert run.returncode == 0, run.stderr[-3000:]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, upstream):
    workdir = tmp_path_factory.mktemp("workflow")
    seed_workdir(upstream, workdir)
    config = experiments_config()
    assert planned_jobs(workdir, config, None, LORA) == {}  # the shared upstream holds for this config
    return Workflow(workdir, config, built=[LORA])


def test_manifest_and_models(workflow):
    from diffusers import StableDiffusionImg2ImgPipeline
    from transformers import Blip2ForConditionalGeneration, CLIPVisionModelWithProjection

    workdir, _ = workflow.build(LORA)
    manifest = pd.read_parquet(workdir / "data/digits/manifest.parquet")
    assert manifest.groupby("split").size().to_dict() == {"train": 80, "test": 360}
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(workdir / "models/tiny-sd")
    assert pipe.vae.config.scaling_factor != 0.18215  # fitted to the pre-trained latents
    assert CLIPVisionModelWithProjection.from_pretrained(workdir / "models/tiny-clip").config.projection_dim == 64
    assert "pre-trained tiny CLIP on ['photo of zero'" in (workdir / "logs/pretrain_tiny_clip.log").read_text()
    Blip2ForConditionalGeneration.from_pretrained(workdir / "models/tiny-blip2")


def test_captions_guidance_and_lora(workflow):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    workdir, config = workflow.build(LORA)
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
    summary = pd.read_csv(lora.parent / "summary.csv")  # 80 images, batches of 16, 1 epoch: 5 steps
    assert summary.step.tolist() == [5] and (summary.l_mmd <= summary.l_simple).all()
    assert (lora.parent / "training_curves.png").stat().st_size > 0
    from PIL import Image

    # validation images before training and after the last step (runtime.lora_validation_every 1000)
    steps = sorted((lora.parent / "validation").iterdir())
    assert [p.name for p in steps] == ["step000000.png", "step000005.png"]
    assert Image.open(lora.parent / "validation.png").size[1] == sum(Image.open(p).size[1] for p in steps)
    assert "validation images at step 5: " in (workdir / "logs/train_lora/digits/realfake.log").read_text()
    # what they draw, and how, is runtime: no LoRA reruns
    edited = json.loads(json.dumps(config))
    edited["runtime"].update(lora_validation_every=1, lora_validation_classes=["one"], lora_validation_seeds=[3],
                             lora_validation_steps=2)
    edited["variants"]["realfake"]["lora_scale"] = 0.9
    assert planned_jobs(workdir, edited, None, LORA) == {}


def test_shards_classifiers_metrics_table(workflow):
    workdir, _ = workflow.build("all", "results/table3.csv")
    shards = sorted((workdir / "results/digits/realfake/shards").glob("*.tar"))
    assert [s.name for s in shards] == [f"{i:05d}.tar" for i in range(4)]  # x1: 0-1, x2: 0-3
    from realfake.shards import ShardSamples

    assert len(ShardSamples(shards[:2])) == 80 and all(s.with_name(s.stem + ".index.json").exists() for s in shards)
    for trainset, seed in (("real", 0), ("realfake/x1", 0), ("realfake/x1_real", 1)):
        folder = workdir / "results/digits" / trainset / f"seed{seed}"
        state = torch.load(folder / "classifier.pt", weights_only=True)
        assert state["arch"] == "resnet10t" and state["num_classes"] == 10
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["images"] == 360 and 0 <= metrics["top1"] <= metrics["top5"] <= 100
        summary = pd.read_csv(folder / "summary.csv")  # validated after the last epoch: what metrics.json scores
        assert summary.epoch.tolist() == [1] and round(metrics["top1"], 2) == summary.val_top1[0]
        assert (folder / "training_curves.png").stat().st_size > 0
    table = pd.read_csv(workdir / "results/table1.csv")
    assert list(table.columns) == ["setting", "method", "IN-10", "IN-10_paper"]
    ours = table.dropna(subset=["IN-10"]).set_index("method")
    assert set(ours.index) == {"Real-Fake", "real_only", "Real-Fake+real"}
    assert ours.loc["Real-Fake", "IN-10_paper"] == 90.5


def test_ablation_scaling_and_seed_tables(workflow):
    workdir, _ = workflow.build("results/table2.csv", "results/table3.csv", "results/fig2_scaling.png",
                                "results/fig1_clip_pca.png", "results/table9.csv")
    t2 = pd.read_csv(workdir / "results/table2.csv")
    ours = t2.dropna(subset=["IN-10"]).set_index("variant")
    assert sorted(ours.index) == ["lp1_base", "realfake"]
    assert ours.loc["lp1_base", ["finetune", "latent_prior"]].tolist() == [0, 1]
    assert ours.loc["lp1_base", "IN-10_paper"] == 88.0 and ours.loc["realfake", "IN-10_paper"] == 90.5
    assert len(t2) == 10  # every paper row, ours where we ran it

    t3 = pd.read_csv(workdir / "results/table3.csv")
    ours = t3.dropna(subset=["top1"])
    assert sorted(zip(ours.scale, ours.real_data, strict=True)) == [(1, 0), (1, 1), (2, 0)]
    assert (ours.top1 <= ours.top5).all()
    assert t3.set_index(["scale", "real_data"]).loc[(10, 0), "top1_paper"] == 76.0
    shards = sorted((workdir / "results/digits/realfake/shards").glob("*.tar"))
    assert len(shards) == 4  # x2 = 160 images: the 2 shards of x1 and 2 more
    from PIL import Image

    assert Image.open(workdir / "results/fig2_scaling.png").size[0] > 300
    assert Image.open(workdir / "results/fig1_clip_pca.png").size[0] > 300

    t9 = pd.read_csv(workdir / "results/table9.csv").set_index("run")
    runs = [json.loads((workdir / f"results/digits/realfake/x1/seed{s}/metrics.json").read_text())["top1"]
            for s in (0, 1)]
    assert t9.loc["mean", "IN-10"] == pytest.approx(sum(runs) / 2, abs=0.01)
    assert t9.loc["std", "IN-10_paper"] == 0.29


def test_ood_table(workflow):
    workdir, _ = workflow.build("results/table4.csv")
    t4 = pd.read_csv(workdir / "results/table4.csv").set_index("method")
    assert t4.loc["Real-Fake x1", "IN-R_top1_paper"] == 35.4
    ours = t4.dropna(subset=["IN-Sketch_top1"])
    assert sorted(ours.index) == ["Real-Fake x1", "real_only"]
    subset = json.loads((workdir / "results/digits/real/seed0/ood/digits_blur5.json").read_text())
    test = pd.read_parquet(workdir / "data/digits/manifest.parquet").query("split == 'test'")
    assert subset["images"] == test.label.isin([0, 2, 4, 6, 8]).sum()
    assert subset["top5"] == 100.0  # 5 kept classes: top-5 always hits
    shifted = json.loads((workdir / "results/digits/real/seed0/ood/digits_inverted.json").read_text())
    assert shifted["images"] == 360 and shifted["oodset"] == "digits_inverted"


def test_distribution_gap_against_accuracy(workflow):
    from PIL import Image

    workdir, _ = workflow.build("results/gap_vs_accuracy.csv")
    gap = json.loads((workdir / "results/digits/realfake/x1/distribution_gap.json").read_text())
    assert gap["real_images"] == 80 and gap["synthetic_images"] == 80  # x1 of 80 real images
    assert gap["mmd_rbf"] > -0.05 and gap["frechet"] >= 0
    assert Image.open(workdir / "results/digits/realfake/x1/distribution_gap_pca.png").format == "PNG"
    table = pd.read_csv(workdir / "results/gap_vs_accuracy.csv")
    assert sorted(table.variant) == ["lp1_base", "realfake"] and table.mmd_rbf.is_monotonic_increasing
    metrics = json.loads((workdir / "results/digits/lp1_base/x1/seed0/metrics.json").read_text())
    assert table.set_index("variant").loc["lp1_base", "top1"] == pytest.approx(metrics["top1"], abs=1e-3)
    fidelity = json.loads((workdir / "results/digits/realfake/x1/label_fidelity.json").read_text())
    assert fidelity["images"] == 80 and 0 <= fidelity["top1"] <= fidelity["top5"] <= 100
    assert table.set_index("variant").loc["realfake", "label_fidelity_top1"] == pytest.approx(fidelity["top1"],
                                                                                              abs=1e-3)


def test_fakeit_variant_alternates_its_prompts(workflow):
    workdir, _ = workflow.build("results/privacy/copies.csv")
    from realfake.shards import ShardSamples

    samples = ShardSamples([workdir / "results/digits/fakeit/shards/00000.tar"])
    metas = [samples.meta(i) for i in range(4)]
    assert [m["prompt"].split(" of ")[0] for m in metas] == ["a photo", "an image", "a photo", "an image"]
    assert metas[0]["prompt"] == f"a photo of a {metas[0]['class_name']}"


def test_copy_detection(workflow):
    from PIL import Image

    workdir, _ = workflow.build("results/privacy/copies.csv")
    table = pd.read_csv(workdir / "results/privacy/copies.csv").set_index("set")
    assert list(table.index) == ["realfake/x1", "fakeit/x1", "real_test"]
    assert table.loc["realfake/x1", "images"] == 80 and table.loc["real_test", "images"] == 360
    assert pd.isna(table.loc["fakeit/x1", "source_q50"]) and not pd.isna(table.loc["realfake/x1", "source_q50"])
    pairs = pd.read_parquet(workdir / "results/digits/realfake/x1/copies.parquet")
    from realfake.shards import ShardSamples

    samples = ShardSamples(sorted((workdir / "results/digits/realfake/shards").glob("*.tar"))[:2], 80)
    assert list(pairs.source_index) == [samples.meta(i)["source_index"] for i in range(80)]
    assert (pairs.nearest_1 != pairs.source_index).all() and (pairs.similarity_1 >= pairs.similarity_5).all()
    assert Image.open(workdir / "results/privacy/copies_grid.png").size[1] > 300


def test_sample_grids_beside_table1(workflow):
    """Table 1's grids read its shards and nothing else: three quick jobs after it, redrawn alone when
    a grid setting changes, and the report holds them under Samples beside the front page's text."""
    from PIL import Image

    workdir, config = workflow.build("all")
    assert planned_jobs(workdir, config, None, "all", "table1_grids") == {"sample_grid": 1, "comparison_grid": 1,
                                                                         "table1_grids": 1}
    workflow.build("table1_grids")
    grid = Image.open(workdir / "results/grids/table1.png")
    assert grid.format == "PNG" and grid.size[1] > 10 * 64  # ten digit rows of 64-px cells
    log = (workdir / "logs/sample_grid/digits/realfake.log").read_text()
    assert "classes ['zero', 'one', 'two'" in log and "'Real-Fake (realfake)': {'zero': [" in log
    edited = json.loads(json.dumps(config))
    edited["experiments"]["grids"] = {"per_class": 2}  # redraws the grids, nothing upstream
    assert planned_jobs(workdir, edited, None, "all", "table1_grids") == {"sample_grid": 1, "comparison_grid": 1,
                                                                         "table1_grids": 1}
    run = snakemake(workdir, "all", "table1_grids", "--report", str(workdir / "grids.html"), config=config)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    html = (workdir / "grids.html").read_text(errors="replace")
    assert all(name in html for name in ("samples.png", "table1.png", "Samples", "How to read it"))


# Opens the built report on the comparison grid (the report app's own globals: ``results``, ``app``)
SHOW_GRID = """<script>window.addEventListener("load", () => setTimeout(() => {
  const path = Object.keys(results).find(p => p.endsWith("%s"));
  app.setView({content: "img", contentPath: results[path].data_uri, resultPath: path});
}, 200));</script>"""


def test_the_report_renders_in_headless_chromium_with_the_grid(workflow, tmp_path):
    """``snakemake --report`` of the demo, opened in a real browser: the page renders (the app's
    navigation is in the DOM) and shows the comparison grid's image; the screenshot is kept."""
    import re
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium is absent (Debian: apt-get install chromium): the report is not rendered")
    workdir, config = workflow.build("all", "table1_grids")
    run = snakemake(workdir, "all", "table1_grids", "--report", str(tmp_path / "report.html"), config=config)
    assert run.returncode == 0, run.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    page = tmp_path / "grid.html"
    head, _, tail = html.rpartition("</body>")
    page.write_text(head + SHOW_GRID % "grids/table1.png" + "</body>" + tail)
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
               "--window-size=1400,900"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    rendered = re.sub(r"<script.*?</script>", "", dom, flags=re.S)  # what the app drew, not its data
    assert "Workflow" in rendered and "Statistics" in rendered  # the navigation rendered
    grid = re.search(r'<img src="(data:image/png;[^"]*filename=table1.png;base64,[^"]+)"', rendered)
    assert grid is not None, "the comparison grid is not on the page"
    subprocess.run([*browser, f"--screenshot={tmp_path / 'report.png'}", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    from PIL import Image

    shutil.copy(tmp_path / "report.png", workdir / "report_screenshot.png")  # to look at
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.size == (1400, 900) and len(shot.convert("L").getcolors(1 << 16) or []) > 50  # not blank


def test_missing_experiment_is_a_clear_error(workflow):
    workdir, config = workflow.workdir, workflow.config
    edited = json.loads(json.dumps(config))
    edited["experiments"].pop("table2")
    run = snakemake(workdir, "-n", "results/table2.csv", config=edited)
    assert run.returncode != 0 and "experiments.table2 is not configured" in run.stdout + run.stderr


def test_every_rule_logged(workflow):
    workdir, _ = workflow.build("all", "results/table4.csv", "results/gap_vs_accuracy.csv")
    logs = {p.relative_to(workdir / "logs").as_posix() for p in (workdir / "logs").rglob("*.log")}
    for expected in ("build_tiny_models.log", "pretrain_tiny_sd.log", "pretrain_tiny_clip.log", "build_manifest/digits.log",
                     "caption_images/digits.log", "compute_guidance/digits.log", "train_lora/digits/realfake.log",
                     "synthesize_shard/digits/realfake/00000.log", "train_classifier/digits/realfake/x1/seed0.log",
                     "evaluate_ood/digits/real/seed0/digits_blur5.log", "distribution_gap/digits/realfake/x1.log",
                     "table1.log"):
        assert expected in logs
    assert "LoRA trained" in (workdir / "logs/train_lora/digits/realfake.log").read_text()


def test_unchanged_config_has_nothing_to_do(workflow):
    workdir, config = workflow.build("all")
    assert planned_jobs(workdir, config) == {}


def test_runtime_settings_rerun_nothing(workflow):
    workdir, config = workflow.build("all")
    edited = json.loads(json.dumps(config))
    edited["runtime"].update(synthesis_batch_size=7, eval_batch_size=3, device="cpu", validate_every_epochs=0,
                             lora_log_every=3)
    assert planned_jobs(workdir, edited) == {}


def test_synthesis_edit_reruns_synthesis_and_downstream_only(workflow):
    workdir, config = workflow.build("all")
    edited = json.loads(json.dumps(config))
    edited["variants"]["realfake"]["guidance_scale"] = 3.0
    assert planned_jobs(workdir, edited) == {"synthesize_shard": 2, "train_classifier": 4,
                                             "evaluate_classifier": 4, "table1": 1, "all": 1}


def test_lora_edit_reruns_lora_and_downstream_only(workflow):
    workdir, config = workflow.build("all")
    edited = json.loads(json.dumps(config))
    edited["finetunes"]["realfake"]["mmd_weight"] = 0.1
    assert planned_jobs(workdir, edited) == {"train_lora": 1, "synthesize_shard": 2, "train_classifier": 4,
                                             "evaluate_classifier": 4, "table1": 1, "all": 1}


def test_classifier_edit_reruns_classifiers_evaluation_and_table_only(workflow):
    workdir, config = workflow.build("all")
    edited = json.loads(json.dumps(config))
    edited["recipes"]["demo"]["lr"] = 0.01
    assert planned_jobs(workdir, edited) == {"train_classifier": 6, "evaluate_classifier": 6,
                                             "table1": 1, "all": 1}


def test_pipeline_seeds_add_a_lora_and_shards_per_extra_seed(workflow):
    workdir, config = workflow.build("all", "results/table9.csv")
    edited = json.loads(json.dumps(config))
    edited["experiments"]["vary_seeds"] = "pipeline"  # seeds [0, 1]: seed 1 gets its own LoRA and shards
    assert planned_jobs(workdir, edited, None, "results/table1.csv", "results/table9.csv") == {
        "train_lora": 1, "synthesize_shard": 2, "train_classifier": 2, "evaluate_classifier": 2,
        "table1": 1, "table9": 1}


def _reversed(value):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    return [_reversed(v) for v in value] if isinstance(value, list) else value


def test_reordered_config_reruns_nothing(workflow):
    workdir, config = workflow.build("all")
    assert planned_jobs(workdir, _reversed(config)) == {}
    assert planned_jobs(workdir, text=yaml.safe_dump(config, sort_keys=True)) == {}


def test_reformatted_config_reruns_nothing(workflow):
    workdir, config = workflow.build("all")
    text = "# comments, flow style and JSON: the same values\n" + yaml.safe_dump(config, default_flow_style=True,
                                                                                 width=60)
    assert planned_jobs(workdir, text=text) == {}
    assert planned_jobs(workdir, text=json.dumps(config, indent=1)) == {}


def test_defaults_written_out_rerun_nothing(workflow):
    workdir, config = workflow.build("all")
    explicit = json.loads(json.dumps(config))
    explicit["variants"]["realfake"].update(guidance_scale=2, strength=0.75, scheduler="unipc", seed=0)  # 2: int
    explicit["finetunes"]["realfake"].update(mmd_weight=0.05, rank=4, snr_gamma=5, mmd_group_size=8, mmd_form="paper")
    explicit["recipes"]["demo"].update(amp=True, momentum=0.9, weight_decay=5e-4, crop_scale=[0.7, 1])
    explicit["synthesis"]["image_quality"] = 95
    explicit["datasets"]["digits"]["digits"].update(test_fraction=0.2, seed=0)
    assert planned_jobs(workdir, explicit) == {}


def test_bad_config_names_the_key(workflow):
    workdir, config = workflow.workdir, workflow.config
    edited = json.loads(json.dumps(config))
    edited["variants"]["realfake"]["guidance_scal"] = 3.0
    run = snakemake(workdir, "-n", config=edited)
    assert run.returncode != 0 and "'guidance_scal' was unexpected" in run.stdout + run.stderr
    edited = json.loads(json.dumps(config))
    edited["synthesis"]["shard_size"] = "big"
    run = snakemake(workdir, "-n", config=edited)
    assert run.returncode != 0 and "'big' is not of type 'integer'" in run.stdout + run.stderr


def test_missing_model_folder_fails_at_once(workflow, tmp_path):
    workdir, config = workflow.workdir, workflow.config
    edited = json.loads(json.dumps(config))
    edited["models"].update(build_tiny=False, stable_diffusion=str(tmp_path / "no-sd"))
    run = snakemake(workdir, "-n", config=edited)
    assert run.returncode != 0 and "no-sd does not exist" in run.stdout + run.stderr


def test_lint_is_clean():
    bin_dir = Path(snakemake_cmd()[0]).parent
    for cmd in (snakemake_cmd() + ["--lint", "--configfile", str(ROOT / "config/config.yaml")],
                [str(bin_dir / "snakefmt"), "--check", "Snakefile", "rules"],
                [str(bin_dir / "ruff"), "check", ".", "--exclude", ".venv"]):
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr


def test_report_bundles_tables_and_figure(workflow):
    workdir, config = workflow.build(*TABLES)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir, *TABLES, "--report", str(workdir / "report.html"))
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    for name in ("table1.csv", "table2.csv", "table3.csv", "table4.csv", "table9.csv", "fig1_clip_pca.png",
                 "fig2_scaling.png", "copies.csv", "copies_grid.png",
                 "training_curves.png"):
        assert name in html


def test_image_folder_without_splits_builds_its_manifest(tmp_path):
    from PIL import Image

    for split, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            (tmp_path / "folder" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "folder" / split / cls / f"{i}.png")
    config = reduced_config()
    config["datasets"]["pets"] = {"source": "image_folder", "recipe": "demo", "train_images": 6,
                                  "image_folder": {"root": str(tmp_path / "folder")}}
    workdir = tmp_path / "work"
    workdir.mkdir()
    run = snakemake(workdir, "--cores", "1", "data/pets/manifest.parquet", config=config)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    manifest = pd.read_parquet(workdir / "data/pets/manifest.parquet")
    assert manifest.groupby("split").size().to_dict() == {"test": 2, "train": 6}
    assert sorted(manifest.class_name.unique()) == ["cat", "dog"]


def test_truncated_shard_is_named_found_and_rebuilt_alone(workflow):
    """It damages a shard, then restores the finished state."""
    from realfake.shards import ShardError, ShardSamples, main

    workdir, config = workflow.build("all", "results/table3.csv")
    folder = workdir / "results/digits/realfake/shards"
    shard = folder / "00001.tar"
    original = shard.read_bytes()
    shard.write_bytes(original[: len(original) // 2])
    with pytest.raises(ShardError, match=r"00001.tar is \d+ bytes, but its index says"):
        ShardSamples(sorted(folder.glob("*.tar")))
    assert main(["verify", str(folder)]) == 1  # found, nothing removed
    assert main(["verify", "--remove", str(folder)]) == 0
    assert not shard.exists() and sorted(p.name for p in folder.glob("*.tar")) == \
        ["00000.tar", "00002.tar", "00003.tar"]
    target = str(shard.relative_to(workdir))
    assert planned_jobs(workdir, config, None, target) == {"synthesize_shard": 1}
    run = snakemake(workdir, "--cores", "2", target, config=config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert shard.read_bytes() == original  # regenerated alone, identically
    assert main(["verify", str(folder)]) == 0
    workflow.restore()


def test_training_stopped_at_its_time_limit_is_retried_and_resumes_identically(workflow):
    """A classifier job whose budget runs out after every step (runtime 1 minute, margin 1 minute)
    stops with a checkpoint, is retried by Snakemake and resumes: 5 attempts for its 5 steps, and
    the same weights as the uninterrupted run of the fixture; its log holds every attempt, its
    summary.csv its one epoch once, as the uninterrupted run's (Snakemake deleted it before each
    attempt: the rows come back from the checkpoint). Before, a first attempt stopped while its
    shard held FakeIt's images (issue 31): its checkpoint is ignored, the shard named. Restores
    the finished state."""
    from realfake.shards import index_path

    workdir, config = workflow.build("all")
    target = workdir / "results/digits/realfake/x1_real/seed0/classifier.pt"
    uninterrupted = torch.load(target, weights_only=True)["state_dict"]
    uninterrupted_summary = pd.read_csv(target.with_name("summary.csv"))
    target.unlink()
    edited = json.loads(json.dumps(config))
    edited["runtime"]["time_limit_margin_minutes"] = 1.0
    chunked = (str(target.relative_to(workdir)), "--set-resources", "train_classifier:runtime=1", "--show-failed-logs")
    shard = workdir / "results/digits/realfake/shards/00000.tar"
    right = {path: path.read_bytes() for path in (shard, index_path(shard))}
    for path in right:  # the wrong images: FakeIt's first shard
        path.write_bytes((workdir / "results/digits/fakeit/shards" / path.name).read_bytes())
    run = snakemake(workdir, "--cores", "2", *chunked, "--retries", "0", config=edited)
    assert run.returncode != 0 and "stopped at step 1 of 5" in run.stderr
    for path, data in right.items():
        path.write_bytes(data)
    run = snakemake(workdir, "--cores", "2", *chunked, "--retries", "9", config=edited)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("Trying to restart job") == 4  # 80 real + 80 synthetic images, batches of 32
    assert "stopped at step 4 of 5" in run.stderr
    log = (workdir / "logs/train_classifier/digits/realfake/x1_real/seed0.log").read_text()
    # every chunk's lines kept: the failed attempt on FakeIt's shard, then 5 chunks
    assert all(f"===== attempt {k}, " in log for k in range(1, 7)) and log.count("stopped at step 1 of 5") == 2
    assert all(f"stopped at step {k} of 5" in log for k in range(1, 5)) and "resumed from" in log
    stale = log[log.index("===== attempt 2, "):log.index("===== attempt 3, ")]
    assert "ignoring checkpoint" in stale and "resumed from" not in stale
    assert "input shard results/digits/realfake/shards/00000.tar: " in stale and "input manifest" not in stale
    assert log.splitlines()[-1].startswith("===== finished after attempt 6")
    assert log.count("epoch 1/1: train loss ") == 1 and " images/s, " in log
    summary = pd.read_csv(target.with_name("summary.csv"))
    assert summary.epoch.tolist() == [1] and summary.step.tolist() == [5]  # each epoch once, no gap
    timing = ["images_per_s", "wall_s"]
    pd.testing.assert_frame_equal(summary.drop(columns=timing), uninterrupted_summary.drop(columns=timing))
    assert target.with_name("training_curves.png").exists()
    resumed = torch.load(target, weights_only=True)["state_dict"]
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], rtol=0, atol=0, msg=key)
    assert not target.with_name("classifier.pt.checkpoint.pt").exists()
    workflow.restore()


def test_a_classifier_job_with_two_gpus_trains_as_two_ranks(workflow):
    """resources gpu=2 (the profile's set-resources) starts 2 torchrun workers (gloo here)."""
    workdir, config = workflow.build("all")
    target = workdir / "results/digits/real/seed0/classifier.pt"
    target.unlink()
    run = snakemake(workdir, "--cores", "2", str(target.relative_to(workdir)),
                    "--set-resources", "train_classifier:gpu=2", config=config)
    assert run.returncode == 0, run.stderr[-3000:]
    log = (workdir / "logs/train_classifier/digits/real/seed0.log").read_text()
    assert "rank 0 INFO" in log and "rank 1 INFO" in log
    assert torch.load(target, weights_only=True)["arch"] == "resnet10t"
    workflow.restore()


def test_a_timed_out_run_names_the_jobs_still_in_flight():
    """What ``snakemake(..., timeout=)`` reports when it kills a run: the jobs Snakemake's log shows
    started and not finished (this log: two started, one finished)."""
    from conftest import unfinished_jobs

    log = """[Fri Dec  4 18:16:21 2026]
localrule synthesize_shard:
    output: results/digits/lp1_base/shards/00000.tar, results/digits/lp1_base/shards/00000.index.json
    jobid: 30
    wildcards: dataset=digits, variant=lp1_base, shard=00000
    threads: 2
[Fri Dec  4 18:16:22 2026]
localrule table1:
    output: results/table1.csv
    jobid: 4
Select jobs to execute...
[Fri Dec  4 18:16:31 2026]
Finished jobid: 4 (Rule: table1)
"""
    assert unfinished_jobs(log) == ["synthesize_shard (dataset=digits, variant=lp1_base, shard=00000)"]
