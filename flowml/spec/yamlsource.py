"""YAML to plain Python values, remembering where every key and value came from.

PyYAML's constructors drop positions, so we compose the node tree ourselves and keep
a map from field path (a tuple of keys and indexes) to its line and column. Errors
found later, by pydantic or by our own checks, look their path up here to say
``pipeline.yaml:12:5``. Duplicate keys, which PyYAML silently accepts, are an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from flowml.errors import Problem, SpecError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path_ = tuple  # a field path: ("steps", "train", "outputs", 0)


@dataclass
class SourceMap:
    """Positions of the values (and of the keys) of one YAML document."""

    file: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while True:
            table = self.keys if key and path in self.keys else self.values
            if path in table:
                return table[path]
            if not path:
                return None, None
            path = path[:-1]

    def problem(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        """A :class:`Problem` at ``path`` with the dotted field name."""
        line, column = self.locate(path, key=key)
        return Problem(message, self.file, line, column, dotted(path) or None)


def dotted(path: Path_) -> str:
    """``("steps", "train", "outputs", 0)`` -> ``steps.train.outputs[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and a :class:`SourceMap`.

    Raises:
        SpecError: on a syntax error or a duplicate key, with its position.
    """
    smap = SourceMap(file)
    try:
        node = yaml.compose(text, Loader=_Loader)
        return (None if node is None else _convert(node, (), smap)), smap
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError(Problem(f"invalid YAML: {exc.problem or exc.context}", file, line, col)) from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError for a NUL byte: no mark attribute
        raise SpecError(Problem(f"invalid YAML: {exc}", file)) from None



_scalars = yaml.constructor.SafeConstructor()


def _convert(node: yaml.Node, path: Path_, smap: SourceMap) -> Any:
    smap.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(smap.problem(path, "YAML merge keys (<<) are not supported"))
            key = _convert(key_node, path + ("<key>",), smap)
            if not isinstance(key, (str, int, float, bool)):
                raise SpecError(smap.problem(path, "mapping keys must be plain scalars"))
            child = path + (key,)
            smap.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                raise SpecError(smap.problem(child, f"duplicate key '{key}'", key=True))
            out[key] = _convert(value_node, child, smap)
        smap.values.pop(path + ("<key>",), None)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), smap) for i, item in enumerate(node.value)]
    try:
        return _scalars.construct_object(node, deep=True)
    except (ValueError, TypeError) as exc:
        mark = node.start_mark
        raise yaml.MarkedYAMLError(problem=f"cannot read {node.value!r} as {node.tag}: {exc}",
                                   problem_mark=mark) from None
