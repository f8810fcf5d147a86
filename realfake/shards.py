"""Synthetic-image shards: the one module that knows their layout, writes and reads them.

A shard is a WebDataset tar (``{key}.{png|jpg|webp}``, ``{key}.cls``, ``{key}.json`` per
sample; streamable by ``webdataset``) written with fixed tar metadata, so the same images
give the same bytes. Beside it, written atomically with it, lies its index: a wids
shard index (``wids-shard-index-v1``: url, nsamples, filesize, md5sum) whose entry also
holds each member's byte offset, size and crc32 and each sample's label, and the sha256 of its
labels. Readers open shards from their index without scanning tar headers, check on open that
the index agrees with itself (as many labels as images, their digest, each label a class) and
check every member they read against its crc32 (a corrupted sample fails naming shard, member
and offset); ``verify_shard`` checks a whole shard against its md5, every index label against
the tar's ``.cls`` member, and names the bad members.

Shard ``s`` holds synthetic images ``[s*S, (s+1)*S)`` whatever the scales, so any shard
can be regenerated alone, identically, and scales share shards.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import warnings
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from realfake.atomic import durable, fsync_entry
from realfake.digests import file_sha256

INDEX_KIND = "wids-shard-index-v1"
IMAGE_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


class ShardError(RuntimeError):
    """A shard that cannot be trusted: the message names the shard file and what is wrong."""


def shard_range(shard: int, shard_size: int) -> range:
    """Shard ``s`` holds synthetic images ``[s*S, (s+1)*S)``, whatever the scales."""
    return range(shard * shard_size, (shard + 1) * shard_size)


def index_path(shard_path: str | os.PathLike) -> Path:
    """``00012.tar`` -> ``00012.index.json``."""
    shard_path = Path(shard_path)
    return shard_path.with_name(shard_path.stem + ".index.json")


def encode_image(image, image_format: str = "png", quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG")
    elif image_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    elif image_format == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    else:
        raise ValueError(f"image format must be one of {sorted(IMAGE_EXTENSIONS)}, got {image_format!r}")
    return buffer.getvalue()


class ShardWriter:
    """Write samples to a temporary tar; on a clean exit, write the index and rename both.

    A writer killed mid-way leaves only ``.tmp-*.partial`` files, which never look finished
    (and are removed by the next writer of that shard).
    """

    def __init__(self, path: str | os.PathLike, image_format: str = "png", image_quality: int = 95,
                 encode_workers: int = 0, max_pending: int = 256):
        self.path, self.index = Path(path), index_path(path)
        self.image_format, self.image_quality = image_format, image_quality
        self.ext = IMAGE_EXTENSIONS[image_format]
        self.keys, self.labels, self.images, self.metas = [], [], [], []
        # Images are encoded by a thread pool (Pillow releases the GIL while it encodes), so the
        # GPU goes on generating; they are written in order, so the bytes do not change.
        self.pool = ThreadPoolExecutor(encode_workers) if encode_workers else None
        self.pending, self.max_pending = deque(), max_pending

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f".tmp-{self.path.name}-*.partial"):
            stale.unlink(missing_ok=True)
        self.tmp = _unique_partial(self.path, ".partial")
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.USTAR_FORMAT)
        return self

    def write(self, key: str, image, label: int, meta: dict) -> None:
        args = (image, self.image_format, self.image_quality)
        encoded = self.pool.submit(encode_image, *args) if self.pool else encode_image(*args)
        self.pending.append((key, int(label), meta, encoded))
        self._flush(self.max_pending)

    def _flush(self, keep: int) -> None:
        """Write the oldest samples to the tar until at most ``keep`` wait."""
        while len(self.pending) > keep:
            key, label, meta, encoded = self.pending.popleft()
            data = encoded.result() if self.pool else encoded
            self.keys.append(key)
            self.labels.append(label)
            self.images.append(self._add(f"{key}.{self.ext}", data))
            self._add(f"{key}.cls", str(label).encode())
            self.metas.append(self._add(f"{key}.json", json.dumps(meta, sort_keys=True).encode()))

    def _add(self, name: str, data: bytes) -> list[int]:
        """Add a member; its [byte offset, size, crc32] for the index."""
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o444  # fixed metadata: identical bytes
        offset = self.tar.offset + len(info.tobuf(self.tar.format, self.tar.encoding, self.tar.errors))
        self.tar.addfile(info, io.BytesIO(data))
        return [offset, len(data), zlib.crc32(data)]

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._flush(0)
        except BaseException:
            exc_type = True  # an image that failed to encode: no shard, as for any error
            raise
        finally:
            if self.pool:
                self.pool.shutdown(cancel_futures=True)
            self.tar.close()
            if exc_type is not None:
                self.tmp.unlink(missing_ok=True)
        if exc_type is not None:
            return False
        entry = {"url": self.path.name, "nsamples": len(self.keys), "filesize": self.tmp.stat().st_size,
                 "md5sum": file_md5(self.tmp), "image_format": self.image_format, "keys": self.keys,
                 "labels": self.labels, "labels_sha256": labels_sha256(self.labels), "images": self.images,
                 "metas": self.metas}
        tmp_index = _unique_partial(self.path, ".index.partial")
        tmp_index.write_text(json.dumps({"__kind__": INDEX_KIND, "wids_version": 1, "shardlist": [entry]}))
        durable(tmp_index, self.tmp)
        os.replace(tmp_index, self.index)  # the index first: a tar that exists always has one
        os.replace(self.tmp, self.path)
        fsync_entry(self.path.parent)
        return False


def _unique_partial(path: Path, suffix: str) -> Path:
    """A temporary file beside ``path`` that no other writer (another process, another node) has."""
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.name}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def labels_sha256(labels) -> str:
    """The digest of a shard's labels (int64, little-endian) that its index records."""
    import numpy as np

    return hashlib.sha256(np.asarray(labels, dtype="<i8").tobytes()).hexdigest()


