"""LoRA fine-tuning of Stable Diffusion with the MMD-augmented loss (Sec. 3.1, Eq. 21).

One readable training step, as in diffusers' ``train_text_to_image_lora.py``: encode images
to latents, add noise, predict it under text + visual-guidance conditioning, and minimise
L_simple + gamma * L_MMD. Batches and augmentation are seeded by epoch and image, noise and
timestep by (step, sample of the global batch), so a run resumed from a checkpoint continues
exactly where the interrupted one stopped, and N ranks draw what one process would.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from realfake.atomic import atomic_path
from realfake.budget import BudgetExhausted, Checkpointing, TimeBudget
from realfake.checkpoints import make_fingerprint, resume, save_checkpoint
from realfake.conditioning import build_prompt, encode_text, inject_guidance
from realfake.data import load_rgb
from realfake.devices import pick_device, training_dtype
from realfake.diffusion import (
    diffusion_losses,
    encode_latents,
    load_sd_components,
    min_snr_weights,
    noise_residual,
    to_diffusion_pixels,
)
from realfake.digests import content_sha256
from realfake.distributed import barrier, context, rank_share
from realfake.records import LORA_COLUMNS, Pace, TrainingRecord, progress_line, summed_over_ranks
from realfake.seeds import derive_seed

log = logging.getLogger(__name__)

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
LORA_WEIGHT_NAME = "lora.safetensors"


@dataclass(frozen=True)
class LoraSettings:
    """Every setting a LoRA's weights depend on (paper defaults; see hyperparameters.md)."""

    visual_guidance: bool = True
    distribution_matching: bool = True
    mmd_weight: float = 0.05
    mmd_form: str = "paper"
    mmd_group_size: int | None = 8
    snr_gamma: float | None = 5.0
    train_fraction: float = 1.0
    guidance_mode: str = "class_mean"
    injection: str = "replace_last"
    prompt_template: str = "photo of {classname}"
    use_captions: bool = True
    rank: int = 4
    learning_rate: float = 1e-4
    adam_weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    batch_size: int = 8
    epochs: int = 300
    max_steps: int | None = None
    resolution: int = 512
    random_flip: bool = True
    center_crop: bool = False
    mixed_precision: str = "fp16"
    seed: int = 42


class AugmentedImages(torch.utils.data.Dataset):
    """Training images resized to ``resolution``, cropped and flipped by a per-(epoch, image) seed."""

    def __init__(self, paths, resolution, random_flip, center_crop, seed):
        self.paths, self.resolution = list(paths), resolution
        self.random_flip, self.center_crop, self.seed = random_flip, center_crop, seed
        self.epoch = 0

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torchvision.transforms.functional as TF

        g = torch.Generator().manual_seed(derive_seed(self.seed, "augment", self.epoch, i))
        image = TF.resize(load_rgb(self.paths[i]), self.resolution)
        w, h = image.size
        if self.center_crop:
            top, left = (h - self.resolution) // 2, (w - self.resolution) // 2
        else:
            top = int(torch.randint(0, h - self.resolution + 1, (1,), generator=g))
            left = int(torch.randint(0, w - self.resolution + 1, (1,), generator=g))
        image = TF.crop(image, top, left, self.resolution, self.resolution)
        if self.random_flip and torch.rand(1, generator=g) < 0.5:
            image = TF.hflip(image)
        return to_diffusion_pixels([image])[0], i


