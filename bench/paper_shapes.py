"""Each stage of the paper config at its real shapes on this machine's CPU: seconds per image or
step, host peak memory, and an estimate of GPU memory at the paper's per-GPU batch.

    python -m realfake.smoke prepare smoke        # the full-size random models, once
    python bench/paper_shapes.py [--models smoke/models] [--threads 2] [--only lora,img2img,...]

Every stage runs in a subprocess of its own, so its peak RSS is its own. GPU memory is estimated,
not measured: weights at the GPU's precision (fp16: 2 bytes a parameter; fp32 + AdamW state for
trained parameters) plus, for training, the bytes autograd saves for backward (counted with
``torch.autograd.graph.saved_tensors_hooks`` on one CPU step, parameters excluded, halved for
fp16) times the per-GPU batch; inference adds 4x its largest activation at that batch (input,
output and temporaries of the largest layer: a rough figure). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

STAGES = ["lora", "img2img", "clip", "blip2", "resnet224", "resnet448", "resnet_eval", "sscd"]
# per-GPU batch of the paper (hyperparameters.md): LoRA 8, img2img 24 (released code), classifiers 128
PAPER_BATCH = {"lora": 8, "img2img": 24, "clip": 256, "blip2": 64, "resnet224": 128, "resnet448": 128,
               "resnet_eval": 256, "sscd": 256}
GB = 1024**3


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def saved_activation_bytes(step, params) -> tuple[object, int]:
    """Run ``step`` and count the bytes autograd saves for backward (parameters excluded)."""
    weights = {p.data_ptr() for p in params}
    saved = {}

    def pack(t):
        if t.data_ptr() not in weights:
            saved[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    return out, sum(saved.values())


def timed(fn, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_lora(models: Path) -> dict:
    """One LoRA step of the library's loss at 512 px, batch 2: VAE encode, text, UNet fwd + bwd."""
    from peft import LoraConfig

    from realfake.conditioning import encode_text
    from realfake.diffusion import diffusion_losses, encode_latents, load_sd_components, noise_residual
    from realfake.lora import LORA_TARGETS

    start = time.perf_counter()
    parts = load_sd_components(str(models / "stable-diffusion-v1-5"))
    load_s = time.perf_counter() - start
    frozen = sum(p.numel() for m in (parts.unet, parts.vae, parts.text_encoder) for p in m.parameters())
    for module in (parts.vae, parts.text_encoder, parts.unet):
        module.requires_grad_(False)
    parts.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    trained = [p for p in parts.unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    batch, pixels = 2, torch.rand(2, 3, 512, 512) * 2 - 1

    def step():
        with torch.no_grad():
            latents = encode_latents(parts.vae, pixels)
            states = encode_text(parts.tokenizer, parts.text_encoder, ["photo of tench"] * batch)
        residual, _ = noise_residual(parts.unet, parts.noise_scheduler, latents, states)
        return diffusion_losses(residual, group_size=8)[0]

    encode_s = timed(lambda: encode_latents(parts.vae, pixels[:1]).detach()) * batch
    start = time.perf_counter()
    loss, activations = saved_activation_bytes(step, list(parts.unet.parameters()))
    loss.backward()
    optimizer.step()
    step_s = time.perf_counter() - start
    lora_params = sum(p.numel() for p in trained)
    per_sample = activations / batch
    gpu = 2 * frozen + 16 * lora_params + PAPER_BATCH["lora"] * per_sample / 2
    return {"what": "LoRA step, SD1.5 at 512 px (batch 2)", "load_s": load_s, "s_per_item": step_s,
            "item": "step of 2", "vae_encode_s_per_image": encode_s / batch,
            "activations_gb_per_sample_fp32": per_sample / GB, "gpu_gb_estimate": gpu / GB}


def largest_activation_bytes(module, run) -> int:
    """The largest tensor any submodule of ``module`` outputs while ``run`` runs."""
    largest = [0]

    def record(_, __, out):
        tensors = out if isinstance(out, (tuple, list)) else [getattr(out, "sample", out)]
        largest[0] = max([largest[0]] + [t.numel() * t.element_size() for t in tensors if torch.is_tensor(t)])

    handles = [m.register_forward_hook(record) for m in module.modules()]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return largest[0]


def bench_img2img(models: Path) -> dict:
    """img2img at 512 px with the latent prior: seconds of VAE encode, one CFG UNet step, decode;
    GPU memory: fp16 weights + 4x the largest activation (input, output, temporaries) of a UNet
    call at the CFG batch (2 x 24) and of the VAE on one image (it is sliced: one image at a time)."""
    from realfake.synthesis import SynthesisSettings, load_pipeline

    start = time.perf_counter()
    pipe = load_pipeline(str(models / "stable-diffusion-v1-5"), SynthesisSettings(), device="cpu")
    load_s = time.perf_counter() - start
    weights = sum(p.numel() for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters())
    pixels, states = torch.rand(1, 3, 512, 512) * 2 - 1, torch.randn(2, 77, 768)
    latents = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        encode = timed(lambda: pipe.vae.encode(pixels).latent_dist.sample())
        pipe.unet(latents, 500, encoder_hidden_states=states)  # warm-up
        unet_step = timed(lambda: pipe.unet(latents, 500, encoder_hidden_states=states))
        decode = timed(lambda: pipe.vae.decode(latents[:1]))
        unet_largest = largest_activation_bytes(pipe.unet, lambda: pipe.unet(latents, 500, encoder_hidden_states=states))
        vae_largest = largest_activation_bytes(pipe.vae, lambda: pipe.vae.decode(latents[:1]))
    steps = int(30 * 0.75)  # the paper's 30 UniPC steps at strength 0.75
    batch = PAPER_BATCH["img2img"]
    transient = 4 * max(unet_largest / 2 * batch, vae_largest) / 2  # per CFG pair; fp32 -> fp16
    return {"what": "img2img at 512 px, 22 CFG steps (Table 6)", "load_s": load_s,
            "s_per_item": encode + steps * unet_step + decode, "item": "image",
            "vae_encode_s": encode, "unet_cfg_step_s": unet_step, "vae_decode_s": decode,
            "largest_unet_activation_mb_per_image": unet_largest / 2 / 2**20,
            "largest_vae_activation_mb": vae_largest / 2**20, "gpu_gb_estimate": (2 * weights + transient) / GB}


def inference_gpu_gb(params: int, weight_bytes: int, largest_per_item: float, batch: int, act_scale=1.0) -> float:
    """Weights at the GPU's precision + 4x the largest activation of one item times the batch."""
    return (params * weight_bytes + 4 * largest_per_item * act_scale * batch) / GB


def bench_clip(models: Path) -> dict:
    """The guidance stage's CLIP image tower (float32 on GPUs too: ``clip_image_embeddings``)."""
    from transformers import CLIPVisionModelWithProjection

    encoder = CLIPVisionModelWithProjection.from_pretrained(models / "clip-vit-large-patch14").eval()
    pixels = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        encoder(pixel_values=pixels)
        seconds = timed(lambda: encoder(pixel_values=pixels))
        largest = largest_activation_bytes(encoder, lambda: encoder(pixel_values=pixels)) / 4
    params = sum(p.numel() for p in encoder.parameters())
    return {"what": "CLIP ViT-L/14 image embeddings, 224 px", "s_per_item": seconds / 4, "item": "image",
            "gpu_gb_estimate": inference_gpu_gb(params, 4, largest, PAPER_BATCH["clip"])}


def bench_blip2(models: Path) -> dict:
    """Captions of 2 images, 16 new tokens, on the smoke's BLIP-2 (4 of OPT's 32 layers: the time
    is the vision tower's and 4 layers'); GPU memory for the whole model in fp16."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor

    folder = models / "blip2-opt-2.7b"
    model, processor = Blip2ForConditionalGeneration.from_pretrained(folder).eval(), Blip2Processor.from_pretrained(folder)
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="realfake-bench-") as tmp:
        images = [Image.open(sample_image(Path(tmp), i)).convert("RGB") for i in range(2)]
    inputs = processor(images=images, return_tensors="pt")
    with torch.no_grad():
        seconds = timed(lambda: model.generate(**inputs, max_new_tokens=16, do_sample=False))
        largest = largest_activation_bytes(model.vision_model, lambda: model.vision_model(inputs.pixel_values)) / 2
    full = Blip2Config.from_pretrained(folder)
    full.text_config.num_hidden_layers = 32
    with torch.device("meta"):
        params = sum(p.numel() for p in Blip2ForConditionalGeneration(full).parameters())
    return {"what": "BLIP-2 captions, 16 tokens (timed with 4 of OPT-2.7B's 32 layers)",
            "s_per_item": seconds / 2, "item": "image",
            "gpu_gb_estimate": inference_gpu_gb(params, 2, largest, PAPER_BATCH["blip2"], act_scale=0.5)}


def bench_resnet(resolution: int, train: bool) -> dict:
    import timm

    model = timm.create_model("resnet50", num_classes=1000).train(train)
    batch = 4
    images = torch.randn(batch, 3, resolution, resolution)
    params = list(model.parameters())
    if not train:
        with torch.no_grad():
            model(images)
            seconds = timed(lambda: model(images))
            largest = largest_activation_bytes(model, lambda: model(images)) / batch
        return {"what": f"ResNet-50 evaluation, {resolution} px", "s_per_item": seconds / batch, "item": "image",
                "gpu_gb_estimate": inference_gpu_gb(sum(p.numel() for p in params), 4, largest,
                                                    PAPER_BATCH["resnet_eval"])}
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    start = time.perf_counter()
    loss, activations = saved_activation_bytes(lambda: model(images).logsumexp(1).mean(), params)
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    n = sum(p.numel() for p in params)
    gpu = 16 * n + PAPER_BATCH[f"resnet{resolution}"] * activations / batch / 2  # fp32 weights, grads, momentum, AMP
    return {"what": f"ResNet-50 training step, {resolution} px (batch 4)", "s_per_item": seconds / batch,
            "item": "image", "activations_gb_per_sample_fp32": activations / batch / GB, "gpu_gb_estimate": gpu / GB}


def bench_sscd(models: Path) -> dict:
    model = torch.jit.load(str(models / "sscd/sscd_disc_large.torchscript.pt")).eval()
    pixels = torch.randn(4, 3, 320, 320)
    with torch.no_grad():
        model(pixels)
        seconds = timed(lambda: model(pixels))
    params = sum(p.numel() for p in model.parameters())
    return {"what": "SSCD-shaped descriptors (ResNeXt101-32x4d), 320 px", "s_per_item": seconds / 4, "item": "image",
            "gpu_gb_estimate": params * 4 / GB}


def sample_image(folder: Path, seed: int):
    from realfake.smoke.datasets import write_image

    return write_image(folder / f"realfake-bench-{seed}.jpg", 500, 375, seed)


def run_stage(stage: str, models: Path) -> dict:
    runs = {"lora": lambda: bench_lora(models), "img2img": lambda: bench_img2img(models),
            "clip": lambda: bench_clip(models), "blip2": lambda: bench_blip2(models),
            "resnet224": lambda: bench_resnet(224, True), "resnet448": lambda: bench_resnet(448, True),
            "resnet_eval": lambda: bench_resnet(224, False), "sscd": lambda: bench_sscd(models)}
    result = runs[stage]()
    return {"stage": stage, **result, "peak_rss_gb": peak_rss_gb(), "paper_batch": PAPER_BATCH[stage]}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smoke/models", help="python -m realfake.smoke prepare's models/")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=",".join(STAGES))
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # one stage, in this process (the subprocess)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.stage:
        print(json.dumps(run_stage(args.stage, Path(args.models))))
        return []
    results = []
    for stage in args.only.split(","):
        run = subprocess.run([sys.executable, __file__, "--stage", stage, "--models", args.models, "--threads",
                              str(args.threads)], capture_output=True, text=True)
        if run.returncode:
            print(f"{stage}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"| {r['what']} | {r['s_per_item']:.2f} s / {r['item']} | {r['peak_rss_gb']:.1f} | "
              f"{r.get('gpu_gb_estimate', float('nan')):.1f} at {r['paper_batch']} |", flush=True)
    return results


if __name__ == "__main__":
    main()
