"""Sample grids: synthetic images per class beside real training images of the same classes.

A grid has one row per shown class (its name on the row) and one group of columns per set: the
real training images first, then each synthetic set (a variant's images, titled by its label).
Every cell is fixed by the inputs alone, so a rerun draws the same PNG bytes:

- real: the first ``real_per_class`` training images of the class, in manifest order;
- synthetic: the first ``per_class`` samples with the class's label, in index order, among the
  set's first ``images`` samples (shard ``s`` holds images ``[s*S, (s+1)*S)`` whatever the
  scale, so these are the same images at every scale). Labels come from the shard indexes;
  only the chosen cells are read and decoded. Synthesis draws sample ``i`` from real training
  image ``i mod n``, so with the latent prior (img2img) the first synthetic images of a class
  start from its first real ones: the real column shows their sources.

Classes shown: every class, a count (evenly spaced over the labels: 0, C/k, 2C/k, ...), or a
list of class names. Cells are centre-cropped to squares of ``cell_size`` pixels: smaller
images are upscaled nearest-neighbour (the demo's 8-px digits and 32-px samples stay sharp),
larger ones downscaled. Strips are tiled with ``torchvision.utils.make_grid`` and labelled
with matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# a cell with no image (a class with fewer samples than asked): light grey
EMPTY = 0.85


@dataclass(frozen=True)
class GridSettings:
    """``experiments.grids`` as one grid uses it (``plan.grid_settings``)."""

    per_class: int = 4
    real_per_class: int = 1
    classes: int | list | None = 10
    cell_size: int = 64


def shown_classes(names: list[str], classes: int | list | None) -> list[int]:
    """The labels a grid shows: all (None), ``classes`` evenly spaced labels (a count), or the
    labels of the named classes, in the order named (unknown names raise, naming them)."""
    if classes is None:
        return list(range(len(names)))
    if isinstance(classes, int):
        k = min(classes, len(names))
        return [i * len(names) // k for i in range(k)]
    index = {name: label for label, name in enumerate(names)}
    unknown = [c for c in classes if c not in index]
    if unknown:
        raise ValueError(f"experiments.grids classes: {unknown} are not class names of this data set "
                         f"(e.g. {names[:5]})")
    return [index[c] for c in classes]


def first_per_class(labels, classes: list[int], per_class: int) -> dict[int, list[int]]:
    """Per class: the positions of its first ``per_class`` entries in ``labels`` (fewer if it has fewer)."""
    labels = np.asarray(labels)
    return {c: np.flatnonzero(labels == c)[:per_class].tolist() for c in classes}


def synthetic_cells(shard_paths, images: int, classes: list[int], per_class: int, num_classes: int):
    """Per class: ``(sample index, image)`` of its first ``per_class`` samples among the first
    ``images`` samples of ``shard_paths``: labels from the indexes, only these cells decoded."""
    from realfake.shards import ShardSamples

    samples = ShardSamples(shard_paths, images, num_classes=num_classes)
    picked = first_per_class(samples.labels, classes, per_class)
    return {c: [(i, samples.image(i)) for i in indices] for c, indices in picked.items()}


def real_cells(train, classes: list[int], per_class: int):
    """Per class: ``(manifest index, image)`` of its first ``per_class`` training images."""
    from realfake.data import load_rgb

    picked = first_per_class(train["label"].to_numpy(), classes, per_class)
    return {c: [(int(train["index"].iloc[i]), load_rgb(train["path"].iloc[i])) for i in rows]
            for c, rows in picked.items()}


def fit_cell(image, size: int):
    """The image centre-cropped to a square of ``size`` px: nearest-neighbour up, Lanczos down."""
    from PIL import Image, ImageOps

    method = Image.NEAREST if min(image.size) < size else Image.LANCZOS
    return ImageOps.fit(image.convert("RGB"), (size, size), method=method)


def strip(images: list, width: int, size: int, padding: int = 2):
    """``width`` cells in a row (``make_grid``): the images, then empty cells, as an HxWx3 array."""
    import torch
    from torchvision.transforms.functional import pil_to_tensor
    from torchvision.utils import make_grid

    cells = [pil_to_tensor(fit_cell(im, size)).float() / 255 for im in images]
    cells += [torch.full((3, size, size), EMPTY)] * (width - len(cells))
    return make_grid(cells, nrow=width, padding=padding, pad_value=1.0).permute(1, 2, 0).numpy()


def draw(rows: list[str], groups: list[tuple[str, int, list]], cell_size: int, path, title: str | None = None):
    """A grid PNG at ``path``, written atomically: one row per entry of ``rows`` (the class
    names), one column group per ``(title, width, cells)``, ``cells[r]`` the images of row ``r``."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realfake.atomic import atomic_path

    padding, dpi = 2, 100
    rows = [name if len(name) <= 32 else name[:31] + "\u2026" for name in rows]
    widths = [w * (cell_size + padding) + padding for _, w, _ in groups]
    # about 7 px a character at 9 pt, at 100 dpi: titles wrap to their group's width
    titles = ["\n".join(textwrap.wrap(t, max(6, widths[g] // 7))) for g, (t, _, _) in enumerate(groups)]
    height = cell_size + 2 * padding
    lines = max(t.count("\n") + 1 for t in titles)
    label_px, gap_px, top_px = 20 + 7 * max(map(len, rows)), 12, 16 + 14 * lines + (18 if title else 0)
    fig_w = label_px + sum(widths) + gap_px * (len(groups) - 1) + 8
    fig_h = top_px + len(rows) * (height + 4) + 8
    fig = plt.figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
    for r, name in enumerate(rows):
        x = label_px
        y = fig_h - top_px - (r + 1) * (height + 4) + 4
        for g, (_, width, cells) in enumerate(groups):
            ax = fig.add_axes((x / fig_w, y / fig_h, widths[g] / fig_w, height / fig_h))
            ax.imshow(strip(cells[r], width, cell_size, padding), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if r == 0:
                ax.set_title(titles[g], fontsize=9)
            if g == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            x += widths[g] + gap_px
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 4 / fig_h, va="top")
    with atomic_path(path, suffix=".png") as tmp:
        # no software version in the file: the same cells give the same bytes
        fig.savefig(tmp, dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def sample_grid(manifest_path, sets: list[dict], settings: GridSettings, path, title: str | None = None) -> dict:
    """Draw the real training images and each synthetic set of ``sets`` (``label``: column
    title, ``shards``: its shard files, ``images``: how many of their samples it holds) as one
    grid at ``path``. Returns what was drawn: the class names shown and, per column group, each
    class's cells (manifest index or sample index), for the job's log and tests."""
    from realfake.data import class_names, read_manifest

    manifest = read_manifest(manifest_path)
    names = class_names(manifest)
    train = manifest[manifest["split"] == "train"].reset_index(drop=True)
    classes = shown_classes(names, settings.classes)
    groups = [("real", settings.real_per_class, real_cells(train, classes, settings.real_per_class))]
    for s in sets:
        groups.append((s["label"], settings.per_class,
                       synthetic_cells(s["shards"], s["images"], classes, settings.per_class, len(names))))
    draw([names[c] for c in classes],
         [(label, width, [[im for _, im in cells[c]] for c in classes]) for label, width, cells in groups],
         settings.cell_size, path, title)
    return {"classes": [names[c] for c in classes],
            "cells": {label: {names[c]: [i for i, _ in cells[c]] for c in classes} for label, _, cells in groups}}
