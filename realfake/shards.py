"""Which synthetic images live in which shard (pure arithmetic: the workflow plans with it)."""

from __future__ import annotations

import math


def shard_range(shard: int, shard_size: int) -> range:
    """Shard ``s`` holds synthetic images ``[s*S, (s+1)*S)``, whatever the scales."""
    return range(shard * shard_size, (shard + 1) * shard_size)


def shards_for_scale(scale: int, num_real: int, shard_size: int) -> list[int]:
    """Indices of the shards holding the first ``scale * num_real`` synthetic images."""
    return list(range(math.ceil(scale * num_real / shard_size)))


def image_seed(seed: int, index: int) -> int:
    """The generator seed of synthetic image ``index``: any shard regenerates alone, identically."""
    return (seed << 32) + index
