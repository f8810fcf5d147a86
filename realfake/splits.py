"""Seeded splits of a data set's images, known before any image is read (planning sizes the
shards with them): the digits train/test split and LiRA's halves.

numpy and scikit-learn only, imported when called: the planning layer uses this module and
stays torch-free and pandas-free. Planning needs only the split's size, at every Snakemake start
(and in every SLURM job): ``digits_train_size`` counts it without scikit-learn, whose import and
draw took 1.4 of a dry run's 3.1 CPU-seconds.
"""

from __future__ import annotations

import math

# Images per label in scikit-learn's digits (load_digits().target; a test holds it to the data set)
DIGITS_CLASS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)


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


def digits_train_size(test_fraction: float = 0.2, train_per_class: int | None = None, seed: int = 0) -> int:
    """``len(digits_split(...)[0])``, counted. scikit-learn's split holds out ``ceil(test_fraction * n)``
    images and gives each class at least the floor of its share of the rest (``_approximate_mode``,
    in the same floating-point expression), so up to that floor every class gives
    ``train_per_class``; past it the split is drawn, as it is where a side would hold fewer images
    than classes (scikit-learn's own error then names the sizes)."""
    n = sum(DIGITS_CLASS_COUNTS)
    n_train = n - math.ceil(test_fraction * n)
    if min(n_train, n - n_train) < len(DIGITS_CLASS_COUNTS):
        return len(digits_split(test_fraction, train_per_class, seed)[0])
    if train_per_class is None:
        return n_train
    if all(train_per_class <= math.floor(count / n * n_train) for count in DIGITS_CLASS_COUNTS):
        return train_per_class * len(DIGITS_CLASS_COUNTS)
    return len(digits_split(test_fraction, train_per_class, seed)[0])


def membership(n: int, shadows: int, seed: int = 0):
    """[shadows, n] bool: model k trains on image i. Each image is in exactly half of the models
    (Carlini et al.'s construction), so every image has IN and OUT shadows."""
    import numpy as np

    if shadows < 2 or shadows % 2:
        raise ValueError(f"shadows must be even and at least 2, got {shadows}")
    draws = np.random.default_rng(seed).uniform(size=(shadows, n))
    return draws.argsort(0) < shadows // 2
