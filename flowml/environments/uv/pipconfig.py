"""pip's package-index settings, as uv arguments.

uv does not read pip's configuration, yet a machine's pip configuration is where its package
sources are set (a mirror, a local wheel folder, no index at all), so flowml hands the same
settings to uv: read as pip reads them (its config files from the system-wide ones up to
``PIP_CONFIG_FILE``, the ``[global]`` then ``[install]`` sections, then ``PIP_*`` variables,
each overriding the one before). When the caller set uv's own index variables, those win and
pip's are left out.
"""

from __future__ import annotations

import configparser
import os
import sys

# pip's key -> (uv option, the value is a whitespace-separated list)
OPTIONS = {"index-url": ("--index-url", False), "extra-index-url": ("--extra-index-url", True),
           "find-links": ("--find-links", True), "trusted-host": ("--allow-insecure-host", True)}
KEYS = [*OPTIONS, "no-index", "cert", "constraint"]
UV_INDEX_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
                 "UV_NO_INDEX")


def pip_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """pip's effective value of each key in :data:`KEYS`."""
    environ = os.environ if environ is None else environ
    settings: dict[str, str] = {}
    parser = configparser.RawConfigParser()
    parser.optionxform = _normalize  # type: ignore[method-assign]
    for path in _config_files(environ):
        parser.read(path, encoding="utf-8")  # a missing or unreadable file is skipped, as pip does
    for section in ("global", "install"):
        if parser.has_section(section):
            settings.update({k: v for k, v in parser.items(section) if k in KEYS})
    for key in KEYS:
        value = environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            settings[key] = value
    return settings


def uv_index_args(environ: dict[str, str] | None = None, *, constraints: bool = False) -> list[str]:
    """uv options for pip's index settings (and its constraint files, to resolve); none when
    uv's own index variables are set."""
    environ = os.environ if environ is None else environ
    if any(environ.get(v) for v in UV_INDEX_VARS):
        return []
    settings = pip_settings(environ)
    args = []
    if constraints:
        for path in settings.get("constraint", "").split():
            args += ["--constraint", path]
    for key, (option, is_list) in OPTIONS.items():
        for value in (settings[key].split() if is_list else [settings[key].strip()]) if key in settings else []:
            args += [option, value]
    if settings.get("no-index", "").strip().lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    return args


def cert_file(environ: dict[str, str] | None = None) -> str | None:
    """pip's ``cert`` bundle: uv reads it from ``SSL_CERT_FILE``."""
    return pip_settings(environ).get("cert")


def _normalize(key: str) -> str:
    """pip's spelling of a key: ``find_links`` and ``--find-links`` are ``find-links``."""
    key = key.lower().replace("_", "-")
    return key[2:] if key.startswith("--") else key


def _config_files(environ) -> list[str]:
    """pip's configuration files, lowest precedence first (none if ``PIP_CONFIG_FILE`` is the null device)."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs.split(os.pathsep) if d] + ["/etc/pip.conf"]
    if not (named and os.path.exists(named)):  # pip skips the user's files when PIP_CONFIG_FILE exists
        home = environ.get("HOME") or os.path.expanduser("~")
        xdg_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files += [os.path.join(home, ".pip", "pip.conf"), os.path.join(xdg_home, "pip", "pip.conf")]
    files.append(os.path.join(sys.prefix, "pip.conf"))
    if named:
        files.append(named)
    return files
