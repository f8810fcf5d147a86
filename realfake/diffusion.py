"""Pieces of a Stable Diffusion training step that pre-training and LoRA fine-tuning share."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from realfake.models import pretrained_source


@dataclass
class SDComponents:
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object


def load_sd_components(model: str) -> SDComponents:
    """Load the parts of a Stable Diffusion folder or hub id (``owner/name@revision``: that commit) that training needs."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    model, pin = pretrained_source(model, "Stable Diffusion")
    return SDComponents(
        tokenizer=CLIPTokenizer.from_pretrained(model, subfolder="tokenizer", **pin),
        text_encoder=CLIPTextModel.from_pretrained(model, subfolder="text_encoder", **pin),
        vae=AutoencoderKL.from_pretrained(model, subfolder="vae", **pin),
        unet=UNet2DConditionModel.from_pretrained(model, subfolder="unet", **pin),
        noise_scheduler=DDPMScheduler.from_pretrained(model, subfolder="scheduler", **pin),
    )


def encode_latents(vae, pixels: torch.Tensor, generator=None) -> torch.Tensor:
    """VAE latents of images in [-1, 1], scaled as the UNet expects (``generator``: one, or a
    list of one per image)."""
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    return dist.sample(generator) * vae.config.scaling_factor


def noise_residual(unet, noise_scheduler, latents: torch.Tensor, text_states: torch.Tensor, generator=None):
    """One denoising prediction at random timesteps: returns (target - prediction, timesteps).

    With the epsilon parameterisation of SD1.5 the target is the added noise, so the residual
    is eps - eps_theta(x_t, t): both loss terms of Eq. 21 are functions of it. ``generator``:
    one, or a list of one per sample (noise and timestep drawn per sample: the same draws
    whichever rank holds the sample).
    """
    from diffusers.utils.torch_utils import randn_tensor

    batch, steps = latents.shape[0], noise_scheduler.config.num_train_timesteps
    noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    if isinstance(generator, list):
        timesteps = torch.cat([torch.randint(0, steps, (1,), generator=g, device=g.device) for g in generator])
        timesteps = timesteps.to(latents.device)
    else:
        timesteps = torch.randint(0, steps, (batch,), generator=generator, device=latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    prediction_type = noise_scheduler.config.prediction_type
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"unsupported prediction_type {prediction_type!r} in the model's scheduler")
    prediction = unet(noisy, timesteps, text_states).sample
    return target.float() - prediction.float(), timesteps


def min_snr_weights(noise_scheduler, timesteps: torch.Tensor, snr_gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023), as diffusers' training examples compute them."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise_scheduler, timesteps)
    weights = torch.clamp(snr, max=snr_gamma) / snr
    if noise_scheduler.config.prediction_type == "v_prediction":
        weights = torch.clamp(snr, max=snr_gamma) / (snr + 1)
    return weights


MMD_FORMS = ("paper", "released")


def diffusion_losses(residual: torch.Tensor, weights: torch.Tensor | None = None, *,
                     group_size: int | None = None, form: str = "paper"):
    """(L_simple, L_MMD) of Eq. 21 from the residuals r_i = eps_i - eps_theta_i of one batch.

    L_simple = mean_i w_i ||r_i||^2, averaged over latent elements (w_i: min-SNR weights, else 1).
    L_MMD is a linear-kernel MMD taken within groups of ``group_size`` samples (the authors'
    per-GPU batch of 8; the whole batch when None) and averaged over the groups, so it does
    not depend on how many samples or GPUs a step has:

    - ``paper``: ||mean_{i in g} sqrt(w_i) r_i||^2 averaged over elements (Eq. 21's mean
      notation; Jensen's bound L_MMD <= L_simple holds);
    - ``released``: ||sum_{i in g} w_i r_i||^2 / (C*H*W), the authors' released code exactly
      (a sum, weighted by w_i, not sqrt(w_i); with their gamma 0.003).
    """
    if form not in MMD_FORMS:
        raise ValueError(f"MMD form must be one of {MMD_FORMS}, got {form!r}")
    batch, elements = residual.shape[0], residual[0].numel()
    flat = residual.reshape(batch, elements)
    w = torch.ones(batch, device=residual.device, dtype=flat.dtype) if weights is None else weights.to(flat.dtype)
    l_simple = (flat.pow(2).mean(dim=1) * w).mean()
    terms = []
    for group, gw in zip(flat.split(group_size or batch), w.split(group_size or batch), strict=True):
        if form == "paper":
            terms.append((group * gw.sqrt()[:, None]).mean(dim=0).pow(2).mean())
        else:
            terms.append((group * gw[:, None]).sum(dim=0).pow(2).sum() / elements)
    return l_simple, torch.stack(terms).mean()


def to_diffusion_pixels(images) -> torch.Tensor:
    """PIL images -> float tensor in [-1, 1], the VAE's input range."""
    import numpy as np

    array = np.stack([np.asarray(im, dtype=np.float32) / 127.5 - 1.0 for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
