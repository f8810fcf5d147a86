"""The classifier's image pipeline: drafted JPEG decoding keeps timm's draws and its pictures,
every shard member is checked on read, and the device decode path crops as the CPU path does."""

import gc
import random

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from realfake.classifier import Recipe, TransformedShards, eval_transform, train_transform
from realfake.data import CHECKED, open_image, upright_rgb
from realfake.image_pipeline import (
    batch_draws,
    decode_at_least,
    decode_top_rows,
    device_batch,
    finish_batch,
    pixels,
    resized,
)
from realfake.shards import ShardError, ShardSamples, ShardWriter, encode_image, main

RECIPE = Recipe(train_resolution=224, test_resolution=224, crop_pct=0.875, hflip=0.5)


def photo(seed: int, size=(512, 512)) -> Image.Image:
    """Smooth colour fields and fine texture: compresses like a photograph."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize(size, Image.BICUBIC)
    pixels = np.asarray(coarse, float) + rng.normal(0, 6, (size[1], size[0], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def jpegs():
    return [encode_image(photo(i, (512, 512) if i % 3 else (500, 375)), "jpeg", 95) for i in range(24)]


def checked(data: bytes) -> Image.Image:
    """Opened as a shard member whose crc32 matched: such JPEGs decode only the rows a crop needs."""
    image = open_image(data)
    image.info[CHECKED] = True
    return image


def seeded(k: int) -> None:
    random.seed(k)
    np.random.seed(k)
    torch.default_generator.manual_seed(k)


def timm_today(recipe: Recipe, training: bool):
    """The path before drafting: timm's whole transform on the whole decoded image, float out."""
    from timm.data import create_transform

    if training:
        return create_transform(recipe.train_resolution, is_training=True, hflip=recipe.hflip,
                                scale=tuple(recipe.crop_scale))
    return create_transform(recipe.test_resolution, is_training=False, crop_pct=recipe.crop_pct,
                            interpolation=recipe.interpolation)


def pixel_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two normalised images, in 0-255 levels."""
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) * 255
    return float(((a - b).abs() * std).mean())


@pytest.mark.parametrize("resolution", [224, 112])
def test_draft_crop_draws_timms_boxes_from_the_header(jpegs, resolution):
    recipe = Recipe(train_resolution=resolution)
    transform = train_transform(recipe)
    timm_crop = timm_today(recipe, True).transforms[0]
    drafted = 0
    for k, data in enumerate(jpegs):
        seeded(k)
        expected = timm_crop.get_params(upright_rgb(open_image(data)), timm_crop.scale, timm_crop.ratio)
        seeded(k)
        lazy = open_image(data)
        assert transform.crop.box(lazy)[:4] == expected and lazy.tile  # drawn without decoding
        drafted += min(expected[2:]) >= 2 * resolution
    # at 224 from 512 px few crops keep 448 px on both sides (measured: 0 of these 24)
    assert drafted >= (10 if resolution == 112 else 0)


@pytest.mark.parametrize("training, resolution", [(True, 224), (True, 112), (False, 224)])
def test_drafted_images_equal_todays_up_to_resampling(jpegs, training, resolution):
    """Same seeds: same crops, flips and jitter; the pixels differ by resampling and by the jitter
    applied in float on the batch instead of PIL's uint8."""
    recipe = Recipe(train_resolution=resolution, test_resolution=resolution)
    today, transform = timm_today(recipe, training), (train_transform if training else eval_transform)(recipe)
    differences = []
    for k, data in enumerate(jpegs):
        seeded(k)
        expected = today(upright_rgb(open_image(data)))
        seeded(k)
        out = transform(checked(data))  # as read from a shard
        images, draws = (out[0][None], out[1][None]) if training else (out[None], None)
        assert images.dtype == torch.uint8
        differences.append(pixel_difference(expected, finish_batch(images, draws)[0]))
    print(f"mean |today - drafted| {np.mean(differences):.2f} levels, worst image {max(differences):.2f}")
    assert np.mean(differences) < (2.0 if training else 1.5) and max(differences) < 4.0  # measured 1.4 and 0.8


