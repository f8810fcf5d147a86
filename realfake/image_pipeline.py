"""The classifier's image pipeline: timm's transforms, decoding only what the crop needs.

timm builds the transforms (``create_transform(..., use_prefetcher=True)``: random-resized crop,
flip, colour jitter or RandAugment for training; resize and center crop for evaluation; uint8
out). Four changes leave every random draw as it is (same seeds, same (epoch, image) draws):

- A JPEG is opened lazily and its crop box drawn from its header's size; it is then decoded in
  the DCT domain at 1/2, 1/4 or 1/8 scale (PIL's ``draft``, libjpeg-turbo's scaled decoding)
  whenever the crop keeps at least the output resolution. Other formats decode whole, as before.
- A whole-decoded crop is resized by torch's uint8 antialiased kernels on the image's own
  (channels-last) memory: PIL's bilinear and bicubic filters, ~5x faster than PIL on one core
  (within one level of PIL's pixels). Other filters and drafted (fractional) boxes use PIL.
- Workers hand over uint8 tensors; the batch is normalised on the training device
  (``finish_batch``), as timm's prefetcher does.
- Colour jitter's factors are drawn in the worker (torchvision's own ``get_params``) and applied
  to the whole batch on the device, where it costs nothing beside the model.

``TrainTransform.plan`` gives the same draws without decoding: ``device_batch`` decodes the
JPEG bytes on the GPU (nvjpeg) and crops, flips and jitters there, for nodes with few cores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
import torchvision.transforms.v2.functional as F2
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.transforms import MaybePILToTensor, RandomResizedCropAndInterpolation
from torchvision.transforms import ColorJitter, InterpolationMode, RandomHorizontalFlip

from realfake.data import upright_rgb

DRAFT_SCALES = (8, 4, 2)
NO_JITTER = (0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0)  # torchvision's op order, then brightness/contrast/saturation
_ORIENTATION = 0x0112
TENSOR_FILTERS = (InterpolationMode.BILINEAR, InterpolationMode.BICUBIC)  # torch's antialiased uint8 kernels


def draftable(image: Image.Image) -> bool:
    """A JPEG whose pixels are not decoded yet and whose header size is its upright size."""
    return image.format == "JPEG" and bool(image.tile) and image.getexif().get(_ORIENTATION, 1) == 1


def decode_at_least(image: Image.Image, width: float, height: float) -> Image.Image:
    """Decode at the smallest JPEG scale (1/8, 1/4, 1/2) that keeps ``width`` x ``height`` of the
    image's header-size pixels at or above one pixel each; whole when that is the full scale."""
    if draftable(image):
        scale = next((s for s in DRAFT_SCALES if min(width, height) >= s), 1)
        if scale > 1:
            # PIL picks min(W // w, H // h): floor division here makes that exactly ``scale``
            image.draft("RGB", (image.width // scale, image.height // scale))
    return upright_rgb(image)


def _interpolation(crop: RandomResizedCropAndInterpolation):
    # the draw timm makes after the box (only for interpolation="random")
    if isinstance(crop.interpolation, tuple | list):
        return random.choice(crop.interpolation)
    return crop.interpolation


class DraftRandomResizedCrop:
    """timm's ``RandomResizedCropAndInterpolation``, with the box drawn before decoding."""

    def __init__(self, crop: RandomResizedCropAndInterpolation):
        self.crop = crop

    def box(self, image: Image.Image):
        """(top, left, height, width, interpolation): timm's draws, on the upright size."""
        if not draftable(image):  # the size after EXIF rotation needs the pixels: decode whole
            image = upright_rgb(image)
        top, left, height, width = self.crop.get_params(image, self.crop.scale, self.crop.ratio)
        return top, left, height, width, _interpolation(self.crop)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """uint8 [3, *size]: timm's crop and resize of the upright image, decoded as small as it can be."""
        top, left, height, width, interpolation = self.box(image)
        header_size = image.size if draftable(image) else None  # else ``box`` decoded it upright
        out_h, out_w = self.crop.size
        decoded = decode_at_least(image, width / out_w, height / out_h)
        sx, sy = (1, 1) if header_size is None else (decoded.width / header_size[0], decoded.height / header_size[1])
        return resized(decoded, (left * sx, top * sy, (left + width) * sx, (top + height) * sy), self.crop.size,
                       interpolation)


def hwc_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB image as uint8 [3, H, W] over its H x W x 3 pixels (channels-last memory)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def resized(image: Image.Image, box: tuple, size: tuple, interpolation) -> torch.Tensor:
    """``box`` (left, top, right, bottom) of ``image`` resized to ``size`` (h, w), antialiased -> uint8 [3, h, w].

    Whole pixels and a bilinear or bicubic filter: torch's kernels on the cropped pixels (as
    ``device_batch`` does on the GPU); else PIL's resize of the box (fractional: a drafted decode)."""
    if interpolation in TENSOR_FILTERS and all(float(v).is_integer() for v in box):
        return crop_and_resize(hwc_tensor(image.crop(tuple(int(v) for v in box))), None, size, interpolation)
    return TF.pil_to_tensor(image.resize(size[::-1], TF.pil_modes_mapping[interpolation], box=box))


def crop_and_resize(image: torch.Tensor, box: tuple | None, size: tuple, interpolation) -> torch.Tensor:
    """uint8 [3, H, W] (CPU or GPU) cropped to ``box`` (top, left, height, width; None: all) and
    resized to ``size`` with torchvision's antialiased uint8 resize."""
    if box is not None:
        image = F2.crop(image, *box)
    return F2.resize(image, list(size), interpolation, antialias=True)


@dataclass(frozen=True)
class CropPlan:
    """One training image's draws: crop box, interpolation, flip, colour-jitter factors."""

    box: tuple
    interpolation: object
    flip: bool
    jitter: torch.Tensor


def jitter_factors(jitter: ColorJitter | None) -> torch.Tensor:
    """torchvision's ColorJitter draws (op order, brightness, contrast, saturation) as 7 floats."""
    if jitter is None:
        return torch.tensor(NO_JITTER)
    order, *factors, _hue = jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, None)
    return torch.tensor([*order.tolist(), *(1.0 if f is None else f for f in factors)])


class TrainTransform:
    """timm's training transform (``use_prefetcher=True``: uint8 out), crop drafted, jitter deferred.

    Returns ``(uint8 image [3, H, W], jitter factors [7])``; ``finish_batch`` applies the jitter.
    """

    def __init__(self, timm_transform):
        crop, *steps = timm_transform.transforms
        if not isinstance(crop, RandomResizedCropAndInterpolation):
            raise ValueError(f"timm's training transform starts with {crop}, not a random-resized crop")
        self.crop, self.jitter = DraftRandomResizedCrop(crop), None
        self.steps = [s for s in steps if not isinstance(s, ColorJitter | MaybePILToTensor)]
        for step in steps:
            if isinstance(step, ColorJitter):
                if step.hue is not None:
                    raise ValueError("colour jitter of hue is not applied on the batch; set no hue")
                if steps.index(step) != len(steps) - 2:
                    raise ValueError(f"colour jitter is deferred to the batch, so it must be the last PIL step: {steps}")
                self.jitter = step

    def __call__(self, image: Image.Image):
        image = self.crop(image)
        if all(isinstance(s, RandomHorizontalFlip) for s in self.steps):  # torchvision's flip, on the tensor
            for step in self.steps:
                image = step(image)
        else:  # RandAugment, ...: timm's own, on PIL images
            image = Image.fromarray(image.permute(1, 2, 0).numpy())
            for step in self.steps:
                image = step(image)
            image = TF.pil_to_tensor(image)
        return image, jitter_factors(self.jitter)  # channels-last memory; the collated batch is contiguous

    def plan(self, image: Image.Image) -> CropPlan:
        """The draws ``__call__`` makes, without decoding (crop, flip and jitter only)."""
        if [type(s) for s in self.steps] != [RandomHorizontalFlip]:
            raise ValueError(f"decoding on the device supports crop, flip and colour jitter, not {self.steps}")
        *box, interpolation = self.crop.box(image)
        flip = bool(torch.rand(1) < self.steps[0].p)  # as RandomHorizontalFlip draws
        return CropPlan(tuple(box), interpolation, flip, jitter_factors(self.jitter))


class DevicePlanTransform:
    """For ``runtime.decode_on_device``: a lazily opened JPEG -> (its file bytes, ``CropPlan``), the
    plan drawn as ``TrainTransform`` draws; ``device_batch`` decodes, crops and flips on the GPU."""

    def __init__(self, transform: TrainTransform):
        self.transform = transform

    def __call__(self, image: Image.Image):
        if image.format != "JPEG":
            raise ValueError(f"runtime.decode_on_device decodes JPEG only; this image is {image.format} "
                             f"(synthesis.image_format: jpeg, or decode on the CPU)")
        image.fp.seek(0)  # the file Image.open read the header from: its whole bytes (before any decode closes it)
        encoded = torch.frombuffer(bytearray(image.fp.read()), dtype=torch.uint8)
        return encoded, self.transform.plan(image)


def collate_planned(batch):
    """((encoded images, plans), labels) of a batch of ``DevicePlanTransform`` samples."""
    inputs, labels = zip(*batch, strict=True)
    encoded, plans = zip(*inputs, strict=True)
    return (list(encoded), list(plans)), torch.as_tensor(labels)


def to_device(inputs, device, size: tuple | None = None):
    """A loader batch's images on ``device`` as (uint8 images, jitter factors): moved (CPU-decoded),
    or decoded there (``size``: from ``DevicePlanTransform``'s bytes and plans)."""
    if size is None:
        images, jitter = inputs
        return images.to(device, non_blocking=True), jitter
    encoded, plans = inputs
    return device_batch(encoded, plans, size, device), torch.stack([p.jitter for p in plans])


class EvalTransform:
    """timm's evaluation transform (``use_prefetcher=True``: uint8 out), JPEG decoded at the
    smallest scale whose shorter side still reaches the resize's."""

    def __init__(self, timm_transform):
        self.transforms = list(timm_transform.transforms)
        self.shorter_side = self.transforms[0].size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        shorter = min(image.size) / self.shorter_side
        image = decode_at_least(image, shorter, shorter)
        for step in self.transforms:
            image = step(image)
        return image


_MEAN = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1) * 255
_STD = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1) * 255


