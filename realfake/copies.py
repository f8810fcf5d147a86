"""Copy detection (Sec. 4.5, Fig. 4): each synthetic image's nearest real training images.

Descriptors are L2-normalised, similarity is their inner product (cosine). SSCD (Pizzi et al.
2022) is loaded as the TorchScript file its authors publish (``sscd_disc_large.torchscript.pt``:
ResNeXt101, 1024-d; the weights carry a non-commercial licence and cannot be downloaded here),
with their recommended square 320-px preprocessing; the demo uses CLIP image features instead.
A TorchScript file runs code when it is loaded: it is loaded only if its SHA-256 is the one the
config names (checked at start-up and again here, right before the load).
SSCD's authors give 0.75 as the similarity above which DISC pairs are copies with 90 % precision
(for sscd_disc_mixup); CLIP similarities have no such calibration, so the summary also reports
the held-out real test images against the training set: the similarity of images that are
certainly not copies.

img2img starts from a real training image by construction (the latent prior): the similarity to
that source image is reported apart from the similarity to every other training image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

SSCD_MEAN, SSCD_STD, SSCD_SIZE = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 320


def descriptors(descriptor: str | dict, clip_model: str, images: list, batch_size: int = 64,
                device: str = "auto") -> torch.Tensor:
    """L2-normalised copy descriptors [images, d] of image files or PIL images.
    ``descriptor``: ``clip`` (``clip_model``'s image features) or an SSCD TorchScript file as
    ``{"path": ..., "sha256": ...}`` (``experiments.copies.descriptor``)."""
    if descriptor == "clip":
        from realfake.guidance import clip_image_embeddings

        features = clip_image_embeddings(clip_model, images, batch_size, device)
    else:
        features = _torchscript_descriptors(descriptor, images, batch_size, device)
    return torch.nn.functional.normalize(features.float(), dim=1)


@torch.no_grad()
def _torchscript_descriptors(descriptor: dict, images: list, batch_size: int, device: str) -> torch.Tensor:
    """A TorchScript file runs code when it is loaded: it loads only if its SHA-256 is the configured one."""
    from torchvision import transforms

    from realfake.data import rgb_batches
    from realfake.devices import pick_device
    from realfake.models import verify_file_sha256

    if not isinstance(descriptor, dict):
        raise ValueError(f"experiments.copies.descriptor: {descriptor!r} is neither clip nor a TorchScript file "
                         f"given as {{path: ..., sha256: ...}}")
    dev = pick_device(device)
    verify_file_sha256(descriptor["path"], descriptor["sha256"], "experiments.copies.descriptor")
    model = torch.jit.load(str(descriptor["path"]), map_location=dev).eval()
    transform = transforms.Compose([transforms.Resize([SSCD_SIZE, SSCD_SIZE]), transforms.ToTensor(),
                                    transforms.Normalize(SSCD_MEAN, SSCD_STD)])
    return torch.cat([model(torch.stack([transform(im) for im in batch]).to(dev)).float().cpu()
                      for batch in rgb_batches(images, batch_size)])


def nearest_real(queries: torch.Tensor, real: torch.Tensor, sources: np.ndarray | None = None,
                 top_k: int = 5, chunk: int = 4096) -> pd.DataFrame:
    """Per query: the similarity to its source image (``sources[i]``, -1 or None: none) and the
    ``top_k`` most similar other real images (index and similarity, most similar first)."""
    sources = np.full(len(queries), -1) if sources is None else np.asarray(sources)
    k = min(top_k, len(real) - 1)
    source_sim, top_idx, top_sim = [], [], []
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ real.T
        src = torch.as_tensor(sources[start:start + chunk])
        rows = torch.arange(len(sims))
        has = src >= 0
        source_sim.append(torch.where(has, sims[rows, src.clamp(min=0)], torch.nan))
        sims[rows[has], src[has]] = -torch.inf  # the source is reported on its own
        values, indices = sims.topk(k, dim=1)
        top_idx.append(indices)
        top_sim.append(values)
    frame = pd.DataFrame({"index": np.arange(len(queries)), "source_index": sources,
                          "source_similarity": torch.cat(source_sim).numpy()})
    idx, sim = torch.cat(top_idx).numpy(), torch.cat(top_sim).numpy()
    for j in range(k):
        frame[f"nearest_{j + 1}"] = idx[:, j]
        frame[f"similarity_{j + 1}"] = sim[:, j]
    return frame


def summarise(frame: pd.DataFrame, threshold: float) -> dict:
    """The distribution of the nearest (non-source) similarity and of the source similarity,
    and the fraction of images above ``threshold`` for each."""
    out = {"images": len(frame)}
    for name, column in (("nearest", frame["similarity_1"]), ("source", frame["source_similarity"])):
        values = column.dropna().to_numpy()
        if not len(values):
            continue
        for q in (0.5, 0.95, 0.99):
            out[f"{name}_q{int(q * 100)}"] = float(np.quantile(values, q))
        out[f"{name}_max"] = float(values.max())
        out[f"{name}_above_threshold"] = float((values > threshold).mean())
    return out


def plot_grid(rows: list[dict], path, columns: int = 3) -> None:
    """Fig. 4: per row a synthetic image, its source (img2img) and its ``columns`` nearest other
    real images, each titled with its similarity. ``rows``: label, synthetic, source (or None),
    source_similarity, nearest (list of (image, similarity))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realfake.atomic import atomic_path

    fig, axes = plt.subplots(len(rows), 2 + columns, figsize=(1.5 * (2 + columns), 1.6 * len(rows)),
                             squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        cells = [(row["synthetic"], row["label"]),
                 (row["source"], f"source {row['source_similarity']:.2f}" if row["source"] else "no source")]
        cells += [(image, f"{sim:.2f}") for image, sim in row["nearest"][:columns]]
        for ax, (image, title) in zip(ax_row, cells, strict=False):
            if image is not None:
                ax.imshow(image)
            ax.set_title(title, fontsize=6)
            ax.axis("off")
        for ax in ax_row[len(cells):]:
            ax.axis("off")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


class _ShardImages:
    """Synthetic images decoded on demand, batch by batch (a shard set need not fit in memory)."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, window: slice):
        return [self.samples.image(i) for i in range(*window.indices(len(self.samples)))]


def real_descriptors(descriptor: str | dict, clip_model: str, manifest_path, batch_size: int = 64,
                     device: str = "auto") -> dict[str, torch.Tensor]:
    """Descriptors of the real train and test images (the search set and the reference)."""
    from realfake.data import read_manifest

    return {split: descriptors(descriptor, clip_model, read_manifest(manifest_path, split)["path"].tolist(),
                               batch_size, device) for split in ("train", "test")}


def centred(features: torch.Tensor, real_train: torch.Tensor, center: bool) -> torch.Tensor:
    """Descriptors as compared: with ``center``, minus the real training mean, re-normalised."""
    if not center:
        return features
    return torch.nn.functional.normalize(features - real_train.mean(0), dim=1)


def copy_detection(descriptor: str | dict, clip_model: str, real: dict[str, torch.Tensor], shard_paths,
                   synthetic_images: int, latent_prior: bool, top_k: int = 5, center: bool = False,
                   batch_size: int = 64, device: str = "auto") -> pd.DataFrame:
    """Every synthetic image's source similarity (img2img only) and nearest real training images."""
    from realfake.shards import ShardSamples

    samples = ShardSamples(shard_paths, synthetic_images)
    queries = descriptors(descriptor, clip_model, _ShardImages(samples), batch_size, device)
    sources = np.array([samples.meta(i)["source_index"] for i in range(len(samples))]) if latent_prior else None
    train = real["train"]
    return nearest_real(centred(queries, train, center), centred(train, train, center), sources, top_k)


def copies_table(sets: dict[str, pd.DataFrame], real: dict[str, torch.Tensor], threshold: float,
                 center: bool = False) -> pd.DataFrame:
    """One row per synthetic set, and the held-out real test images against the training set
    (``real_test``: what the similarity of a non-copy looks like)."""
    train = real["train"]
    reference = nearest_real(centred(real["test"], train, center), centred(train, train, center), None, 1)
    rows = [{"set": label, **summarise(frame, threshold)} for label, frame in sets.items()]
    rows.append({"set": "real_test", **summarise(reference, threshold)})
    return pd.DataFrame(rows).assign(threshold=threshold).round(4)


def closest_pairs(sets: dict[str, pd.DataFrame], shard_paths: dict[str, list], train_paths: list[str],
                  pairs: int, columns: int = 3) -> list[dict]:
    """The ``pairs`` synthetic images most similar to a real training image (other than their
    source), over all sets, as rows for ``plot_grid``."""
    from realfake.data import load_rgb
    from realfake.shards import ShardSamples

    pooled = pd.concat([f.assign(set=label) for label, f in sets.items()]).nlargest(pairs, "similarity_1")
    opened = {label: ShardSamples(shard_paths[label]) for label in pooled["set"].unique()}  # one index read a set
    rows = []
    for r in pooled.itertuples():
        nearest = [(load_rgb(train_paths[int(getattr(r, f"nearest_{j}"))]), getattr(r, f"similarity_{j}"))
                   for j in range(1, columns + 1) if hasattr(r, f"nearest_{j}")]
        source = load_rgb(train_paths[r.source_index]) if r.source_index >= 0 else None
        rows.append({"label": f"{r.set} #{r.index}", "synthetic": opened[r.set].image(int(r.index)), "source": source,
                     "source_similarity": r.source_similarity, "nearest": nearest})
    return rows
