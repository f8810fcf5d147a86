"""Sample grids (realfake.grids) on tiny real shards and a digits manifest, and their planning."""

import copy

import pytest
from PIL import Image

from realfake.config import ConfigError, load_config
from realfake.grids import GridSettings, first_per_class, sample_grid, shown_classes


@pytest.fixture(scope="module")
def grid_inputs(digits, tmp_path_factory):
    """The digits manifest (5 training images a class) and two shards of 32 written as synthesis
    writes them: sample ``i`` has the label of training image ``i mod 50``, and its colour
    encodes ``i``."""
    from realfake.shards import ShardWriter

    folder = tmp_path_factory.mktemp("grid")
    manifest = folder / "manifest.parquet"
    digits.to_parquet(manifest)
    train = digits[digits.split == "train"].reset_index(drop=True)
    shards = [folder / f"{s:05d}.tar" for s in range(2)]
    for s, path in enumerate(shards):
        with ShardWriter(path) as sink:
            for i in range(s * 32, (s + 1) * 32):
                sink.write(f"{i:09d}", Image.new("RGB", (16, 16), (i, 0, 0)), int(train.label[i % 50]), {"index": i})
    return manifest, shards, train


def _grid(grid_inputs, path, images=50, **settings):
    manifest, shards, _ = grid_inputs
    return sample_grid(manifest, [{"label": "ours", "shards": shards, "images": images}],
                       GridSettings(**settings), path, "digits")


def test_cells_are_the_first_of_each_class_in_index_and_manifest_order(grid_inputs, tmp_path):
    _, _, train = grid_inputs
    drawn = _grid(grid_inputs, tmp_path / "g.png", per_class=3, real_per_class=2, classes=None)
    assert drawn["classes"] == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for label, name in enumerate(drawn["classes"]):
        rows = train.index[train.label == label].tolist()  # training positions of the class
        assert drawn["cells"]["ours"][name] == rows[:3]  # sample i comes from training image i mod 50
        assert drawn["cells"]["real"][name] == train["index"][rows[:2]].tolist()
    image = Image.open(tmp_path / "g.png")
    assert image.format == "PNG" and image.size[0] > 5 * 64 and image.size[1] > 10 * 64


def test_only_the_drawn_cells_are_decoded_and_the_set_ends_at_its_images(grid_inputs, tmp_path, monkeypatch):
    from realfake.shards import ShardSamples

    decoded = []
    image = ShardSamples.image
    monkeypatch.setattr(ShardSamples, "image", lambda self, i: decoded.append(i) or image(self, i))
    # every class has 5 samples among the first 50 (x1), more among the 64 of both shards
    drawn = _grid(grid_inputs, tmp_path / "x1.png", per_class=6, classes=2)
    assert [len(cells) for cells in drawn["cells"]["ours"].values()] == [5, 5]  # a grey cell each
    assert sorted(decoded) == sorted(i for cells in drawn["cells"]["ours"].values() for i in cells)
    wider = _grid(grid_inputs, tmp_path / "x64.png", images=64, per_class=6, classes=2)
    assert any(max(cells) >= 50 for cells in wider["cells"]["ours"].values())


def test_a_rerun_draws_the_same_bytes(grid_inputs, tmp_path):
    _grid(grid_inputs, tmp_path / "a.png", classes=3)
    _grid(grid_inputs, tmp_path / "b.png", classes=3)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically


def test_a_class_subset_by_count_or_by_name(grid_inputs, tmp_path):
    names = [f"c{i}" for i in range(1000)]
    assert shown_classes(names, 10) == list(range(0, 1000, 100))
    assert shown_classes(names[:10], 3) == [0, 3, 6] and shown_classes(names[:4], 10) == [0, 1, 2, 3]
    assert shown_classes(names, ["c7", "c2"]) == [7, 2] and shown_classes(names[:3], None) == [0, 1, 2]
    with pytest.raises(ValueError, match="'tiger'"):
        shown_classes(names, ["c1", "tiger"])
    drawn = _grid(grid_inputs, tmp_path / "named.png", classes=["seven", "two"])
    assert drawn["classes"] == ["seven", "two"] and list(drawn["cells"]["ours"]) == ["seven", "two"]
    evenly = _grid(grid_inputs, tmp_path / "two.png", classes=2)
    assert evenly["classes"] == ["zero", "five"]
    assert Image.open(tmp_path / "two.png").size[1] == Image.open(tmp_path / "named.png").size[1]  # two rows


def test_first_per_class_keeps_order_and_takes_what_there_is():
    assert first_per_class([2, 0, 2, 1, 2, 2], [2, 1, 3], 3) == {2: [0, 2, 4], 1: [3], 3: []}


# planning: which sets a grid draws and what it adds


def _demo():
    from conftest import ROOT

    return load_config(ROOT / "config/config.yaml")


def test_comparison_defaults_to_table1s_variant_and_its_baselines():
    import realfake.plan as plan

    config = _demo()
    config["experiments"]["grids"]["comparisons"]["plain"] = {"labels": {}}
    columns = plan.grid_comparison(config, "plain")["columns"]
    assert [(c["variant"], c["label"], c["trainset"], c["images"]) for c in columns] == [
        ("realfake", "Real-Fake (realfake)", "realfake/x1", 200), ("fakeit", "FakeIt (fakeit)", "fakeit/x1", 200)]
    table2 = plan.grid_comparison(config, "table2")
    assert table2["columns"][0]["label"] == "vanilla SD (lp0_base)" and table2["classes"] is None
    # only comparisons of Table 1's own sets are drawn beside Table 1
    assert plan.table1_grid_comparisons(config) == ["plain", "table1"]
    assert [(s["dataset"], s["variant"]) for s in plan.table1_grid_sets(config)] == [("digits", "realfake"),
                                                                                     ("digits", "fakeit")]


def test_grid_settings_and_errors_name_the_key():
    import realfake.plan as plan

    config = _demo()
    assert plan.grid_settings(config) == {"cell_size": 64, "classes": None, "per_class": 4, "real_per_class": 2}
    edited = copy.deepcopy(config)
    edited["experiments"]["grids"]["comparisons"]["table1"]["classes"] = ["one"]
    assert plan.grid_settings(edited, "table1")["classes"] == ["one"] and plan.grid_settings(edited)["classes"] is None
    edited["experiments"]["grids"]["comparisons"]["table1"]["variants"] = ["realfake", "nope"]
    with pytest.raises(ConfigError, match=r"experiments.grids.comparisons.table1: \['nope'\]"):
        plan.grid_comparison(edited, "table1")
    with pytest.raises(ConfigError, match="experiments.grids.comparisons.other is not configured"):
        plan.grid_comparison(config, "other")
    with pytest.raises(ConfigError, match="'nope' is not a key of variants"):
        plan.grid_set(config, "digits", "nope")


def test_grids_block_is_validated():
    raw = copy.deepcopy(_demo_raw())
    raw["experiments"]["grids"]["classes"] = "ten"
    with pytest.raises(ConfigError, match="experiments.grids.classes"):
        load_config(raw)
    raw = copy.deepcopy(_demo_raw())
    raw["experiments"].pop("grids")
    assert load_config(raw)["experiments"]["grids"]["comparisons"] == {"table1": {"labels": {}}}  # defaults


def _demo_raw():
    import yaml
    from conftest import ROOT

    return yaml.safe_load((ROOT / "config/config.yaml").read_text())