def _gray(x: torch.Tensor) -> torch.Tensor:
    """PIL's L conversion, [N, 1, H, W]."""
    return (x[:, 0:1] * 0.299).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:3], alpha=0.114)


# Colour adjustments in place (fresh large tensors cost more than the arithmetic), as PIL's blends:
def _brightness(x, f):
    return x.mul_(f)


def _contrast(x, f):  # with the mean gray level, rounded
    mean = torch.floor(_gray(x).mean((1, 2, 3), keepdim=True) + 0.5)
    return x.sub_(mean).mul_(f).add_(mean)


def _saturation(x, f):  # with the image's gray version
    gray = _gray(x)
    return x.sub_(gray).mul_(f).add_(gray)


def color_jitter(x: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """torchvision's ColorJitter on a float batch in [0, 255] (changed in place), each image with
    its own factors and order (``jitter_factors``): per step, one call per op on the images that
    take it there, each clamped as PIL does."""
    order, factors = jitter[:, :4].long(), jitter[:, 4:]
    for k in range(4):
        for op, adjust in enumerate((_brightness, _contrast, _saturation)):
            chosen = (order[:, k] == op).nonzero().squeeze(1)
            if len(chosen):
                x[chosen] = adjust(x[chosen], factors[chosen, op].view(-1, 1, 1, 1)).clamp_(0, 255)
    return x


def finish_batch(images: torch.Tensor, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 [N, 3, H, W] (on the training device) -> colour-jittered, normalised float32."""
    x = images.float()
    if jitter is not None:
        x = color_jitter(x, jitter.to(x.device))
    return x.sub_(_MEAN.to(x.device)).div_(_STD.to(x.device))


def device_batch(encoded: list[torch.Tensor], plans: list[CropPlan], size: tuple, device) -> torch.Tensor:
    """JPEG bytes (uint8 CPU tensors) decoded on ``device`` (nvjpeg on CUDA), each cropped by its
    plan, resized (antialiased), flipped -> uint8 [N, 3, *size] for ``finish_batch``."""
    from torchvision.io import ImageReadMode, decode_jpeg

    decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
    out = []
    for image, plan in zip(decoded, plans, strict=True):
        crop = crop_and_resize(image, plan.box, size, plan.interpolation)
        out.append(crop.flip(-1) if plan.flip else crop)
    return torch.stack(out)
