"""The local artifact repository: files in, listings and copies out, and no way out of the run's folder."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from flowml.artifacts.local import FileInfo, LocalArtifactRepository
from flowml.errors import TrackingError


@pytest.fixture
def repo(tmp_path) -> LocalArtifactRepository:
    root = tmp_path / "artifacts/1/run/artifacts"
    root.mkdir(parents=True)
    return LocalArtifactRepository(str(root))


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the run's, with a secret in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("secret")
    return folder


def local_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("bad", ["..", "../x", "a/../../x", "a/../b", "/etc/passwd", "//x", "a\\b", "a\0b",
                                 "../artifacts/x", "a/.."])
def test_paths_out_of_the_root_are_refused(repo, tmp_path, bad):
    with pytest.raises(TrackingError, match="invalid artifact path"):
        repo.path_of(bad)
    with pytest.raises(TrackingError):
        repo.write_bytes(f"{bad}/f.txt" if not bad.endswith("/") else bad + "f", b"x")
    with pytest.raises(TrackingError):
        repo.log_artifact(local_file(tmp_path, "f.txt", "x"), bad)
    with pytest.raises(TrackingError):
        repo.list_artifacts(bad)
    with pytest.raises(TrackingError):
        repo.download_artifacts(bad, str(tmp_path / "dst"))
    assert sorted(p.name for p in (tmp_path / "artifacts").rglob("*")) == ["1", "artifacts", "run"]


@pytest.mark.parametrize("good,parts", [("a", ["a"]), ("a/b.txt", ["a", "b.txt"]), ("a/./b", ["a", "b"]),
                                        ("with space/x", ["with space", "x"]), ("..x", ["..x"])])
def test_paths_inside_the_root(repo, good, parts):
    assert repo.path_of(good) == os.path.join(repo.root, *parts)
    assert repo.path_of(None) == repo.path_of("") == repo.root


def test_symlinks_out_of_the_run_folder_are_refused(repo, tmp_path, outside):
    root = Path(repo.root)
    (root / "dir_link").symlink_to(outside, target_is_directory=True)
    (root / "file_link").symlink_to(outside / "secret.txt")
    (root / "inner").mkdir()
    (root / "inner/up").symlink_to("../..")  # relative, to the run's folder above artifacts/
    for bad in ("dir_link", "dir_link/secret.txt", "dir_link/new.txt", "file_link", "inner/up", "inner/up/x"):
        with pytest.raises(TrackingError, match="leads out"):
            repo.path_of(bad)
        with pytest.raises(TrackingError):
            repo.download_artifacts(bad, str(tmp_path / "dst"))
    with pytest.raises(TrackingError):
        repo.write_bytes("dir_link/new.txt", b"x")
    with pytest.raises(TrackingError):
        repo.log_artifact(local_file(tmp_path, "f.txt", "x"), "dir_link")
    with pytest.raises(TrackingError):
        repo.list_artifacts("dir_link")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # Downloading the whole root copies what is inside it, never what a link points at outside.
    (root / "inner/ok.txt").write_text("ok")
    copied = Path(repo.download_artifacts("", str(tmp_path / "dst")))
    assert (copied / "inner/ok.txt").read_text() == "ok"
    found = [p for p in copied.rglob("*") if p.is_file() and p.read_bytes() == b"secret"]
    assert found == []
    assert not (copied / "dir_link").exists() and not (copied / "file_link").exists()
    # A listing does not show the links either.
    assert [i.path for i in repo.list_artifacts()] == ["inner"]


def test_a_symlink_inside_the_run_folder_is_followed(repo, tmp_path):
    root = Path(repo.root)
    (root / "real").mkdir()
    (root / "real/a.txt").write_text("a")
    (root / "alias").symlink_to("real", target_is_directory=True)
    assert repo.path_of("alias/a.txt") == str(root / "alias/a.txt")
    assert Path(repo.download_artifacts("alias/a.txt", str(tmp_path / "dst"))).read_text() == "a"


def test_a_root_reached_through_a_symlink_works(tmp_path):
    real = tmp_path / "disk/artifacts"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "disk", target_is_directory=True)
    repo = LocalArtifactRepository(str(tmp_path / "link/artifacts/1/run/artifacts"))
    repo.write_bytes("a/b.txt", b"b")
    assert (real / "1/run/artifacts/a/b.txt").read_bytes() == b"b"
    assert [i.path for i in repo.list_artifacts("a")] == ["a/b.txt"]


def test_log_and_list_artifacts(repo, tmp_path):
    repo.log_artifact(local_file(tmp_path, "model.pkl", "12345"))
    repo.log_artifact(local_file(tmp_path, "roc.png", "png"), "plots")
    repo.write_bytes("plots/deep/x.json", b"{}")
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("aa")
    (src / "sub/b.txt").write_text("b")
    repo.log_artifacts(str(src), "data")
    assert repo.list_artifacts() == [FileInfo("data", True), FileInfo("model.pkl", False, 5),
                                     FileInfo("plots", True)]
    assert repo.list_artifacts("plots") == [FileInfo("plots/deep", True), FileInfo("plots/roc.png", False, 3)]
    assert repo.list_artifacts("plots/") == repo.list_artifacts("plots") == repo.list_artifacts("./plots/.")
    assert repo.list_artifacts("data/sub") == [FileInfo("data/sub/b.txt", False, 1)]
    assert repo.list_artifacts("missing") == []
    assert repo.list_artifacts("model.pkl") == []
    assert FileInfo("a", False, 3).to_dict() == {"path": "a", "is_dir": False, "file_size": 3}
    assert FileInfo("d", True).to_dict() == {"path": "d", "is_dir": True}
    leftovers = [p for p in Path(repo.root).rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_log_artifact_of_a_missing_file(repo, tmp_path):
    with pytest.raises(TrackingError, match="no such file") as info:
        repo.log_artifact(str(tmp_path / "nope.txt"))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_download_artifacts(repo, tmp_path):
    repo.write_bytes("model/weights.bin", b"w")
    repo.write_bytes("model/conf/c.yaml", b"c")
    repo.write_bytes("top.txt", b"t")
    dst = tmp_path / "dst"
    dst.mkdir()
    assert Path(repo.download_artifacts("top.txt", str(dst))).read_bytes() == b"t"
    got = Path(repo.download_artifacts("model", str(dst)))
    assert got == dst / "model"
    assert (got / "weights.bin").read_bytes() == b"w" and (got / "conf/c.yaml").read_bytes() == b"c"
    with pytest.raises(TrackingError) as info:
        repo.download_artifacts("missing.txt", str(dst))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("empty", ["", None, ".", "./"])
def test_writing_needs_a_file_name(repo, empty):
    with pytest.raises(TrackingError, match="file"):
        repo.write_bytes(empty, b"x")
    with pytest.raises(TrackingError, match="file"):
        repo.open_write(empty)
    assert os.listdir(repo.root) == []


def test_open_write_streams_into_the_run(repo):
    with repo.open_write("logs/stdout.txt") as fh:
        fh.write(b"line 1\n")
        fh.write(b"line 2\n")
    assert Path(repo.path_of("logs/stdout.txt")).read_bytes() == b"line 1\nline 2\n"
    with pytest.raises(TrackingError):
        repo.open_write("../stdout.txt")


def test_file_uris(tmp_path):
    root = tmp_path / "with space"
    repo = LocalArtifactRepository("file://" + str(root).replace(" ", "%20"))
    assert repo.root == str(root)
    repo.write_bytes("x.txt", b"x")
    assert (root / "x.txt").read_bytes() == b"x"


def test_client_artifacts(client, tmp_path):
    exp_id = client.create_experiment(f"art-{uuid.uuid4().hex[:12]}")
    run_id = client.create_run(exp_id).info.run_id
    client.log_text(run_id, "hi", "notes/a.txt")
    client.log_artifact(run_id, local_file(tmp_path, "m.bin", "mm"), "model")
    root = Path(client.get_run(run_id).info.artifact_uri)
    assert root == tmp_path / "artifacts" / exp_id / run_id / "artifacts"
    assert [i.path for i in client.list_artifacts(run_id)] == ["model", "notes"]
    assert client.list_artifacts(run_id, "model") == [FileInfo("model/m.bin", False, 2)]
    got = Path(client.download_artifacts(run_id, "notes/a.txt"))
    assert got.read_text() == "hi" and not str(got).startswith(str(root))
    got = Path(client.download_artifacts(run_id, "model", str(tmp_path / "dl")))
    assert got == tmp_path / "dl/model" and (got / "m.bin").read_text() == "mm"
    with pytest.raises(TrackingError):
        client.log_text(run_id, "x", "/abs.txt")
