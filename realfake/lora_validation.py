"""A LoRA's validation images (monitoring): what the fine-tuned model draws as it trains.

Before training, every ``every`` steps and after the last, rank 0 draws a small grid with the UNet
under training (its adapter attached, at the variants' ``lora_scale``): one column group per
shown class (``grids.shown_classes``), one image per seed, in rows: the real training images
(seed k: the class's k-th), text-to-image, and, where a variant of the finetune uses it, img2img
from those real images (the latent prior). Prompts, visual guidance, negative prompt, sampler,
guidance scale and strength are synthesis's (``synthesis.generate_images``, settings from
``plan.lora_validation``); seed k's generator is seeded by ``seeds[k]`` at every step, so the
blocks differ only by what the LoRA has learnt.

Each validation writes ``validation/stepNNNNNN.png`` beside ``validation.png``, which the last
stacks, one block a step (at most ``MAX_BLOCKS``, evenly spaced, first and last kept). The step
files are not the job's outputs, so a retry that resumes from a checkpoint at step k keeps those
up to k; a run from scratch deletes them all first.

The LoRA's weights do not depend on any of this (``lora.train_lora`` forks the RNG, runs it
without gradients in eval mode and restores the LoRA scale), so its settings are runtime keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realfake.atomic import atomic_path
from realfake.conditioning import build_prompt, encode_text, match_negative
from realfake.data import load_rgb
from realfake.grids import draw, shown_classes
from realfake.synthesis import SynthesisSettings, generate_images, make_scheduler, template_of

MAX_BLOCKS = 12
STEP_FILE = re.compile(r"step(\d{6,})\.png")  # zero-padded to 6 digits, more past step 999,999


@dataclass
class LoraValidation:
    """``plan.lora_validation``'s settings (``runtime.lora_validation_*``: defaults in the schema), the
    ``out_path`` of the stacked grid (its step files go to the folder of the same name without ``.png``)
    and the grid's ``title``. Plain values, so it travels to ``distributed.launch``'s workers; ``begin``
    picks the images on rank 0."""

    out_path: str
    rows: list[dict]
    every: int
    classes: int | list | None
    seeds: list[int]
    title: str = "LoRA"
    cell_size: int = 64
    cases: dict | None = field(default=None, init=False, repr=False)
    images: list | None = field(default=None, init=False, repr=False)

    @property
    def folder(self) -> Path:
        return Path(self.out_path).with_suffix("")

    def step_path(self, step: int) -> Path:
        return self.folder / f"step{step:06d}.png"

    def due(self, step: int, total_steps: int) -> bool:
        """Before training (step 0), every ``every`` steps and at the last; only the last when ``every`` is 0."""
        return step == total_steps or (self.every > 0 and step % self.every == 0)

    def begin(self, train, captions, guidance, resumed_at: int) -> None:
        """Pick each shown class's training images (seed k: its k-th, cycling), their captions and
        guidance; delete the step files after ``resumed_at`` (all of them from scratch)."""
        pairs = train[["label", "class_name"]].drop_duplicates().sort_values("label")
        labels, names = pairs["label"].tolist(), pairs["class_name"].tolist()
        if isinstance(self.classes, list) and (unknown := [c for c in self.classes if c not in names]):
            raise ValueError(f"runtime.lora_validation_classes: {unknown} are not class names of this data set "
                             f"(e.g. {names[:5]})")
        shown = shown_classes(names, self.classes)
        positions = []
        for i in shown:
            rows = np.flatnonzero(train["label"].to_numpy() == labels[i])
            positions += [int(rows[k % len(rows)]) for k in range(len(self.seeds))]
        self.cases = {"names": [names[i] for i in shown], "rows": train.iloc[positions],
                      "captions": None if captions is None else [captions[p] for p in positions],
                      "guidance": None if guidance is None else guidance[positions],
                      "real": [load_rgb(p) for p in train["path"].iloc[positions]]}
        for path in self.folder.glob("step*.png"):
            if (match := STEP_FILE.fullmatch(path.name)) and (not resumed_at or int(match[1]) > resumed_at):
                path.unlink()

    def run(self, parts, step: int, total_steps: int) -> Path:
        """The grid of ``step`` (``parts``: ``diffusion.SDComponents``, its UNet with the LoRA attached),
        written atomically; the caller holds no_grad, autocast, eval mode and a forked RNG."""
        cells = [self.cases["real"]] + [self._generate(parts, row) for row in self.rows]
        self.images = cells[1:]  # the generated rows, class-major, for a caller that wants the pixels
        labels = ["real"] + [row["label"] for row in self.rows]
        n = len(self.seeds)
        groups = [(name, n, [row[j * n:(j + 1) * n] for row in cells]) for j, name in enumerate(self.cases["names"])]
        path = self.step_path(step)
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(labels, groups, self.cell_size, path, f"{self.title}: step {step} of {total_steps}")
        return path

    def _generate(self, parts, row: dict) -> list:
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

        settings = SynthesisSettings(**row["synthesis"])
        cls = StableDiffusionImg2ImgPipeline if settings.latent_prior else StableDiffusionPipeline
        pipe = cls(vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
                   scheduler=make_scheduler(settings.scheduler, parts.noise_scheduler.config),
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        cases, template = self.cases, template_of(settings.prompt_template, 0)
        prompts = [build_prompt(template, name, cases["captions"][i] if cases["captions"] and settings.use_captions
                                else None, settings.prompt_suffix)
                   for i, name in enumerate(cases["rows"]["class_name"])]
        negative = match_negative(encode_text(parts.tokenizer, parts.text_encoder, [settings.negative_prompt]),
                                  settings.injection)
        seeds = self.seeds * len(cases["names"])
        # one image at a time through the VAE, as synthesis does (at 512 px a batch's activations add up)
        slicing, parts.vae.use_slicing = parts.vae.use_slicing, True
        try:
            return generate_images(pipe, settings, prompts, negative, cases["rows"], cases["guidance"], seeds)
        finally:
            parts.vae.use_slicing = slicing

    def finish(self) -> Path:
        """``validation.png``: the step files stacked in step order, one block each (at most
        ``MAX_BLOCKS``, evenly spaced, the first and last kept), written atomically."""
        from PIL import Image

        steps = sorted((p for p in self.folder.glob("step*.png") if STEP_FILE.fullmatch(p.name)),
                       key=lambda p: int(STEP_FILE.fullmatch(p.name)[1]))
        if not steps:
            raise FileNotFoundError(f"no validation images in {self.folder} to stack into {self.out_path}")
        k = min(MAX_BLOCKS, len(steps))
        picked = [steps[i] for i in sorted({round(j * (len(steps) - 1) / max(k - 1, 1)) for j in range(k)})]
        blocks = [np.asarray(Image.open(p).convert("RGB")) for p in picked]
        width = max(b.shape[1] for b in blocks)  # blocks of other settings (a retry's) padded in white
        blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=255) for b in blocks]
        with atomic_path(self.out_path, suffix=".png") as tmp:
            Image.fromarray(np.concatenate(blocks)).save(tmp)
        return Path(self.out_path)
