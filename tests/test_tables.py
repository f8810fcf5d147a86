"""Results tables and figures from metrics records (no training)."""

import math

import pytest
from PIL import Image

from realfake.tables import plot_scaling, table2, with_trainset_fields

FLAGS = {"base": dict(latent_prior=1, visual_guidance=0, distribution_matching=0, finetune=0),
         "ours": dict(latent_prior=1, visual_guidance=1, distribution_matching=1, finetune=1)}
ROWS = {"base": {"variant": "base", **FLAGS["base"]}, "ours": {"variant": "ours", **FLAGS["ours"]},
        "ours-seed1": {"variant": "ours", **FLAGS["ours"]}, "ours-seed2": {"variant": "ours", **FLAGS["ours"]}}


def record(trainset, seed, top1, dataset="digits"):
    return {"dataset": dataset, "trainset": trainset, "seed": seed, "top1": top1, "top5": 99.0}


def test_table2_reports_mean_and_std_over_replicates_beside_the_paper():
    results = [record("base/x1", 0, 80.0), record("ours/x1", 0, 90.0), record("ours-seed1/x1", 1, 91.0),
               record("ours-seed2/x1", 2, 92.5)]
    table = table2(with_trainset_fields(results), ROWS, {"digits": "IN-10"})
    ours = table.dropna(subset=["IN-10"]).set_index("variant")
    assert ours.loc["ours", "IN-10"] == pytest.approx(91.17, abs=0.01)
    assert ours.loc["ours", "IN-10_std"] == pytest.approx(1.03, abs=0.01)  # population std, as Table 9
    assert ours.loc["ours", "seeds"] == 3 and ours.loc["base", "seeds"] == 1
    assert math.isnan(ours.loc["base", "IN-10_std"])  # one run: no spread to report
    assert ours.loc["ours", "IN-10_paper"] == 90.5 and ours.loc["base", "IN-10_paper"] == 88.0
    assert len(table) == 10


def test_fig2_draws_one_panel_per_dataset(tmp_path):
    results = [record(f"ours/x{k}", 0, 80 + k, dataset=d) for d in ("in10", "in100") for k in (1, 2, 5)]
    results += [record("real", 0, 84.0, dataset=d) for d in ("in10", "in100")]
    plot_scaling(with_trainset_fields(results), {"in10": "IN-10", "in100": "IN-100"}, tmp_path / "fig2.png")
    width, height = Image.open(tmp_path / "fig2.png").size
    assert width > 1.8 * height  # two panels side by side


def test_table9_lists_runs_in_order_then_mean_and_std_with_fewer_seeds_than_the_paper():
    from realfake.tables import table9

    t9 = table9([record("realfake/x1", 0, 80.0)], {"digits": "IN-10"}).set_index("run")
    assert list(t9.index) == ["1", "2", "3", "mean", "std"]  # the paper's 3 runs beside our 1
    assert t9.loc["1", "IN-10"] == 80.0 and math.isnan(t9.loc["2", "IN-10"]) and t9.loc["std", "IN-10_paper"] == 0.29


def test_gap_table_reports_each_variant_as_mean_and_std_over_its_seed_replicates():
    from realfake.tables import gap_table

    sets = {"base/x1": ("base", 0.02, 10.0), "base-seed1/x1": ("base", 0.04, 30.0), "ours/x1": ("ours", 0.01, 90.0)}
    gaps = [{"trainset": t, "mmd_rbf": mmd, "frechet": 10 * mmd} for t, (_, mmd, _) in sets.items()]
    fidelity = [{"trainset": t, "top1": top1, "top5": 100.0} for t, (_, _, top1) in sets.items()]
    metrics = [{"trainset": t, "top1": top1 / 2} for t, (_, _, top1) in sets.items()]
    table = gap_table(gaps, metrics, fidelity, {t: v for t, (v, _, _) in sets.items()}).set_index("variant")
    assert list(table.index) == ["ours", "base"]  # smallest gap first
    assert table.loc["base", "seeds"] == 2 and table.loc["base", "mmd_rbf"] == pytest.approx(0.03)
    assert table.loc["base", "label_fidelity_top1"] == 20.0 and table.loc["base", "label_fidelity_top1_std"] == 10.0
    assert table.loc["base", "top1"] == 10.0 and math.isnan(table.loc["ours", "top1_std"])
