"""Synthetic shards (Sec. 3.3): img2img from the VAE latent of a real image, the latent prior.

Synthetic image ``i`` is made from real training image ``i mod N`` (its class, caption,
guidance and, with the latent prior, its latent) with a generator seeded by ``i``. Shard
``s`` holds images ``[s*S, (s+1)*S)``, so any shard can be regenerated alone, identically,
and scale k uses the shards holding the first k*N images: scales share shards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from realfake.conditioning import build_prompt, encode_text, inject_guidance, match_negative
from realfake.data import load_rgb
from realfake.devices import inference_dtype, pick_device
from realfake.models import pretrained_source
from realfake.seeds import derive_seed
from realfake.shards import ShardWriter, shard_range


@dataclass(frozen=True)
class SynthesisSettings:
    """Every setting a shard's pixels depend on (Table 6 defaults)."""

    latent_prior: bool = True
    scheduler: str = "unipc"
    num_inference_steps: int = 30
    guidance_scale: float = 2.0
    strength: float = 0.75
    resolution: int = 512
    lora_scale: float = 0.5
    negative_prompt: str = "distorted, unrealistic, blurry, out of frame"
    prompt_template: str | list[str] = "photo of {classname}"  # several: image i takes the (i mod n)-th
    prompt_suffix: str = ""
    use_captions: bool = True
    injection: str = "replace_last"
    guidance_mode: str | None = None
    seed: int = 0
    # how the shard stores what was generated (part of its bytes, not of its pixels)
    shard_size: int = 1000
    image_format: str = "jpeg"
    image_quality: int = 95


def image_seed(seed: int, index: int) -> int:
    """The generator seed of synthetic image ``index``: any shard regenerates alone, identically."""
    return derive_seed(seed, "synthesis", index)


def template_of(template: str | list[str], index: int) -> str:
    """The prompt template of synthetic image ``index``: FakeIt's several templates take turns."""
    return template if isinstance(template, str) else template[index % len(template)]


def make_scheduler(name: str, config):
    """The sampler ``name`` (a variant's ``scheduler``: unipc, ddim, dpm) from a model's scheduler config."""
    import diffusers

    classes = {"unipc": "UniPCMultistepScheduler", "ddim": "DDIMScheduler", "dpm": "DPMSolverMultistepScheduler"}
    return getattr(diffusers, classes[name]).from_config(config)


def load_pipeline(model: str, settings: SynthesisSettings, lora_path=None, device: str = "auto",
                  dtype: str = "float16", fuse: bool = True, compile_unet: bool = False, cpu_dtype: str = "float32"):
    """A stock diffusers pipeline (img2img with the latent prior, else text-to-image) + LoRA.

    ``fuse``: the LoRA, scaled by ``lora_scale``, is fused into the UNet's weights and its
    adapter layers unloaded (no extra matmuls per step); numerically equivalent to running
    the adapter at that scale (tested). On GPUs: ``dtype`` (float16 or bfloat16), the UNet in
    ``channels_last``, and ``compile_unet`` (``torch.compile``; pays off over a shard of
    thousands of images at a fixed batch). Attention is PyTorch's SDPA (diffusers' default).
    ``cpu_dtype``: the precision on a CPU (float32, or bfloat16: the smoke run's half precision).
    """
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    dev = pick_device(device)
    cls = StableDiffusionImg2ImgPipeline if settings.latent_prior else StableDiffusionPipeline
    model, pin = pretrained_source(model, "Stable Diffusion")
    pipe = cls.from_pretrained(model, safety_checker=None, requires_safety_checker=False,
                               dtype=inference_dtype(dev, dtype, cpu_dtype), **pin)
    pipe.scheduler = make_scheduler(settings.scheduler, pipe.scheduler.config)
    if lora_path is not None:
        from realfake.lora import load_lora

        load_lora(pipe, lora_path)
        if fuse:
            pipe.fuse_lora(lora_scale=settings.lora_scale)
            pipe.unload_lora_weights()
    pipe.set_progress_bar_config(disable=True)
    # the VAE encodes and decodes one image at a time: at 512 px its activations would otherwise
    # grow with the batch (about 0.3 GB an image in fp16, bench/paper_shapes.py); the UNet's do not
    pipe.vae.enable_slicing()
    pipe = pipe.to(dev)
    if dev.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        if compile_unet:
            pipe.unet = torch.compile(pipe.unet)
    return pipe


@torch.no_grad()
def synthesize_shard(pipe, out_path: str | os.PathLike, shard: int, train, settings: SynthesisSettings,
                     captions: list[str] | None = None, guidance: torch.Tensor | None = None,
                     batch_size: int = 24, encode_workers: int = 4) -> int:
    """Generate shard ``shard`` (images ``[s*S, (s+1)*S)``) into an indexed WebDataset tar,
    encoding images in ``encode_workers`` threads while the next batch generates."""
    indices = list(shard_range(shard, settings.shard_size))
    n = len(train)
    negative = encode_text(pipe.tokenizer, pipe.text_encoder, [settings.negative_prompt])
    negative = match_negative(negative, settings.injection)
    with ShardWriter(out_path, settings.image_format, settings.image_quality, encode_workers) as sink:
        for start in tqdm(range(0, len(indices), batch_size), desc=f"shard {shard}"):
            batch = indices[start:start + batch_size]
            sources = [i % n for i in batch]
            rows = train.iloc[sources]
            prompts = [build_prompt(template_of(settings.prompt_template, i), row.class_name,
                                    captions[src] if captions and settings.use_captions else None,
                                    settings.prompt_suffix)
                       for i, src, row in zip(batch, sources, rows.itertuples(), strict=True)]
            seeds = [image_seed(settings.seed, i) for i in batch]
            images = generate_images(pipe, settings, prompts, negative, rows,
                               None if guidance is None else guidance[sources], seeds)
            for i, src, row, prompt, seed, image in zip(batch, sources, rows.itertuples(), prompts, seeds,
                                                        images, strict=True):
                sink.write(f"{i:09d}", image, int(row.label),
                           {"index": i, "source_index": src, "source_path": row.path,
                            "class_name": row.class_name, "prompt": prompt, "seed": seed})
    return len(indices)


def generate_images(pipe, settings, prompts, negative, rows, guidance, seeds):
    """One batch of ``pipe``'s images as synthesis draws them (guidance injected, a generator per seed, the
    LoRA at ``lora_scale``, img2img from ``rows``' real images under the latent prior); the LoRA's
    validation grids draw through it too."""
    dev = pipe.device
    states = inject_guidance(encode_text(pipe.tokenizer, pipe.text_encoder, prompts), guidance,
                             settings.injection)
    kwargs = dict(prompt_embeds=states.to(pipe.unet.dtype),
                  negative_prompt_embeds=negative.expand(len(prompts), -1, -1).to(pipe.unet.dtype),
                  num_inference_steps=settings.num_inference_steps, guidance_scale=settings.guidance_scale,
                  generator=[torch.Generator(dev).manual_seed(s) for s in seeds])
    if getattr(pipe, "get_list_adapters", None) and pipe.get_list_adapters():
        kwargs["cross_attention_kwargs"] = {"scale": settings.lora_scale}
    if settings.latent_prior:
        kwargs.update(image=[load_rgb(p, settings.resolution) for p in rows["path"]],
                      strength=settings.strength)
    else:
        kwargs.update(height=settings.resolution, width=settings.resolution)
    return pipe(**kwargs).images
