"""GPU throughput of the paper's three heavy stages, with nothing downloaded.

    python bench/gpu_throughput.py [--out gpu_throughput.json] [--budget-s 420] [--toy]

SD1.5-architecture UNet, VAE and CLIP text encoder built from SD1.5's configs with random
weights (the same FLOPs as the real weights), and timm's ResNet-50:
- img2img at 512 px, 30 UniPC steps, strength 0.75 (22 denoising steps), CFG 2.0: seconds per
  image at batch 8/16/32, fp16 vs bf16, eager vs ``torch.compile`` (UNet, ``channels_last``);
- one LoRA training step (rank 4, attention projections) at 512 px, 8 images, fp16 autocast;
- ResNet-50 training images/s at 224 px, batch 128, AMP, ``channels_last``.
Anchors (issue 9): physical floor about 0.045 s/image on an H100 (22 steps x 2 for CFG x ~0.8
TFLOP per UNet call); A100 50-step text-to-image at batch 1: 1.60 s with SDPA, 1.06 s compiled.

``--toy`` builds miniature models of the same classes and runs every measurement on CPU in
seconds (the test suite does), so the script is known to work before it meets a GPU.
Figures go to stdout and to ``--out`` (JSON); measurements that would overrun ``--budget-s``
are skipped and listed as such.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from realfake.smoke.models import CLIP_VIT_L14_TEXT as SD15_TEXT
from realfake.smoke.models import SD15_UNET, SD15_VAE

TOY_UNET = dict(SD15_UNET, sample_size=8, block_out_channels=(32, 32, 64, 64), layers_per_block=1,
                cross_attention_dim=32, attention_head_dim=4, norm_num_groups=16)
TOY_VAE = dict(SD15_VAE, sample_size=64, block_out_channels=(16, 16, 32, 32), layers_per_block=1,
               norm_num_groups=16)
TOY_TEXT = dict(SD15_TEXT, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                projection_dim=32)


def sd_components(toy: bool, device, dtype):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(**(TOY_UNET if toy else SD15_UNET)).to(device, dtype)
    vae = AutoencoderKL(**(TOY_VAE if toy else SD15_VAE)).to(device, dtype)
    text = CLIPTextModel(CLIPTextConfig(**(TOY_TEXT if toy else SD15_TEXT))).to(device, dtype)
    return unet.eval(), vae.eval(), text.eval()


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int = 2) -> float:
    """Seconds per call after one warm-up call (which also triggers compilation)."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def img2img_seconds_per_image(unet, vae, text, batch: int, resolution: int, steps: int = 30,
                              strength: float = 0.75, cfg: float = 2.0) -> callable:
    """One img2img call as diffusers' pipeline makes it: encode, 22 CFG steps, decode."""
    from diffusers import UniPCMultistepScheduler

    device, dtype = unet.device, unet.dtype
    scheduler = UniPCMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    tokens = torch.randint(0, text.config.vocab_size, (2 * batch, 77), device=device)
    image = torch.randn(batch, 3, resolution, resolution, device=device, dtype=dtype)

    @torch.no_grad()
    def run():
        states = text(tokens).last_hidden_state
        latents = vae.encode(image).latent_dist.sample() * 0.18215
        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps[int(steps * (1 - strength)):]
        latents = scheduler.add_noise(latents, torch.randn_like(latents), timesteps[:1])
        for t in timesteps:
            eps = unet(torch.cat([latents] * 2), t, encoder_hidden_states=states).sample
            uncond, cond = eps.chunk(2)
            latents = scheduler.step(uncond + cfg * (cond - uncond), t, latents).prev_sample
        return vae.decode(latents / 0.18215).sample

    return run


def lora_step(unet, vae, text, batch: int, resolution: int) -> callable:
    """One LoRA training step (forward, backward, AdamW) under fp16 autocast."""
    from peft import LoraConfig

    device = unet.device
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    tokens = torch.randint(0, text.config.vocab_size, (batch, 77), device=device)
    image = torch.randn(batch, 3, resolution, resolution, device=device, dtype=vae.dtype)

    def run():
        with torch.no_grad():
            latents = vae.encode(image).latent_dist.sample() * 0.18215
            states = text(tokens).last_hidden_state
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (batch,), device=device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.mse_loss(unet(latents + noise, t, states).sample.float(), noise.float())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return run


def resnet_step(device, batch: int, resolution: int, toy: bool) -> callable:
    import timm

    model = timm.create_model("resnet10t" if toy else "resnet50", num_classes=1000).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    images = torch.randn(batch, 3, resolution, resolution, device=device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device=device)

    def run():
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_throughput.json")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip what would run past this")
    parser.add_argument("--toy", action="store_true", help="miniature models, CPU, seconds")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.toy else "cpu")
    started = time.perf_counter()
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "toy": args.toy, "img2img": [], "skipped": []}
    resolution, batches = (64, (2, 4)) if args.toy else (512, (8, 16, 32))
    torch.backends.cuda.matmul.allow_tf32 = True
    dtypes = {"float32": torch.float32} if device.type == "cpu" else {"float16": torch.float16,
                                                                      "bfloat16": torch.bfloat16}

    def over_budget(what: str) -> bool:
        if time.perf_counter() - started > args.budget_s:
            results["skipped"].append(what)
            return True
        return False

    for dtype_name, dtype in dtypes.items():
        unet, vae, text = sd_components(args.toy, device, dtype)
        for compiled in (False, True):
            if compiled:  # the toy run checks the compiled path without building kernels
                unet = unet.to(memory_format=torch.channels_last)
                unet = torch.compile(unet, backend="aot_eager") if args.toy else torch.compile(unet)
            for batch in batches[:1] if compiled and args.toy else batches:  # toy: one compile
                what = f"img2img {dtype_name} {'compiled' if compiled else 'eager'} batch {batch}"
                if over_budget(what):
                    continue
                seconds = timed(img2img_seconds_per_image(unet, vae, text, batch, resolution), device, repeats=1)
                results["img2img"].append({"dtype": dtype_name, "compiled": compiled, "batch": batch,
                                           "seconds_per_image": seconds / batch})
                print(f"{what}: {seconds / batch:.4f} s/image", flush=True)
        del unet, vae, text
    if not over_budget("lora step"):
        unet, vae, text = sd_components(args.toy, device, torch.float16 if device.type == "cuda" else torch.float32)
        results["lora_steps_per_s"] = 1.0 / timed(lora_step(unet, vae, text, 8 if not args.toy else 2, resolution),
                                                  device, repeats=3)
        print(f"LoRA step, 8 x {resolution} px: {results['lora_steps_per_s']:.2f} steps/s", flush=True)
        del unet, vae, text
    if not over_budget("resnet50 training"):
        batch = 8 if args.toy else 128
        seconds = timed(resnet_step(device, batch, 32 if args.toy else 224, args.toy), device, repeats=5)
        results["resnet_train_images_per_s"] = batch / seconds
        print(f"ResNet training: {batch / seconds:.0f} images/s", flush=True)
    results["wall_s"] = time.perf_counter() - started
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
