"""Units of flowml.cache.hashing: digests, the stat memo and folder digests.

``hash_file`` is wrapped by a counting spy (our own function, still doing the real work)
to prove which files are read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import xxhash

from flowml.cache import hashing
from flowml.cache.hashing import Content, StatMemo, content_of, hash_bytes, hash_file, tree_digest

OLD = time.time() - 3600  # an mtime well outside the memo's "racy" window


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Paths passed to hash_file, in order; hashing still happens."""
    seen: list[str] = []
    real = hashing.hash_file

    def spy(path: str) -> str:
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(hashing, "hash_file", spy)
    return seen


def write(path: Path, data: bytes, mtime: float | None = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """Replace the bytes in place (same inode, same size), then put the old mtime back.

    Only the ctime can tell: wait until it really differs (file-system clocks are coarse).
    """
    before = os.stat(path)
    assert len(data) == before.st_size
    for _ in range(200):
        with open(path, "r+b") as fh:
            fh.write(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(path)
        if after.st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns


# digests ----------------------------------------------------------------------------------

def test_hash_file_is_xxh3_128_of_the_bytes_across_chunks(tmp_path):
    small = write(tmp_path / "small", b"hello\n")
    assert hash_file(str(small)) == xxhash.xxh3_128_hexdigest(b"hello\n") == hash_bytes(b"hello\n")
    data = os.urandom(1024) * (hashing.CHUNK // 1024) + b"tail"  # one chunk and a bit
    big = write(tmp_path / "big", data)
    assert hash_file(str(big)) == xxhash.xxh3_128_hexdigest(data)
    assert hash_file(str(write(tmp_path / "empty", b""))) == hash_bytes(b"")


def test_tree_digest_depends_on_names_and_contents_not_order():
    a = {"x.txt": "1", "sub/y.txt": "2"}
    assert tree_digest(a) == tree_digest(dict(reversed(list(a.items()))))
    assert tree_digest(a) != tree_digest({"x.txt": "1", "sub/z.txt": "2"})
    assert tree_digest(a) != tree_digest({"x.txt": "1", "sub/y.txt": "3"})
    assert tree_digest({}) != tree_digest({"": ""})


# the stat memo ----------------------------------------------------------------------------

def test_memo_does_not_read_an_unchanged_file_again(tmp_path, reads):
    f = write(tmp_path / "data.bin", b"x" * 1000)
    memo = StatMemo()
    first = memo.digest(str(f), "data.bin")
    assert reads == ["data.bin"]
    assert memo.digest(str(f), "data.bin") == first
    assert reads == ["data.bin"], "an unchanged file was read again"
    assert "data.bin" in memo.changed  # a row to save to the index


def test_memo_rows_survive_a_round_trip_like_the_index(tmp_path, reads):
    """A new memo built from saved rows (as the next process does) still avoids the read."""
    f = write(tmp_path / "data.bin", b"abc")
    memo = StatMemo()
    digest = memo.digest(str(f), "data.bin")
    saved = dict(memo.changed)
    later = StatMemo(saved)
    assert later.digest(str(f), "data.bin") == digest
    assert reads == ["data.bin"]


def test_memo_rereads_when_content_changes_with_the_mtime_restored(tmp_path, reads):
    f = write(tmp_path / "data.bin", b"aaaa")
    memo = StatMemo()
    old = memo.digest(str(f), "data.bin")
    rewrite_keeping_stat(f, b"bbbb")  # same inode, size and mtime; only ctime moved
    new = memo.digest(str(f), "data.bin")
    assert reads == ["data.bin", "data.bin"]
    assert new == hash_bytes(b"bbbb") != old


def test_memo_rereads_a_file_replaced_by_another_inode(tmp_path, reads):
    f = write(tmp_path / "data.bin", b"aaaa")
    memo = StatMemo()
    memo.digest(str(f), "data.bin")
    st = os.stat(f)
    tmp = write(tmp_path / "other", b"bbbb")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, f)  # same size and mtime, new inode
    assert memo.digest(str(f), "data.bin") == hash_bytes(b"bbbb")
    assert reads.count("data.bin") == 2


def test_memo_does_not_trust_a_file_modified_just_now(tmp_path, reads):
    """A file written within the racy window could change again with the same stat: re-read it."""
    f = write(tmp_path / "fresh.bin", b"new", mtime=None)
    memo = StatMemo()
    memo.digest(str(f), "fresh.bin")
    memo.digest(str(f), "fresh.bin")
    assert reads == ["fresh.bin", "fresh.bin"]
    assert "fresh.bin" not in memo.changed


def test_memo_known_and_remember(tmp_path):
    f = write(tmp_path / "data.bin", b"abc")
    st = os.stat(f)
    memo = StatMemo()
    assert memo.known("data.bin", st) is None
    memo.remember("data.bin", st, "d1")
    assert memo.known("data.bin", st) == "d1"
    rewrite_keeping_stat(f, b"xyz")
    assert memo.known("data.bin", os.stat(f)) is None


# folders ----------------------------------------------------------------------------------

def _folder(root: Path) -> Path:
    folder = root / "data"
    for rel, text in {"a.csv": b"1,2\n", "b.csv": b"3,4\n", "deep/c.csv": b"5,6\n"}.items():
        write(folder / rel, text)
    return folder


def test_folder_digest_rereads_only_the_changed_file(tmp_path, reads):
    _folder(tmp_path)
    memo = StatMemo()
    first = content_of(str(tmp_path), "data", memo)
    assert first.files is not None and sorted(first.files) == ["a.csv", "b.csv", "deep/c.csv"]
    assert sorted(reads) == ["a.csv", "b.csv", "c.csv"]
    assert first.digest == tree_digest(first.files)
    assert first.files["deep/c.csv"] == hash_bytes(b"5,6\n")

    reads.clear()
    assert content_of(str(tmp_path), "data", memo) == first
    assert reads == [], "an unchanged folder was read again"

    write(tmp_path / "data" / "b.csv", b"9,9,9\n")
    second = content_of(str(tmp_path), "data", memo)
    assert reads == ["b.csv"]
    assert second.digest != first.digest
    assert second.files["a.csv"] == first.files["a.csv"] and second.files["b.csv"] != first.files["b.csv"]


def test_folder_digest_sees_added_removed_and_renamed_files(tmp_path):
    _folder(tmp_path)
    memo = StatMemo()
    base = content_of(str(tmp_path), "data", memo).digest
    write(tmp_path / "data" / "new.csv", b"")
    added = content_of(str(tmp_path), "data", memo).digest
    assert added != base
    (tmp_path / "data" / "new.csv").unlink()
    assert content_of(str(tmp_path), "data", memo).digest == base
    (tmp_path / "data" / "a.csv").rename(tmp_path / "data" / "z.csv")
    assert content_of(str(tmp_path), "data", memo).digest != base


def test_folder_digest_ignores_caches_and_vcs(tmp_path):
    _folder(tmp_path)
    memo = StatMemo()
    base = content_of(str(tmp_path), "data", memo)
    write(tmp_path / "data" / "__pycache__" / "x.pyc", b"junk")
    write(tmp_path / "data" / ".git" / "HEAD", b"ref")
    assert content_of(str(tmp_path), "data", memo) == base


def test_folder_digest_excludes_given_paths(tmp_path):
    _folder(tmp_path)
    memo = StatMemo()
    full = content_of(str(tmp_path), "data", memo)
    part = content_of(str(tmp_path), "data", memo, exclude=("data/deep",))
    assert sorted(part.files) == ["a.csv", "b.csv"]
    assert part.digest != full.digest


def test_content_of_a_missing_path_is_none_and_a_file_has_no_files(tmp_path):
    memo = StatMemo()
    assert content_of(str(tmp_path), "nope", memo) is None
    write(tmp_path / "f.txt", b"f")
    c = content_of(str(tmp_path), "f.txt", memo)
    assert c == Content(hash_bytes(b"f")) and c.files is None
    assert Content.from_json(c.to_json()) == c
    d = content_of(str(tmp_path), ".", memo)
    assert d.files is not None and Content.from_json(d.to_json()) == d
