"""Privacy analysis (Sec. 4.5): membership inference by LiRA, and copy detection.

LiRA (Carlini et al. 2022, "Membership inference attacks from first principles"), on numpy and
scipy: of the PyPI packages, tensorflow-privacy needs TensorFlow, ML Privacy Meter brings a
training framework of its own, ``mia`` has only Shokri et al.'s attack and is unmaintained; the
attack itself is a few lines. N models are trained on seeded
halves of the training set (``membership``: each image in exactly half of them); each model in
turn is the target and the others its shadows (leave-one-out, as Carlini et al. evaluate). A
model's score of an image is its logit-scaled confidence in the true class,
``log p_y - log(1 - p_y)``, computed stably from the logits. Per image, Gaussians are fitted to
the shadows' scores when the image was in (IN) and out (OUT) of their halves:

- online: the likelihood ratio ``log N(s; mu_in, sd_in) - log N(s; mu_out, sd_out)``;
- offline: the one-sided test against OUT only, ``log Phi((s - mu_out) / sd_out)``;
- fixed variance: one standard deviation per distribution over all images (few shadows).

Every image's fit uses the same number of IN (and of OUT) shadows; with one each (4 models),
every image takes the pooled deviation.

Means are medians, as in the authors' code. Reported: ROC AUC, balanced accuracy and the TPR
at 0.1 % and 1 % FPR (the paper's Fig. 3 quotes TPR at 0.1 % FPR).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from realfake.splits import membership

if TYPE_CHECKING:
    import pandas as pd

ATTACKS = ("online", "online_fixed_variance", "offline", "offline_fixed_variance")
LOW_FPRS = (0.001, 0.01)


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y - log(1 - p_y)`` from logits [n, classes]: ``z_y - logsumexp_{j != y} z_j``."""
    from scipy.special import logsumexp

    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(logits))
    true = logits[rows, labels]
    others = logits.copy()
    others[rows, labels] = -np.inf
    return true - logsumexp(others, axis=1)


def lira_scores(scores: np.ndarray, members: np.ndarray, target: int, attack: str) -> np.ndarray:
    """Membership scores (higher: more likely a member) of every image for model ``target``,
    its shadows being all other models. ``scores``, ``members``: [models, images]."""
    shadows = np.delete(np.arange(len(scores)), target)
    s, m = scores[shadows], members[shadows]
    fixed = attack.endswith("fixed_variance")
    mu_out, sd_out = _gaussian(s, ~m, fixed)
    x = scores[target]
    if attack.startswith("offline"):
        from scipy.stats import norm

        return norm.logcdf(x, mu_out, sd_out)
    mu_in, sd_in = _gaussian(s, m, fixed)
    return _log_normal(x, mu_in, sd_in) - _log_normal(x, mu_out, sd_out)


def _gaussian(scores: np.ndarray, mask: np.ndarray, fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the median and standard deviation of the scores where ``mask`` (models x images)."""
    # The same number of shadows for every image (the authors' code truncates too): with halves,
    # a member of the target has one IN shadow fewer than a non-member, and a fit that differed
    # with the count would leak membership by itself.
    k = int(mask.sum(0).min())
    if k == 0:
        raise ValueError("an image has no IN or no OUT shadow: use more shadows")
    masked = np.where(mask & (np.cumsum(mask, axis=0) <= k), scores, np.nan)
    mu = np.nanmedian(masked, axis=0)
    # one sample has no spread: then every image takes the pooled deviation
    sd = np.full_like(mu, np.nanstd(masked)) if fixed or k < 2 else np.nanstd(masked, axis=0)
    return mu, np.maximum(sd, 1e-6)


def _log_normal(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd)


def roc_summary(scores: np.ndarray, is_member: np.ndarray) -> dict:
    """AUC, balanced accuracy and TPR at low FPRs of membership scores against the truth."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(is_member, scores)
    summary = {"auc": float(roc_auc_score(is_member, scores)), "accuracy": float(np.max(1 - (fpr + (1 - tpr)) / 2))}
    for low in LOW_FPRS:
        summary[f"tpr_at_{low * 100:g}pct_fpr"] = float(tpr[fpr <= low].max(initial=0.0))
    return summary


def lira(scores: np.ndarray, members: np.ndarray) -> tuple[list[dict], dict]:
    """Every attack, each model the target in turn, all targets' images pooled (the authors'
    evaluation): (summary per attack, ROC curve per attack)."""
    from sklearn.metrics import roc_curve

    rows, curves = [], {}
    truth = members.ravel()
    for attack in ATTACKS:
        pooled = np.concatenate([lira_scores(scores, members, t, attack) for t in range(len(scores))])
        rows.append({"attack": attack, **roc_summary(pooled, truth)})
        curves[attack] = roc_curve(truth, pooled)[:2]
    return rows, curves


def plot_roc(curves: dict[str, dict], path, title: str = "") -> None:
    """Fig. 3: log-log ROC, one panel per attack, one curve per training setting.
    ``curves``: setting -> attack -> (fpr, tpr)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from realfake.atomic import atomic_path

    fig, axes = plt.subplots(1, len(ATTACKS), figsize=(3.3 * len(ATTACKS), 3.3), squeeze=False)
    for ax, attack in zip(axes[0], ATTACKS, strict=True):
        for setting, per_attack in curves.items():
            fpr, tpr = per_attack[attack]
            ax.plot(np.maximum(fpr, 1e-5), np.maximum(tpr, 1e-5), label=setting)
        ax.plot([1e-5, 1], [1e-5, 1], ":", color="grey")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(attack.replace("_", " "), fontsize=9)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def model_scores(classifier_path, manifest_path, batch_size: int = 256, num_workers: int = 0,
                 device: str = "auto") -> pd.DataFrame:
    """One model's logit-scaled confidence on every training image of the base data set."""
    import pandas as pd

    from realfake.classifier import image_logits
    from realfake.data import read_manifest

    train = read_manifest(manifest_path, "train")
    logits = image_logits(classifier_path, train["path"].tolist(), train["label"], batch_size, num_workers, device)
    return pd.DataFrame({"index": train["index"], "label": train["label"],
                         "score": logit_confidence(logits, train["label"].to_numpy())})


def lira_table(score_files: dict[str, list], shadows: int, seed: int, roc_path, title: str = "") -> pd.DataFrame:
    """LiRA on each training setting (label -> one score file per model, in shadow order):
    the summary per setting and attack, the paper's TPR at 0.1 % FPR beside; the ROC plot."""
    import pandas as pd

    from realfake.tables import load_reference

    rows, curves = [], {}
    for setting, files in score_files.items():
        scores = np.stack([pd.read_parquet(f)["score"].to_numpy() for f in files])
        members = membership(scores.shape[1], shadows, seed)
        summary, curves[setting] = lira(scores, members)
        rows += [{"setting": setting, "models": len(files), "images": scores.shape[1], **r} for r in summary]
    plot_roc(curves, roc_path, title)
    paper = load_reference("privacy_lira")
    return pd.DataFrame(rows).merge(paper, on="setting", how="left").round(6)
