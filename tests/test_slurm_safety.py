"""tests/slurm/cluster.sh never touches a SLURM configuration it did not write: on a machine with
its own, ``start`` refuses before installing or writing anything. Seconds, no SLURM needed: the
config folder is moved to a temporary one (SLURM_TEST_ETC, for this test only)."""

import os
import subprocess

import pytest
from conftest import ROOT
from test_slurm import FOREIGN_SLURM

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SITE_CONF = "# the site's own\nClusterName=production\nSlurmctldHost=head01\n"


@pytest.mark.parametrize("name", ["slurm.conf", "gres.conf"])
def test_start_refuses_a_slurm_configuration_it_did_not_write(tmp_path, name):
    etc, state = tmp_path / "etc-slurm", tmp_path / "state"
    etc.mkdir()
    foreign = etc / name
    foreign.write_text(SITE_CONF)
    before = (foreign.read_bytes(), foreign.stat().st_mtime_ns)
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    env.update(SLURM_TEST_ETC=str(etc), SLURM_TEST_STATE=str(state))
    try:
        start = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, env=env, timeout=60)
    finally:
        if state.exists():  # it went on (the refusal is broken): stop whatever it started
            subprocess.run([str(CLUSTER), "stop"], env=env, timeout=120)
    assert start.returncode == FOREIGN_SLURM, start.stderr
    assert start.stderr.strip() == (
        f"cluster.sh: not started: this machine has its own SLURM configuration at {foreign} (not written by "
        "tests/slurm/cluster.sh): the SLURM tests would overwrite it")
    assert (foreign.read_bytes(), foreign.stat().st_mtime_ns) == before
    assert sorted(p.name for p in etc.iterdir()) == [name] and not state.exists()
