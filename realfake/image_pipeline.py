"""The classifier's image pipeline: timm's transforms, decoding only what the crop needs.

timm builds the transforms (``create_transform(..., use_prefetcher=True)``: random-resized crop,
flip, colour jitter or RandAugment for training; resize and center crop for evaluation; uint8
out). Five changes leave every random draw as it is (same seeds, same (epoch, image) draws):

- A JPEG is opened lazily and its crop box drawn from its header's size; it is then decoded in
  the DCT domain at 1/2, 1/4 or 1/8 scale (PIL's ``draft``, libjpeg-turbo's scaled decoding)
  whenever the crop keeps at least the output resolution. Other formats decode whole, as before.
- A JPEG whose bytes were checked (a shard member that matched its crc32) is decoded only down to
  the crop's bottom row (``decode_top_rows``; on the Pillow releases it was tested with, else whole).
- A whole-decoded crop is resized by torch's uint8 antialiased kernels on the image's own
  (channels-last) memory: PIL's bilinear and bicubic filters, ~5x faster than PIL on one core
  (within one level of PIL's pixels). Other filters and drafted (fractional) boxes use PIL.
- Workers hand over uint8 tensors; the batch is normalised on the training device
  (``finish_batch``), as timm's prefetcher does.
- Colour jitter's factors (torchvision's own ``get_params``) and the flip are drawn in the worker
  and applied to the whole batch on the device, where they cost nothing beside the model.

``TrainTransform.plan`` gives the same draws without decoding: ``device_batch`` decodes the
JPEG bytes on the GPU (nvjpeg) and crops there, for nodes with few cores.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import warnings
from dataclasses import dataclass

import numpy as np
import PIL
import pyarrow as pa
import torch
import torchvision.transforms.functional as TF
import torchvision.transforms.v2.functional as F2
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.transforms import MaybePILToTensor, RandomResizedCropAndInterpolation
from torchvision.transforms import ColorJitter, InterpolationMode, RandomHorizontalFlip

from realfake.data import CHECKED, upright_rgb

DRAFT_SCALES = (8, 4, 2)
# PIL's resize of a box reads beyond its bottom edge up to its filter's support (Lanczos, the
# widest: 3) in output rows, i.e. 3 x the box's rows per output row: decoded too, plus one
RESAMPLING_SUPPORT = 3
# the draws a batch applies, per image: torchvision's jitter op order, brightness/contrast/saturation, flip
NO_DRAWS = (0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 0.0)
_ORIENTATION = 0x0112
TENSOR_FILTERS = (InterpolationMode.BILINEAR, InterpolationMode.BICUBIC)  # torch's antialiased uint8 kernels
_RGBX = pa.list_(pa.field("RGB", pa.uint8(), nullable=False), 4)  # how PIL exports an RGB image's pixels
# decode_top_rows drives PIL's private decoder API (Image._getdecoder, Image.core.new, Image._new),
# which any Pillow release may change: the releases its tests passed on. Any other decodes whole.
TOP_ROWS_PILLOW = frozenset({"11.3.0", "12.3.0", "13.0.0"})
log = logging.getLogger(__name__)


def draftable(image: Image.Image) -> bool:
    """A JPEG whose pixels are not decoded yet and whose header size is its upright size."""
    return image.format == "JPEG" and bool(image.tile) and image.getexif().get(_ORIENTATION, 1) == 1


def decode_at_least(image: Image.Image, width: float, height: float, bottom: int | None = None) -> Image.Image:
    """Decode at the smallest JPEG scale (1/8, 1/4, 1/2) that keeps ``width`` x ``height`` of the
    image's header-size pixels at or above one pixel each; whole when that is the full scale.
    ``bottom``: the lowest header-size row the caller reads; a checked JPEG decodes only down to it."""
    if draftable(image):
        header_height = image.height
        scale = next((s for s in DRAFT_SCALES if min(width, height) >= s), 1)
        if scale > 1:
            # PIL picks min(W // w, H // h): floor division here makes that exactly ``scale``
            image.draft("RGB", (image.width // scale, image.height // scale))
        if bottom is not None and image.info.get(CHECKED) and image.mode == "RGB":
            at_scale = image.height / header_height  # 1 / the drafted scale
            reach = RESAMPLING_SUPPORT * max(height * at_scale, 1.0)
            rows = math.ceil(bottom * at_scale + reach) + 1
            if rows < image.height:
                return decode_top_rows(image, rows)
    return upright_rgb(image)


def decode_top_rows(image: Image.Image, rows: int) -> Image.Image:
    """The first ``rows`` rows of a lazily opened JPEG (at its ``draft`` scale), decoded: libjpeg
    decodes top to bottom, so stopping there skips the entropy decoding, IDCT and colour conversion
    of every row below (for timm's crops, 15 % of the decode on average).

    PIL has no public call for this: its own JPEG decoder runs over the shorter tile. Finishing
    early makes libjpeg report the error a corrupt file would report too, so it is only for bytes
    already checked (``CHECKED``); a file that ends within the rows fails as PIL's load does.
    On a Pillow release outside ``TOP_ROWS_PILLOW``: PIL's public whole decode, cut to the rows
    (the same pixels, the decode's full cost)."""
    if not top_rows_tested(PIL.__version__):
        image.load()
        return image.crop((0, 0, image.width, rows))
    codec, _, offset, args = image.tile[0]
    out = Image.core.new(image.mode, (image.width, rows))
    decoder = Image._getdecoder(image.mode, codec, args, image.decoderconfig)
    image.fp.seek(offset)
    try:
        decoder.setimage(out, (0, 0, image.width, rows))
        consumed, _ = decoder.decode(image.fp.read())
    finally:
        decoder.cleanup()
    if consumed >= 0:  # the decoder asks for more bytes than the file has
        raise OSError(f"image file is truncated within its first {rows} rows")
    return image._new(out)


@functools.cache  # once per version: the log line too
def top_rows_tested(version: str) -> bool:
    """Whether ``decode_top_rows`` may use PIL's private decoder API on this Pillow release."""
    if version in TOP_ROWS_PILLOW:
        return True
    log.warning("Pillow %s is not among those decode_top_rows was tested with (%s): checked JPEGs decode whole, "
                "then are cut (the same pixels, the rows below the crop decoded too)",
                version, ", ".join(sorted(TOP_ROWS_PILLOW)))
    return False


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
        decoded = decode_at_least(image, width / out_w, height / out_h, bottom=top + height)
        # the drafted scale, from the image's full size at it (``decoded`` may hold only its top rows)
        sx, sy = (1, 1) if header_size is None else (image.width / header_size[0], image.height / header_size[1])
        return resized(decoded, (left * sx, top * sy, (left + width) * sx, (top + height) * sy), self.crop.size,
                       interpolation)


def pixels(image: Image.Image) -> torch.Tensor:
    """uint8 [C, H, W] over an RGB image's pixels, channels-last: PIL's own RGBX memory shared
    through Arrow, no copy (C = 4, the 4th unused), where PIL holds the image in one block (up to
    16 MB); else a copy of its RGB values (C = 3)."""
    try:
        exported = pa.array(image)
    except (TypeError, ValueError, pa.ArrowException):
        exported = None
    if exported is None or exported.type != _RGBX:
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)
    with warnings.catch_warnings():  # read-only memory: read, never written
        warnings.simplefilter("ignore", UserWarning)
        flat = torch.from_numpy(exported.values.to_numpy(zero_copy_only=True))
    return flat.view(image.height, image.width, 4).permute(2, 0, 1)


def resized(image: Image.Image, box: tuple, size: tuple, interpolation) -> torch.Tensor:
    """``box`` (left, top, right, bottom) of ``image`` resized to ``size`` (h, w), antialiased -> uint8 [3, h, w].

    Whole pixels and a bilinear or bicubic filter: torch's kernels on the cropped pixels (as
    ``device_batch`` does on the GPU); else PIL's resize of the box (fractional: a drafted decode)."""
    if interpolation in TENSOR_FILTERS and all(float(v).is_integer() for v in box):
        return crop_and_resize(pixels(image.crop(tuple(int(v) for v in box))), None, size, interpolation)[:3]
    return TF.pil_to_tensor(image.resize(size[::-1], TF.pil_modes_mapping[interpolation], box=box))


def crop_and_resize(image: torch.Tensor, box: tuple | None, size: tuple, interpolation) -> torch.Tensor:
    """uint8 [3, H, W] (CPU or GPU) cropped to ``box`` (top, left, height, width; None: all) and
    resized to ``size`` with torchvision's antialiased uint8 resize."""
    if box is not None:
        image = F2.crop(image, *box)
    return F2.resize(image, list(size), interpolation, antialias=True)


@dataclass(frozen=True)
class CropPlan:
    """One training image's draws: crop box, interpolation, and the batch's (``batch_draws``)."""

    box: tuple
    interpolation: object
    draws: torch.Tensor

    @property
    def flip(self) -> bool:
        return bool(self.draws[7])


def batch_draws(jitter: ColorJitter | None, flip: bool = False) -> torch.Tensor:
    """What ``finish_batch`` applies to one image, as 8 floats: torchvision's ColorJitter draws
    (its ``get_params``: op order, brightness, contrast, saturation factors), then the flip."""
    if jitter is None:
        return torch.tensor((*NO_DRAWS[:7], float(flip)))
    order, *factors, _hue = jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, None)
    return torch.tensor([*order.tolist(), *(1.0 if f is None else f for f in factors), float(flip)])


