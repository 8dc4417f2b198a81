"""conda environments (runners/flowml-conda) through ``flowml run`` against a local channel:
a step runs with the prefix's tools first on PATH; the lock is written in conda-lock's format
and conda-lock's own CLI reads it and finds it up to date; a lock that exists and matches is
installed as it is without solving, one made elsewhere included; changing environment.yml
reruns exactly the steps that use it; bad input is exit 2 with the file and field."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conda.conda_channel import drop_index, make_channel

PIPELINE = """\
name: legacy
environments:
  legacy: {conda: {file: environment.yml, lock: conda-lock.yml}}
steps:
  hello:
    run: greet > hello.txt; echo "$CONDA_PREFIX" >> hello.txt
    env: legacy
    outputs: [hello.txt]
  again:
    run: shout > again.txt
    env: legacy
    outputs: [again.txt]
  plain:
    run: echo plain > plain.txt
    outputs: [plain.txt]
"""


def env_file(channel: Path, *deps: str) -> str:
    listed = "".join(f"  - {d}\n" for d in deps)
    return f"name: legacy\nchannels:\n  - {channel.as_uri()}\ndependencies:\n{listed}"


def make(project, channel: Path, *deps: str):
    project.pipeline(PIPELINE)
    project.write("environment.yml", env_file(channel, *(deps or ("greet",))))
    return project


def run(project, conda_vars) -> dict[str, str]:
    summary = project.run_json("--no-track", env=conda_vars)
    assert summary["code"] == 0, summary["stderr"]
    return {name: step["status"] for name, step in summary["by_name"].items()}


def environments(conda_vars) -> list[str]:
    folder = Path(conda_vars["FLOWML_ENV_DIR"])
    return sorted(p.name for p in folder.iterdir() if (p / "flowml-env.json").exists()) if folder.exists() else []


def test_a_step_runs_in_a_conda_env_locked_in_conda_locks_format(project, channel, conda_vars):
    make(project, channel)
    assert run(project, conda_vars) == {"hello": "ran", "again": "ran", "plain": "ran"}
    said, prefix = project.read("hello.txt").splitlines()
    (made,) = environments(conda_vars)
    assert prefix == os.path.join(conda_vars["FLOWML_ENV_DIR"], made) and made.startswith("conda-linux-64-")
    assert said == f"greet in {prefix} LOUDER"  # its prefix placeholder names the final prefix, not a temp folder
    assert project.read("again.txt").strip() == "LOUDER"

    from conda_lock.lockfile import parse_conda_lock_file

    lock = parse_conda_lock_file(project.root / "conda-lock.yml")
    assert {(p.name, p.version) for p in lock.package} == {("greet", "1.0"), ("shout", "2.0")}
    assert lock.metadata.platforms == ["linux-64"] and lock.metadata.sources == ["environment.yml"]
    assert run(project, conda_vars) == {"hello": "cached", "again": "cached", "plain": "cached"}


def test_conda_locks_own_cli_reads_the_lock_and_finds_it_up_to_date(project, channel, conda_vars, tmp_path):
    make(project, channel)
    run(project, conda_vars)
    written = project.read("conda-lock.yml")
    cli = os.path.join(os.path.dirname(sys.executable), "conda-lock")
    rendered = subprocess.run([cli, "render", "--kind", "explicit", "-p", "linux-64", "conda-lock.yml"],
                              cwd=project.root, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    explicit = project.read("conda-linux-64.lock")
    assert f"{channel.as_uri()}/noarch/greet-1.0-0.conda#" in explicit and "shout-2.0-0.tar.bz2#" in explicit
    # a conda that says its version and nothing else: conda-lock must not need it to solve
    conda = tmp_path / "conda"
    conda.write_text("#!/bin/sh\necho conda 24.1.0\n")
    conda.chmod(0o755)
    checked = subprocess.run([cli, "lock", "--conda", str(conda), "--check-input-hash", "-f", "environment.yml",
                              "-p", "linux-64", "--lockfile", "conda-lock.yml"],
                             cwd=project.root, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "Spec hash already locked for ['linux-64']" in checked.stderr, checked.stderr
    assert project.read("conda-lock.yml") == written


def test_changing_environment_yml_reruns_exactly_the_steps_using_it(project, channel, conda_vars):
    make(project, channel)
    run(project, conda_vars)
    first = environments(conda_vars)

    project.write("environment.yml", env_file(channel, "greet", "shout <2"))
    plan = {r["name"]: r for r in project.flowml("status", "--json", env=conda_vars).json}
    assert plan["hello"]["will_run"] and plan["again"]["will_run"] and not plan["plain"]["will_run"]
    assert any("environment legacy changed" in reason for reason in plan["hello"]["reasons"])
    assert run(project, conda_vars) == {"hello": "ran", "again": "ran", "plain": "cached"}
    assert project.read("again.txt").strip() == "LOUD"
    assert "shout-1.0-0.tar.bz2" in project.read("conda-lock.yml")
    assert len(environments(conda_vars)) == 2 and set(first) < set(environments(conda_vars))

    # a change that locks to the same packages: the lock's digest, so the cache keys, stay
    project.write("environment.yml", "# pinned for the old tool\n" + env_file(channel, "greet", "shout <2"))
    assert set(run(project, conda_vars).values()) == {"cached"}


def test_an_existing_lock_is_installed_as_it_is_without_solving(project, project_class, conda_vars, tmp_path,
                                                                package_cache):
    channel = make_channel(tmp_path)  # this test's own: its index is removed below
    make(project, channel)
    run(project, conda_vars)
    lock = project.read("conda-lock.yml")

    drop_index(channel)  # any solve now fails; the packages stay where the lock says
    elsewhere = project_class(tmp_path / "elsewhere")
    shutil.copytree(project.root, elsewhere.root, ignore=shutil.ignore_patterns(".flowml", "*.txt"))
    fresh = {"FLOWML_ENV_DIR": str(tmp_path / "fresh-envs"), "RATTLER_CACHE_DIR": str(tmp_path / "fresh-cache")}
    assert run(elsewhere, fresh) == {"hello": "ran", "again": "ran", "plain": "ran"}
    assert elsewhere.read("again.txt").strip() == "LOUDER" and elsewhere.read("conda-lock.yml") == lock


def test_a_lock_made_elsewhere_is_installed_as_is(project, channel, conda_vars):
    """A lock that conda-lock would write for environment.yml, pinning shout 1.0 where a solve
    picks 2.0: its packages are installed, and the file is left alone."""
    make(project, channel)
    _conda_lock_lock(project.root, channel, shout="1.0")
    lock = project.read("conda-lock.yml")
    assert run(project, conda_vars) == {"hello": "ran", "again": "ran", "plain": "ran"}
    assert project.read("again.txt").strip() == "LOUD" and project.read("conda-lock.yml") == lock


def _conda_lock_lock(root: Path, channel: Path, shout: str) -> None:
    """Write conda-lock.yml as conda-lock does: its lock spec, content hash and writer."""
    import hashlib

    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta
    from conda_lock.lookup import DEFAULT_MAPPING_URL
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import default_virtual_package_repodata

    spec = make_lock_spec(src_files=[root / "environment.yml"], platform_overrides=["linux-64"],
                          mapping_url=DEFAULT_MAPPING_URL)
    hashes = compute_content_hashes(spec, default_virtual_package_repodata())

    def locked(file: str, depends: dict) -> LockedDependency:
        data = (channel / "noarch" / file).read_bytes()
        name, version, _ = file.rsplit("-", 2)
        return LockedDependency(name=name, version=version, manager="conda", platform="linux-64",
                                dependencies=depends, url=f"{channel.as_uri()}/noarch/{file}",
                                hash=HashModel(md5=hashlib.md5(data).hexdigest(), sha256=hashlib.sha256(data).hexdigest()),
                                categories={"main"})

    lock = Lockfile(package=[locked("greet-1.0-0.conda", {"shout": ">=1"}), locked(f"shout-{shout}-0.tar.bz2", {})],
                    metadata=LockMeta(content_hash=hashes, channels=spec.channels, platforms=["linux-64"],
                                      sources=["environment.yml"]))
    write_conda_lock_file(lock, root / "conda-lock.yml", metadata_choices=None)


@pytest.mark.parametrize("files, expect, field", [
    ({"environment.yml": "channels: [CHANNEL]\ndependencies:\n  - greet\n - shout\n"},
     ["environment.yml:4:2: not valid YAML"], "environments.legacy.conda.file"),
    ({"environment.yml": "channels: [CHANNEL]\ndependencies:\n  - greet\n  - nosuchtool >=1\n"},
     ["environment.yml: dependencies cannot be solved for linux-64", "nosuchtool"], "environments.legacy.conda.file"),
    ({"environment.yml": "channels: [CHANNEL]\ndependencies:\n  - greet\n  - pip:\n    - requests\n"},
     ["environment.yml:4:5: dependencies[1]: pip packages are not installed"], "environments.legacy.conda.file"),
    ({"environment.yml": "channels: [CHANNEL]\ndependencies:\n  - greet\n  - 'shout >=>1'\n"},
     ["environment.yml:4:5: dependencies[1]: 'shout >=>1' is not a conda package spec"],
     "environments.legacy.conda.file"),
    ({"environment.yml": "channels: [CHANNEL]\ndependencies: [greet]\n", "conda-lock.yml": "version: 1\npackage: 3\n"},
     ["conda-lock.yml:", "expected a conda-lock lock file"], "environments.legacy.conda.lock"),
], ids=["bad-yaml", "unknown-package", "pip-section", "bad-spec", "bad-lock"])
def test_bad_input_is_exit_2_with_the_file_and_field(project, channel, conda_vars, files, expect, field):
    project.pipeline(PIPELINE)
    for rel, text in files.items():
        project.write(rel, text.replace("CHANNEL", channel.as_uri()))
    before = sorted(p.name for p in project.root.iterdir())
    res = project.flowml("run", env=conda_vars)
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "pipeline.yaml:3:" in res.err and field in res.err, res.err
    for text in expect:
        assert text in res.err, res.err
    assert sorted(p.name for p in project.root.iterdir()) == before  # no lock written, no .flowml/
    assert environments(conda_vars) == []


def test_env_list_shows_the_prefix_and_prune_removes_it(project, channel, conda_vars):
    make(project, channel)
    run(project, conda_vars)
    (listed,) = project.flowml("env", "list", "--json", env=conda_vars).json["environments"]
    assert listed["python"] == "conda linux-64" and listed["packages"] == 2 and listed["projects"] == [str(project.root)]
    pruned = project.flowml("env", "prune", "--all", "--json", env=conda_vars).json
    assert [(p["key"], p["action"]) for p in pruned] == [(listed["key"], "removed")]
    assert environments(conda_vars) == []


# units ---------------------------------------------------------------------------------------

def test_the_key_is_the_digest_of_the_locked_packages_whatever_their_order():
    from flowml_conda.resolve import Resolution

    a = {"url": "file:///c/noarch/a-1-0.conda", "md5": "1" * 32, "sha256": None}
    b = {"url": "file:///c/noarch/b-1-0.conda", "md5": "2" * 32, "sha256": "3" * 64}
    key = Resolution("linux-64", [a, b]).key
    assert key == Resolution("linux-64", [b, a], lock_text="ignored").key and key.startswith("conda-linux-64-")
    assert key != Resolution("linux-64", [a]).key != Resolution("osx-arm64", [a, b]).key


def test_a_conda_lock_entry_without_build_takes_it_from_the_file_name():
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta

    from flowml_conda.lockfile import packages_of

    dep = LockedDependency(name="libzlib", version="1.3.1", manager="conda", platform="linux-64",
                           dependencies={"libgcc": ">=13", "__glibc": ">=2.17,<3.0.a0"},
                           url="https://conda.anaconda.org/conda-forge/linux-64/libzlib-1.3.1-hb9d3cd8_2.conda",
                           hash=HashModel(md5="e" * 32), categories={"main"})
    lock = Lockfile(package=[dep], metadata=LockMeta(content_hash={"linux-64": "x"}, channels=["conda-forge"],
                                                     platforms=["linux-64"], sources=["environment.yml"]))
    (package,) = packages_of(lock, "linux-64")
    assert package["build"] == "hb9d3cd8_2" and package["depends"] == ["libgcc >=13", "__glibc >=2.17,<3.0.a0"]
    assert packages_of(lock, "osx-arm64") == []


def test_a_record_for_rattler_keeps_the_locked_url_hashes_and_build_number():
    from flowml_conda.solve import _record

    record = _record({"name": "libzlib", "version": "1.3.1", "build": "hb9d3cd8_2", "md5": "e" * 32, "sha256": None,
                      "url": "https://conda.anaconda.org/conda-forge/linux-64/libzlib-1.3.1-hb9d3cd8_2.conda",
                      "depends": ["libgcc >=13"]})
    assert (record.build_number, record.subdir, record.file_name) == (2, "linux-64", "libzlib-1.3.1-hb9d3cd8_2.conda")
    assert record.channel == "https://conda.anaconda.org/conda-forge/" and record.md5 == bytes.fromhex("e" * 32)

