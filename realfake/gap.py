"""How far a synthetic set is from the real one in CLIP feature space (beyond the paper).

Two distances between feature sets: the squared MMD with a Gaussian (RBF) kernel, bandwidth
by the median heuristic, and the Frechet distance between Gaussians fitted to each set (the
FID formula, on CLIP features); and a PCA scatter of both sets, like the paper's Fig. 1.
"""

from __future__ import annotations

import numpy as np
import torch


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with k(a, b) = exp(-|a - b|^2 / (2 s^2)); s: median pairwise distance."""
    x, y = x.double(), y.double()
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    if bandwidth is None:
        bandwidth = float(d2[d2 > 0].median().sqrt())
    k = torch.exp(-d2 / (2 * bandwidth**2))
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
                 + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """|mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)) of Gaussians fitted to both sets."""
    from scipy import linalg

    x, y = x.double().numpy(), y.double().numpy()
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    covmean = linalg.sqrtm(s_x @ s_y)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x + s_y - 2 * covmean))


def pca_plot(features: dict[str, torch.Tensor], path, title: str = "") -> None:
    """Each set's features on the first two principal components of the first set's (the real)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realfake.atomic import atomic_path

    reference = next(iter(features.values()))
    mean = reference.mean(0)
    _, _, v = torch.pca_lowrank(reference - mean, q=2, center=False)
    fig, ax = plt.subplots(figsize=(4, 4))
    for (label, feats), colour in zip(features.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red"),
                                      strict=False):
        p = ((feats - mean) @ v).numpy()
        ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.5, label=label, c=colour)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def sampled_features(clip_model: str, real_paths: list[str], synthetic: dict[str, tuple[list[str], int]],
                     max_images: int = 2000, seed: int = 0, batch_size: int = 64,
                     device: str = "auto") -> dict[str, torch.Tensor]:
    """CLIP image features of a seeded sample of the real images (``"real"``, first) and of
    each synthetic set (label -> its shard paths and the number of images it holds)."""
    from realfake.guidance import clip_image_embeddings
    from realfake.shards import ShardSamples

    rng = np.random.default_rng(seed)
    real = [real_paths[i] for i in _sample(rng, len(real_paths), max_images)]
    features = {"real": clip_image_embeddings(clip_model, real, batch_size, device)}
    for label, (shard_paths, images) in synthetic.items():
        shards = ShardSamples(shard_paths, images)
        sample = [shards.image(i) for i in _sample(rng, len(shards), max_images)]
        features[label] = clip_image_embeddings(clip_model, sample, batch_size, device)
    return features


def distribution_gap(clip_model: str, real_paths: list[str], shard_paths: list[str], synthetic_images: int,
                     max_images: int = 2000, seed: int = 0, batch_size: int = 64, device: str = "auto"):
    """(distances, real features, synthetic features) for a seeded sample of each set."""
    features = sampled_features(clip_model, real_paths, {"synthetic": (shard_paths, synthetic_images)},
                                max_images, seed, batch_size, device)
    x, y = features["real"], features["synthetic"]
    return {"mmd_rbf": mmd_rbf(x, y), "frechet": frechet_distance(x, y),
            "real_images": len(x), "synthetic_images": len(y)}, x, y


def _sample(rng, n: int, k: int) -> np.ndarray:
    return np.sort(rng.choice(n, k, replace=False)) if n > k else np.arange(n)
