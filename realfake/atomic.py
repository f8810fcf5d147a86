"""Atomic output writing: write to a temporary sibling, then rename over the target.

A job killed mid-write leaves at most a ``.tmp-*`` file, never a file that looks complete. The
temporary name is unique (``mkstemp``: two writers, even on two nodes, never share one), and its
data reach the disk (``fsync``) before the rename, which is then made durable too: on file systems
that may reorder them, a crash just after the rename never leaves a complete name on empty data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    ``suffix`` keeps the extension for writers that infer the format from it.
    Works for files and for directories (``save_pretrained`` folders).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{target.name}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (file or directory)
    try:
        yield tmp
        durable(tmp)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_entry(target.parent)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def durable(*paths: str | os.PathLike) -> None:
    """fsync files, and every file and folder of folders (a ``save_pretrained`` folder before its rename)."""
    for path in map(Path, paths):
        for item in [*path.rglob("*"), path] if path.is_dir() else [path]:
            if item.is_file() or item.is_dir():
                fsync_entry(item)


def fsync_entry(path: str | os.PathLike) -> None:
    """fsync one file or folder (a folder: its entries, so a rename into it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | os.PathLike, obj) -> None:
    import json

    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_parquet(target: str | os.PathLike, frame) -> None:
    with atomic_path(target, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(target: str | os.PathLike, frame) -> None:
    with atomic_path(target, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)


def torch_save(target: str | os.PathLike, obj) -> None:
    import torch

    with atomic_path(target, suffix=".pt") as tmp:
        torch.save(obj, tmp)
