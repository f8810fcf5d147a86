"""Tiny, randomly initialised stand-ins for the paper's models, saved in the standard layouts.

The embedded demo cannot download Stable Diffusion, CLIP or BLIP-2, so it builds miniature
models of the same classes and saves them with ``save_pretrained``. Every stage then loads
them with the same ``from_pretrained(path)`` code that loads the real model ids. Each folder
gets ``models.TINY_MARKER``: the workflow deletes a folder to rebuild it only if it holds one.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import torch

from realfake.atomic import atomic_path
from realfake.models import TINY_MARKER

CLIP_BOS, CLIP_EOS = 49406, 49407  # <|startoftext|>, <|endoftext|> in CLIP's BPE vocabulary
CLIP_MAX_LENGTH = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-unicode table (the one CLIP's tokenizer is built on)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def write_clip_tokenizer(out_dir: str | os.PathLike) -> None:
    """Save a CLIPTokenizer rebuilt offline from the BPE merges that open_clip ships.

    Same construction as CLIP's own tokenizer: byte tokens, their end-of-word forms, the
    48,894 merges, then the two special tokens (49,408 entries in all).
    """
    import open_clip
    from transformers import CLIPTokenizer

    bpe_path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(bpe_path) as f:
        merges = f.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(_bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    # vocab_file=... silently yields an empty vocabulary in transformers 5: load from the folder.
    tokenizer = CLIPTokenizer.from_pretrained(out_dir, model_max_length=CLIP_MAX_LENGTH)
    if len(tokenizer) != 49408 or tokenizer.bos_token_id != CLIP_BOS:
        raise RuntimeError(f"rebuilt CLIP tokenizer is wrong: {len(tokenizer)} tokens")
    tokenizer.save_pretrained(out_dir)


def mark_tiny(folder: str | os.PathLike) -> None:
    """Mark a folder as built here (``models.check_tiny_target``: only such a folder is rebuilt)."""
    (Path(folder) / TINY_MARKER).write_text("built by realfake's tiny-model builders: safe to delete and rebuild\n")


def tiny_text_encoder(hidden_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=CLIP_MAX_LENGTH,
        projection_dim=hidden_size, bos_token_id=CLIP_BOS, eos_token_id=CLIP_EOS, pad_token_id=CLIP_EOS,
    )
    return CLIPTextModel(config)


def build_tiny_stable_diffusion(out_dir: str | os.PathLike, resolution: int = 32,
                                text_dim: int = 64, seed: int = 0) -> None:
    """A Stable-Diffusion-1.5-shaped pipeline (UNet, KL-VAE, CLIP text encoder), random weights."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTokenizer

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=16,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64), sample_size=resolution,  # 4x downsampling, like SD's 8x
    )
    unet = UNet2DConditionModel(
        sample_size=resolution // 4, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32, cross_attention_dim=text_dim,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    # SD1.5's training noise schedule (scaled-linear betas, 1000 steps).
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, steps_offset=1)
    with atomic_path(out_dir) as tmp:
        write_clip_tokenizer(tmp / "tokenizer")
        pipe = StableDiffusionPipeline(
            vae=vae, unet=unet, text_encoder=tiny_text_encoder(text_dim),
            tokenizer=CLIPTokenizer.from_pretrained(tmp / "tokenizer"), scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        pipe.save_pretrained(tmp)
        mark_tiny(tmp)


def build_tiny_clip(out_dir: str | os.PathLike, resolution: int = 32, projection_dim: int = 64,
                    seed: int = 0) -> None:
    """A CLIP (image and text towers, like openai/clip-vit-large-patch14) with its tokenizer and
    image processor. The guidance and gap stages load its image tower with projection."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    text = tiny_text_encoder(projection_dim).config.to_dict()
    vision = dict(image_size=resolution, patch_size=resolution // 4, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, projection_dim=projection_dim)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    processor = CLIPImageProcessor(size={"shortest_edge": resolution},
                                   crop_size={"height": resolution, "width": resolution})
    with atomic_path(out_dir) as tmp:
        write_clip_tokenizer(tmp)
        CLIPTokenizer.from_pretrained(tmp)  # checks the folder loads as the real one does
        CLIPModel(config).save_pretrained(tmp)
        processor.save_pretrained(tmp)
        mark_tiny(tmp)


def build_tiny_blip2(out_dir: str | os.PathLike, resolution: int = 32, seed: int = 0) -> None:
    """A BLIP-2 (ViT + Q-Former + OPT) captioner of the class of Salesforce/blip2-opt-2.7b."""
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        BlipImageProcessor,
        CLIPTokenizer,
        OPTConfig,
    )

    torch.manual_seed(seed)
    num_query_tokens = 4
    with atomic_path(out_dir) as tmp:
        write_clip_tokenizer(tmp)
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
        tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
        image_token_id = tokenizer.convert_tokens_to_ids("<image>")
        text_config = OPTConfig(vocab_size=len(tokenizer), hidden_size=32, ffn_dim=64,
                                num_hidden_layers=1, num_attention_heads=2, word_embed_proj_dim=32,
                                max_position_embeddings=64, bos_token_id=CLIP_BOS,
                                eos_token_id=CLIP_EOS, pad_token_id=CLIP_EOS)
        config = Blip2Config(
            vision_config=dict(image_size=resolution, patch_size=resolution // 4, hidden_size=32,
                               intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
            qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, encoder_hidden_size=32, vocab_size=64),
            text_config=text_config.to_dict(), num_query_tokens=num_query_tokens,
            image_token_index=image_token_id,
        )
        model = Blip2ForConditionalGeneration(config)
        image_processor = BlipImageProcessor(size={"height": resolution, "width": resolution})
        processor = Blip2Processor(image_processor=image_processor, tokenizer=tokenizer,
                                   num_query_tokens=num_query_tokens)
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        mark_tiny(tmp)
