"""Python (uv) environments without a network: small wheels built here, offered to uv through
pip's own configuration (a pip.conf saying ``no-index``, ``PIP_FIND_LINKS``), as a machine's
pip configuration would offer an index; the real uv runs behind a wrapper that logs each call, so a test can
count resolutions and creations, and can slow one down to catch a run in the middle of it."""

from __future__ import annotations

import base64
import hashlib
import stat
import zipfile
from pathlib import Path

import pytest


def build_wheel(folder: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel of one module (``name.py`` with ``module`` as its source)."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: flowml-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for member, text in files.items():
            whl.writestr(member, text)
    return path


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


BACKEND = """\
import base64, hashlib, os, zipfile

NAME, VERSION = "{name}", "{version}"
INFO = f"{{NAME}}-{{VERSION}}.dist-info"


def _wheel(folder, files):
    files = {{**files, f"{{INFO}}/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode(),
             f"{{INFO}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    record = [f"{{p}},sha256={{base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()}},{{len(b)}}"
              for p, b in files.items()]
    files[f"{{INFO}}/RECORD"] = ("\\n".join([*record, f"{{INFO}}/RECORD,,"]) + "\\n").encode()
    name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(folder, name), "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {{}}
    for folder, _, names in os.walk(NAME):
        for n in names:
            if not n.endswith(".pyc"):
                with open(os.path.join(folder, n), "rb") as fh:
                    files[os.path.join(folder, n)] = fh.read()
    return _wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {{f"{{NAME}}.pth": (os.path.abspath(".") + "\\n").encode()}})
"""


def write_local_package(folder: Path, name: str, source: str, version: str = "0.1") -> Path:
    """A source tree of package ``name`` (``name/__init__.py`` holding ``source``) that uv builds
    without a network: its build backend is a module of the tree itself (PEP 517 ``backend-path``)."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "__init__.py").write_text(source)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "tinybackend"\nbackend-path = ["."]\n')
    (folder / "tinybackend.py").write_text(BACKEND.format(name=name, version=version))
    return folder


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """flowtiny 1.0 and 2.0 (VALUE = the major version) and flowother 1.0."""
    folder = tmp_path_factory.mktemp("wheels")
    for version in ("1.0", "2.0"):
        build_wheel(folder, "flowtiny", version, f"VALUE = {version[0]}\n")
    build_wheel(folder, "flowother", "1.0", "OTHER = True\n")
    return folder


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


class UvEnv:
    """The variables that point flowml at this test's environment folder, the wheelhouse and
    the logging uv; ``calls(verb)`` counts logged uv calls starting with ``verb``."""

    def __init__(self, folder: Path, wheelhouse: Path, uv_cache: Path) -> None:
        from uv import find_uv_bin

        self.folder = folder / "envs"
        self.log = folder / "uv-calls.log"
        wrapper = folder / "uv"
        wrapper.write_text(f"""#!/bin/sh
echo "$*" >> "{self.log}"
case "$*" in "${{UV_TEST_SLOW:-none}}"*) sleep "${{UV_TEST_SLEEP:-0}}";; esac
exec "{find_uv_bin()}" "$@"
""")
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
        # pip's configuration, as a machine's offers a local wheel folder: a file and a variable
        # (which overrides any PIP_FIND_LINKS of the caller's)
        pip_conf = folder / "pip.conf"
        pip_conf.write_text("[global]\nno-index = true\n")
        self.vars = {"FLOWML_ENV_DIR": str(self.folder), "FLOWML_UV": str(wrapper), "PIP_CONFIG_FILE": str(pip_conf),
                     "PIP_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(uv_cache)}

    def calls(self, verb: str) -> int:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return sum(1 for line in lines if line.startswith(verb))

    def environments(self) -> list[str]:
        """Names of the finished environments in the folder."""
        if not self.folder.exists():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and (p / "flowml-env.json").exists())

    def leftovers(self) -> list[str]:
        """Unfinished creations or removals."""
        if not self.folder.exists():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.name.startswith((".tmp-", ".removed-")))


@pytest.fixture
def uv_env(tmp_path_factory, wheelhouse, uv_cache) -> UvEnv:
    return UvEnv(tmp_path_factory.mktemp("uvenv"), wheelhouse, uv_cache)
