"""results/claims.csv: each claim of the paper as a paired comparison over seeds, its interval and
verdict (realfake.claims), planned from the same runs as the tables (no job of its own but itself)."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, planned_jobs, reduced_config, snakemake

from realfake import plan
from realfake.claims import paired_interval, verdict
from realfake.config import load_config
from realfake.splits import membership


def judged(differences):
    stats = paired_interval(differences)
    return stats, verdict(stats["seeds"], stats["ci_low"], stats["ci_high"])


def test_an_effect_well_above_its_spread_holds_and_the_same_mean_with_a_large_spread_is_not_resolved():
    stats, said = judged([2.0, 2.2, 1.8])  # mean 2, sd 0.2: 2 +- 4.303 * 0.2 / sqrt(3)
    assert said == "holds" and stats["effect"] == pytest.approx(2.0) and stats["std"] == pytest.approx(0.2)
    assert (stats["ci_low"], stats["ci_high"]) == pytest.approx((2.0 - 0.4968, 2.0 + 0.4968), abs=1e-4)
    stats, said = judged([10.0, -6.0, 2.0])  # the same mean, sd 8: 2 +- 19.9
    assert said == "not resolved" and stats["effect"] == pytest.approx(2.0)
    assert stats["ci_low"] < 0 < stats["ci_high"]
    assert judged([-2.0, -2.2, -1.8])[1] == "reversed"
    # one pair has no spread, none is no claim tested: said so, never "holds"
    stats, said = judged([5.0])
    assert said == "not resolved (1 seed)" and stats["effect"] == 5.0 and math.isnan(stats["ci_low"])
    assert judged([])[1] == "not tested"


def test_the_planned_lira_attacks_are_the_privacy_modules():
    from realfake.privacy import ATTACKS

    assert plan.LIRA_ATTACKS == ATTACKS


def demo_with_every_claim() -> dict:
    """The demo config with config/claims.yaml over it (3 pipeline seeds, as make claims reads them, merged as
    Snakemake merges --configfile files), every experiment's claims listed."""
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config/claims.yaml").read_text()))
    config["experiments"]["claims"] = {"experiments": list(plan.CLAIM_EXPERIMENTS)}
    return config


def test_the_claims_add_no_job_to_the_tables_they_read(tmp_path):
    """Over the demo's 3 seeds, with every experiment's claims: the tables' runs, and the claims' row."""
    config = demo_with_every_claim()
    assert load_config(config)["experiments"]["seeds"] == [0, 1, 2]
    tables = ["results/table1.csv", "results/table2.csv", "results/table3.csv", "results/fig2_scaling.png",
              "results/table4.csv", "results/gap_vs_accuracy.csv", "results/privacy/lira.csv"]
    alone = planned_jobs(tmp_path, config, None, *tables)
    assert planned_jobs(tmp_path, config, None, *tables, "results/claims.csv") == {**alone, "claims": 1}
    # Table 1 over the 3 seeds too: a LoRA per seed for Real-Fake and for Table 2's no-MMD row, 8 LiRA halves
    assert alone["train_lora"] == 3 + 3 + 8


def test_the_paper_configs_claims_plan_and_are_priced(capsys):
    from realfake.costs import main

    specs = plan.claims(load_config(ROOT / "config/paper.yaml"))
    assert {s["source"] for s in specs} == {"Table 1", "Table 2", "Table 3", "Fig. 2", "Table 4", "Gap", "Fig. 3"}
    assert {len(s["pairs"]) for s in specs if s["source"] != "Fig. 3"} == {1}  # experiments.seeds: [0]
    main(["results/claims.csv", "--configfile", str(ROOT / "config/paper.yaml"), "--all"])
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["claims"][0] == "1" and int(rows["train_classifier"][0]) > 50
    assert float(rows["total"][2].replace(",", "")) > 1000  # GPU-hours


def claims_config() -> dict:
    """The reduced config with every experiment the claims read, over 3 pipeline seeds."""
    config = reduced_config()
    config["variants"]["lp0_base"] = {"finetune": None, "latent_prior": False, "resolution": 32}
    config["datasets"]["digits_lira"] = {"source": "digits", "recipe": "demo", "digits": {"train_per_class": 6}}
    config["experiments"].update(
        table1={"variant": "realfake", "datasets": ["digits"], "baselines": {"FakeIt": {"variant": "lp0_base"}}},
        table2={"variants": ["lp0_base", "lp1_base", "realfake"]}, table3={"dataset": "digits", "scales": [1, 2]},
        table4={"dataset": "digits", "trainsets": ["realfake/x2", "real", "realfake/x1_real"]},
        gap={"dataset": "digits", "variants": ["lp0_base", "realfake"]}, lira={"dataset": "digits_lira", "shadows": 4},
        seeds=[0, 1, 2], vary_seeds="pipeline")
    return config