def shard_identity(shard_path: str | os.PathLike) -> str:
    """A shard's content identity, cheaply: the sha256 of its index (which holds the tar's md5,
    every label and every member's crc32), for a checkpoint's fingerprint."""
    return file_sha256(index_path(shard_path))


def file_md5(path: str | os.PathLike) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_index(shard_path: str | os.PathLike) -> dict:
    """The shard's index entry, after checking that it agrees with itself (``check_entry``) and
    that the shard has the size it was written with."""
    path = index_path(shard_path)
    try:
        document = json.loads(path.read_text())
        entry = document["shardlist"][0]
        if document.get("__kind__") != INDEX_KIND or entry["url"] != Path(shard_path).name:
            raise ValueError(f"not the {INDEX_KIND} of {Path(shard_path).name}")
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise ShardError(f"shard {shard_path}: its index {path} is missing or unreadable ({err})") from err
    check_entry(entry, shard_path)
    try:
        size = os.stat(shard_path).st_size
    except OSError as err:
        raise ShardError(f"shard {shard_path} cannot be opened: {err}") from err
    if size != entry["filesize"]:
        raise ShardError(f"shard {shard_path} is {size} bytes, but its index says {entry['filesize']}: "
                         f"truncated or overwritten")
    return entry


def check_entry(entry: dict, shard_path: str | os.PathLike) -> None:
    """Raise ShardError unless an index entry agrees with itself: fields of the right types, as many
    keys, labels, images and metadata members as samples, labels non-negative integers matching their
    recorded sha256, members as [offset, size(, crc32)] within the tar. An older index without the
    digest is accepted with a warning (``realfake-shards verify`` checks its labels against the tar)."""
    import numpy as np

    def fail(what: str):
        raise ShardError(f"shard {shard_path}: its index {index_path(shard_path)} {what}; rebuild the shard "
                         f"(realfake-shards verify --remove, then rerun snakemake)")

    fields = {"nsamples": int, "filesize": int, "md5sum": str, "keys": list, "labels": list, "images": list,
              "metas": list}
    wrong = [f"{name} ({kind.__name__})" for name, kind in fields.items() if not isinstance(entry.get(name), kind)]
    if wrong:
        fail(f"lacks or mistypes {', '.join(wrong)}")
    lengths = {name: len(entry[name]) for name in ("keys", "labels", "images", "metas")}
    if any(n != entry["nsamples"] for n in lengths.values()):
        fail(f"says nsamples {entry['nsamples']} but lists " + ", ".join(f"{n} {k}" for k, n in lengths.items()))
    if not entry["nsamples"]:
        return
    labels = np.asarray(entry["labels"])
    if labels.dtype.kind != "i" or labels.ndim != 1 or labels.min() < 0:
        fail("holds a label that is not a non-negative integer")
    if "labels_sha256" not in entry:
        warnings.warn(f"shard {shard_path}: its index predates the labels' digest, so its labels are checked "
                      f"against the tar only by realfake-shards verify", stacklevel=3)
    elif labels_sha256(labels) != entry["labels_sha256"]:
        fail("lists labels that do not match their recorded sha256 (edited or corrupted)")
    for name in ("images", "metas"):
        try:
            locations = np.asarray(entry[name])
        except (ValueError, TypeError, OverflowError):
            locations = np.zeros((0,))
        if (locations.dtype.kind != "i" or locations.ndim != 2 or locations.shape[1] not in (2, 3)
                or locations[:, :2].min() < 0 or (locations[:, 0] + locations[:, 1]).max() > entry["filesize"]):
            fail(f"lists {name} that are not [offset, size, crc32] within its {entry['filesize']} bytes")


