"""One way to name a model: a Hugging Face hub id or a local ``save_pretrained`` folder.

Compute nodes are often offline: ``check_model`` says at start-up, before anything is queued,
when a configured model is neither a complete local folder nor in the local hub cache, and
gives the command that downloads it (run once on a login node).
"""

from __future__ import annotations

import os
from pathlib import Path


class ModelPathError(FileNotFoundError):
    pass


# kind -> (the file that marks a complete folder, what to download and where)
MODEL_FILES = {
    "stable_diffusion": ("model_index.json",
                         "hf download {id} --exclude '*.ckpt' --exclude 'v1-5-*' --exclude '*.fp16.*' "
                         "--exclude '*.bin' --exclude '*non_ema*' --local-dir /models/stable-diffusion-v1-5"),
    "clip": ("preprocessor_config.json", "hf download {id} --include '*.json' --include '*.txt' "
                                         "--include model.safetensors --local-dir /models/clip-vit-large-patch14"),
    "blip2": ("config.json", "hf download {id} --exclude '*.bin' --local-dir /models/blip2-opt-2.7b"),
}


def looks_like_path(name: str) -> bool:
    """Anything absolute, starting with '.' or '~' or not of the form ``owner/name`` is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") != 1


def resolve_model(name: str, what: str = "model") -> str:
    """Return ``name`` if it is an existing folder or a hub id; fail clearly on a missing folder."""
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return str(path)
    if looks_like_path(name) or path.exists():
        raise ModelPathError(f"{what} folder {name} does not exist (expected a save_pretrained folder "
                             f"or a hub id such as 'owner/name')")
    return name


def in_hub_cache(repo_id: str, filename: str) -> bool:
    """Whether the local Hugging Face cache holds ``filename`` of ``repo_id`` (no network)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename), str)


def check_model(name: str, key: str, kind: str) -> str | None:
    """None if ``name`` (a folder or hub id) can load without a network, else what is wrong and
    how to fix it, naming the config ``key``."""
    marker, download = MODEL_FILES[kind]
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        if (path / marker).is_file():
            return None
        return f"{key}: {name} is not a complete {kind} folder (it lacks {marker})"
    if looks_like_path(name):
        return f"{key}: the folder {name} does not exist"
    if in_hub_cache(name, marker):
        return None
    return (f"{key}: {name} is neither a local folder nor in the Hugging Face cache (compute nodes are "
            f"often offline; HF_HUB_OFFLINE=1 makes sure). Download it once on a login node: "
            f"`{download.format(id=name)}`, and set {key} to that folder")


def check_pretrained_weights(pretrained, arch: str, key: str) -> str | None:
    """None if a recipe's ``pretrained`` loads offline: false, an existing weights file, or true
    with timm's default weights of ``arch`` in the hub cache (never a download on a node)."""
    if pretrained is False:
        return None
    if isinstance(pretrained, str):
        return None if Path(pretrained).is_file() else f"{key}: the weights file {pretrained} does not exist"
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    hub_id = (cfg.hf_hub_id or "") if cfg is not None else ""
    if hub_id and in_hub_cache(hub_id, "model.safetensors"):
        return None
    return (f"{key}: true would download timm's {arch} weights ({hub_id or arch}) on a compute node. "
            f"Download a file once on a login node, e.g. `hf download timm/resnet50.tv_in1k model.safetensors "
            f"--local-dir /models/resnet50.tv_in1k`, and name it: pretrained: /models/resnet50.tv_in1k/model.safetensors")
