"""Benchmarks run at toy sizes, so a GPU session can trust them at once."""

import json
import sys

from conftest import ROOT


def test_gpu_throughput_bench_runs_at_toy_sizes_on_cpu(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_throughput import main

    main(["--toy", "--out", str(tmp_path / "out.json")])
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["device"] == "cpu" and not results["skipped"]
    assert {(r["compiled"], r["batch"]) for r in results["img2img"]} == {(False, 2), (False, 4), (True, 2)}
    assert all(r["seconds_per_image"] > 0 for r in results["img2img"])
    assert results["lora_steps_per_s"] > 0 and results["resnet_train_images_per_s"] > 0
