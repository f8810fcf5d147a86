"""The one config loader: defaults from the schema (nested too), canonical params, clear errors."""

import dataclasses
import json
import re

import pytest
import yaml
from conftest import ROOT

from realfake import plan
from realfake.classifier import Recipe
from realfake.config import ConfigError, canonical, load_config, schema
from realfake.lora import LoraSettings
from realfake.synthesis import SynthesisSettings

DEMO = ROOT / "config" / "config.yaml"


def schema_defaults(definition: str) -> dict:
    props = schema()["$defs"][definition]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


@pytest.mark.parametrize("cls, definition", [(LoraSettings, "finetune"), (SynthesisSettings, "variant"),
                                             (Recipe, "recipe")])
def test_dataclass_defaults_equal_the_schema(cls, definition):
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    defaults = schema_defaults(definition)
    shared = set(fields) & set(defaults)
    assert len(shared) >= 8
    assert {k: canonical(fields[k]) for k in shared} == {k: canonical(defaults[k]) for k in shared}


def test_params_are_exactly_the_settings_dataclasses():
    config = load_config(ROOT / "config/paper.yaml")
    names = {f.name for f in dataclasses.fields(LoraSettings)}
    assert set(plan.lora_params(config, "in10", "released")) == names
    assert set(plan.synthesis_params(config, "in10", "released")) == {f.name for f in dataclasses.fields(SynthesisSettings)}
    recipe = plan.classifier_params(config, "in1k", "realfake/x2_real", 3)
    assert set(recipe["recipe"]) == {f.name for f in dataclasses.fields(Recipe)}
    assert Recipe(**recipe["recipe"]).seed == 3 and recipe["synthetic_images"] == 2 * 1281167 and recipe["real"]
    assert SynthesisSettings(**plan.synthesis_params(config, "cub", "lp0_base")).guidance_mode is None


def test_nested_defaults_are_filled():
    raw = yaml.safe_load(DEMO.read_text())
    raw["datasets"]["folder"] = {"source": "image_folder", "recipe": "demo", "train_images": 6,
                                 "image_folder": {"root": "/x"}}
    del raw["datasets"]["digits"]["digits"]
    config = load_config(raw)
    assert config["datasets"]["folder"]["image_folder"] == {"root": "/x", "splits": {"train": "train", "test": "val"},
                                                            "class_names": None, "verify_images": True,
                                                            "classes": None}
    assert config["datasets"]["digits"]["digits"] == {"test_fraction": 0.2, "train_per_class": None, "seed": 0}
    assert "digits" not in config["datasets"]["folder"]  # a source block only where the source reads it
    assert config["finetunes"]["realfake"]["max_steps"] is None and config["costs"] == {}
    assert config["tiny_models"]["pretrain"]["batch_size"] == 64


def test_numbers_are_normalised_and_params_ignore_key_order():
    raw = yaml.safe_load(DEMO.read_text())
    config = load_config(raw)
    raw["variants"]["realfake"]["guidance_scale"] = 2  # an int where the schema says number
    shuffled = json.loads(json.dumps(raw))
    shuffled["variants"]["realfake"] = dict(reversed(list(shuffled["variants"]["realfake"].items())))
    again = load_config(shuffled)
    assert again["variants"]["realfake"]["guidance_scale"] == 2.0
    assert isinstance(again["variants"]["realfake"]["guidance_scale"], float)
    assert repr(plan.synthesis_params(again, "digits", "realfake")) == \
        repr(plan.synthesis_params(config, "digits", "realfake"))
    assert list(plan.synthesis_params(config, "digits", "realfake")) == \
        sorted(plan.synthesis_params(config, "digits", "realfake"))


def test_a_value_edit_changes_the_params():
    raw = yaml.safe_load(DEMO.read_text())
    before = plan.synthesis_params(load_config(raw), "digits", "realfake")
    raw["variants"]["realfake"]["strength"] = 0.5
    assert plan.synthesis_params(load_config(raw), "digits", "realfake") != before


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["variants"]["realfake"].update(guidance_scal=3), "variants.realfake: Additional properties"),
    (lambda c: c["synthesis"].update(shard_size="big"), "synthesis.shard_size: 'big' is not of type 'integer'"),
    (lambda c: c["datasets"].update(x={"source": "cub", "recipe": "demo", "train_images": 3}),
     "datasets.x: 'cub' is a required property"),
    (lambda c: c["datasets"].update(x={"source": "pet", "recipe": "demo", "pet": {"root": "/p"}}),
     "datasets.x: 'train_images' is a required property"),
    (lambda c: c["datasets"]["digits"].update(recipe="nope"), "datasets.digits.recipe: 'nope' is not a key"),
    # a TorchScript file runs code when loaded: it is named with its hash
    (lambda c: c["experiments"]["copies"].update(descriptor="/models/sscd.torchscript.pt"),
     "experiments.copies.descriptor: '/models/sscd.torchscript.pt' is not valid under any of the given schemas "
     "(expected clip (models.clip's image features), or SSCD's TorchScript model as {path, sha256}"),
    (lambda c: c["experiments"]["copies"].update(descriptor={"path": "/models/sscd.torchscript.pt"}),
     "experiments.copies.descriptor: 'sha256' is a required property"),
])
def test_bad_config_names_the_key(edit, message):
    raw = yaml.safe_load(DEMO.read_text())
    edit(raw)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(raw)


