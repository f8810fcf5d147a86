"""The profile's time limits against partitions (plugin issue #456), without a cluster; the
two-node test checks the same against a real sinfo."""

import math

import pytest
import yaml
from conftest import ROOT

from realfake.slurm_limits import ProfileError, check_profile, over_limit, partition_limits, slurm_minutes


def test_slurm_time_limits_parse_as_sinfo_prints_them():
    assert [slurm_minutes(t) for t in ("infinite", "UNLIMITED", "30", "30:30", "2:00:00", "1-00:00:00", "2-12")] == \
        [math.inf, math.inf, 30, 30.5, 120, 1440, 3600]
    assert partition_limits("cpu* infinite\ngpu 2-00:00:00\n") == {"cpu": math.inf, "gpu": 2880}
    with pytest.raises(ProfileError, match="'soon' is not a SLURM time limit"):
        slurm_minutes("soon")


def test_a_group_over_its_partitions_limit_is_named_with_the_limit(tmp_path):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    # the shipped profile: 8 shards of 60 min x attempt 3 in series = 24 h, training chunks 24 h
    assert over_limit(profile, {"cpu": math.inf, "gpu": 1440}) == []
    problems = over_limit(profile, {"cpu": math.inf, "gpu": 720})
    assert ("synthesize_shard (group synthesis: 8 jobs in series x 180 min = 1440 min at "
                            "attempt 3) exceeds partition gpu's MaxTime of 720 min") in problems
    assert "train_lora (1440 min at attempt 3) exceeds partition gpu's MaxTime of 720 min" in problems
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(profile))
    with pytest.raises(ProfileError, match=r"config.yaml: sbatch would reject these jobs(.|\n)*synthesize_shard"):
        check_profile(tmp_path, sinfo="cpu* infinite\ngpu 12:00:00\n")
    check_profile(tmp_path, sinfo="cpu* infinite\ngpu 1-00:00:00\n")
