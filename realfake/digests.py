"""Content identities: the sha256 of a file or of a folder's files.

What a checkpoint's fingerprint holds of its inputs (``checkpoints``), what a downloaded file
that runs code when loaded is checked against (``models.check_file_sha256``), what a shard's
identity is (``shards.shard_identity``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's files (their relative names and contents, hidden files
    such as builders' markers left out): a manifest, a guidance file, a ``save_pretrained`` folder."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path)
        if not any(part.startswith(".") for part in relative.parts):
            digest.update(f"{relative.as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()
