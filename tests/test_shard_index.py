"""A shard's index cannot disagree with itself or with its tar without a ShardError that names
the shard and what disagrees (issue 31, item 2)."""

import json

import numpy as np
import pytest
from PIL import Image

from realfake.shards import ShardError, ShardSamples, ShardWriter, index_path, main, read_index, shard_identity


def _shard(path, labels=(0, 1, 2, 3, 4, 5)):
    with ShardWriter(path) as sink:
        for i, label in enumerate(labels):
            sink.write(f"{i:09d}", Image.new("RGB", (8, 8), (i * 40, 0, 0)), label, {"index": i})
    return path


def _edit_index(shard, edit):
    document = json.loads(index_path(shard).read_text())
    edit(document["shardlist"][0])
    index_path(shard).write_text(json.dumps(document))


def test_a_dropped_label_fails_on_open_naming_the_shard_and_the_counts(tmp_path):
    """Before: the labels of all shards were joined unchecked, so one dropped label shifted every
    later one ([0, 1, 3, 4, 5]) and training went on."""
    shards = [_shard(tmp_path / "00000.tar"), _shard(tmp_path / "00001.tar")]
    _edit_index(shards[0], lambda entry: entry["labels"].pop(2))
    with pytest.raises(ShardError, match=r"00000.tar: its index .* says nsamples 6 but lists 6 keys, 5 labels"):
        ShardSamples(shards)


def test_an_edited_label_fails_its_digest_and_verify_compares_labels_with_the_tar(tmp_path, capsys):
    shard = _shard(tmp_path / "00000.tar")
    _edit_index(shard, lambda entry: entry["labels"].__setitem__(1, 7))
    with pytest.raises(ShardError, match="labels that do not match their recorded sha256"):
        ShardSamples([shard])
    # the same edit with the digest recomputed (a tool that rewrote the index): the tar's .cls members tell
    from realfake.shards import labels_sha256

    _edit_index(shard, lambda entry: entry.update(labels_sha256=labels_sha256(entry["labels"])))
    assert ShardSamples([shard]).labels.tolist() == [0, 7, 2, 3, 4, 5]
    assert main(["verify", str(tmp_path)]) == 1
    assert "its index disagrees with its tar: sample 000000001: label 7 in the index, 1 in the tar" in \
        capsys.readouterr().out


def test_a_label_outside_the_data_sets_classes_fails_on_open(tmp_path):
    shard = _shard(tmp_path / "00000.tar", labels=(0, 1, 12))
    assert ShardSamples([shard]).labels.tolist() == [0, 1, 12]
    with pytest.raises(ShardError, match=r"holds label 12, but the data set has 10 classes \(labels 0..9\)"):
        ShardSamples([shard], num_classes=10)


@pytest.mark.parametrize("edit, message", [
    (lambda e: e.pop("labels"), r"lacks or mistypes labels \(list\)"),
    (lambda e: e.update(nsamples="6"), r"lacks or mistypes nsamples \(int\)"),
    (lambda e: e.update(labels=[0, 1, "2", 3, 4, 5]), "not a non-negative integer"),
    (lambda e: e.update(labels=[0, 1, -2, 3, 4, 5]), "not a non-negative integer"),
    (lambda e: e["images"].__setitem__(0, [512, 10**15, 0]), r"images that are not \[offset, size, crc32\]"),
    (lambda e: e["metas"].__setitem__(0, [512]), r"metas that are not \[offset, size, crc32\]"),
    (lambda e: e["images"].__setitem__(0, "x"), r"images that are not \[offset, size, crc32\]"),
])
def test_a_malformed_index_is_a_shard_error_not_a_key_type_or_memory_error(tmp_path, edit, message):
    shard = _shard(tmp_path / "00000.tar")
    _edit_index(shard, edit)
    with pytest.raises(ShardError, match=f"00000.tar: its index .*{message}"):
        ShardSamples([shard])
    assert main(["verify", str(shard)]) == 1


def test_an_index_of_other_members_disagrees_with_its_tar(tmp_path, capsys):
    """Offsets and sizes of another shard of the same size, digest intact: verify reads the tar's headers."""
    shard = _shard(tmp_path / "00000.tar")
    _edit_index(shard, lambda entry: entry["images"].reverse())
    assert main(["verify", str(shard)]) == 1
    assert "member 000000000.png is not at byte" in capsys.readouterr().out


def test_whole_shards_verify_and_their_identity_follows_the_index(tmp_path, capsys):
    shard = _shard(tmp_path / "00000.tar")
    assert main(["verify", str(shard)]) == 0 and "1 shards checked, 0 bad" in capsys.readouterr().out
    before = shard_identity(shard)
    _shard(shard, labels=(0, 1, 2, 3, 4, 6))  # the same images, one label other: a new identity
    assert shard_identity(shard) != before
    assert read_index(shard)["labels"][-1] == 6 and np.all(ShardSamples([shard]).labels[:5] == range(5))


def test_an_index_without_the_labels_digest_is_read_with_a_warning(tmp_path):
    shard = _shard(tmp_path / "00000.tar")
    _edit_index(shard, lambda entry: entry.pop("labels_sha256"))
    with pytest.warns(UserWarning, match="predates the labels' digest"):
        assert ShardSamples([shard]).labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_writers_use_unique_temporary_names(tmp_path):
    """Two writers of one shard (a requeued job beside a lingering one, perhaps with the same pid on
    another node) never share a temporary file: the later rename wins, whole."""
    first, second = ShardWriter(tmp_path / "s.tar"), ShardWriter(tmp_path / "s.tar")
    with pytest.raises(FileNotFoundError), first as a:  # its partial was removed under it: no rename
        a.write("000000000", Image.new("RGB", (4, 4)), 0, {})
        second.__enter__()  # removes the stale partial of the first (unlinked, still open)
        assert first.tmp != second.tmp
        second.write("000000000", Image.new("RGB", (4, 4)), 3, {})
        second.__exit__(None, None, None)
    assert ShardSamples([tmp_path / "s.tar"]).labels.tolist() == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.index.json", "s.tar"]


def test_a_decompression_bomb_member_is_a_shard_error_naming_the_member(tmp_path, monkeypatch):
    """PIL's DecompressionBombError is no OSError: it escaped the readers' handling."""
    shard = _shard(tmp_path / "00000.tar")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)  # 8x8 = 64 pixels: over twice the limit
    with pytest.raises(ShardError, match=r"00000.tar: member 000000002.png at byte \d+ is not an image "
                                         r"\(.*decompression bomb"):
        ShardSamples([shard]).image(2)