class TrainTransform:
    """timm's training transform (``use_prefetcher=True``: uint8 out), crop drafted, flip and jitter
    deferred to the batch.

    Returns ``(uint8 image [3, H, W], batch draws [8])``; ``finish_batch`` flips and jitters.
    """

    def __init__(self, timm_transform):
        crop, *steps = timm_transform.transforms
        if not isinstance(crop, RandomResizedCropAndInterpolation):
            raise ValueError(f"timm's training transform starts with {crop}, not a random-resized crop")
        self.crop, self.jitter = DraftRandomResizedCrop(crop), None
        self.steps = [s for s in steps if not isinstance(s, ColorJitter | MaybePILToTensor)]
        # a flip alone is drawn here and applied on the batch; RandAugment, ...: timm's PIL steps
        self.flip_only = all(isinstance(s, RandomHorizontalFlip) for s in self.steps)
        for step in steps:
            if isinstance(step, ColorJitter):
                if step.hue is not None:
                    raise ValueError("colour jitter of hue is not applied on the batch; set no hue")
                if steps.index(step) != len(steps) - 2:
                    raise ValueError(f"colour jitter is deferred to the batch, so it must be the last PIL step: {steps}")
                self.jitter = step

    def __call__(self, image: Image.Image):
        image = self.crop(image)
        if self.flip_only:
            flip = self.draw_flip()
        else:
            image = Image.fromarray(image.permute(1, 2, 0).numpy())
            for step in self.steps:
                image = step(image)
            image, flip = TF.pil_to_tensor(image), False
        # channels-last memory; the collated batch is contiguous
        return image, batch_draws(self.jitter, flip)

    def draw_flip(self) -> bool:
        """torchvision's RandomHorizontalFlip draws (``torch.rand(1) < p``, each step), not flipping."""
        flip = False
        for step in self.steps:
            flip ^= bool(torch.rand(1) < step.p)
        return flip

    def plan(self, image: Image.Image) -> CropPlan:
        """The draws ``__call__`` makes, without decoding (crop, flip and jitter only)."""
        if not self.flip_only:
            raise ValueError(f"decoding on the device supports crop, flip and colour jitter, not {self.steps}")
        *box, interpolation = self.crop.box(image)
        flip = self.draw_flip()
        return CropPlan(tuple(box), interpolation, batch_draws(self.jitter, flip))


