"""Classifiers on real and/or synthetic images, built from timm's own factories (App. F).

The recipe (Table 8) names a timm model, optimizer, scheduler, augmentation and loss; timm
builds each. Every random draw is seeded by position: the data order by epoch, each image's
augmentation by (epoch, image), mixup and drop-path by step. So a run stopped anywhere (its
time budget, a preemption) and resumed from its checkpoint gives the same weights as one that
never stopped. Checkpoints are written at every epoch's end, periodically, and on a stop.
Each epoch adds a row to the run's ``summary.csv`` (``records``: train loss, learning rate,
validation top-1/top-5 every few epochs, images/s, wall seconds), kept in the checkpoint too.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from realfake.atomic import torch_save
from realfake.budget import BudgetExhausted, Checkpointing, TimeBudget
from realfake.checkpoints import make_fingerprint, resume, save_checkpoint
from realfake.data import open_image
from realfake.devices import pick_device
from realfake.digests import file_sha256
from realfake.distributed import barrier, context, rank_share
from realfake.image_pipeline import (
    DevicePlanTransform,
    EvalTransform,
    TrainTransform,
    collate_planned,
    finish_batch,
    to_device,
)
from realfake.records import CLASSIFIER_COLUMNS, Pace, TrainingRecord, progress_line, summed_over_ranks
from realfake.seeds import derive_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Every setting a classifier's weights depend on (IN-10/100 defaults of Table 8)."""

    arch: str = "resnet50"
    pretrained: bool | str = False
    epochs: int = 200
    batch_size: int = 1024
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "multistep"
    decay_milestones: tuple = (50, 100, 150)
    decay_rate: float = 0.2
    warmup_epochs: int = 0
    warmup_lr: float | None = None
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    bce_loss: bool = False
    drop_path: float = 0.0
    auto_augment: str | None = None
    hflip: float = 0.5
    crop_scale: tuple = (0.08, 1.0)
    train_resolution: int = 224
    test_resolution: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    amp: bool = True
    sync_batchnorm: bool = False
    seed: int = 0

    def __post_init__(self):  # YAML and JSON give lists; compare and hash as tuples
        for name in ("decay_milestones", "crop_scale"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


class ImageList(torch.utils.data.Dataset):
    """Images from files (real data) with their labels; the transform gets each lazily opened
    (``train_transform``/``eval_transform`` decode JPEG at the scale the crop needs)."""

    def __init__(self, paths, labels, transform=None):
        self.paths, self.labels, self.transform = list(paths), np.asarray(labels), transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from realfake.data import naming_image

        with naming_image(self.paths[i]):  # the transform decodes: a bad file fails within it
            return self.transform(open_image(self.paths[i])), int(self.labels[i])


class TransformedShards(torch.utils.data.Dataset):
    """Synthetic images from indexed shards (``shards.ShardSamples``, each member's crc32 checked)
    with their labels; the transform gets each lazily opened, as ``ImageList``'s does."""

    def __init__(self, samples, transform=None):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from realfake.data import decode_errors
        from realfake.shards import ShardError

        try:
            return self.transform(self.samples.open(i)), int(self.samples.labels[i])
        except decode_errors() as err:
            raise ShardError(f"{self.samples.describe(i)} does not decode ({err})") from err


def training_set(train, shard_paths, synthetic_images: int, real: bool, transform, num_classes: int | None = None):
    """What a training set holds: the real train split (``real``), then the first
    ``synthetic_images`` synthetic images of the shards (the scale's share, in index order),
    each of their labels checked below ``num_classes``."""
    from realfake.shards import ShardSamples

    parts = []
    if real:
        parts.append(ImageList(train["path"], train["label"], transform))
    if synthetic_images:
        parts.append(TransformedShards(ShardSamples(shard_paths, synthetic_images, num_classes), transform))
    if not parts:
        raise ValueError("a training set needs real images, synthetic images or both")
    return torch.utils.data.ConcatDataset(parts)


def train_transform(recipe: Recipe, decode_on_device: bool = False):
    """timm's training transform, JPEG drafted, to (uint8 image, draws: jitter factors, flip): ``finish_batch``;
    ``decode_on_device``: to (JPEG bytes, crop plan) for ``image_pipeline.device_batch``."""
    from timm.data import create_transform

    if decode_on_device:
        return DevicePlanTransform(train_transform(recipe))
    return TrainTransform(create_transform(recipe.train_resolution, is_training=True, hflip=recipe.hflip,
                                           auto_augment=recipe.auto_augment, scale=tuple(recipe.crop_scale),
                                           use_prefetcher=True))


def eval_transform(recipe: Recipe):
    """timm's evaluation transform, JPEG drafted, to uint8 images: ``finish_batch``."""
    from timm.data import create_transform

    return EvalTransform(create_transform(recipe.test_resolution, is_training=False, crop_pct=recipe.crop_pct,
                                          interpolation=recipe.interpolation, use_prefetcher=True))


def create_model(recipe: Recipe, num_classes: int):
    import timm

    kwargs = dict(num_classes=num_classes, drop_path_rate=recipe.drop_path)
    if isinstance(recipe.pretrained, str):  # a local weights file (no hub on compute nodes)
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": recipe.pretrained})
    else:
        kwargs["pretrained"] = recipe.pretrained
    return timm.create_model(recipe.arch, **kwargs)


def _loss_and_mixup(recipe: Recipe, num_classes: int):
    from timm.data import Mixup
    from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    mixup = None
    if recipe.mixup > 0 or recipe.cutmix > 0:
        mixup = Mixup(mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix,
                      label_smoothing=recipe.label_smoothing, num_classes=num_classes)
    if recipe.bce_loss:
        loss = BinaryCrossEntropy(smoothing=0.0 if mixup else recipe.label_smoothing)
    elif mixup is not None:
        loss = SoftTargetCrossEntropy()
    elif recipe.label_smoothing > 0:
        loss = LabelSmoothingCrossEntropy(smoothing=recipe.label_smoothing)
    else:
        loss = torch.nn.CrossEntropyLoss()
    return loss, mixup


def _optimizer_and_scheduler(recipe: Recipe, model):
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    optimizer = create_optimizer_v2(model, opt=recipe.optimizer, lr=recipe.lr,
                                    weight_decay=recipe.weight_decay, momentum=recipe.momentum)
    scheduler, _ = create_scheduler_v2(optimizer, sched=recipe.scheduler, num_epochs=recipe.epochs,
                                       decay_milestones=list(recipe.decay_milestones),
                                       decay_rate=recipe.decay_rate, warmup_epochs=recipe.warmup_epochs,
                                       min_lr=recipe.min_lr, warmup_lr=recipe.lr * 1e-3 if recipe.warmup_lr is None else recipe.warmup_lr)
    return optimizer, scheduler


class EpochSeeded(torch.utils.data.Dataset):
    """Seeds Python's, numpy's and torch's generators from (seed, epoch, index) before each
    sample is read, so its augmentation does not depend on what was drawn before it (resume
    mid-epoch, any number of loader workers). Indexed by (epoch, index): the epoch travels with
    each index, so persistent workers need no state from the main process."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        import random

        epoch, i = key
        seed = derive_seed(self.seed, "sample", epoch, i)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds every GPU (~70x slower)
        return self.dataset[i]


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's batches of sample indices: a seeded shuffle, the last partial batch dropped
    (unless the whole set is smaller than one batch)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "order", epoch)))
    if n <= batch_size:
        return [order.tolist()]
    steps = n // batch_size
    return order[: steps * batch_size].view(steps, batch_size).tolist()


class EpochBatches:
    """The loader's batch sampler across epochs: this rank's share of each batch of the epoch set
    by ``start`` (from a step, to resume), as (epoch, index) keys for ``EpochSeeded``."""

    def __init__(self, n: int, batch_size: int, seed: int, ctx):
        self.n, self.batch_size, self.seed, self.ctx = n, batch_size, seed, ctx
        self.epoch = self.position = 0

    def start(self, epoch: int, position: int = 0) -> EpochBatches:
        self.epoch, self.position = epoch, position
        return self

    def __iter__(self):
        for batch in epoch_batches(self.n, self.batch_size, self.seed, self.epoch)[self.position:]:
            yield [(self.epoch, i) for i in rank_share(batch, self.ctx)]

    def __len__(self):
        return len(epoch_batches(self.n, self.batch_size, self.seed, self.epoch)) - self.position


def make_loader(dataset, num_workers: int, device: torch.device, **kwargs):
    """A DataLoader fed by ``num_workers`` processes kept across epochs, pinned and prefetched
    deeper on CUDA (the host-to-device copy overlaps the step)."""
    workers = dict(persistent_workers=True, prefetch_factor=4 if device.type == "cuda" else 2) if num_workers else {}
    return torch.utils.data.DataLoader(dataset, num_workers=num_workers, pin_memory=device.type == "cuda",
                                       **workers, **kwargs)


def train_classifier(dataset, num_classes: int, class_names: list[str], recipe: Recipe,
                     out_path: str | os.PathLike, checkpoint_path: str | os.PathLike | None = None,
                     device: str = "auto", num_workers: int = 0, checkpointing: Checkpointing | None = None,
                     budget: TimeBudget | None = None, decode_on_device: bool = False,
                     inputs: dict[str, str] | None = None, summary_path: str | os.PathLike | None = None,
                     validation=None, validate_every: int = 0, eval_batch_size: int = 256, tracker=None) -> dict:
    """Train on ``dataset`` (its transform set by the caller from ``train_transform``, with the
    same ``decode_on_device``: JPEG decoded, cropped and flipped on the training device).

    In a process group (``distributed.launch``) every rank takes its share of each global batch
    of ``recipe.batch_size`` and DDP averages the gradients: one global step whatever the rank
    count (BatchNorm statistics per rank, as the paper's 128 per GPU; ``sync_batchnorm`` syncs).
    With a ``checkpoint_path``: a checkpoint (rank 0) at each epoch's end and when
    ``checkpointing`` says, and, when ``budget`` asks to stop, a checkpoint then
    ``BudgetExhausted``; a rerun resumes, if it trains with the same recipe on the same ``inputs``
    (name -> content identity of each file ``dataset`` reads: ``classifier_inputs``).
    ``summary_path``: a row per epoch (``records.CLASSIFIER_COLUMNS``; the train loss over every
    rank's images), continued by a resumed run; top-1/top-5 on ``validation`` (a data set with
    ``eval_transform``) every ``validate_every`` epochs and after the last (0: never), by rank 0 in
    eval mode: monitoring only, the weights are those of a run without it. ``tracker``
    (``trackers.Tracker``, rank 0 logs): each summary row's numbers at its step.
    """
    ctx = context()
    if recipe.batch_size % ctx.world_size:
        raise ValueError(f"recipe batch_size {recipe.batch_size} does not divide among {ctx.world_size} ranks")
    dev = pick_device(device)
    _seed_everything(recipe.seed)
    model = create_model(recipe, num_classes).to(dev)
    optimizer, scheduler = _optimizer_and_scheduler(recipe, model)
    loss_fn, mixup = _loss_and_mixup(recipe, num_classes)
    amp = recipe.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    samples = EpochSeeded(dataset, recipe.seed)
    steps_per_epoch = len(epoch_batches(len(samples), recipe.batch_size, recipe.seed, 0))
    total_steps = recipe.epochs * steps_per_epoch
    fingerprint = make_fingerprint({"recipe": asdict(recipe), "images": len(dataset), "classes": num_classes,
                                    "progress": "steps"}, inputs or {})
    step, weights, extra = resume(checkpoint_path, fingerprint, optimizer, scaler)
    if weights is not None:
        model.load_state_dict(weights)
    trained = _distributed(model, recipe, ctx, dev)
    checkpointing = checkpointing or Checkpointing()
    record = TrainingRecord(summary_path if ctx.main else None, CLASSIFIER_COLUMNS, extra.get("records"), step,
                            tracker)
    # the epoch's loss over every rank's images so far: [sum of loss x images, images]
    epoch_loss = list(extra.get("epoch_loss", [0.0, 0])) if step % steps_per_epoch else [0.0, 0]
    pace = Pace(step)

    def checkpoint(at: int) -> None:
        if checkpoint_path and at < total_steps and ctx.main:
            save_checkpoint(checkpoint_path, fingerprint, at, model.state_dict(), optimizer, scaler,
                            extra={"records": record.state(), "epoch_loss": list(epoch_loss)})
            checkpointing.saved()

    def end_of_epoch(epoch: int, lr: float, images: float) -> dict:
        speed, train_loss = pace.images_per_s(images), epoch_loss[0] / max(epoch_loss[1], 1)
        validated = {}
        if validation is not None and validate_every and ((epoch + 1) % validate_every == 0
                                                          or epoch + 1 == recipe.epochs):
            validated = _validate(model, validation, eval_batch_size, num_workers, ctx)
        record.add(epoch=epoch + 1, step=step, train_loss=train_loss, lr=lr, val_top1=validated.get("top1"),
                   val_top5=validated.get("top5"), images_per_s=speed)
        epoch_loss[:] = [0.0, 0]
        if ctx.main:
            shown = f", val top-1 {validated['top1']:.2f} % top-5 {validated['top5']:.2f} %" if validated else ""
            progress_line(log, "epoch %d/%d: train loss %.4f, lr %.4g%s, %.0f images/s, %s left", epoch + 1,
                          recipe.epochs, train_loss, lr, shown, speed, pace.left(step, total_steps))
        return {"epoch": epoch + 1, "step": step, "train_loss": train_loss,
                **{f"val_{k}": v for k, v in validated.items() if k != "images"}}

    stats = {}
    batches = EpochBatches(len(samples), recipe.batch_size, recipe.seed, ctx)
    collate = dict(collate_fn=collate_planned) if decode_on_device else {}
    size = (recipe.train_resolution,) * 2 if decode_on_device else None
    loader = make_loader(samples, num_workers, dev, batch_sampler=batches, **collate)
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        scheduler.step(epoch)
        lr = optimizer.param_groups[0]["lr"]
        batches.start(epoch, position)
        trained.train()
        pace.mark(step)
        seen = 0  # images of this epoch trained in this attempt, every rank's
        for inputs, labels in tqdm(loader, desc=f"epoch {epoch + 1}/{recipe.epochs}", leave=False,
                                   disable=not ctx.main):
            _seed_everything(derive_seed(recipe.seed, "step", step))  # mixup, drop-path
            images = finish_batch(*to_device(inputs, dev, size))
            loss = _train_step(trained, optimizer, scaler, loss_fn, mixup, recipe, num_classes,
                               images, labels.to(dev, non_blocking=True), amp)
            step += 1
            loss_sum, count = summed_over_ranks([loss * len(images), len(images)])
            epoch_loss[0], epoch_loss[1], seen = epoch_loss[0] + loss_sum, epoch_loss[1] + count, seen + count
            epoch_end = step % steps_per_epoch == 0
            if epoch_end:
                stats = end_of_epoch(epoch, lr, seen)
            stop = budget is not None and step < total_steps and budget.stop_requested()
            if stop or epoch_end or checkpointing.due(step):
                checkpoint(step)
            if stop and checkpoint_path:
                barrier()  # rank 0's checkpoint is whole before any rank exits
                raise BudgetExhausted(f"stopped at step {step} of {total_steps} to fit the job's time limit; "
                                      f"{checkpoint_path} resumes it")
    if ctx.main:
        torch_save(out_path, {"arch": recipe.arch, "num_classes": num_classes, "class_names": class_names,
                              "recipe": json.loads(json.dumps(asdict(recipe), default=list)),
                              "state_dict": model.state_dict()})
        if checkpoint_path:
            Path(checkpoint_path).unlink(missing_ok=True)
    barrier()
    return stats


def _validate(model, validation, batch_size: int, num_workers: int, ctx) -> dict:
    """Top-1/top-5 of the weights as they are, by rank 0 (the others wait): eval mode, no gradients,
    then back to the mode it was in; each training step seeds its own draws, so none of this
    changes what training does next."""
    metrics = {}
    if ctx.main:
        was_training = model.training
        model.eval()
        try:
            metrics = evaluate(model, validation, batch_size, num_workers)
        finally:
            model.train(was_training)
    barrier()
    return metrics


def train_classifier_job(manifest_path, shard_paths: list[str], params: dict, out_path: str,
                         device: str = "auto", num_workers: int = 0, checkpoint_minutes: float = 0.0,
                         runtime_minutes: float | None = None, margin_minutes: float = 10.0,
                         decode_on_device: bool = False, summary_path: str | None = None,
                         validate_every_epochs: int = 0, eval_batch_size: int = 256, tracker=None) -> dict:
    """One ``train_classifier`` job from files and plain values (``plan.classifier_params``), so
    that each of ``distributed.launch``'s workers can build it for itself. It validates on the
    manifest's test split (the set ``evaluate_classifier`` scores) every ``validate_every_epochs``."""
    from realfake.data import class_names, read_manifest

    recipe = Recipe(**params["recipe"])
    manifest = read_manifest(manifest_path)
    names = class_names(manifest)
    dataset = training_set(manifest[manifest["split"] == "train"], shard_paths, params["synthetic_images"],
                           params["real"], train_transform(recipe, decode_on_device), len(names))
    inputs = classifier_inputs(manifest_path, shard_paths if params["synthetic_images"] else [])
    test = manifest[manifest["split"] == "test"]
    validation = ImageList(test["path"], test["label"], eval_transform(recipe)) if len(test) else None
    stats = train_classifier(dataset, len(names), names, recipe, out_path, checkpoint_path=f"{out_path}.checkpoint.pt",
                             device=device, num_workers=num_workers,
                             checkpointing=Checkpointing(every_minutes=checkpoint_minutes),
                             budget=TimeBudget(runtime_minutes, margin_minutes), decode_on_device=decode_on_device,
                             inputs=inputs, summary_path=summary_path, validation=validation,
                             validate_every=validate_every_epochs, eval_batch_size=eval_batch_size,
                             tracker=tracker)
    return {**stats, "images": len(dataset)}


def classifier_inputs(manifest_path, shard_paths) -> dict[str, str]:
    """The identity of what a classifier trains on, for its checkpoint: the manifest's sha256 (which
    images, which labels) and each shard's (its index's sha256: the tar's md5, every label and crc32)."""
    from realfake.shards import shard_identity

    return {"manifest": file_sha256(manifest_path), **{f"shard {p}": shard_identity(p) for p in shard_paths}}


def _distributed(model, recipe: Recipe, ctx, dev):
    """The module that trains: ``model`` itself, or DDP around it (sharing its parameters)."""
    if ctx.world_size == 1:
        return model
    if recipe.sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def _train_step(model, optimizer, scaler, loss_fn, mixup, recipe, num_classes, images, labels, amp) -> float:
    if mixup is not None and len(images) % 2 == 0:
        images, targets = mixup(images, labels)
    elif mixup is not None or recipe.bce_loss:
        targets = torch.nn.functional.one_hot(labels, num_classes).float()
    else:
        targets = labels
    with torch.autocast(images.device.type, dtype=torch.float16, enabled=amp):
        loss = loss_fn(model(images), targets)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach().item()


def _seed_everything(seed: int) -> None:
    """torch for shuffles and torchvision, Python's random for timm's crops, numpy for mixup."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_classifier(path, device: str = "auto"):
    """(model in eval mode, its recipe) from a classifier.pt."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    recipe = Recipe(**{**state["recipe"], "pretrained": False})
    model = create_model(recipe, state["num_classes"])
    model.load_state_dict(state["state_dict"])
    return model.to(pick_device(device)).eval(), recipe


@torch.no_grad()
def batch_logits(model, dataset, batch_size: int = 256, num_workers: int = 0):
    """(logits as float32 on the CPU, labels) of each batch of ``dataset``, in order."""
    dev = next(model.parameters()).device
    loader = make_loader(dataset, num_workers, dev, batch_size=batch_size)
    for images, labels in tqdm(loader, desc="evaluate", leave=False):
        yield model(finish_batch(images.to(dev, non_blocking=True))).float().cpu(), labels


def evaluate(model, dataset, batch_size: int = 256, num_workers: int = 0,
             keep_classes: list[int] | None = None) -> dict:
    """Top-1 / top-5 accuracy (percent). ``keep_classes`` restricts the logits (IN-R / IN-A)."""
    position = None
    if keep_classes is not None:  # labels become positions among the kept logits
        position = torch.full((max(keep_classes) + 1,), -1, dtype=torch.long)
        position[torch.as_tensor(keep_classes)] = torch.arange(len(keep_classes))
    correct1 = correct5 = n = 0
    for logits, labels in batch_logits(model, dataset, batch_size, num_workers):
        if position is not None:
            logits, labels = logits[:, keep_classes], position[labels]
            if (labels < 0).any():
                raise ValueError("an image's label is not among keep_classes")
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += int((top[:, 0] == labels).sum())
        correct5 += int((top == labels[:, None]).any(dim=1).sum())
        n += len(labels)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n, "images": n}


def label_fidelity(classifier_path, shard_paths, synthetic_images: int, batch_size: int = 256,
                   num_workers: int = 0, device: str = "auto") -> dict:
    """A real-only classifier's top-1/top-5 on synthetic images against their intended labels
    (the Classification Accuracy Score turned around): how often a synthetic image shows its class."""
    from realfake.shards import ShardSamples

    model, recipe = load_classifier(classifier_path, device)
    images = TransformedShards(ShardSamples(shard_paths, synthetic_images, model.num_classes), eval_transform(recipe))
    return evaluate(model, images, batch_size, num_workers)


def image_logits(classifier_path, paths: list[str], labels, batch_size: int = 256, num_workers: int = 0,
                 device: str = "auto") -> np.ndarray:
    """A classifier's logits [images, classes] on image files, with its evaluation transform."""
    model, recipe = load_classifier(classifier_path, device)
    images = ImageList(paths, np.asarray(labels), eval_transform(recipe))
    return torch.cat([logits for logits, _ in batch_logits(model, images, batch_size, num_workers)]).numpy()
