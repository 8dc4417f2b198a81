"""What the Dask executor ships to the workers (flowml_dask.project), and the command line's
bad input for --executor dask that needs no cluster."""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("distributed")

from flowml_dask.project import ProjectTooBig, project_archive, project_files, unpack  # noqa: E402


def _tree(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_outside_git_every_file_goes_but_the_store_caches_and_selected_outputs(tmp_path):
    _tree(tmp_path, {"pipeline.yaml": "x", "src/a.py": "a", "data/raw.csv": "1", "out/model.txt": "m",
                     ".flowml/state.db": "s", "src/__pycache__/a.pyc": "c", ".venv/bin/python": "p"})
    (tmp_path / "link").symlink_to("src")
    assert project_files(str(tmp_path)) == ["data/raw.csv", "link", "out/model.txt", "pipeline.yaml", "src/a.py"]
    archive = project_archive(str(tmp_path), ["out"])
    unpack(archive, str(tmp_path / "there"))
    there = tmp_path / "there"
    assert (there / "src/a.py").read_text() == "a" and (there / "link").is_symlink()
    assert not (there / "out").exists()


def test_in_git_what_git_would_commit_goes(tmp_path):
    _tree(tmp_path, {"pipeline.yaml": "x", "train.py": "t", "new.py": "n", "big.bin": "b", ".gitignore": "*.bin\n"})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "pipeline.yaml", "train.py", ".gitignore"], check=True)
    assert project_files(str(tmp_path)) == [".gitignore", "new.py", "pipeline.yaml", "train.py"]


def test_a_project_over_the_limit_names_its_largest_files(tmp_path, monkeypatch):
    _tree(tmp_path, {"pipeline.yaml": "x", "data/huge.csv": "1" * 5000, "small.txt": "s"})
    monkeypatch.setenv("FLOWML_DASK_MAX_PROJECT", "1000")
    with pytest.raises(ProjectTooBig, match=r"5002 bytes, more than the 1000 .*largest: data/huge.csv \(5000 bytes\)"):
        project_archive(str(tmp_path), [])
    assert project_archive(str(tmp_path), ["data"])  # declared as an output, it travels otherwise


@pytest.mark.parametrize("args, env, message", [
    (["--executor", "dask"], {"FLOWML_DASK_SCHEDULER": ""}, "--executor dask needs the cluster's scheduler"),
    (["--scheduler", "tcp://127.0.0.1:1"], {}, "--scheduler names the cluster of an executor that runs steps elsewhere"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9", "--no-track"], {},
     "--no-track records no runs"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], {"FLOWML_TRACKING_URI": "http://127.0.0.1:9",
                                                                      "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"},
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    (["--executor", "nosuch"], {}, "executor 'nosuch' is not installed"),
])
def test_bad_command_lines(project, args, env, message):
    project.pipeline("name: p\nsteps:\n  a: {run: 'true'}\n")
    res = project.flowml("run", *args, env=env, timeout=60)
    assert res.code == 2, res.err
    assert message in res.err and "Traceback" not in res.err


def test_declared_inputs_go_whatever_git_ignores_and_through_links(tmp_path):
    _tree(tmp_path, {"pipeline.yaml": "x", "data/raw.csv": "1", "data/out/made.csv": "m",
                     "elsewhere/big.bin": "b", "elsewhere/ignored.bin": "i"})
    (tmp_path / "linked").symlink_to("elsewhere")
    (tmp_path / ".gitignore").write_text("data/\nelsewhere/\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    archive = project_archive(str(tmp_path), ["data/out"], ["data", "linked/big.bin", "../outside.txt", "/abs/path"])
    unpack(archive, str(tmp_path / "there"))
    there = tmp_path / "there"
    assert (there / "data/raw.csv").read_text() == "1" and not (there / "data/out").exists()
    assert (there / "linked/big.bin").read_text() == "b" and not (there / "linked").is_symlink()
    assert not (there / "elsewhere").exists()