def _tar_disagreement(shard_path, entry: dict) -> str | None:
    """Where the index and the tar's own headers disagree: a member missing or elsewhere, or a
    label other than the ``.cls`` member's; None when they agree."""
    ext = IMAGE_EXTENSIONS[entry.get("image_format", "png")]
    problems = []
    with tarfile.open(shard_path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        if len(members) != 3 * entry["nsamples"]:
            problems.append(f"the tar holds {len(members)} members, the index {entry['nsamples']} samples of 3")
        for key, label, image, meta in zip(entry["keys"], entry["labels"], entry["images"], entry["metas"],
                                           strict=True):
            for name, location in ((f"{key}.{ext}", image), (f"{key}.json", meta)):
                member = members.get(name)
                if member is None or [member.offset_data, member.size] != list(location[:2]):
                    problems.append(f"member {name} is not at byte {location[0]} as the index says")
            cls = members.get(f"{key}.cls")
            found = tar.extractfile(cls).read().decode(errors="replace") if cls is not None else "no .cls member"
            if found != str(label):
                problems.append(f"sample {key}: label {label} in the index, {found} in the tar")
            if len(problems) >= 5:
                break
    return f"shard {shard_path}: its index disagrees with its tar: {'; '.join(problems)}" if problems else None


def verify_shard(shard_path: str | os.PathLike) -> str | None:
    """What is wrong with a shard (size, checksum, index, which members), or None when it is whole."""
    try:
        entry = read_index(shard_path)
    except ShardError as err:
        return str(err)
    if file_md5(shard_path) == entry["md5sum"]:
        return _tar_disagreement(shard_path, entry)
    bad = [f"{key}.{member} at byte {location[0]}"
           for key, member, location in _members(entry) if len(location) > 2 and not _crc_matches(shard_path, location)]
    return (f"shard {shard_path}: its md5 differs from its index's (corrupted)"
            + (f"; members failing their crc32: {', '.join(bad)}" if bad else ""))


def _members(entry: dict):
    """(key, extension, [offset, size, crc32]) of every image and metadata member of an index entry."""
    ext = IMAGE_EXTENSIONS[entry.get("image_format", "png")]
    for key, image, meta in zip(entry["keys"], entry["images"], entry["metas"], strict=True):
        yield key, ext, image
        yield key, "json", meta


def _crc_matches(shard_path, location) -> bool:
    offset, size, crc = location
    with open(shard_path, "rb") as f:
        f.seek(offset)
        return zlib.crc32(f.read(size)) == crc


class ShardSamples:
    """Random access to the first ``limit`` samples of shards: (PIL image, label), by index;
    ``num_classes``: every label must be below it.

    Every member read is checked against its crc32 from the index (about 1 % of a sample's
    decode, bench/shard_io.py): a corrupted sample fails naming shard, member and byte offset.
    """

    def __init__(self, shard_paths, limit: int | None = None, num_classes: int | None = None):
        import numpy as np

        self.paths, locations, metas, labels = [str(p) for p in shard_paths], [], [], []
        for number, path in enumerate(self.paths):
            entry = read_index(path)
            if entry["images"] and len(entry["images"][0]) < 3:
                warnings.warn(f"shard {path}: its index predates per-member checksums, so its samples are "
                              f"not checked on read (realfake-shards verify checks the whole file)", stacklevel=2)
            locations += [(number, *_with_crc(loc)) for loc in entry["images"]]
            metas += [(number, *_with_crc(loc)) for loc in entry["metas"]]
            labels += entry["labels"]
            if num_classes is not None and entry["labels"] and max(entry["labels"]) >= num_classes:
                raise ShardError(f"shard {path}: its index holds label {max(entry['labels'])}, but the data set "
                                 f"has {num_classes} classes (labels 0..{num_classes - 1}): a shard of another "
                                 f"data set?")
        if limit is not None:
            if len(locations) < limit:
                raise ShardError(f"shards {self.paths[:3]}... hold {len(locations)} images, "
                                 f"fewer than the {limit} requested")
            locations, metas, labels = locations[:limit], metas[:limit], labels[:limit]
        self.locations, self.metas = np.asarray(locations, dtype=np.int64), np.asarray(metas, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.locations)

    def describe(self, i: int) -> str:
        """Where sample ``i``'s image lies, for errors: shard, member, byte offset."""
        return self.member(*(int(v) for v in self.locations[i][:2]))

    def member(self, number: int, offset: int) -> str:
        """``shard PATH: member KEY.EXT at byte OFFSET`` (the index is re-read: errors only)."""
        entry = read_index(self.paths[number])
        name = next((f"{key}.{ext}" for key, ext, loc in _members(entry) if loc[0] == offset), "?")
        return f"shard {self.paths[number]}: member {name} at byte {offset}"

    def _read(self, number: int, offset: int, size: int, crc: int) -> bytes:
        with open(self.paths[number], "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise ShardError(f"{self.member(number, offset)} is cut short")
        if crc >= 0 and zlib.crc32(data) != crc:
            raise ShardError(f"{self.member(number, offset)} fails its crc32 (corrupted); "
                             f"realfake-shards verify --remove, then rerun snakemake, rebuilds the shard")
        return data

    def encoded(self, i: int) -> bytes:
        """Sample ``i``'s image file bytes, checked."""
        return self._read(*(int(v) for v in self.locations[i]))

    def open(self, i: int):
        """Sample ``i``'s image, lazily opened (header read, not decoded): for ``draft`` decoding;
        marked ``CHECKED`` when its crc32 was checked."""
        from realfake.data import CHECKED, decode_errors, open_image

        try:
            image = open_image(self.encoded(i))
        except decode_errors() as err:
            raise ShardError(f"{self.describe(i)} is not an image ({err})") from err
        if self.locations[i][3] >= 0:  # its bytes matched the crc32 of when they were written
            image.info[CHECKED] = True
        return image

    def image(self, i: int):
        from realfake.data import decode_errors

        try:
            return self.open(i).convert("RGB")
        except decode_errors() as err:
            raise ShardError(f"{self.describe(i)} does not decode ({err})") from err

    def meta(self, i: int) -> dict:
        return json.loads(self._read(*(int(v) for v in self.metas[i])))

    def __getitem__(self, i: int):
        return self.image(i), int(self.labels[i])


def _with_crc(location) -> tuple:
    """[offset, size, crc32] (crc -1 where an older index has none)."""
    return (*location, -1) if len(location) < 3 else tuple(location)


def shard_files(paths) -> list[Path]:
    """Shard files among ``paths`` (files, or folders searched recursively)."""
    found = []
    for path in map(Path, paths):
        found += sorted(path.rglob("*.tar")) if path.is_dir() else [path]
    return [p for p in found if not p.name.startswith(".tmp-")]


def main(argv=None) -> int:
    """realfake-shards verify [--remove] PATH...: find (and remove, to be rebuilt) bad shards."""
    parser = argparse.ArgumentParser(prog="realfake-shards", description=main.__doc__)
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("paths", nargs="+", help="shard files or folders holding them")
    parser.add_argument("--remove", action="store_true",
                        help="delete bad shards and their indexes: the next snakemake run rebuilds only them")
    args = parser.parse_args(argv)
    shards, bad = shard_files(args.paths), []
    for shard in shards:
        problem = verify_shard(shard)
        if problem:
            bad.append(shard)
            print(f"BAD {problem}")
            if args.remove:
                shard.unlink(missing_ok=True)
                index_path(shard).unlink(missing_ok=True)
    print(f"{len(shards)} shards checked, {len(bad)} bad")
    if bad and args.remove:
        # Snakemake does not remake a missing input of finished jobs: name the shards as targets
        print("removed; rebuild them with: snakemake [--profile ...] " + " ".join(str(s) for s in bad))
    return 1 if bad and not args.remove else 0


if __name__ == "__main__":
    sys.exit(main())
