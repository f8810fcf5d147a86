"""How strong the distribution-matching term is against L_simple, before and after grouping.

    python bench/mmd_strength.py [--trials 20]

Random residuals r ~ N(0, 1) of SD1.5's latent shape (4x64x64), timesteps uniform over SD1.5's
1,000-step scaled-linear schedule (min-SNR weights from diffusers' compute_snr), a step of 64
samples (the paper's 8 GPUs x 8). Prints gamma * L_MMD / L_simple for each setting.
"""

from __future__ import annotations

import argparse

import torch
from diffusers import DDPMScheduler

from realfake.diffusion import diffusion_losses, min_snr_weights

SETTINGS = {  # name: (gamma, snr_gamma, group_size, form)
    "paper, before (no min-SNR, one batch of 64)": (0.05, None, None, "paper"),
    "paper, now (min-SNR 5, groups of 8)": (0.05, 5.0, 8, "paper"),
    "released, before (mean form, sqrt(w), batch of 64)": (0.003, 5.0, None, "paper"),
    "released, now (sum form, w, groups of 8)": (0.003, 5.0, 8, "released"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000)
    g = torch.Generator().manual_seed(0)
    ratios = {name: [] for name in SETTINGS}
    for _ in range(args.trials):
        r = torch.randn(64, 4, 64, 64, generator=g)
        t = torch.randint(0, 1000, (64,), generator=g)
        for name, (gamma, snr_gamma, group, form) in SETTINGS.items():
            w = min_snr_weights(scheduler, t, snr_gamma) if snr_gamma else None
            l_simple, l_mmd = diffusion_losses(r, w, group_size=group, form=form)
            ratios[name].append(gamma * l_mmd.item() / l_simple.item())
    for name, values in ratios.items():
        v = torch.tensor(values)
        print(f"{name:<52} gamma*L_MMD/L_simple = {v.mean():.3e} (+- {v.std():.1e})")


if __name__ == "__main__":
    main()
