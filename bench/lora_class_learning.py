"""Can the LoRA path teach the demo's tiny SD the classes? Label fidelity of text-to-image.

    python bench/lora_class_learning.py [--work FOLDER] [--per-class 20]

Builds and pre-trains a tiny SD (``--base agnostic``: the demo's design before issue 17, every
prompt the same, on the real digits, with a random frozen text encoder; ``--base demo``: as
``config/config.yaml`` now does, "photo of {digit}" on held-out restyled digits with the tiny
CLIP's text tower), then fine-tunes LoRAs on the
digits train split under several settings and, for each, generates ``--per-class`` images per class
text-to-image and reports:
- label fidelity: how many a logistic regression fitted on the real digits (8 x 8 grayscale)
  assigns to their intended class (chance 10 %);
- the UNet's denoising loss with the right class prompt against a wrong one, on held-out test
  digits (the same noise and timesteps): a class-aware model has a lower loss with the right one.
Everything is cached under ``--work`` (default: a new temporary folder, named on stderr, that is
kept: pass it as ``--work`` to reuse its models); prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = {  # name: (LoraSettings overrides, generation lora_scale, prompt with the class name?)
    "demo (lr 1e-3, rank 4, 6 epochs), scale 0.5": ({}, 0.5, True),
    "demo, scale 1.0": ({}, 1.0, True),
    "24 epochs, scale 1.0": ({"epochs": 24}, 1.0, True),
    "rank 16, scale 1.0": ({"rank": 16}, 1.0, True),
    "lr 1e-2, scale 1.0": ({"learning_rate": 1e-2}, 1.0, True),
    "guidance token alone, scale 1.0": ({"prompt_template": "photo of a digit"}, 1.0, False),
    "no guidance, scale 1.0": ({"visual_guidance": False}, 1.0, True),
}


def digit_classifier(train):
    from sklearn.linear_model import LogisticRegression

    from realfake.data import load_rgb

    features = np.stack([np.asarray(load_rgb(p).convert("L").resize((8, 8)), np.float32).ravel() / 255
                         for p in train["path"]])
    return LogisticRegression(max_iter=2000).fit(features, train["label"])


def fidelity(images, labels, classifier) -> float:
    features = np.stack([np.asarray(im.convert("L").resize((8, 8)), np.float32).ravel() / 255 for im in images])
    return 100.0 * float((classifier.predict(features) == np.asarray(labels)).mean())


@torch.no_grad()
def right_vs_wrong_loss(model, lora, test, guidance_of, lora_scale: float, use_class: bool) -> float:
    """Relative denoising-loss difference (right - wrong) / right on test digits, in percent."""
    from realfake.conditioning import build_prompt, encode_text, inject_guidance
    from realfake.data import DIGIT_NAMES, load_rgb
    from realfake.diffusion import encode_latents, load_sd_components, noise_residual, to_diffusion_pixels

    parts = load_sd_components(model)
    if lora is not None:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(model, unet=parts.unet, safety_checker=None)
        pipe.load_lora_weights(str(Path(lora).parent), weight_name=Path(lora).name)
        pipe.fuse_lora(lora_scale=lora_scale)
        pipe.unload_lora_weights()
    pixels = to_diffusion_pixels([load_rgb(p, 32) for p in test["path"]])
    latents = encode_latents(parts.vae, pixels, torch.Generator().manual_seed(0))
    losses = {}
    for name, shift in (("right", 0), ("wrong", 1)):
        labels = (test["label"].to_numpy() + shift) % 10
        prompts = [build_prompt("photo of {classname}" if use_class else "photo of a digit", DIGIT_NAMES[c])
                   for c in labels]
        states = encode_text(parts.tokenizer, parts.text_encoder, prompts)
        if guidance_of is not None:
            states = inject_guidance(states, guidance_of(labels))
        residual, _ = noise_residual(parts.unet, parts.noise_scheduler, latents, states,
                                     torch.Generator().manual_seed(1))
        losses[name] = float(residual.pow(2).mean())
    return 100.0 * (losses["right"] - losses["wrong"]) / losses["right"]


def text_to_image(model, lora, train, guidance_rows, lora_scale, use_class, per_class) -> tuple[list, list]:
    from realfake.shards import ShardSamples
    from realfake.synthesis import SynthesisSettings, load_pipeline, synthesize_shard

    first = train.groupby("label").head(per_class).reset_index(drop=True)
    settings = SynthesisSettings(latent_prior=False, resolution=32, lora_scale=lora_scale, shard_size=len(first),
                                 image_format="png", guidance_mode=None if guidance_rows is None else "class_mean",
                                 prompt_template="photo of {classname}" if use_class else "photo of a digit")
    pipe = load_pipeline(model, settings, lora, device="cpu")
    out = Path(lora or model).parent / f"t2i-{lora_scale}-{use_class}-{guidance_rows is not None}.tar"
    rows = None if guidance_rows is None else guidance_rows(first["label"].to_numpy())
    synthesize_shard(pipe, out, 0, first, settings, guidance=rows, batch_size=100)
    samples = ShardSamples([out])
    return [samples.image(i) for i in range(len(first))], first["label"].tolist()


def main(argv=None) -> list[dict]:
    from realfake.data import DIGIT_NAMES, digits_manifest, load_rgb
    from realfake.guidance import class_means, clip_image_embeddings
    from realfake.lora import LoraSettings, train_lora
    from realfake.pretrain import digit_images, held_out_digits, pretrain_tiny_clip, pretrain_tiny_sd
    from realfake.tiny_models import build_tiny_clip, build_tiny_stable_diffusion

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="cache folder (default: a new temporary one, kept)")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--base", choices=["agnostic", "demo"], default="agnostic")
    parser.add_argument("--only", help="comma-separated variant numbers (0-based)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="lora-class-learning-"))
    print(f"work folder: {work}", file=sys.stderr)
    frame = digits_manifest(work / "digits")
    train = frame[frame.split == "train"].reset_index(drop=True)
    test = frame[frame.split == "test"].reset_index(drop=True).groupby("label").head(10).reset_index(drop=True)
    sd, clip = work / f"tiny-sd-{args.base}", work / "tiny-clip"
    if not clip.exists():
        build_tiny_clip(work / "tiny-clip-random")
        pretrain_tiny_clip(str(work / "tiny-clip-random"), clip, [load_rgb(p) for p in train["path"]], train["label"],
                           [f"photo of {n}" for n in DIGIT_NAMES], 250)
    if not sd.exists():
        build_tiny_stable_diffusion(work / "tiny-sd-random")
        if args.base == "agnostic":
            images, labels, text_encoder = [load_rgb(p, 32) for p in train["path"]], train["label"], None
            settings = dict(style="real", prompt_dropout=1.0, vae_steps=200, unet_steps=700, learning_rate=1e-3)
        else:
            ids, labels = held_out_digits(train_per_class=20)
            images, text_encoder = digit_images(ids, 32), str(clip)
            settings = dict(style="slanted_thin", prompt_dropout=0.1, vae_steps=100, unet_steps=400, learning_rate=2e-3)
        pretrain_tiny_sd(str(work / "tiny-sd-random"), sd, images, labels, DIGIT_NAMES,
                         {**settings, "prompt_template": "photo of {classname}", "batch_size": 64},
                         text_encoder=text_encoder)
    means = class_means(clip_image_embeddings(str(clip), train["path"].tolist(), device="cpu"),
                        train["label"].to_numpy(), 10)
    classifier = digit_classifier(train)
    demo = json.loads(json.dumps(dict(visual_guidance=True, distribution_matching=True, mmd_weight=0.05, rank=4,
                                      learning_rate=1e-3, batch_size=32, epochs=6, resolution=32, random_flip=False,
                                      center_crop=True, use_captions=False, seed=42)))
    base_t2i, labels = text_to_image(str(sd), None, train, None, 0.5, True, args.per_class)
    results = [{"variant": "base SD (no LoRA)", "fidelity": fidelity(base_t2i, labels, classifier),
                "right_vs_wrong_loss_pct": right_vs_wrong_loss(str(sd), None, test, None, 1.0, True)}]
    print("| variant | label fidelity % | loss right vs wrong class % | LoRA s |\n|---|---|---|---|")
    print(f"| {results[0]['variant']} | {results[0]['fidelity']:.1f} | {results[0]['right_vs_wrong_loss_pct']:+.2f} | |")
    chosen = [list(VARIANTS)[int(i)] for i in args.only.split(",")] if args.only else list(VARIANTS)
    for name in chosen:
        overrides, scale, use_class = VARIANTS[name]
        settings = LoraSettings(**{**demo, **overrides})
        key = hashlib.md5(json.dumps(dataclasses.asdict(settings), sort_keys=True).encode()).hexdigest()[:12]
        lora = work / "loras" / f"{key}.safetensors"
        lora.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        guidance = means[torch.as_tensor(train["label"].to_numpy())] if settings.visual_guidance else None
        if not lora.exists():
            train_lora(str(sd), train, lora, settings, guidance=guidance, device="cpu")
        seconds = time.perf_counter() - start
        rows = (lambda labels: means[torch.as_tensor(labels)]) if settings.visual_guidance else None
        images, labels = text_to_image(str(sd), lora, train, rows, scale, use_class, args.per_class)
        r = {"variant": name, "fidelity": fidelity(images, labels, classifier),
             "right_vs_wrong_loss_pct": right_vs_wrong_loss(str(sd), lora, test, rows, scale, use_class),
             "lora_s": seconds}
        results.append(r)
        print(f"| {name} | {r['fidelity']:.1f} | {r['right_vs_wrong_loss_pct']:+.2f} | {seconds:.0f} |", flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
