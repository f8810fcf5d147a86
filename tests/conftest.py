import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """A random tiny Stable Diffusion folder (save_pretrained layout)."""
    from realfake.tiny_models import build_tiny_stable_diffusion

    path = tmp_path_factory.mktemp("models") / "tiny-sd"
    build_tiny_stable_diffusion(path)
    return str(path)


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """A small digits manifest (5 training images per class) with its PNG files."""
    from realfake.data import digits_manifest

    return digits_manifest(tmp_path_factory.mktemp("digits"), train_per_class=5)


def snakemake_cmd():
    return [str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile")]
