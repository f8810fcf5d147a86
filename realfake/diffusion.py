"""Pieces of a Stable Diffusion training step that pre-training and LoRA fine-tuning share."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from realfake.models import resolve_model


@dataclass
class SDComponents:
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object


def load_sd_components(model: str) -> SDComponents:
    """Load the parts of a Stable Diffusion folder or hub id that training needs."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    model = resolve_model(model, "Stable Diffusion")
    return SDComponents(
        tokenizer=CLIPTokenizer.from_pretrained(model, subfolder="tokenizer"),
        text_encoder=CLIPTextModel.from_pretrained(model, subfolder="text_encoder"),
        vae=AutoencoderKL.from_pretrained(model, subfolder="vae"),
        unet=UNet2DConditionModel.from_pretrained(model, subfolder="unet"),
        noise_scheduler=DDPMScheduler.from_pretrained(model, subfolder="scheduler"),
    )


def encode_latents(vae, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """VAE latents of images in [-1, 1], scaled as the UNet expects."""
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    return dist.sample(generator) * vae.config.scaling_factor


def noise_residual(unet, noise_scheduler, latents: torch.Tensor, text_states: torch.Tensor,
                   generator: torch.Generator | None = None):
    """One denoising prediction at random timesteps: returns (target - prediction, timesteps).

    With the epsilon parameterisation of SD1.5 the target is the added noise, so the residual
    is eps - eps_theta(x_t, t): both loss terms of Eq. 21 are functions of it.
    """
    batch = latents.shape[0]
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,),
                              generator=generator, device=latents.device)
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


def diffusion_losses(residual: torch.Tensor, weights: torch.Tensor | None = None):
    """(L_simple, L_MMD) of Eq. 21 from the residuals eps - eps_theta of one batch.

    L_simple = mean_i ||r_i||^2 and L_MMD = ||mean_i r_i||^2 (a linear-kernel MMD between
    the batch's real and denoised latents), both averaged over latent elements so that
    Jensen's bound L_MMD <= L_simple holds as in Eq. 7. Optional per-sample ``weights``
    (min-SNR) scale the residuals in both terms, as the released code does.
    """
    if weights is not None:
        shape = (-1,) + (1,) * (residual.dim() - 1)
        per_sample = (residual.pow(2).mean(dim=tuple(range(1, residual.dim()))) * weights)
        l_simple = per_sample.mean()
        l_mmd = (residual * weights.view(shape).sqrt()).mean(dim=0).pow(2).mean()
    else:
        l_simple = residual.pow(2).mean()
        l_mmd = residual.mean(dim=0).pow(2).mean()
    return l_simple, l_mmd


def to_diffusion_pixels(images) -> torch.Tensor:
    """PIL images -> float tensor in [-1, 1], the VAE's input range."""
    import numpy as np

    array = np.stack([np.asarray(im, dtype=np.float32) / 127.5 - 1.0 for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