@pytest.mark.parametrize("resolution, interpolation", [(224, "bilinear"), (112, "bicubic"), (224, "lanczos")])
def test_a_checked_jpeg_decodes_down_to_the_crops_bottom_only_with_the_same_pixels(jpegs, resolution, interpolation):
    """A shard member (crc32 checked) decodes only its rows down to the crop's bottom (plus the
    resampling margin), drafted or whole; the crop is bit for bit that of the whole decode."""
    crop = train_transform(Recipe(train_resolution=resolution, interpolation=interpolation)).crop
    rows_decoded, drafted = [], 0
    for k, data in enumerate(jpegs):
        seeded(k)
        whole = crop(open_image(data))
        seeded(k)
        assert torch.equal(crop(checked(data)), whole), k
        seeded(k)
        lazy = checked(data)
        top, _left, height, width, _ = crop.box(lazy)
        header_height = lazy.height
        decoded = decode_at_least(lazy, width / resolution, height / resolution, bottom=top + height)
        drafted += lazy.height < header_height
        rows_decoded.append(decoded.height / lazy.height)
    print(f"rows decoded: {np.mean(rows_decoded):.2f} of the image on average; {drafted} drafted")
    assert np.mean(rows_decoded) < 0.95 and min(rows_decoded) < 0.7 and (drafted > 0) == (resolution == 112)


def test_a_tall_box_decodes_as_far_below_as_its_filter_reaches():
    """A box of many source rows per output row (a large image): PIL's Lanczos reads 3 output rows
    below its edge, here 16 source rows; the rows decoded cover them, so the pixels are exact."""
    data = encode_image(photo(7, (1600, 1600)), "jpeg", 95)
    box, size = (0, 100, 300, 1300), (224, 224)
    expected = resized(upright_rgb(open_image(data)), box, size, InterpolationMode.LANCZOS)
    decoded = decode_at_least(checked(data), 300 / 224, 1200 / 224, bottom=1300)
    assert 1300 + 16 < decoded.height < 1600
    assert torch.equal(resized(decoded, box, size, InterpolationMode.LANCZOS), expected)


