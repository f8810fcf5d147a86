"""A LoRA's validation images (realfake.lora_validation), drawn by a real tiny LoRA training."""

import numpy as np
import pytest
import torch
from conftest import ROOT, StopAfter
from PIL import Image

from realfake import plan
from realfake.budget import BudgetExhausted, Checkpointing
from realfake.config import load_config
from realfake.lora import LoraSettings, train_lora
from realfake.lora_validation import LoraValidation

SETTINGS = LoraSettings(resolution=32, batch_size=10, max_steps=4, random_flip=True,
                        center_crop=False, learning_rate=1e-2, seed=3)


def demo_validation(out_path, **runtime) -> LoraValidation:
    """The demo's rows for the realfake finetune (text-to-image from lp0_realfake, the latent prior from
    realfake: guidance, negative prompt, UniPC, lora_scale 0.5), with these runtime keys."""
    config = load_config(ROOT / "config/config.yaml")
    config["runtime"].update(runtime)
    return LoraValidation(out_path=str(out_path), title="LoRA test", **plan.lora_validation(config, "digits", "realfake"))


def heights(paths) -> list[int]:
    return [Image.open(p).size[1] for p in paths]


def test_plan_takes_each_rows_settings_from_a_variant_of_the_finetune():
    config = load_config(ROOT / "config/config.yaml")
    config["runtime"].update(lora_validation_steps=7, lora_validation_every=60)
    spec = plan.lora_validation(config, "digits", "realfake")
    assert spec["every"] == 60 and [(r["label"], r["variant"]) for r in spec["rows"]] == [
        ("text-to-image", "lp0_realfake"), ("latent prior", "realfake")]
    assert [r["synthesis"]["latent_prior"] for r in spec["rows"]] == [False, True]
    assert all(r["synthesis"]["num_inference_steps"] == 7 and r["synthesis"]["guidance_mode"] == "class_mean"
               for r in spec["rows"])
    # only latent-prior variants use no_mmd: its text-to-image row is lp1_no_mmd's settings as text-to-image
    rows = plan.lora_validation(config, "digits", "no_mmd")["rows"]
    assert [(r["variant"], r["synthesis"]["latent_prior"]) for r in rows] == [("lp1_no_mmd", False),
                                                                             ("lp1_no_mmd", True)]


def test_validation_draws_every_due_step_stacks_them_and_leaves_the_weights_bit_identical(tiny_sd, digits, tmp_path):
    """Every 2 of 4 steps: the base model (step 0), step 2 and the last, each also in TensorBoard;
    validation.png stacks the three blocks. The weights equal a run's without validation, bit for bit,
    and the last images are what synthesis's generator draws with the saved LoRA (the adapter at
    lora_scale, same prompts, guidance and seeds)."""
    from safetensors.torch import load_file
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from realfake.conditioning import encode_text
    from realfake.synthesis import SynthesisSettings, generate_images, load_pipeline
    from realfake.trackers import open_tracker

    train = digits[digits.split == "train"].reset_index(drop=True)
    guidance = torch.randn(len(train), 64, generator=torch.Generator().manual_seed(0))
    validation = demo_validation(tmp_path / "validation.png", lora_validation_every=2, lora_validation_classes=3,
                                 lora_validation_seeds=[0, 1], lora_validation_steps=3)
    with open_tracker("tensorboard", tmp_path / "tracking", "lora", "digits", {}) as tracker:
        train_lora(tiny_sd, train, tmp_path / "lora.safetensors", SETTINGS, guidance=guidance, validation=validation,
                   device="cpu", tracker=tracker)
    train_lora(tiny_sd, train, tmp_path / "plain.safetensors", SETTINGS, guidance=guidance, device="cpu")
    with_it, without = load_file(tmp_path / "lora.safetensors"), load_file(tmp_path / "plain.safetensors")
    assert with_it.keys() == without.keys() and len(with_it) > 0
    for key in with_it:
        assert torch.equal(with_it[key], without[key]), key

    steps = sorted((tmp_path / "validation").iterdir())
    assert [p.name for p in steps] == ["step000000.png", "step000002.png", "step000004.png"]
    assert Image.open(tmp_path / "validation.png").size[1] == sum(heights(steps))  # one block a step
    assert Image.open(tmp_path / "validation.png").size[0] == Image.open(steps[0]).size[0]
    events = EventAccumulator(str(tmp_path / "tracking/tensorboard/lora"), size_guidance={"images": 0})
    events.Reload()
    logged = events.Images("lora/validation")
    assert [(e.step, e.height, e.width) for e in logged] == [(k, *Image.open(p).size[::-1]) for k, p in
                                                              zip((0, 2, 4), steps, strict=True)]

    # classes 0, 3, 6 (evenly spaced), seed k from the class's k-th training image
    names, rows = validation.cases["names"], validation.cases["rows"]
    assert names == ["zero", "three", "six"] and rows.label.tolist() == [0, 0, 3, 3, 6, 6]
    assert rows["index"].tolist() == [train["index"][train.label == c].iloc[k] for c in (0, 3, 6) for k in (0, 1)]
    for row, images in zip(validation.rows, validation.images, strict=True):
        settings = SynthesisSettings(**row["synthesis"])
        pipe = load_pipeline(tiny_sd, settings, tmp_path / "lora.safetensors", device="cpu", fuse=False)
        negative = encode_text(pipe.tokenizer, pipe.text_encoder, [settings.negative_prompt])
        expected = generate_images(pipe, settings, [f"photo of {n}" for n in rows.class_name], negative, rows,
                             guidance[rows.index.tolist()], [0, 1] * 3)
        # exactly: on this random tiny SD, the same images without the guidance token differ by 1-2 levels
        for got, want in zip(images, expected, strict=True):
            assert np.array_equal(np.asarray(got), np.asarray(want)), row["label"]