class DevicePlanTransform:
    """For ``runtime.decode_on_device``: a lazily opened JPEG -> (its file bytes, ``CropPlan``), the
    plan drawn as ``TrainTransform`` draws; ``device_batch`` decodes and crops on the GPU."""

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
    """A loader batch's images on ``device`` as (uint8 images, batch draws): moved (CPU-decoded),
    or decoded there (``size``: from ``DevicePlanTransform``'s bytes and plans)."""
    if size is None:
        images, draws = inputs
        return images.to(device, non_blocking=True), draws
    encoded, plans = inputs
    return device_batch(encoded, plans, size, device), torch.stack([p.draws for p in plans])


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


def color_jitter(x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """torchvision's ColorJitter on a float batch in [0, 255] (changed in place), each image with
    its own factors and order (``batch_draws``): per step, one call per op on the images that
    take it there, each clamped as PIL does."""
    order, factors = draws[:, :4].long(), draws[:, 4:7]
    for k in range(4):
        for op, adjust in enumerate((_brightness, _contrast, _saturation)):
            chosen = (order[:, k] == op).nonzero().squeeze(1)
            if len(chosen):
                x[chosen] = adjust(x[chosen], factors[chosen, op].view(-1, 1, 1, 1)).clamp_(0, 255)
    return x


def finish_batch(images: torch.Tensor, draws: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 [N, 3, H, W] (on the training device) -> flipped, colour-jittered (``batch_draws``
    [N, 8]; flips commute with the jitter), normalised float32."""
    x = images.float()
    if draws is not None:
        draws = draws.to(x.device)
        flipped = draws[:, 7].nonzero().squeeze(1)
        if len(flipped):
            x[flipped] = x[flipped].flip(-1)
        x = color_jitter(x, draws)
    return x.sub_(_MEAN.to(x.device)).div_(_STD.to(x.device))


def device_batch(encoded: list[torch.Tensor], plans: list[CropPlan], size: tuple, device) -> torch.Tensor:
    """JPEG bytes (uint8 CPU tensors) decoded on ``device`` (nvjpeg on CUDA), each cropped by its
    plan and resized (antialiased) -> uint8 [N, 3, *size] for ``finish_batch`` (which flips)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
    return torch.stack([crop_and_resize(image, plan.box, size, plan.interpolation)
                        for image, plan in zip(decoded, plans, strict=True)])
