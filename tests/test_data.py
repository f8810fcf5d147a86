"""Every bad real image is named: by the manifest check (a file cut anywhere), and by each later read."""

import re

import numpy as np
import pytest
from PIL import Image

from realfake.data import DataError, image_folder_manifest, load_rgb, verify_image


def _photo(path, fmt="JPEG", size=(500, 375)):
    """A photo-like image (smooth colours, fine texture) of ImageNet's typical size."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize(size, Image.BICUBIC)
    pixels = np.clip(np.asarray(coarse, float) + rng.normal(0, 6, (size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, fmt, **({} if fmt == "PNG" else {"quality": 90}))
    return path


def _cut(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def test_jpeg_cut_in_its_scan_data_fails_the_manifest_check(tmp_path):
    _photo(tmp_path / "train/a/whole.jpg")
    cut = _cut(_photo(tmp_path / "train/a/cut.jpg"), 0.5)
    with Image.open(cut) as image:
        image.verify()  # what the check was: it reads no JPEG data
    with pytest.raises(DataError, match=rf"image {re.escape(str(cut))} does not decode \(OSError: image file is truncated"):
        image_folder_manifest(tmp_path, {"train": "train"})


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.99])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_file_cut_anywhere_fails_the_manifest_check(tmp_path, fmt, fraction):
    path = _cut(_photo(tmp_path / f"image.{fmt.lower()}", fmt, (96, 64)), fraction)
    with pytest.raises(DataError, match=f"image {re.escape(str(path))} does not decode"):
        verify_image(path)


def test_bytes_after_a_jpegs_end_marker_pass_the_manifest_check(tmp_path):
    path = _photo(tmp_path / "trailing.jpg", size=(96, 64))
    path.write_bytes(path.read_bytes() + bytes(16))  # decodes whole: checked by a decode, not the marker
    verify_image(path)
    path.write_bytes(path.read_bytes()[:-18])  # the marker and the bytes after it gone
    with pytest.raises(DataError, match="trailing.jpg does not decode"):
        verify_image(path)


def test_image_list_names_a_truncated_jpeg(tmp_path):
    from realfake.classifier import ImageList, Recipe, eval_transform

    path = _cut(_photo(tmp_path / "cut.jpg"), 0.5)
    images = ImageList([path], [0], eval_transform(Recipe(test_resolution=32, crop_pct=1.0)))
    with pytest.raises(DataError, match=rf"image {re.escape(str(path))} does not decode \(OSError: image file is trunc"):
        images[0]


def test_load_rgb_names_a_decompression_bomb(tmp_path, monkeypatch):
    path = _photo(tmp_path / "large.png", "PNG", (64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels: over twice the limit
    with pytest.raises(DataError, match=rf"image {re.escape(str(path))} does not decode \(DecompressionBombError"):
        load_rgb(path)
