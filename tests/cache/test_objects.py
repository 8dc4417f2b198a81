"""Units of flowml.cache.objects: the content-addressed object store and restores."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from flowml.cache.hashing import Content, hash_bytes, tree_digest
from flowml.cache.objects import ObjectStore


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "objects"))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def put_folder(store: ObjectStore, folder: Path) -> Content:
    files = {rel: store.put(str(folder / rel)) for rel in files_under(folder)}
    return Content(tree_digest(files), files)


# put --------------------------------------------------------------------------------------

def test_put_stores_a_read_only_object_named_by_its_digest_and_leaves_no_temp_files(store, tmp_path):
    src = write(tmp_path / "model.bin", b"weights" * 1000)
    digest = store.put(str(src))
    assert digest == hash_bytes(b"weights" * 1000)
    obj = Path(store.path(digest))
    assert obj.read_bytes() == src.read_bytes()
    assert obj.parent.name == digest[:2] and obj.name == digest[2:]
    assert stat.S_IMODE(obj.stat().st_mode) & 0o222 == 0, "objects must be read-only"
    assert store.has(digest)
    tmp = Path(store.tmp)
    assert not tmp.exists() or list(tmp.iterdir()) == [], "a temp file was left behind"
    # the store holds exactly that object
    assert [p for p in files_under(Path(store.root)) if not p.startswith("tmp/")] == [f"{digest[:2]}/{digest[2:]}"]


def test_put_of_a_known_digest_does_not_read_the_source(store, tmp_path):
    digest = store.put(str(write(tmp_path / "a", b"same")))
    assert store.put(str(tmp_path / "does-not-exist"), digest) == digest


def test_put_twice_and_concurrently_gives_one_whole_object(store, tmp_path):
    data = os.urandom(1 << 20)
    srcs = [write(tmp_path / f"src{i}", data) for i in range(4)]
    digests: list[str] = []
    threads = [threading.Thread(target=lambda s=s: digests.append(store.put(str(s)))) for s in srcs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(digests)) == 1
    assert Path(store.path(digests[0])).read_bytes() == data
    assert list(Path(store.tmp).iterdir()) == []


def test_failed_put_leaves_no_temp_file_and_no_object(store, tmp_path):
    with pytest.raises(OSError):
        store.put(str(tmp_path / "missing"))
    assert not Path(store.tmp).exists() or list(Path(store.tmp).iterdir()) == []
    assert [p for p in files_under(Path(store.root))] == []


def test_has_content_needs_every_file_of_a_folder(store, tmp_path):
    folder = tmp_path / "m"
    write(folder / "a", b"a")
    write(folder / "b", b"b")
    content = put_folder(store, folder)
    assert store.has_content(content)
    os.unlink(store.path(content.files["b"]))
    assert not store.has_content(content)
    assert not store.has_content(Content(hash_bytes(b"never stored")))


# restore ----------------------------------------------------------------------------------

def test_restore_file_writes_a_private_writable_copy(store, tmp_path):
    digest = store.put(str(write(tmp_path / "src", b"payload")))
    dest = tmp_path / "out" / "deep" / "restored.txt"
    store.restore_file(digest, str(dest))
    assert dest.read_bytes() == b"payload"
    assert os.access(dest, os.W_OK)
    assert dest.stat().st_ino != Path(store.path(digest)).stat().st_ino
    dest.write_bytes(b"edited by the user")
    assert Path(store.path(digest)).read_bytes() == b"payload", "editing a restored file changed the object"
    assert [p.name for p in dest.parent.iterdir()] == ["restored.txt"], "a restore temp file was left behind"


def test_restore_file_replaces_a_folder_in_the_way(store, tmp_path):
    digest = store.put(str(write(tmp_path / "src", b"file now")))
    write(tmp_path / "dest" / "inner.txt", b"x")
    store.restore(Content(digest), str(tmp_path / "dest"))
    assert (tmp_path / "dest").read_bytes() == b"file now"


def test_restore_folder_recreates_every_file(store, tmp_path):
    folder = tmp_path / "models"
    write(folder / "a.bin", b"a")
    write(folder / "sub" / "b.bin", b"b")
    content = put_folder(store, folder)
    dest = tmp_path / "restored"
    store.restore(content, str(dest))
    assert files_under(dest) == ["a.bin", "sub/b.bin"]
    assert (dest / "sub" / "b.bin").read_bytes() == b"b"


def test_restore_folder_removes_extra_files_and_fixes_changed_ones(store, tmp_path):
    folder = tmp_path / "models"
    write(folder / "a.bin", b"a")
    write(folder / "sub" / "b.bin", b"b")
    content = put_folder(store, folder)
    write(folder / "extra.txt", b"stray")
    write(folder / "junk" / "deeper" / "x", b"stray")
    write(folder / "sub" / "b.bin", b"changed")
    store.restore(content, str(folder))
    assert files_under(folder) == ["a.bin", "sub/b.bin"]
    assert (folder / "sub" / "b.bin").read_bytes() == b"b"
    assert not (folder / "junk").exists(), "an emptied extra folder was left behind"


def test_restore_folder_copies_only_files_that_differ(store, tmp_path):
    folder = tmp_path / "models"
    write(folder / "keep.bin", b"keep")
    write(folder / "fix.bin", b"fix")
    content = put_folder(store, folder)
    write(folder / "fix.bin", b"broken")
    present = Content("whatever", {"keep.bin": content.files["keep.bin"], "fix.bin": hash_bytes(b"broken")})
    keep_ino = (folder / "keep.bin").stat().st_ino
    store.restore(content, str(folder), present)
    assert (folder / "keep.bin").stat().st_ino == keep_ino, "an unchanged file was rewritten"
    assert (folder / "fix.bin").read_bytes() == b"fix"


def test_restore_folder_over_a_file(store, tmp_path):
    folder = tmp_path / "models"
    write(folder / "a.bin", b"a")
    content = put_folder(store, folder)
    dest = write(tmp_path / "was_a_file", b"file")
    store.restore(content, str(dest))
    assert files_under(dest) == ["a.bin"]
