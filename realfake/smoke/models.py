"""The paper's models at full size with random weights, in the layouts their hubs publish.

Every architecture is the real one (same classes, same configs as the hub's ``config.json``),
so that shapes, widths, processors and folder layouts meet the code exactly as a user's
downloads will. One thing is shrunk, because 24 GiB forces it: BLIP-2's OPT-2.7B language
model keeps its width (2,560), heads and vocabulary but has ``BLIP2_OPT_LAYERS`` of its 32
decoder layers (15.5 GB of float32 weights otherwise, beside another job's). OPT's tokenizer
(GPT-2's byte-level BPE) cannot be downloaded here: it is a byte-level BPE of the same class
with the 256 byte tokens and no merges.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from realfake.atomic import atomic_path
from realfake.tiny_models import CLIP_BOS, CLIP_EOS, CLIP_MAX_LENGTH, _bytes_to_unicode, write_clip_tokenizer

BLIP2_OPT_LAYERS = 4  # of OPT-2.7B's 32
# the configs of stable-diffusion-v1-5's unet/ and vae/ folders (the classes' other defaults are SD1.5's)
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4)
CLIP_VIT_L14_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=CLIP_MAX_LENGTH, hidden_act="quick_gelu",
                         projection_dim=768, bos_token_id=CLIP_BOS, eos_token_id=CLIP_EOS, pad_token_id=1)
CLIP_VIT_L14_VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                           image_size=224, patch_size=14, hidden_act="quick_gelu", projection_dim=768)
# the folder names a user's downloads get (docs/paper_config.md: "Models: download once")
FOLDERS = {"stable_diffusion": "stable-diffusion-v1-5", "clip": "clip-vit-large-patch14",
           "blip2": "blip2-opt-2.7b", "resnet50": "resnet50.tv_in1k", "sscd": "sscd"}
SSCD_FILE = "sscd_disc_large.torchscript.pt"


def clip_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})


def build_stable_diffusion_v15(out_dir: str | os.PathLike, seed: int = 0) -> None:
    """``stable-diffusion-v1-5`` as ``save_pretrained`` writes it: model_index.json, unet/, vae/,
    text_encoder/, tokenizer/, scheduler/ (PNDM, as published), safety_checker/, feature_extractor/."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**SD15_UNET)
    vae = AutoencoderKL(**SD15_VAE)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True,
                              steps_offset=1)
    safety = StableDiffusionSafetyChecker(CLIPConfig(text_config=CLIP_VIT_L14_TEXT,
                                                     vision_config=CLIP_VIT_L14_VISION, projection_dim=768))
    with atomic_path(out_dir) as tmp:
        write_clip_tokenizer(tmp / "tokenizer")
        pipe = StableDiffusionPipeline(
            vae=vae, unet=unet, text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_VIT_L14_TEXT)),
            tokenizer=CLIPTokenizer.from_pretrained(tmp / "tokenizer"), scheduler=scheduler,
            safety_checker=safety, feature_extractor=clip_image_processor(), requires_safety_checker=True)
        pipe.save_pretrained(tmp)