def test_a_resumed_run_keeps_the_validation_images_up_to_its_checkpoint(tiny_sd, digits, tmp_path):
    """From scratch, a stale step file of an earlier run goes; stopped by its budget after step 2, a
    retry resumes there: it keeps steps 0-2 as they were, redraws step 3 (drawn by an attempt that
    died before checkpointing it) and draws step 4; validation.png stacks all five."""
    train = digits[digits.split == "train"].reset_index(drop=True)
    folder, ckpt = tmp_path / "validation", tmp_path / "lora.safetensors.checkpoint.pt"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "step000099.png")

    def attempt(budget):
        validation = demo_validation(tmp_path / "validation.png", lora_validation_every=1, lora_validation_classes=2,
                                     lora_validation_seeds=[0], lora_validation_steps=2)
        train_lora(tiny_sd, train, tmp_path / "lora.safetensors", SETTINGS, checkpoint_path=ckpt,
                   checkpointing=Checkpointing(), budget=budget, validation=validation, device="cpu")

    with pytest.raises(BudgetExhausted, match="stopped at step 2 of 4"):
        attempt(StopAfter(2))
    assert sorted(p.name for p in folder.iterdir()) == [f"step{k:06d}.png" for k in range(3)]
    assert not (tmp_path / "validation.png").exists()
    kept = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    Image.new("RGB", (8, 8)).save(folder / "step000003.png")
    attempt(StopAfter(99))
    steps = sorted(folder.iterdir())
    assert [p.name for p in steps] == [f"step{k:06d}.png" for k in range(5)]
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in steps[:3]} == kept
    assert Image.open(steps[3]).size == Image.open(steps[4]).size != (8, 8)
    assert Image.open(tmp_path / "validation.png").size[1] == sum(heights(steps))


def test_validation_png_stacks_at_most_twelve_blocks_evenly_spaced_first_and_last_kept(tmp_path):
    """20 step files (some wider, as a retry's other settings would draw): 12 blocks, steps 0 and 95 among
    them, in step order (step 1000000 past six digits last), narrower ones padded in white."""
    from realfake.lora_validation import MAX_BLOCKS

    validation = LoraValidation(out_path=str(tmp_path / "validation.png"), rows=[], every=5, classes=None, seeds=[0])
    validation.folder.mkdir()
    steps = [*range(0, 95, 5), 1_000_000]
    for k, step in enumerate(steps):  # block k: k + 1 rows of grey level k, 10 or 12 px wide
        Image.new("RGB", (12 if k % 2 else 10, k + 1), (k, k, k)).save(validation.step_path(step))
    assert validation.step_path(1_000_000).name == "step1000000.png"
    stacked = np.asarray(Image.open(validation.finish()))
    levels = list(dict.fromkeys(stacked[:, 0, 0].tolist()))  # the blocks' grey levels, top to bottom
    assert len(levels) == MAX_BLOCKS == 12 and levels[0] == 0 and levels[-1] == len(steps) - 1
    assert levels == sorted(levels) and stacked.shape == (sum(k + 1 for k in levels), 12, 3)
    assert (stacked[:1, 10:] == 255).all()  # block 0 (10 px wide) padded to 12 in white
