"""environment.yml: checked with the position of each fault, then parsed by conda-lock's own
parser, so that the lock's content hash is the one ``conda-lock`` computes for the same file
(a lock made by either tool is recognised as up to date by the other).

What is read: ``channels`` (names or URLs, in priority order), ``dependencies`` (conda match
specs, ``# [linux]`` selectors included) and conda-lock's ``platforms`` (default: this
machine's). A ``pip:`` section is refused: rattler installs conda packages only, and a python
environment (uv) is flowml's way to install PyPI packages.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from flowml_conda.errors import CondaInputError


@dataclass(frozen=True)
class EnvFile:
    path: str
    shown: str  # the path as the pipeline names it, for messages
    channels: list[str]
    platforms: list[str]


def read_env_file(path: str, shown: str, platform: str) -> EnvFile:
    """The checked content of ``path`` (``platform``: this machine's, the default platform).

    Raises:
        CondaInputError: unreadable, not YAML, or a field of the wrong shape, named with its line.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CondaInputError("file", f"{shown}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        raise CondaInputError("file", f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    at = _Positions(root, shown)
    if not isinstance(data, dict):
        raise CondaInputError("file", f"{shown}: expected a mapping with channels and dependencies")
    channels = _strings(data, "channels", at, "a list of channel names or URLs")
    platforms = _strings(data, "platforms", at, "a list of platforms such as linux-64")
    _check_dependencies(data.get("dependencies"), at)
    platforms = platforms or [platform]
    if platform not in platforms:
        raise CondaInputError("file", f"{at('platforms')}: this machine's platform {platform} is not among "
                                      f"{', '.join(platforms)}")
    return EnvFile(path, shown, [c for c in channels if c != "nodefaults"], platforms)


def lock_spec(env: EnvFile):
    """conda-lock's lock specification of ``env`` for its platforms.

    Raises:
        CondaInputError: a dependency that conda-lock cannot read.
    """
    import pathlib

    from conda_lock.lookup import DEFAULT_MAPPING_URL
    from conda_lock.src_parser import make_lock_spec

    try:
        return make_lock_spec(src_files=[pathlib.Path(env.path)], platform_overrides=env.platforms,
                              mapping_url=DEFAULT_MAPPING_URL)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CondaInputError("file", f"{env.shown}: {exc}") from None


class _Positions:
    """``at("dependencies", 2)``: ``file:line:column: dependencies[2]`` of that node."""

    def __init__(self, root: yaml.Node | None, shown: str) -> None:
        self.root, self.shown = root, shown

    def __call__(self, key: str, index: int | None = None) -> str:
        node = None
        if isinstance(self.root, yaml.MappingNode):
            node = next((v for k, v in self.root.value if k.value == key), None)
        field = key if index is None else f"{key}[{index}]"
        if index is not None and isinstance(node, yaml.SequenceNode) and index < len(node.value):
            node = node.value[index]
        if node is None:
            return f"{self.shown}: {field}"
        return f"{self.shown}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: {field}"


def _strings(data: dict, key: str, at: _Positions, expected: str) -> list[str]:
    """The optional list of strings ``data[key]``."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CondaInputError("file", f"{at(key)}: expected {expected}")
    return value


def _check_dependencies(deps, at: _Positions) -> None:
    """Each dependency a conda match spec rattler can read."""
    from rattler import MatchSpec

    if not isinstance(deps, list) or not deps:
        raise CondaInputError("file", f"{at('dependencies')}: expected a list of conda packages such as "
                                      f"'numpy >=1.26'")
    for i, dep in enumerate(deps):
        if isinstance(dep, dict) and "pip" in dep:
            raise CondaInputError("file", f"{at('dependencies', i)}: pip packages are not installed in conda "
                                          f"environments; install them in a python environment (uv) instead")
        if not isinstance(dep, str):
            raise CondaInputError("file", f"{at('dependencies', i)}: expected a conda package spec, got "
                                          f"{type(dep).__name__}")
        try:
            MatchSpec(dep)
        except Exception as exc:  # rattler's parse errors share no base class but Exception
            raise CondaInputError("file", f"{at('dependencies', i)}: '{dep}' is not a conda package spec: "
                                          f"{exc}") from None