def test_decoding_the_top_rows_gives_the_whole_decodes_rows_and_a_short_file_fails(jpegs):
    data = jpegs[1]
    whole = np.asarray(upright_rgb(open_image(data)))
    assert np.array_equal(np.asarray(decode_top_rows(open_image(data), 200)), whole[:200])
    drafted, drafted_whole = open_image(data), open_image(data)
    drafted.draft("RGB", (256, 256))
    drafted_whole.draft("RGB", (256, 256))
    assert np.array_equal(np.asarray(decode_top_rows(drafted, 100)), np.asarray(upright_rgb(drafted_whole))[:100])
    with pytest.raises(OSError, match="truncated within its first 400 rows"):
        decode_top_rows(open_image(data[: len(data) // 2]), 400)


def test_on_an_untested_pillow_the_top_rows_come_from_the_public_whole_decode_with_the_same_pixels(
        jpegs, monkeypatch, caplog):
    """decode_top_rows uses PIL's private decoder API only on the Pillow releases it was tested with;
    on any other (here a made-up release) PIL's public whole decode gives the same rows, logged once."""
    import PIL

    from realfake.image_pipeline import TOP_ROWS_PILLOW, top_rows_tested

    assert PIL.__version__ in TOP_ROWS_PILLOW  # the lock's Pillow takes the fast path: test it, then add it
    crop = train_transform(RECIPE).crop
    data = jpegs[1]
    fast = [np.asarray(decode_top_rows(open_image(data), 200))]
    drafted = open_image(data)
    drafted.draft("RGB", (256, 256))
    fast.append(np.asarray(decode_top_rows(drafted, 100)))
    crops = []
    for k, data in enumerate(jpegs[:8]):
        seeded(k)
        crops.append(crop(checked(data)))

    top_rows_tested.cache_clear()
    monkeypatch.setattr(PIL, "__version__", "99.0.0")
    with caplog.at_level("WARNING", logger="realfake.image_pipeline"):
        fallback = [np.asarray(decode_top_rows(open_image(jpegs[1]), 200))]
        drafted = open_image(jpegs[1])
        drafted.draft("RGB", (256, 256))
        fallback.append(np.asarray(decode_top_rows(drafted, 100)))
        for k, data in enumerate(jpegs[:8]):
            seeded(k)
            assert torch.equal(crop(checked(data)), crops[k]), k
    assert [f.shape for f in fallback] == [(200, 512, 3), (100, 256, 3)]
    assert all(np.array_equal(a, b) for a, b in zip(fast, fallback, strict=True))
    assert len(caplog.records) == 1  # once, however many images
    assert caplog.records[0].getMessage().startswith("Pillow 99.0.0 is not among those decode_top_rows was tested")
    with pytest.raises(OSError, match="truncated"):
        decode_top_rows(open_image(jpegs[1][: len(jpegs[1]) // 2]), 400)


def test_png_and_exif_rotated_jpeg_take_todays_crop_within_one_level(jpegs):
    """Whole decodes (PNG, EXIF-rotated JPEG, crops too small to draft) crop timm's box of the
    upright image; torch's uint8 resize gives PIL's pixels within one level (measured mean 0.019)."""
    from PIL import ImageOps

    rotated = photo(1, (400, 300))
    exif = rotated.getexif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    sources = [encode_image(photo(0), "png"), _jpeg_with_exif(rotated, exif), *jpegs]
    timm_crop, crop = timm_today(RECIPE, True).transforms[0], train_transform(RECIPE).crop
    whole = []
    for k, data in enumerate(sources):
        seeded(k)
        expected = timm_crop(ImageOps.exif_transpose(open_image(data)).convert("RGB"))
        seeded(k)
        lazy = open_image(data)
        scale = min(crop.box(lazy)[2:4]) / 224  # crops of 448 px or more are drafted
        seeded(k)
        difference = (TF.pil_to_tensor(expected).int() - crop(open_image(data)).int()).abs()
        if k < 2 or scale < 2:  # decoded whole
            whole.append(difference.float().mean())
            assert difference.max() <= 1, k
    print(f"whole decodes: {len(whole)}, mean |timm - crop| {np.mean(whole):.4f} levels")
    assert len(whole) >= 20 and np.mean(whole) < 0.05


def _jpeg_with_exif(image, exif) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_device_decode_crops_and_flips_as_the_cpu_path(jpegs):
    """The device path's plan draws what the CPU path draws; decoded with torchvision (here on the
    CPU; nvjpeg on a GPU), its batch is the CPU path's up to resampling."""
    transform = train_transform(RECIPE)
    plans, cpu = [], []
    for k, data in enumerate(jpegs):
        seeded(k)
        plans.append(transform.plan(open_image(data)))
        seeded(k)
        cpu.append(transform(open_image(data)))
        seeded(k)
        assert plans[-1].box == transform.crop.box(open_image(data))[:4]
        assert torch.equal(plans[-1].draws, cpu[-1][1])
    encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in jpegs]
    on_device = device_batch(encoded, plans, (224, 224), "cpu")
    draws = torch.stack([p.draws for p in plans])
    expected = finish_batch(torch.stack([c[0] for c in cpu]), draws)
    differences = [pixel_difference(a, b) for a, b in zip(expected, finish_batch(on_device, draws), strict=True)]
    assert any(p.flip for p in plans) and not all(p.flip for p in plans)
    assert np.mean(differences) < 3.0


def _jpeg_shard(path, count=6):
    with ShardWriter(path, "jpeg", 95) as sink:
        for i in range(count):
            sink.write(f"{i:09d}", photo(i, (64, 64)), i % 2, {"index": i})


def test_a_corrupted_member_fails_the_classifier_naming_shard_member_and_offset(tmp_path, capsys):
    from realfake.classifier import train_classifier, training_set
    from realfake.shards import read_index

    shard = tmp_path / "00000.tar"
    _jpeg_shard(shard)
    offset, size, _crc = read_index(shard)["images"][3]
    data = bytearray(shard.read_bytes())
    data[offset + size // 2: offset + size // 2 + 8] = bytes(255 - b for b in data[offset + size // 2: offset + size // 2 + 8])
    shard.write_bytes(bytes(data))  # same size: only a checksum can tell
    recipe = Recipe(arch="resnet10t", epochs=1, batch_size=6, train_resolution=32, test_resolution=32, hflip=0.5)
    dataset = training_set(None, [shard], 6, False, train_transform(recipe))
    where = rf"shard {shard}: member 000000003.jpg at byte {offset} fails its crc32"
    with pytest.raises(ShardError, match=where):
        train_classifier(dataset, 2, ["a", "b"], recipe, tmp_path / "c.pt", device="cpu")
    assert main(["verify", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert f"members failing their crc32: 000000003.jpg at byte {offset}" in printed
    assert "000000002.jpg" not in printed and "1 bad" in printed


def test_every_member_is_checked_on_read_and_undecodable_bytes_are_named(tmp_path):
    import json

    from realfake.shards import index_path

    shard = tmp_path / "00000.tar"
    _jpeg_shard(shard)
    samples = ShardSamples([shard])
    assert samples.meta(2) == {"index": 2} and samples.image(1).size == (64, 64)
    assert samples.open(1).info[CHECKED]  # its crc32 matched: it may decode only the rows a crop needs
    # an index whose crc32 of member 1 is right for garbage bytes: the decode error is named too
    document = json.loads(index_path(shard).read_text())
    offset, size, _ = document["shardlist"][0]["images"][1]
    data = bytearray(shard.read_bytes())
    data[offset: offset + size] = bytes(size)
    shard.write_bytes(bytes(data))
    import zlib

    document["shardlist"][0]["images"][1][2] = zlib.crc32(bytes(size))
    index_path(shard).write_text(json.dumps(document))
    shards = TransformedShards(ShardSamples([shard]), train_transform(Recipe(train_resolution=32)))
    with pytest.raises(ShardError, match=rf"member 000000001.jpg at byte {offset} is not an image"):
        shards[1]
    assert shards[0][0][0].shape == (3, 32, 32)


def test_training_decodes_on_the_device_when_asked_and_refuses_png(tmp_path):
    """decode_on_device: the loop gets JPEG bytes and plans, decodes them (torchvision; nvjpeg on a
    GPU) and trains; a PNG shard fails naming the setting."""
    from realfake.classifier import train_classifier, training_set

    _jpeg_shard(tmp_path / "jpeg.tar")
    recipe = Recipe(arch="resnet10t", epochs=1, batch_size=3, train_resolution=32, test_resolution=32)
    dataset = training_set(None, [tmp_path / "jpeg.tar"], 6, False, train_transform(recipe, decode_on_device=True))
    stats = train_classifier(dataset, 2, ["a", "b"], recipe, tmp_path / "c.pt", device="cpu", num_workers=1,
                             decode_on_device=True)
    assert stats["step"] == 2 and np.isfinite(stats["train_loss"]) and (tmp_path / "c.pt").exists()
    with ShardWriter(tmp_path / "png.tar", "png") as sink:
        sink.write("000000000", photo(0, (32, 32)), 0, {})
    dataset = training_set(None, [tmp_path / "png.tar"], 1, False, train_transform(recipe, decode_on_device=True))
    with pytest.raises(ShardError, match=r"png.tar: member 000000000.png at byte 512 does not decode \(runtime."
                                         r"decode_on_device decodes JPEG only; this image is PNG"):
        dataset[0]


def test_randaugment_runs_timms_pil_ops_on_the_tensor_resized_crop(jpegs):
    """The IN-1K recipe (rand-m7-mstd0.5): the crop is resized by torch, then timm's flip and
    RandAugment run on PIL as before; same seeds, same ops: pixels within resampling of timm's."""
    from timm.data import create_transform

    recipe = Recipe(auto_augment="rand-m7-mstd0.5")
    transform = train_transform(recipe)
    timm_uint8 = create_transform(224, is_training=True, hflip=recipe.hflip, auto_augment=recipe.auto_augment,
                                  scale=tuple(recipe.crop_scale), use_prefetcher=True)
    assert transform.jitter is None  # timm applies no colour jitter with RandAugment
    differences = []
    for k, data in enumerate(jpegs):
        seeded(k)
        expected = timm_uint8(upright_rgb(open_image(data)))
        seeded(k)
        image, draws = transform(open_image(data))
        assert image.dtype == torch.uint8 and image.shape == (3, 224, 224) and torch.equal(draws, batch_draws(None))
        differences.append(float((expected.float() - image.float()).abs().mean()))
    print(f"mean |timm - ours| with RandAugment {np.mean(differences):.3f} levels, worst {max(differences):.3f}")
    assert np.mean(differences) < 0.25  # measured 0.025: the ops themselves are the same


def test_an_index_without_checksums_is_read_unchecked_and_decoded_whole(tmp_path):
    """Shards indexed before per-member crc32s: read with a warning, never marked checked, so a
    JPEG's decode is never cut short on bytes nobody checked."""
    import json

    from realfake.shards import index_path

    shard = tmp_path / "00000.tar"
    _jpeg_shard(shard)
    document = json.loads(index_path(shard).read_text())
    entry = document["shardlist"][0]
    entry["images"] = [location[:2] for location in entry["images"]]
    index_path(shard).write_text(json.dumps(document))
    with pytest.warns(UserWarning, match="predates per-member checksums"):
        samples = ShardSamples([shard])
    assert CHECKED not in samples.open(0).info and samples.image(0).size == (64, 64)


def test_pixels_share_pils_memory_and_are_copied_where_pil_splits_it():
    """The crop reaches torch's resize over PIL's own memory (Arrow export, no copy); an image PIL
    holds in several blocks (over 16 MB) is copied instead, with the same values."""
    small = photo(0, (64, 48))
    shared = pixels(small)
    assert shared.shape == (4, 48, 64) and torch.equal(shared[:3], torch.from_numpy(np.asarray(small)).permute(2, 0, 1))
    small.putpixel((0, 0), (9, 8, 7))
    assert shared[:3, 0, 0].tolist() == [9, 8, 7]  # the same memory
    orphan = pixels(photo(1, (64, 48)))  # its image is gone: the tensor keeps PIL's memory alive
    gc.collect()
    overwriting = [photo(k, (64, 48)) for k in range(2, 6)]  # would take freed memory
    assert torch.equal(orphan[:3], torch.from_numpy(np.asarray(photo(1, (64, 48)))).permute(2, 0, 1)), overwriting
    big = Image.new("RGB", (2400, 2400), (1, 2, 3))
    copied = pixels(big)
    assert copied.shape == (3, 2400, 2400) and copied[:, -1, -1].tolist() == [1, 2, 3]
