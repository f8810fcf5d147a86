"""The one seed helper: independent, reproducible streams from (seed, *keys).

numpy's SeedSequence mixes the keys (never Python's ``hash()``, whose value for strings
changes between processes), so streams for different keys do not overlap.
"""

from __future__ import annotations

import zlib


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the stream named by ``keys`` under ``seed``."""
    import numpy as np

    entropy = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