PATHS = {"metrics": "results/{dataset}/{trainset}/seed{seed}/metrics.json",
         "ood": "results/{dataset}/{trainset}/seed{seed}/ood/{oodset}.json",
         "gap": "results/{dataset}/{variant}/x{scale}/distribution_gap.json",
         "fidelity": "results/{dataset}/{variant}/x{scale}/label_fidelity.json"}


def top1(trainset: str, seed: int) -> float:
    """Made-up accuracies: the latent prior and the LoRA far above the seeds' spread; real +
    synthetic against real only: the same mean, a spread of 6 points."""
    base = {"lp0_base": 40.0, "lp1_base": 80.0, "realfake": 85.0, "real": 90.0}
    variant = trainset.split("/")[0].split("-seed")[0]
    if trainset.endswith("_real"):
        return 90.0 + (-6.0, 0.0, 6.0)[seed]
    return base[variant] + 0.5 * seed + 2.0 * trainset.endswith("x2")


def test_claims_csv_from_metrics_files(tmp_path):
    """The rule and its script over metrics, gap, fidelity and LiRA score files written here."""
    config = claims_config()
    specs = plan.claims(load_config(config))
    for kind, template in PATHS.items():
        for m in plan.claim_measures(specs, kind):
            path = tmp_path / template.format(**m)
            path.parent.mkdir(parents=True, exist_ok=True)
            gap = {"mmd_rbf": 0.03 if "realfake" in m.get("variant", "") else 0.06, "frechet": 10.0}
            path.write_text(json.dumps({**m, "top1": top1(m.get("trainset", f"{m.get('variant')}/x1"),
                                                          m.get("seed", 0)), "top5": 99.0, **gap}))
    members = membership(60, 4, 0)
    rng = np.random.default_rng(0)
    for k in range(4):  # real-trained models score their members higher; synthetic-trained ones do not
        for trainset, signal in (("real", 2.0), ("realfake/x1", 0.0)):
            path = tmp_path / f"results/digits_lira-shadow{k}/{trainset}/seed0/lira_scores.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"score": rng.normal(size=60) + signal * members[k]}).to_parquet(path)
    run = snakemake(tmp_path, "--cores", "1", "results/claims.csv", "--allowed-rules", "claims", config=config)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert re.search(r"^claims\s+1$", run.stdout + run.stderr, re.M)  # no other job: the files are given
    table = pd.read_csv(tmp_path / "results/claims.csv")
    rows = table.set_index(["claim", "a", "b", "test_set"])
    prior = rows.loc[("latent prior > text-to-image", "lp1_base", "lp0_base", "test")]
    assert prior.verdict == "holds" and prior.effect == pytest.approx(40.0) and prior.seeds == 3
    assert prior.paper_effect == pytest.approx(88.0 - 79.8) and prior.seed_kind.startswith("pipeline")
    assert prior.differences == "+40 +40 +40"
    both = rows.loc[("real + synthetic > real only", "realfake/x1_real", "real", "test")]
    # -6, -0.5, +5: mean -0.5, sd 5.5
    assert both.verdict == "not resolved" and both.effect == pytest.approx(-0.5) and both["std"] == pytest.approx(5.5)
    scale = rows.loc[("more synthetic data: higher accuracy", "realfake/x2", "realfake/x1", "test")]
    assert scale.verdict == "holds" and scale.paper_effect == pytest.approx(72.9 - 70.9) and scale.source == "Table 3"
    ood = rows.loc[("synthetic only x2 > real only (OOD)", "realfake/x2", "real", "digits_blur5")]
    assert ood.column == "IN-R" and ood.verdict == "reversed" and ood.paper_effect == pytest.approx(36.1 - 39.4)
    mmd = rows.loc[("distribution gap: MMD (RBF) below vanilla SD's", "lp0_base/x1", "realfake/x1",
                    "train (real vs synthetic)")]
    assert mmd.effect == pytest.approx(0.03) and mmd.verdict == "holds" and math.isnan(mmd.paper_effect)
    lira = table[table.claim == "LiRA online: synthetic-trained AUC below real-trained"].iloc[0]
    assert lira.verdict == "holds" and lira.seeds == 4 and lira.seed_kind.startswith("LiRA target")
    assert set(table[table.a.isna()].verdict) == {"not tested"}  # fine-tune, guidance: no pair configured
    assert set(table.verdict) <= {"holds", "not resolved", "reversed", "not tested"}
