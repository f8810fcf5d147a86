"""Seeded splits of a data set's images, known before any image is read (planning sizes the
shards with them): the digits train/test split and LiRA's halves.

numpy and scikit-learn only, imported when called: the planning layer uses this module and
stays torch-free and pandas-free.
"""

from __future__ import annotations


def digits_split(test_fraction: float = 0.2, train_per_class: int | None = None, seed: int = 0):
    """(train ids, test ids) of the stratified, seeded digits split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    train, test = train_test_split(np.arange(len(target)), test_size=test_fraction, stratify=target,
                                   random_state=seed)
    if train_per_class is not None:
        train = np.concatenate([train[target[train] == c][:train_per_class] for c in range(10)])
    return np.sort(train), np.sort(test)


def membership(n: int, shadows: int, seed: int = 0):
    """[shadows, n] bool: model k trains on image i. Each image is in exactly half of the models
    (Carlini et al.'s construction), so every image has IN and OUT shadows."""
    import numpy as np

    if shadows < 2 or shadows % 2:
        raise ValueError(f"shadows must be even and at least 2, got {shadows}")
    draws = np.random.default_rng(seed).uniform(size=(shadows, n))
    return draws.argsort(0) < shadows // 2
