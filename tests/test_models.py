"""Real (tiny) models through the library's stages."""

import tarfile

import numpy as np
import pytest
import torch

from realfake.conditioning import encode_text
from realfake.diffusion import load_sd_components
from realfake.lora import LoraSettings, load_lora, save_lora, train_lora

SETTINGS = LoraSettings(resolution=32, batch_size=10, max_steps=4, random_flip=True,
                        center_crop=False, learning_rate=1e-2, seed=3)


def test_rebuilt_clip_tokenizer_matches_clip_bpe(tiny_sd):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_sd, subfolder="tokenizer")
    assert len(tok) == 49408 and tok.model_max_length == 77
    # the ids of CLIP ViT-L/14's own tokenizer (SD1.5's): BOS photo of a dog EOS
    assert tok("photo of a dog").input_ids == [49406, 1125, 539, 320, 1929, 49407]
    assert tok.decode(tok("photo of a tench").input_ids[1:-1]) == "photo of a tench"


def _unet_output(unet, tokenizer, text_encoder):
    torch.manual_seed(0)
    states = encode_text(tokenizer, text_encoder, ["photo of seven"])
    with torch.no_grad():
        return unet(torch.randn(1, 4, 8, 8), torch.tensor([500]), states).sample


def test_lora_round_trip_through_a_stock_pipeline(tiny_sd, tmp_path):
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig

    parts = load_sd_components(tiny_sd)
    base = _unet_output(parts.unet, parts.tokenizer, parts.text_encoder)
    parts.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,  # random, non-zero
                                      target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    tuned = _unet_output(parts.unet, parts.tokenizer, parts.text_encoder)
    save_lora(parts.unet, tmp_path / "lora.safetensors")

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None)
    load_lora(pipe, tmp_path / "lora.safetensors")
    loaded = _unet_output(pipe.unet, pipe.tokenizer, pipe.text_encoder)
    assert not torch.allclose(base, tuned)
    torch.testing.assert_close(loaded, tuned)


