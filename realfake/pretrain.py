"""Brief pre-training of the demo's tiny Stable Diffusion and CLIP (demo only).

The paper's premise is a generator that knows the classes but not the target data: SD1.5 can
draw a tench, but not ImageNet's tench photographs. The demo's tiny SD is made to match it:
it is pre-trained class-conditionally ("photo of {digit}") on the digits that the demo's real
training set does *not* hold, rendered in another style (slanted, thinner, softer strokes), so
its text-to-image draws the right digit in the wrong style; the pipeline then fine-tunes it on
the real digits exactly as it would fine-tune SD1.5 on ImageNet. Its tiny CLIP is trained
contrastively, image against "photo of {class}", so that visual guidance and CLIP-space gaps
mean something. The paper config skips both stages.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from tqdm.auto import tqdm

from realfake.atomic import atomic_path
from realfake.conditioning import build_prompt, encode_text
from realfake.diffusion import diffusion_losses, load_sd_components, noise_residual, to_diffusion_pixels
from realfake.splits import digits_split
from realfake.tiny_models import mark_tiny

STYLES = ("real", "slanted_thin")


def train_split_digits(test_fraction: float = 0.2, seed: int = 0):
    """(ids, labels) of the whole digits train split (never its test split): the tiny CLIP's corpus."""
    from sklearn.datasets import load_digits

    ids, _ = digits_split(test_fraction, None, seed)
    return ids, load_digits().target[ids]


def held_out_digits(test_fraction: float = 0.2, train_per_class: int | None = None, seed: int = 0):
    """(ids, labels) of the digits train split that a digits data set of these settings does not
    hold: the base SD's corpus, so that it never sees the demo's real training images."""
    full, labels = train_split_digits(test_fraction, seed)
    own, _ = digits_split(test_fraction, train_per_class, seed)
    keep = ~np.isin(full, own)
    ids = full[keep]
    if not len(ids):
        raise ValueError("the digits data set holds its whole train split (train_per_class: null), so no "
                         "digit is left to pre-train the tiny SD on: set its digits.train_per_class")
    return ids, labels[keep]


def digit_images(ids, size: int) -> list:
    """scikit-learn digits ``ids`` as RGB images of ``size`` px, rendered as the demo's manifest
    renders them (8 x 8 gray, bicubic), without writing files."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images * (255.0 / 16.0)).round().astype(np.uint8)
    return [Image.fromarray(pixels[i], mode="L").convert("RGB").resize((size, size), Image.BICUBIC)
            for i in ids]


def in_style(images: list, style: str) -> list:
    if style not in STYLES:
        raise ValueError(f"tiny_models.pretrain.style must be one of {STYLES}, got {style!r}")
    return images if style == "real" else [slanted_thin(im) for im in images]


def slanted_thin(image):
    """Strokes slanted right (shear 0.35), one pixel thinner (3 x 3 erosion) and softer (blur):
    the same digit, drawn by another hand with another pen."""
    from PIL import Image, ImageFilter

    w, h = image.size
    shear = 0.35
    image = image.transform((w, h), Image.AFFINE, (1, shear, -shear * h / 2, 0, 1, 0), Image.BICUBIC)
    return image.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.GaussianBlur(0.6))


def pretrain_tiny_sd(model: str, out_dir: str | os.PathLike, images: list, labels, class_names: list[str],
                     settings: dict, text_encoder: str | None = None, seed: int = 0) -> dict:
    """With ``text_encoder`` (a CLIP folder), first replace SD's text encoder with that CLIP's text
    tower, as SD1.5's is CLIP ViT-L/14's (frozen). Train the VAE on ``images`` in both renderings, fit its latent scale, then the UNet on the
    shifted rendering with class prompts (``prompt_dropout`` of them empty, as SD's were, so that
    classifier-free guidance has an unconditional branch); save the pipeline."""
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(seed)
    parts = load_sd_components(model)
    if text_encoder is not None:
        from transformers import CLIPTextModel

        parts.text_encoder = CLIPTextModel.from_pretrained(text_encoder).eval()
    shifted = in_style(images, settings["style"])
    pixels = to_diffusion_pixels(shifted)
    vae_pixels = pixels if shifted is images else torch.cat([to_diffusion_pixels(images), pixels])
    stats = {"vae_loss": _train_vae(parts.vae, vae_pixels, settings["vae_steps"], settings["vae_batch_size"],
                                    settings["learning_rate"], settings.get("kl_weight", 1e-6))}
    with torch.no_grad():  # the UNet trains on cached latent distributions: one VAE pass in all
        dist = parts.vae.encode(pixels).latent_dist
    # Unit-variance latents, as SD's 0.18215 does for its VAE (Rombach et al., Sec. G).
    parts.vae.register_to_config(scaling_factor=float(1.0 / dist.mean.std()))
    stats["scaling_factor"] = parts.vae.config.scaling_factor
    prompts = [build_prompt(settings["prompt_template"], name) for name in class_names] + [""]
    text_states = encode_text(parts.tokenizer, parts.text_encoder, prompts)
    stats["unet_loss"] = _train_unet(parts, dist, torch.as_tensor(np.asarray(labels)), text_states,
                                     settings)
    pipe = StableDiffusionPipeline.from_pretrained(model, vae=parts.vae, unet=parts.unet,
                                                   text_encoder=parts.text_encoder, safety_checker=None, requires_safety_checker=False)
    with atomic_path(out_dir) as tmp:
        pipe.save_pretrained(tmp)
        mark_tiny(tmp)
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


def _train_unet(parts, dist, labels, text_states, settings) -> float:
    """``text_states``: one row per class, then the empty prompt's (the last row)."""
    steps = settings["unet_steps"]
    parts.unet.train()
    optimizer = torch.optim.AdamW(parts.unet.parameters(), lr=settings["learning_rate"])
    # one cycle, 10 % warm-up; its warm-up must span a step, so a run under 20 steps (tests) takes
    # the first steps of a 20-step cycle
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings["learning_rate"], total_steps=max(steps, 20),
                                                    pct_start=0.1)
    running = None
    for idx in tqdm(_batches(len(labels), settings["batch_size"], steps), total=steps, desc="pretrain UNet"):
        latents = (dist.mean[idx] + dist.std[idx] * torch.randn_like(dist.mean[idx])) * parts.vae.config.scaling_factor
        rows = torch.where(torch.rand(len(idx)) < settings["prompt_dropout"], len(text_states) - 1, labels[idx])
        residual, _ = noise_residual(parts.unet, parts.noise_scheduler, latents, text_states[rows])
        loss, _ = diffusion_losses(residual)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parts.unet.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
    parts.unet.eval()
    return running


def pretrain_tiny_clip(model: str, out_dir: str | os.PathLike, images: list, labels,
                       prompts: list[str], steps: int, batch_size: int = 128, lr: float = 1e-3,
                       seed: int = 0) -> dict:
    """Train both CLIP towers with CLIP's contrastive loss, each image against the prompts of
    all classes (its own is the positive); save model, tokenizer and image processor."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    clip = CLIPModel.from_pretrained(model).train()
    processor = CLIPImageProcessor.from_pretrained(model)
    tokenizer = CLIPTokenizer.from_pretrained(model)
    pixels = processor(images=images, return_tensors="pt").pixel_values
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
        mark_tiny(tmp)
    return {"clip_loss": float(loss), "train_zero_shot_top1": accuracy}


def _clip_logits(clip, pixels, texts) -> torch.Tensor:
    """Scaled cosine similarities of images [B] to texts [C], as CLIP's forward computes them."""
    return clip(pixel_values=pixels, **texts).logits_per_image
