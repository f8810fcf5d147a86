"""Brief pre-training of the demo's tiny Stable Diffusion and CLIP on real images (demo only).

Random weights generate noise, so the embedded demo first teaches its tiny SD the image domain
with a class-agnostic prompt; the pipeline then fine-tunes it exactly as it would fine-tune
SD1.5. Its tiny CLIP is trained contrastively, image against "photo of {class}", so visual
guidance and CLIP-space gaps mean something. The paper config skips both stages.
"""

from __future__ import annotations

import os

import torch
from tqdm.auto import tqdm

from realfake.atomic import atomic_path
from realfake.conditioning import encode_text
from realfake.data import load_rgb
from realfake.diffusion import diffusion_losses, encode_latents, load_sd_components, noise_residual, to_diffusion_pixels


def pretrain_tiny_sd(model: str, out_dir: str | os.PathLike, image_paths: list[str], prompt: str,
                     resolution: int, vae_steps: int, unet_steps: int, batch_size: int = 64,
                     lr: float = 1e-3, kl_weight: float = 1e-6, seed: int = 0) -> dict:
    """Train the VAE (reconstruction + KL), fit its latent scale, then the UNet; save the pipeline."""
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(seed)
    parts = load_sd_components(model)
    pixels = to_diffusion_pixels([load_rgb(p, resolution) for p in image_paths])
    stats = {"vae_loss": _train_vae(parts.vae, pixels, vae_steps, batch_size, lr, kl_weight)}
    with torch.no_grad():
        latents = parts.vae.encode(pixels).latent_dist.mean
    # Unit-variance latents, as SD's 0.18215 does for its VAE (Rombach et al., Sec. G).
    parts.vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    stats["scaling_factor"] = parts.vae.config.scaling_factor
    text_states = encode_text(parts.tokenizer, parts.text_encoder, [prompt])
    stats["unet_loss"] = _train_unet(parts, pixels, text_states, unet_steps, batch_size, lr)
    pipe = StableDiffusionPipeline.from_pretrained(model, vae=parts.vae, unet=parts.unet,
                                                   safety_checker=None, requires_safety_checker=False)
    with atomic_path(out_dir) as tmp:
        pipe.save_pretrained(tmp)
    return stats


def _batches(n: int, batch_size: int, steps: int):
    for _ in range(steps):
        yield torch.randint(0, n, (min(batch_size, n),))


def _train_vae(vae, pixels, steps, batch_size, lr, kl_weight) -> float:
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr)
    vae.train()
    loss = torch.tensor(float("nan"))
    for idx in tqdm(_batches(len(pixels), batch_size, steps), total=steps, desc="pretrain VAE"):
        dist = vae.encode(pixels[idx]).latent_dist
        reconstruction = vae.decode(dist.sample()).sample
        loss = (reconstruction - pixels[idx]).abs().mean() + kl_weight * dist.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    vae.eval()
    return float(loss)


def _train_unet(parts, pixels, text_states, steps, batch_size, lr) -> float:
    parts.unet.train()
    optimizer = torch.optim.AdamW(parts.unet.parameters(), lr=lr)
    running = None
    for idx in tqdm(_batches(len(pixels), batch_size, steps), total=steps, desc="pretrain UNet"):
        with torch.no_grad():
            latents = encode_latents(parts.vae, pixels[idx])
        residual, _ = noise_residual(parts.unet, parts.noise_scheduler, latents,
                                     text_states.expand(len(idx), -1, -1))
        loss, _ = diffusion_losses(residual)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parts.unet.parameters(), 1.0)
        optimizer.step()
        running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
    parts.unet.eval()
    return running


def pretrain_tiny_clip(model: str, out_dir: str | os.PathLike, image_paths: list[str], labels,
                       prompts: list[str], steps: int, batch_size: int = 128, lr: float = 1e-3,
                       seed: int = 0) -> dict:
    """Train both CLIP towers with CLIP's contrastive loss, each image against the prompts of
    all classes (its own is the positive); save model, tokenizer and image processor."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    clip = CLIPModel.from_pretrained(model).train()
    processor = CLIPImageProcessor.from_pretrained(model)
    tokenizer = CLIPTokenizer.from_pretrained(model)
    pixels = processor(images=[load_rgb(p) for p in image_paths], return_tensors="pt").pixel_values
    labels = torch.as_tensor(list(labels))
    texts = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                      truncation=True, return_tensors="pt")
    optimizer = torch.optim.AdamW(clip.parameters(), lr=lr, weight_decay=0.1)
    loss = torch.tensor(float("nan"))
    for idx in tqdm(_batches(len(pixels), batch_size, steps), total=steps, desc="pretrain CLIP"):
        loss = torch.nn.functional.cross_entropy(_clip_logits(clip, pixels[idx], texts), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    clip.eval()
    with torch.no_grad():
        accuracy = float((_clip_logits(clip, pixels, texts).argmax(1) == labels).float().mean())
    with atomic_path(out_dir) as tmp:
        clip.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return {"clip_loss": float(loss), "train_zero_shot_top1": accuracy}


def _clip_logits(clip, pixels, texts) -> torch.Tensor:
    """Scaled cosine similarities of images [B] to texts [C], as CLIP's forward computes them."""
    return clip(pixel_values=pixels, **texts).logits_per_image