def build_clip_vit_large_patch14(out_dir: str | os.PathLike, seed: int = 0) -> None:
    """``openai/clip-vit-large-patch14``: both towers, the 768-d projection, tokenizer, image processor."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(text_config=CLIP_VIT_L14_TEXT, vision_config=CLIP_VIT_L14_VISION, projection_dim=768)
    with atomic_path(out_dir) as tmp:
        write_clip_tokenizer(tmp)
        CLIPModel(config).save_pretrained(tmp)
        clip_image_processor().save_pretrained(tmp)


OPT_VOCAB = 50265  # OPT's tokenizer (its embedding has 50,272 rows)


def write_byte_level_tokenizer(out_dir: Path):
    """A GPT-2-class byte-level BPE (OPT's tokenizer class) with OPT's special tokens and ids and
    OPT's vocabulary size: the byte tokens, then words (" w300", ...) up to 50,265, so that every
    id a random OPT generates decodes to text, as with the real vocabulary."""
    from transformers import GPT2Tokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # OPT: bos/eos </s> = 2, pad 1, unk 3
    tokens = specials + list(_bytes_to_unicode().values())
    tokens += [f"\u0120w{i}" for i in range(len(tokens), OPT_VOCAB)]  # \u0120: a leading space, byte-level
    vocab = {token: i for i, token in enumerate(tokens)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab))
    (out_dir / "merges.txt").write_text("#version: 0.2\n")
    return GPT2Tokenizer.from_pretrained(out_dir, bos_token="</s>", eos_token="</s>", pad_token="<pad>",
                                         unk_token="<unk>")


def build_blip2_opt_2_7b(out_dir: str | os.PathLike, seed: int = 0, opt_layers: int = BLIP2_OPT_LAYERS) -> None:
    """``Salesforce/blip2-opt-2.7b``: EVA ViT-g (39 layers, 1,408 wide), Q-Former (32 queries),
    OPT-2.7B's width with ``opt_layers`` decoder layers, BLIP's 224-px image processor."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor, OPTConfig

    torch.manual_seed(seed)
    num_query_tokens = 32
    with atomic_path(out_dir) as tmp:
        tokenizer = write_byte_level_tokenizer(tmp)
        tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
        text = OPTConfig(vocab_size=50272, hidden_size=2560, ffn_dim=10240, num_hidden_layers=opt_layers,
                         num_attention_heads=32, word_embed_proj_dim=2560, max_position_embeddings=2048,
                         bos_token_id=2, eos_token_id=2, pad_token_id=1)
        config = Blip2Config(vision_config={}, qformer_config={}, text_config=text.to_dict(),
                             num_query_tokens=num_query_tokens,
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
        Blip2ForConditionalGeneration(config).save_pretrained(tmp)
        processor = Blip2Processor(image_processor=BlipImageProcessor(size={"height": 224, "width": 224}),
                                   tokenizer=tokenizer, num_query_tokens=num_query_tokens)
        processor.save_pretrained(tmp)


def build_resnet50_weights(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """timm's ``resnet50`` ImageNet weights as the hub publishes them (``model.safetensors``,
    1,000 classes): the file a recipe's ``pretrained`` names."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model("resnet50", num_classes=1000)
    out = Path(out_dir) / "model.safetensors"
    with atomic_path(out, suffix=".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    return out


class _SSCDShaped(torch.nn.Module):
    """SSCD's disc_large: ResNeXt101-32x4d trunk, GeM pooling, 1,024-d L2-normalised descriptor."""

    def __init__(self):
        import timm

        super().__init__()
        self.trunk = timm.create_model("resnext101_32x4d", num_classes=0, global_pool="")
        self.project = torch.nn.Linear(2048, 1024)

    def forward(self, x):
        features = self.trunk(x).clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1.0 / 3)  # GeM, p = 3
        return torch.nn.functional.normalize(self.project(features), dim=1)


def build_sscd_torchscript(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """A TorchScript file of SSCD's disc_large shape (its authors publish TorchScript)."""
    torch.manual_seed(seed)
    model = _SSCDShaped().eval()
    out = Path(out_dir) / SSCD_FILE
    with torch.no_grad(), atomic_path(out, suffix=".pt") as tmp:
        torch.jit.trace(model, torch.zeros(1, 3, 320, 320)).save(str(tmp))
    return out


BUILDERS = {"stable_diffusion": build_stable_diffusion_v15, "clip": build_clip_vit_large_patch14,
            "blip2": build_blip2_opt_2_7b, "resnet50": build_resnet50_weights, "sscd": build_sscd_torchscript}


def build_paper_models(root: str | os.PathLike, kinds=tuple(FOLDERS)) -> dict[str, str]:
    """Build the models of ``kinds`` under ``root`` (each once: an existing folder is kept) and
    return kind -> the path a config names (folder, or file for the ResNet-50 and SSCD)."""
    root = Path(root)
    paths = {}
    for kind in kinds:
        folder = root / FOLDERS[kind]
        target = {"resnet50": folder / "model.safetensors", "sscd": folder / SSCD_FILE}.get(kind, folder)
        if not target.exists():
            BUILDERS[kind](folder)
        paths[kind] = str(target)
    return paths
