"""A local conda channel for tests: small noarch packages built here by hand (a ``.conda`` and
``.tar.bz2`` archive of shell tools, one with a prefix placeholder), indexed with rattler."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"


def build_package(channel: Path, name: str, version: str, files: dict[str, str], depends: tuple[str, ...] = (),
                  fmt: str = "tar.bz2") -> Path:
    """A noarch package of executable text ``files`` (path -> text); a text holding
    :data:`PLACEHOLDER` is marked so the installer writes the prefix there."""
    index = {"name": name, "version": version, "build": "0", "build_number": 0, "depends": list(depends),
             "noarch": "generic", "subdir": "noarch", "license": "MIT"}
    paths = []
    for path, text in files.items():
        entry = {"_path": path, "path_type": "hardlink", "sha256": hashlib.sha256(text.encode()).hexdigest(),
                 "size_in_bytes": len(text.encode())}
        if PLACEHOLDER in text:
            entry.update(prefix_placeholder=PLACEHOLDER, file_mode="text")
        paths.append(entry)
    info = {"info/index.json": json.dumps(index), "info/paths.json": json.dumps({"paths_version": 1, "paths": paths}),
            "info/files": "".join(f"{p}\n" for p in files)}
    if any(PLACEHOLDER in t for t in files.values()):
        info["info/has_prefix"] = "".join(f"{PLACEHOLDER} text {p}\n" for p, t in files.items() if PLACEHOLDER in t)
    folder = channel / "noarch"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{version}-0"
    if fmt == "tar.bz2":
        out = folder / f"{stem}.tar.bz2"
        out.write_bytes(_tar({**info, **files}, "bz2"))
    else:
        out = folder / f"{stem}.conda"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
            archive.writestr(f"pkg-{stem}.tar.zst", _zstd(_tar(files, "")))
            archive.writestr(f"info-{stem}.tar.zst", _zstd(_tar(info, "")))
    return out


def _tar(members: dict[str, str], compression: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        for path, text in members.items():
            data = text.encode()
            item = tarfile.TarInfo(path)
            item.size, item.mode, item.mtime = len(data), 0o644 if path.startswith("info/") else 0o755, 0
            tar.addfile(item, io.BytesIO(data))
    return buffer.getvalue()


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def index(channel: Path) -> None:
    from rattler.index import index_fs

    asyncio.run(index_fs(channel))


def drop_index(channel: Path) -> None:
    """Remove the channel's repodata, so that any solve against it fails (its packages stay)."""
    for path in (channel / "noarch").iterdir():
        if path.name.startswith("repodata") or path.name == "shards":
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def make_channel(folder: Path) -> Path:
    """greet 1.0 (.conda; prints its prefix and what shout says; needs shout >=1), shout 1.0
    ('LOUD') and shout 2.0 ('LOUDER'), as .tar.bz2."""
    channel = folder / "channel"
    build_package(channel, "greet", "1.0", {"bin/greet": f'#!/bin/sh\necho "greet in {PLACEHOLDER} $(shout)"\n'},
                  depends=("shout >=1",), fmt="conda")
    for version, word in (("1.0", "LOUD"), ("2.0", "LOUDER")):
        build_package(channel, "shout", version, {"bin/shout": f"#!/bin/sh\necho {word}\n"})
    index(channel)
    return channel
