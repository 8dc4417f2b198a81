"""pip's index settings handed to uv: read from pip's files and PIP_* variables in pip's order
of precedence, left to uv's own variables when the caller set those."""

from __future__ import annotations

import os

from flowml.environments.uv.pipconfig import pip_settings, uv_index_args


def _environ(tmp_path, **extra) -> dict[str, str]:
    """A caller whose pip files are a global one (XDG_CONFIG_DIRS) and a user one (HOME)."""
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text(
        "[global]\nindex_url = https://global.example/simple\n--find-links = /global/wheels\n")  # pip's other spellings
    (tmp_path / "home" / ".config" / "pip").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = https://user.example/simple\n"
        "[install]\nextra-index-url =\n  https://one.example/simple\n  https://two.example/simple\n")
    return {"XDG_CONFIG_DIRS": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"), **extra}


def test_user_file_over_global_file_install_section_and_variables_on_top(tmp_path):
    environ = _environ(tmp_path, PIP_FIND_LINKS="/a /b", PIP_NO_INDEX="yes")
    assert uv_index_args(environ) == [
        "--index-url", "https://user.example/simple",
        "--extra-index-url", "https://one.example/simple", "--extra-index-url", "https://two.example/simple",
        "--find-links", "/a", "--find-links", "/b", "--no-index"]


def test_an_existing_pip_config_file_replaces_the_users_files(tmp_path):
    named = tmp_path / "named.conf"
    named.write_text("[global]\nfind-links = /named\nconstraint = /c1.txt /c2.txt\ntrusted-host = mirror.local\n")
    environ = _environ(tmp_path, PIP_CONFIG_FILE=str(named))
    assert pip_settings(environ)["index-url"] == "https://global.example/simple"  # the user's file is skipped
    args = uv_index_args(environ, constraints=True)
    assert args[:4] == ["--constraint", "/c1.txt", "--constraint", "/c2.txt"]
    assert ["--find-links", "/named"] == args[args.index("--find-links"):args.index("--find-links") + 2]
    assert "--allow-insecure-host" in args and "--constraint" not in uv_index_args(environ)


def test_the_null_device_as_config_file_leaves_only_variables(tmp_path):
    environ = _environ(tmp_path, PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="https://var.example/simple")
    assert uv_index_args(environ) == ["--index-url", "https://var.example/simple"]


def test_uvs_own_index_variables_win_over_pips(tmp_path):
    assert uv_index_args(_environ(tmp_path, UV_INDEX_URL="https://uv.example/simple")) == []