def test_lora_training_resumes_exactly_after_a_kill(tiny_sd, digits, tmp_path, monkeypatch):
    import realfake.lora as lora_mod

    train = digits[digits.split == "train"].reset_index(drop=True)
    guidance = torch.randn(len(train), 64)
    whole = tmp_path / "whole.safetensors"
    stats = train_lora(tiny_sd, train, whole, SETTINGS, guidance=guidance)
    assert stats["steps"] == 4 and stats["l_mmd"] <= stats["l_simple"]

    ckpt = tmp_path / "resumed.safetensors.checkpoint.pt"
    real_save = lora_mod.save_lora
    monkeypatch.setattr(lora_mod, "save_lora", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # killed after step 4, before the output was written
        train_lora(tiny_sd, train, tmp_path / "resumed.safetensors", SETTINGS, guidance=guidance,
                   checkpoint_path=ckpt, checkpoint_every=2)
    assert ckpt.exists() and not (tmp_path / "resumed.safetensors").exists()
    assert torch.load(ckpt, weights_only=True)["progress"] == 2
    monkeypatch.setattr(lora_mod, "save_lora", real_save)
    train_lora(tiny_sd, train, tmp_path / "resumed.safetensors", SETTINGS, guidance=guidance,
               checkpoint_path=ckpt, checkpoint_every=2)
    assert not ckpt.exists()

    from safetensors.torch import load_file

    a, b = load_file(whole), load_file(tmp_path / "resumed.safetensors")
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_shards_are_deterministic_and_webdataset_readable(tiny_sd, digits, tmp_path):
    import webdataset as wds

    from realfake.synthesis import SynthesisSettings, load_pipeline, read_shard_meta, synthesize_shard

    train = digits[digits.split == "train"].reset_index(drop=True)
    settings = SynthesisSettings(resolution=32, num_inference_steps=4, seed=7)
    pipe = load_pipeline(tiny_sd, settings, device="cpu")
    guidance = torch.randn(len(train), 64)
    for name, batch in (("a.tar", 4), ("b.tar", 3)):  # batch size must not change the images
        synthesize_shard(pipe, tmp_path / name, shard=9, shard_size=6, train=train,
                         settings=settings, guidance=guidance, batch_size=batch)
    meta = read_shard_meta(tmp_path / "a.tar")
    assert [m["index"] for m in meta] == list(range(54, 60))
    assert [m["source_index"] for m in meta] == [i % 50 for i in range(54, 60)]
    assert meta[0]["prompt"] == f"photo of {train.class_name[4]}"
    samples = list(wds.WebDataset(str(tmp_path / "a.tar"), shardshuffle=False).decode("pil")
                   .to_tuple("png", "cls"))
    assert len(samples) == 6 and samples[0][0].size == (32, 32)
    assert [c for _, c in samples] == train.label[[i % 50 for i in range(54, 60)]].tolist()
    other = list(wds.WebDataset(str(tmp_path / "b.tar"), shardshuffle=False).decode("rgb8").to_tuple("png"))
    mine = list(wds.WebDataset(str(tmp_path / "a.tar"), shardshuffle=False).decode("rgb8").to_tuple("png"))
    diffs = [np.abs(x[0].astype(int) - y[0].astype(int)).max() for x, y in zip(mine, other)]
    assert max(diffs) <= 2  # identical up to float summation order


def test_text_to_image_without_latent_prior(tiny_sd, digits, tmp_path):
    from realfake.synthesis import SynthesisSettings, load_pipeline, synthesize_shard

    train = digits[digits.split == "train"].reset_index(drop=True)
    settings = SynthesisSettings(latent_prior=False, resolution=32, num_inference_steps=2)
    pipe = load_pipeline(tiny_sd, settings, device="cpu")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert synthesize_shard(pipe, tmp_path / "t.tar", 0, 3, train, settings) == 3
    assert len(tarfile.open(tmp_path / "t.tar").getnames()) == 9


def test_guidance_class_means_and_rows(digits, tmp_path):
    from realfake.guidance import class_means, clip_image_embeddings, guidance_rows, save_guidance
    from realfake.tiny_models import build_tiny_clip_vision

    build_tiny_clip_vision(tmp_path / "clip")
    train = digits[digits.split == "train"].reset_index(drop=True)
    emb = clip_image_embeddings(str(tmp_path / "clip"), train.path.tolist(), batch_size=16, device="cpu")
    assert emb.shape == (50, 64)
    means = class_means(emb, train.label.to_numpy(), 10)
    torch.testing.assert_close(means[3], emb[torch.as_tensor(train.label.to_numpy() == 3)].mean(0))
    sampled = class_means(emb, train.label.to_numpy(), 10, samples_per_class=2, seed=1)
    assert not torch.allclose(sampled, means)
    save_guidance(tmp_path / "g.safetensors", means, emb)
    rows = guidance_rows(tmp_path / "g.safetensors", "class_mean", train.label, train["index"])
    torch.testing.assert_close(rows[7], means[train.label[7]])
    rows = guidance_rows(tmp_path / "g.safetensors", "per_image", train.label, train["index"])
    torch.testing.assert_close(rows, emb)


def test_blip2_captions_one_per_image(digits, tmp_path):
    from realfake.captions import caption_images
    from realfake.tiny_models import build_tiny_blip2

    build_tiny_blip2(tmp_path / "blip2")
    paths = digits.path.tolist()[:5]
    captions = caption_images(str(tmp_path / "blip2"), paths, max_new_tokens=4, batch_size=2, device="cpu")
    assert len(captions) == 5 and all(isinstance(c, str) and c for c in captions)


def test_classifier_learns_digits_and_resumes(digits, tmp_path, monkeypatch, caplog):
    import realfake.classifier as classifier_mod
    from realfake.classifier import (ImageList, Recipe, eval_transform, evaluate, load_classifier,
                                     train_classifier, train_transform)

    recipe = Recipe(arch="resnet10t", epochs=3, batch_size=16, lr=0.05, decay_milestones=(2,),
                    hflip=0.0, crop_scale=(0.8, 1.0), train_resolution=32, test_resolution=32, crop_pct=1.0)
    train, test = digits[digits.split == "train"], digits[digits.split == "test"]
    data = ImageList(train.path, train.label, train_transform(recipe))
    ckpt = tmp_path / "c.pt.checkpoint.pt"
    real_save = classifier_mod.torch_save

    def killed_at_the_end(path, obj):
        if path == tmp_path / "c.pt":
            raise KeyboardInterrupt
        real_save(path, obj)

    monkeypatch.setattr(classifier_mod, "torch_save", killed_at_the_end)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(data, 10, [str(i) for i in range(10)], recipe, tmp_path / "c.pt", ckpt, device="cpu")
    assert torch.load(ckpt, weights_only=True)["progress"] == 2 and not (tmp_path / "c.pt").exists()
    monkeypatch.setattr(classifier_mod, "torch_save", real_save)
    with caplog.at_level("INFO"):
        stats = train_classifier(data, 10, [str(i) for i in range(10)], recipe, tmp_path / "c.pt", ckpt,
                                 device="cpu")
    assert "resumed from" in caplog.text and stats["epoch"] == 3
    assert not ckpt.exists()
    model, loaded = load_classifier(tmp_path / "c.pt", device="cpu")
    assert loaded == recipe
    metrics = evaluate(model, ImageList(test.path, test.label, eval_transform(recipe)))
    assert metrics["images"] == len(test) and 0 <= metrics["top1"] <= metrics["top5"] <= 100

    class Fixed(torch.nn.Module):  # logits favour class 7, then 3
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 7], logits[:, 3] = 2.0, 1.0
            return logits

    threes = test[test.label == 3]
    data = ImageList(threes.path, threes.label, eval_transform(recipe))
    assert evaluate(Fixed(), data)["top1"] == 0.0  # 7 wins among all classes
    assert evaluate(Fixed(), data, keep_classes=[1, 3, 5])["top1"] == 100.0  # 7's logit is dropped
