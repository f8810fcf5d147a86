"""One way to name a model: a Hugging Face hub id (``owner/name``, or ``owner/name@revision`` to
pin a commit) or a local ``save_pretrained`` folder.

Compute nodes are often offline: ``check_model`` says at start-up, before anything is queued,
when a configured model is neither a complete local folder nor in the local hub cache, and
gives the command that downloads it (run once on a login node). Two other checks guard what
loading or building a model can do to a machine: ``check_file_sha256`` (a TorchScript file runs
code when loaded) and ``check_tiny_target`` (``models.build_tiny`` deletes the folders it builds).
"""

from __future__ import annotations

import os
from pathlib import Path

from realfake.digests import file_sha256

# written into every folder the tiny-model builders make: only such a folder may be deleted to rebuild it
TINY_MARKER = ".realfake-tiny-model"


class ModelPathError(FileNotFoundError):
    pass


class UnverifiedFileError(ValueError):
    """A file that runs code when loaded, whose SHA-256 is missing or not the configured one."""


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


def split_revision(name: str) -> tuple[str, str | None]:
    """``owner/name@revision`` -> (``owner/name``, revision); a folder or an unpinned id: (name, None)."""
    if looks_like_path(name) or Path(os.path.expanduser(name)).exists() or "@" not in name:
        return name, None
    repo_id, _, revision = name.partition("@")
    return repo_id, revision or None


def pretrained_source(name: str, what: str = "model") -> tuple[str, dict]:
    """What ``from_pretrained`` takes for ``name``: the folder or hub id, and ``revision=`` when the
    id pins one (``owner/name@revision``)."""
    repo_id, revision = split_revision(name)
    return resolve_model(repo_id, what), ({"revision": revision} if revision else {})


def resolve_model(name: str, what: str = "model") -> str:
    """Return ``name`` if it is an existing folder or a hub id; fail clearly on a missing folder."""
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return str(path)
    if looks_like_path(name) or path.exists():
        raise ModelPathError(f"{what} folder {name} does not exist (expected a save_pretrained folder "
                             f"or a hub id such as 'owner/name')")
    return name


def in_hub_cache(repo_id: str, filename: str, revision: str | None = None) -> bool:
    """Whether the local Hugging Face cache holds ``filename`` of ``repo_id`` (at ``revision``;
    None: the cached main) (no network)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str)


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
    repo_id, revision = split_revision(name)
    if in_hub_cache(repo_id, marker, revision):
        return None
    pinned = f" at revision {revision}" if revision else ""
    command = download.format(id=repo_id + (f" --revision {revision}" if revision else ""))
    return (f"{key}: {name} is neither a local folder nor in the Hugging Face cache{pinned} (compute nodes "
            f"are often offline; HF_HUB_OFFLINE=1 makes sure). Download it once on a login node: "
            f"`{command}`, and set {key} to that folder")


def check_file_sha256(path: str, expected: str | None, key: str) -> str | None:
    """None if the file at ``path`` exists and its SHA-256 is ``expected``, else what is wrong,
    naming the config ``key``. For files that run code when loaded (TorchScript): start-up and
    the job itself check the same way before anything loads them."""
    if not Path(path).is_file():
        return f"{key}.path: {path} does not exist"
    if not expected:
        return (f"{key}.sha256 is not set for {path}: a TorchScript file runs code when it is loaded, so it is "
                f"loaded only if its SHA-256 matches. After downloading it, run `sha256sum {path}` and set "
                f"{key}.sha256 to the 64 hex digits (docs/paper_config.md)")
    if (actual := file_sha256(path)) != expected:
        return (f"{key}: {path} has SHA-256 {actual}, not the {expected} that {key}.sha256 expects: a different "
                f"or damaged file, and it is not loaded (it would run code). Download it again, or, if you trust "
                f"this file, set {key}.sha256 to its hash")
    return None


def verify_file_sha256(path: str, expected: str | None, key: str) -> None:
    """``check_file_sha256`` in the job itself, right before the load: it must not trust that
    start-up checked (a file replaced since, a job run on its own)."""
    if problem := check_file_sha256(path, expected, key):
        raise UnverifiedFileError(problem)


def check_tiny_target(folder: str, key: str) -> str | None:
    """None if ``models.build_tiny`` may (re)build ``folder``: a path inside the working directory
    that is absent or was made by the tiny-model builders (it holds ``TINY_MARKER``). Snakemake
    deletes a ``directory()`` output before its job runs: anything else there would be lost."""
    path = Path(os.path.expanduser(folder))
    if path.is_absolute() or not path.resolve().is_relative_to(Path.cwd().resolve()):
        return (f"{key}: {folder} is outside the working directory, and models.build_tiny: true deletes and "
                f"rebuilds the folders it names. Name a folder inside it (e.g. models/tiny-sd), or set "
                f"models.build_tiny: false to use an existing model")
    if (path.exists() or path.is_symlink()) and not (path / TINY_MARKER).is_file():
        return (f"{key}: {folder} exists and was not built by the tiny-model builders (it holds no "
                f"{TINY_MARKER}), and models.build_tiny: true would delete it to build its own. Point {key} at "
                f"a new folder, or delete this one yourself if it is an old tiny model")
    return None


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
