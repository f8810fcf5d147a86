"""The OCI image (Containerfile), built by ``make container`` on a Debian base made here, runs the
demo's cheapest slice with ``podman run``: the digits manifest, a real-only classifier and its
metrics on the reduced config, with the image's Python, packages and Snakefile only.

Marked ``container`` (minutes: the build installs the locked environment, CUDA torch included, several
GB), so not part of ``make test``: ``.venv/bin/python -m pytest -s -m container tests/test_container.py``.
The layers stay in podman's storage, so a second run rebuilds only what changed."""

import json
import os
import shutil
import subprocess
import tarfile
import time

import pandas as pd
import pytest
import yaml
from conftest import ROOT, reduced_config

BASE = "localhost/debian-py:bookworm"
IMAGE = "localhost/realfake:test"
SLICE = "results/digits/real/seed0/metrics.json"

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (apt-get install podman)"),
    # crun, podman's default runtime, refuses hybrid cgroups (this project's development machines)
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed (apt-get install runc)"),
]


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """podman with runc and no default ulimits (which a container here may not set), as a command
    list, and the environment that carries that setting."""
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return ["podman", "--runtime", "runc"], {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="module")
def base_image(podman, tmp_path_factory):
    """A Debian 12 image with Python 3.11 (the base a cluster user would pull, built from Debian's
    packages: no registry is reachable here)."""
    cmd, env = podman
    if subprocess.run([*cmd, "image", "exists", BASE], env=env).returncode == 0:
        return BASE
    if shutil.which("mmdebstrap") is None:
        pytest.skip(f"{BASE} is missing and mmdebstrap (which builds it) is not installed")
    rootfs = tmp_path_factory.mktemp("base") / "rootfs.tar"
    subprocess.run(["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                    "bookworm", str(rootfs)], check=True, capture_output=True)
    subprocess.run([*cmd, "import", str(rootfs), BASE], env=env, check=True, capture_output=True)
    return BASE


@pytest.fixture(scope="module")
def image(podman, base_image, tmp_path_factory):
    """``make container`` on the Debian base: the image and its archive (docker-archive format,
    deleted after the tests: it is as large as the image)."""
    cmd, env = podman
    archive = tmp_path_factory.mktemp("image") / "realfake-image.tar"
    start = time.monotonic()
    build = subprocess.run(["make", "-C", str(ROOT), "container", f"PODMAN={' '.join(cmd)}",
                            f"CONTAINER_BASE={base_image}", f"CONTAINER_IMAGE={IMAGE}",
                            f"CONTAINER_ARCHIVE={archive}"],
                           env=env, capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    size = json.loads(subprocess.run([*cmd, "image", "inspect", IMAGE], env=env, check=True,
                                     capture_output=True, text=True).stdout)[0]["Size"]
    print(f"\nmake container: {time.monotonic() - start:.0f} s, image {size / 1e9:.2f} GB, "
          f"archive {archive.stat().st_size / 1e9:.2f} GB")
    yield IMAGE, archive
    archive.unlink()


def test_the_image_archive_is_a_docker_archive_that_apptainer_can_read(image):
    _, archive = image
    with tarfile.open(archive) as tar:  # apptainer build ... docker-archive:// reads this layout
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [IMAGE] and manifest[0]["Layers"]


def test_the_image_runs_the_demos_cheapest_slice_with_its_own_python_and_snakefile(image, podman, tmp_path):
    name, _ = image
    cmd, env = podman
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(reduced_config(), sort_keys=False))
    # nothing of this checkout is mounted: the Snakefile, rules, scripts and packages are the image's
    run = subprocess.run([*cmd, "run", "--rm", "-v", f"{tmp_path}:/work", name,
                          "snakemake", "-s", "/opt/realfake/Snakefile", "--cores", "2", "--directory", "/work",
                          SLICE, "--configfile", "/work/config.yaml"],  # --configfile takes several values: last
                         env=env, capture_output=True, text=True, timeout=1800)
    print(run.stderr[-3000:])
    assert run.returncode == 0, run.stderr[-4000:]
    assert "3 of 3 steps (100%) done" in run.stderr  # build_manifest, train_classifier, evaluate_classifier
    metrics = json.loads((tmp_path / SLICE).read_text())
    print(json.dumps(metrics))
    assert metrics["images"] == 360 and 0 <= metrics["top1"] <= metrics["top5"] <= 100
    summary = pd.read_csv(tmp_path / "results/digits/real/seed0/summary.csv")
    assert summary.epoch.tolist() == [1] and round(metrics["top1"], 2) == summary.val_top1[0]
    # every job carries the Snakefile's container: directive (the config's default), which
    # --software-deployment-method apptainer would run it in
    records = [json.loads(f.read_text()) for f in (tmp_path / ".snakemake/metadata").iterdir()]
    assert len(records) >= 3 and {r["container_img_url"] for r in records} == {"realfake.sif"}


def test_the_images_python_imports_the_installed_workflow_and_its_pinned_torch(image, podman):
    name, _ = image
    cmd, env = podman
    code = "import realfake, torch, snakemake; print(realfake.__file__, torch.__version__, torch.version.cuda)"
    run = subprocess.run([*cmd, "run", "--rm", name, "python", "-c", code],
                         env=env, capture_output=True, text=True, check=True)
    path, torch_version, cuda = run.stdout.split()
    assert path == "/opt/realfake/realfake/__init__.py"
    # the lock's own torch, its CUDA build (the local label names the CUDA release: 2.14.1+cu130)
    assert f"torch=={torch_version.split('+')[0]}" in (ROOT / "requirements.lock").read_text().split()
    assert cuda != "None"