def train_lora(model: str, train, out_path: str | os.PathLike, settings: LoraSettings,
               captions: list[str] | None = None, guidance: torch.Tensor | None = None,
               checkpoint_path: str | os.PathLike | None = None, checkpointing: Checkpointing | None = None,
               budget: TimeBudget | None = None, device: str = "auto", num_workers: int = 0,
               summary_path: str | os.PathLike | None = None, log_every: int = 50, cpu_dtype: str = "float32",
               inputs: dict[str, str] | None = None, tracker=None, validation=None) -> dict:
    """Fine-tune a LoRA on ``train`` (manifest rows) and save it with ``save_lora_weights``.

    ``guidance`` holds one visual-guidance vector per training image (None: no guidance).
    In a process group (``distributed.launch``) each rank takes its share of every global batch
    of ``settings.batch_size``, in whole L_MMD groups, and DDP averages the gradients.
    With a ``checkpoint_path``: a checkpoint when ``checkpointing`` says, and, when ``budget``
    asks to stop, a checkpoint then ``BudgetExhausted``; a rerun resumes where it stopped, if it
    trains with the same settings on the same ``inputs`` (name -> content identity: ``lora_inputs``).
    ``summary_path``: a CSV row every ``log_every`` steps and at the last (``records.LORA_COLUMNS``: the
    loss, L_simple and L_MMD averaged over those steps and the global batch, gamma * L_MMD / L_simple,
    images/s), continued by a resumed run; a progress line in the log with each row.
    Precision: ``settings.mixed_precision`` on GPUs, ``cpu_dtype`` on CPUs (``devices.training_dtype``).
    ``validation`` (a ``lora_validation.LoraValidation``): rank 0 draws the LoRA's images where it is due
    (``_validate``), logged to ``tracker`` too; monitoring only, the weights do not depend on it.
    """
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    ctx = context()
    local_batch = _rank_batch(settings, ctx)
    train, captions, guidance = training_subset(train, captions, guidance, settings.train_fraction, settings.seed)
    dev = pick_device(device)
    parts = load_sd_components(model)
    for module in (parts.vae, parts.text_encoder, parts.unet):
        module.requires_grad_(False)
    low = training_dtype(dev, settings.mixed_precision, cpu_dtype)  # frozen weights and autocast
    weight_dtype = low or torch.float32
    parts.vae.to(dev, weight_dtype)
    parts.text_encoder.to(dev, weight_dtype)
    parts.unet.to(dev, weight_dtype)
    torch.manual_seed(settings.seed)  # the LoRA's initial weights
    parts.unet.add_adapter(LoraConfig(r=settings.rank, lora_alpha=settings.rank,
                                      init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    cast_training_params(parts.unet, dtype=torch.float32)  # trainable weights stay float32 under fp16
    lora_params = [p for p in parts.unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(lora_params, lr=settings.learning_rate, betas=(0.9, 0.999),
                                  weight_decay=settings.adam_weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=low == torch.float16)

    prompts = [build_prompt(settings.prompt_template, name, cap if settings.use_captions else None)
               for name, cap in zip(train["class_name"], captions or [None] * len(train), strict=True)]
    images = AugmentedImages(train["path"], settings.resolution, settings.random_flip,
                             settings.center_crop, settings.seed)
    steps_per_epoch = max(1, len(images) // settings.batch_size)
    total_steps = settings.max_steps or settings.epochs * steps_per_epoch
    fingerprint = make_fingerprint({"lora": asdict(settings), "images": len(images), "noise": "per sample"},
                                   inputs or {})

    step, weights, extra = resume(checkpoint_path, fingerprint, optimizer, scaler)
    if weights is not None:
        set_peft_model_state_dict(parts.unet, weights)
    unet = parts.unet if ctx.world_size == 1 else torch.nn.parallel.DistributedDataParallel(
        parts.unet, device_ids=[dev.index] if dev.type == "cuda" else None)
    checkpointing = checkpointing or Checkpointing()
    mmd_weight = settings.mmd_weight if settings.distribution_matching else 0.0
    progress = tqdm(total=total_steps, initial=step, desc="LoRA", disable=not ctx.main)
    losses = LossLog(summary_path if ctx.main else None, log_every, mmd_weight, settings.batch_size, total_steps,
                     extra, step, tracker)
    running = {}
    if validation is not None and ctx.main:
        validation.begin(train, captions, guidance, step)
    validate = functools.partial(_validate, validation, parts, total_steps=total_steps, dev=dev, dtype=low,
                                 tracker=tracker)
    if step == 0:
        validate(step)  # the base model (the LoRA starts at zero): what training starts from
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        images.epoch = epoch
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(
            derive_seed(settings.seed, "order", epoch)))
        batches = order[: steps_per_epoch * settings.batch_size].view(steps_per_epoch, -1)
        batches = [rank_share(b, ctx) for b in batches[position: position + total_steps - step].tolist()]
        loader = torch.utils.data.DataLoader(images, batch_sampler=batches, num_workers=num_workers)
        for pixels, idx in loader:
            # one generator per sample of the global batch: its noise and timestep do not
            # depend on which rank holds it
            generators = [torch.Generator(dev).manual_seed(derive_seed(settings.seed, "noise", step, j))
                          for j in range(ctx.rank * local_batch, ctx.rank * local_batch + len(idx))]
            with torch.autocast(dev.type, dtype=weight_dtype, enabled=low is not None):
                with torch.no_grad():
                    latents = encode_latents(parts.vae, pixels.to(dev), generators)
                    states = encode_text(parts.tokenizer, parts.text_encoder, [prompts[i] for i in idx])
                    states = inject_guidance(states, None if guidance is None else guidance[idx],
                                             settings.injection)
                residual, timesteps = noise_residual(unet, parts.noise_scheduler, latents, states, generators)
            running = _optimise(residual, timesteps, parts.noise_scheduler, settings, mmd_weight, optimizer,
                                scaler, lora_params)
            step += 1
            running = losses.record(step, running, optimizer.param_groups[0]["lr"])
            progress.update(1)
            progress.set_postfix(running)
            validate(step)  # before the checkpoint: a run resumed at step k has the images up to k
            if not checkpoint_path or step == total_steps:
                continue
            stop = budget is not None and budget.stop_requested()
            if (stop or checkpointing.due(step)) and ctx.main:
                save_checkpoint(checkpoint_path, fingerprint, step, get_peft_model_state_dict(parts.unet),
                                optimizer, scaler, extra=losses.state())
                checkpointing.saved()
            if stop:
                barrier()  # rank 0's checkpoint is whole before any rank exits
                raise BudgetExhausted(f"stopped at step {step} of {total_steps} to fit the job's time limit; "
                                      f"{checkpoint_path} resumes it")
    progress.close()
    if ctx.main:
        save_lora(parts.unet, out_path)
        if validation is not None:
            validation.finish()
        if checkpoint_path:
            Path(checkpoint_path).unlink(missing_ok=True)
    barrier()
    return {"steps": step, **running}


def _validate(validation, parts, step: int, *, total_steps: int, dev, dtype, tracker) -> None:
    """Where due, rank 0 draws the LoRA's validation grid at ``step`` while the others wait: the UNet in
    eval mode without gradients, under training's autocast (``dtype``), the RNG forked (training draws from
    its own generators; the fork guards the global one), so that training computes after it exactly what it
    would without it. The pipeline scales the adapter by its lora_scale and back itself (diffusers)."""
    if validation is None or not validation.due(step, total_steps):
        return
    if context().main:
        start, was_training = time.perf_counter(), parts.unet.training
        parts.unet.eval()
        try:
            with torch.random.fork_rng(devices=_rng_devices(dev)), torch.no_grad(), \
                    torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                path = validation.run(parts, step, total_steps)
        finally:
            parts.unet.train(was_training)
        log.info("validation images at step %d: %s (%.1f s)", step, path, time.perf_counter() - start)
        if tracker is not None:
            tracker.log_image("lora/validation", path, step)
    barrier()


def _rng_devices(dev) -> list[int]:
    """The CUDA device whose RNG a fork must save and restore (only this rank's), or none on a CPU."""
    if dev.type != "cuda":
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


def train_lora_job(model: str, manifest_path, params: dict, out_path: str, captions_path=None,
                   guidance_path=None, device: str = "auto", num_workers: int = 0, checkpoint_every: int = 0,
                   checkpoint_minutes: float = 0.0, runtime_minutes: float | None = None,
                   margin_minutes: float = 10.0, summary_path=None, log_every: int = 50,
                   cpu_dtype: str = "float32", tracker=None, validation=None) -> dict:
    """One ``train_lora`` job from files and plain values (``plan.lora_params``), so that each of
    ``distributed.launch``'s workers can build it for itself."""
    from realfake.captions import read_captions
    from realfake.data import read_manifest
    from realfake.guidance import guidance_rows

    settings = LoraSettings(**params)
    train = read_manifest(manifest_path, "train")
    captions = read_captions(captions_path, len(train)) if captions_path else None
    guidance = (guidance_rows(guidance_path, settings.guidance_mode, train["label"], train["index"])
                if guidance_path else None)
    return train_lora(model, train, out_path, settings, captions, guidance,
                      inputs=lora_inputs(model, manifest_path, captions_path, guidance_path),
                      checkpoint_path=f"{out_path}.checkpoint.pt",
                      checkpointing=Checkpointing(checkpoint_every, checkpoint_minutes),
                      budget=TimeBudget(runtime_minutes, margin_minutes), device=device,
                      num_workers=num_workers, summary_path=summary_path, log_every=log_every, cpu_dtype=cpu_dtype,
                      tracker=tracker, validation=validation)


def lora_inputs(model: str, manifest_path, captions_path=None, guidance_path=None) -> dict[str, str]:
    """The identity of what a LoRA trains on, for its checkpoint: the sha256 of the manifest, captions and
    guidance files, and of the base model's files (a local folder, or a hub id's cached snapshot)."""
    inputs = {"manifest": manifest_path, "captions": captions_path, "guidance": guidance_path}
    identities = {name: content_sha256(path) for name, path in inputs.items() if path}
    return {**identities, "base model": content_sha256(_model_folder(model))}


def _model_folder(model: str) -> str:
    """A model's local folder: itself, or a hub id's snapshot (``owner/name@revision``: that one) in
    the local cache (no download)."""
    if Path(os.path.expanduser(model)).is_dir():
        return os.path.expanduser(model)
    from huggingface_hub import snapshot_download

    from realfake.models import split_revision

    repo_id, revision = split_revision(model)
    return snapshot_download(repo_id, revision=revision, local_files_only=True)


def _rank_batch(settings: LoraSettings, ctx) -> int:
    """Each rank's share of the global batch; L_MMD's groups must not straddle ranks."""
    local, rest = divmod(settings.batch_size, ctx.world_size)
    if rest or (ctx.world_size > 1 and settings.mmd_group_size and local % settings.mmd_group_size):
        raise ValueError(f"LoRA batch_size {settings.batch_size} does not split into {ctx.world_size} ranks "
                         f"of whole groups of mmd_group_size {settings.mmd_group_size}")
    return local


def _optimise(residual, timesteps, noise_scheduler, settings, mmd_weight, optimizer, scaler, params) -> dict:
    """Eq. 21 from the residuals, then one clipped AdamW step (DDP has averaged the gradients)."""
    weights = min_snr_weights(noise_scheduler, timesteps, settings.snr_gamma) if settings.snr_gamma else None
    l_simple, l_mmd = diffusion_losses(residual, weights, group_size=settings.mmd_group_size,
                                       form=settings.mmd_form)
    loss = l_simple + mmd_weight * l_mmd
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return {"loss": loss.item(), "l_simple": l_simple.item(), "l_mmd": l_mmd.item()}


def training_subset(train, captions, guidance, fraction: float, seed: int):
    """A seeded random ``fraction`` of the training images, with their captions and guidance
    (the released script trained on a random half; the paper on everything)."""
    if fraction >= 1.0:
        return train, captions, guidance
    import numpy as np

    rng = np.random.default_rng(derive_seed(seed, "subset"))
    keep = np.sort(rng.choice(len(train), max(1, round(fraction * len(train))), replace=False))
    return (train.iloc[keep].reset_index(drop=True), None if captions is None else [captions[i] for i in keep],
            None if guidance is None else guidance[torch.as_tensor(keep)])


class LossLog:
    """The LoRA's training record (``records.TrainingRecord``): every ``every`` steps and at the last, a
    row of the loss, L_simple and L_MMD averaged over the steps since the last row and over every
    rank's samples (summed across ranks each step, so each rank holds the same sums), the weighted
    ratio gamma * L_MMD / L_simple of those means, the learning rate and images/s; and a progress
    line with the time left. ``state()`` goes into the checkpoint: a run resumed at step k keeps the
    rows up to k and the sums since the last of them."""

    def __init__(self, path, every: int, mmd_weight: float, batch_size: int, total_steps: int,
                 extra: dict | None = None, resumed_at: int = 0, tracker=None):
        extra = extra or {}
        self.every, self.mmd_weight, self.batch_size, self.total_steps = every, mmd_weight, batch_size, total_steps
        self.summary = TrainingRecord(path, LORA_COLUMNS, extra.get("records"), resumed_at, tracker)
        self.sums = list(extra.get("loss_sums", [0.0, 0.0, 0.0, 0]))  # loss, l_simple, l_mmd, steps
        self.pace = Pace(resumed_at)
        self.since = 0  # steps of this attempt since the last row

    def record(self, step: int, values: dict, lr: float) -> dict:
        """Add this step's losses (this rank's); a row where due. ``values`` averaged over the ranks."""
        ctx = context()
        mean = [v / ctx.world_size for v in summed_over_ranks([values["loss"], values["l_simple"], values["l_mmd"]])]
        self.sums = [*(a + b for a, b in zip(self.sums[:3], mean, strict=True)), self.sums[3] + 1]
        self.since += 1
        if step % self.every == 0 or step == self.total_steps:
            loss, l_simple, l_mmd = (v / self.sums[3] for v in self.sums[:3])
            ratio = self.mmd_weight * l_mmd / max(l_simple, 1e-12)
            speed = self.pace.images_per_s(self.since * self.batch_size)
            self.summary.add(step=step, loss=loss, l_simple=l_simple, l_mmd=l_mmd, weighted_mmd_ratio=ratio,
                             lr=lr, images_per_s=speed)
            if ctx.main:
                progress_line(log, "step %d/%d: loss %.4g (L_simple %.4g, L_MMD %.4g, weighted ratio %.3g), "
                              "lr %.3g, %.1f images/s, %s left", step, self.total_steps, loss, l_simple, l_mmd, ratio,
                              lr, speed, self.pace.left(step, self.total_steps))
            self.sums, self.since = [0.0, 0.0, 0.0, 0], 0
            self.pace.mark(step)
        return dict(zip(("loss", "l_simple", "l_mmd"), mean, strict=True))

    def state(self) -> dict:
        return {"records": self.summary.state(), "loss_sums": list(self.sums)}


def save_lora(unet, out_path: str | os.PathLike) -> None:
    """Write the UNet's LoRA in diffusers' format, readable by any pipeline's load_lora_weights."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    layers = {k: v.float().cpu() for k, v in layers.items()}
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as folder:
        StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers,
                                                  weight_name=LORA_WEIGHT_NAME, safe_serialization=True)
        with atomic_path(out_path, suffix=".safetensors") as tmp:
            shutil.move(os.path.join(folder, LORA_WEIGHT_NAME), tmp)


def load_lora(pipe, lora_path: str | os.PathLike) -> None:
    """Load a LoRA file written by ``save_lora`` into a stock diffusers pipeline. When some of the
    file's layers match none of the model's (a LoRA of another base model, renamed keys), diffusers
    only warns and generation runs without them: every LoRA matrix of the file must attach."""
    from safetensors import safe_open

    lora_path = Path(lora_path)
    model = getattr(pipe, "name_or_path", None) or "the pipeline's model"

    def attached() -> int:
        return sum(1 for part in pipe.components.values() if isinstance(part, torch.nn.Module)
                   for name, _ in part.named_parameters() if ".lora_A." in name or ".lora_B." in name)

    before = attached()
    try:
        pipe.load_lora_weights(str(lora_path.parent), weight_name=lora_path.name)
    except (RuntimeError, ValueError) as err:  # other shapes, or no layer of the model matched
        raise ValueError(f"LoRA {lora_path} does not fit {model} (a LoRA trained on another base model?): "
                         f"{' '.join(str(err).split())[:300]}") from err
    with safe_open(str(lora_path), framework="pt") as f:
        keys = f.keys()
    in_file = sum(1 for key in keys if "lora" in key and key.endswith(".weight"))
    if (loaded := attached() - before) != in_file:
        raise ValueError(f"LoRA {lora_path} does not fit {model}: {loaded} of its {in_file} LoRA matrices attached "
                         f"to the model's layers (a LoRA trained on another base model, or its keys renamed?)")