def test_cost_plan_loads_a_config_without_optional_keys(tmp_path, capsys):
    from realfake.costs import main

    raw = yaml.safe_load(DEMO.read_text())
    raw["recipes"]["demo"] = {"arch": "resnet10t"}  # no train_resolution: the schema's default
    raw.pop("gap")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    main(["results/table1.csv", "--configfile", str(tmp_path / "c.yaml"), "--all"])
    assert "train_classifier" in capsys.readouterr().out


def test_conda_env_names_no_local_path_and_scripts_reach_the_library():
    """Snakemake copies the env file into .snakemake/conda/: relative -r/-e paths would break there."""
    env = yaml.safe_load((ROOT / "envs/realfake.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert not [p for p in pip if p.startswith(("-r", "-e", ".", "/"))]
    assert {p.split("==")[0] for p in pip} >= {"torch", "diffusers", "snakemake", "timm", "webdataset"}
    assert (ROOT / "scripts/realfake/config.py").resolve() == (ROOT / "realfake/config.py").resolve()


@pytest.mark.parametrize("visible, expected", [("0", ["gpu=1"]), ("0,1", ["gpu=2"]), ("", None)])
def test_local_profile_caps_gpu_jobs_at_this_machines_gpus(monkeypatch, visible, expected):
    """GPU rules declare resources: gpu=1; profiles/local caps gpu at the visible GPUs, none on CPU."""
    from snakemake.profiles import ProfileConfigFileParser

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with open(ROOT / "profiles/local/config.yaml") as stream:
        parsed = ProfileConfigFileParser().parse(stream)
    assert parsed.get("resources") == expected
    rules = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    for rule in ("train_lora", "synthesize_shard", "train_classifier", "evaluate_classifier", "caption_images"):
        body = rules.split(f"rule {rule}:")[1].split("\nrule ")[0]
        assert "gpu=1" in body, rule


def test_slurm_profile_places_every_gpu_rule_on_the_gpu_partition():
    """A rule that asks for a GPU but has no set-resources entry would ask the cpu partition for one."""
    import re

    rules = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    gpu_rules = {m[1] for m in re.finditer(r"^rule (\w+):\n(?:(?!rule ).*\n)*?\s+gpu=1", rules, re.M)}
    assert {"lira_scores", "copy_detection", "real_copy_descriptors", "train_lora"} <= gpu_rules
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())["set-resources"]
    assert {r: profile.get(r, {}).get("slurm_partition") for r in gpu_rules} == {r: "gpu" for r in gpu_rules}


def test_pipeline_seeds_replicate_lora_and_synthesis_seeds():
    raw = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    raw["experiments"].update(seeds=[0, 3], vary_seeds="pipeline")
    config = load_config(raw)
    # seed 0 is the configured run; seed 3 trains on a replicate whose seeds are offset by 3
    assert plan.table9_runs(config) == [plan.run("digits", "realfake/x1", 0),
                                        plan.run("digits", "realfake-seed3/x1", 3)]
    replicate = config["variants"]["realfake-seed3"]
    assert replicate["seed"] == config["variants"]["realfake"]["seed"] + 3
    assert config["finetunes"][replicate["finetune"]]["seed"] == config["finetunes"]["realfake"]["seed"] + 3
    assert {**replicate, "seed": 0, "finetune": "realfake"} == config["variants"]["realfake"]
    assert plan.lora_params(config, "digits", "realfake-seed3") != plan.lora_params(config, "digits", "realfake")
    settings = plan.table1_settings(config)
    assert settings["realfake-seed3/x1_real"] == ["real_plus_synthetic", "Real-Fake+real"]
    assert settings["real"] == ["real", "real_only"] and settings["fakeit-seed3/x1"] == ["synthetic_only", "FakeIt"]
    # Table 2's replicates: every row at each of its own seeds (table2.seeds), rows keyed back to the configured variant
    rows = plan.table2_rows(config)
    assert rows["lp1_no_mmd-seed2"] == {**rows["lp1_no_mmd"]} and rows["lp1_no_mmd"]["variant"] == "lp1_no_mmd"
    assert rows["lp1_no_mmd"]["distribution_matching"] == 0 and rows["realfake"]["distribution_matching"] == 1
    assert len(plan.table2_runs(config)) == 5 * 3
    # the gap table's rows: the same replicates, keyed back to the configured variant
    gap = plan.gap_runs(config)
    assert len(gap) == 5 * 3 and {r["trainset"] for r in gap} == {r["trainset"] for r in plan.table2_runs(config)}
    assert {r["variant"]: r["configured"] for r in gap}["lp0_base-seed2"] == "lp0_base"


def test_classifier_seeds_share_one_synthetic_set():
    raw = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    raw["experiments"].update(seeds=[0, 1, 2], vary_seeds="classifier")
    raw["experiments"]["table2"].pop("seeds")
    config = load_config(raw)
    assert [r["trainset"] for r in plan.table9_runs(config)] == ["realfake/x1"] * 3
    assert not [name for name in config["variants"] if "-seed" in name]
    assert load_config(ROOT / "config/paper.yaml")["experiments"]["vary_seeds"] == "classifier"


def test_a_name_taken_by_a_replicate_is_a_clear_error():
    raw = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    raw["variants"]["realfake-seed1"] = {"finetune": None}
    with pytest.raises(ConfigError, match=r"variants.realfake-seed1: this name is reserved for a seed replicate"):
        load_config(raw)
