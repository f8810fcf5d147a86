"""One way to name a model: a Hugging Face hub id or a local ``save_pretrained`` folder."""

from __future__ import annotations

import os
from pathlib import Path


class ModelPathError(FileNotFoundError):
    pass


def resolve_model(name: str, what: str = "model") -> str:
    """Return ``name`` if it is an existing folder or a hub id; fail clearly on a missing folder.

    Anything absolute, starting with '.', '~' or holding more than one '/' is a path; a
    hub id has the form ``owner/name``.
    """
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return str(path)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_like_path or path.exists():
        raise ModelPathError(f"{what} folder {name} does not exist (expected a save_pretrained folder "
                             f"or a hub id such as 'owner/name')")
    return name
