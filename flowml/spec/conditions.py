"""``when:`` conditions: comparisons and boolean logic over references, never ``eval``.

References are swapped for placeholder names, the text is parsed with :mod:`ast`, and
only a whitelist of node types (comparisons, and/or/not, literals) is evaluated.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Callable

from flowml.spec.interpolate import Ref, parse_ref

_REF = re.compile(r"\$\{([^{}]*)\}")
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}
_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


class ConditionError(ValueError):
    """A condition that cannot be parsed or evaluated."""


def parse_condition(text: str) -> tuple[ast.Expression, dict[str, Ref]]:
    """Parse ``text``; references become placeholder names ``_ref0``, ``_ref1`` ...

    Raises:
        ConditionError: for syntax the evaluator does not accept.
    """
    refs: dict[str, Ref] = {}

    def swap(m: re.Match) -> str:
        ref = parse_ref(m.group(1))
        if ref is None:
            raise ConditionError(f"'${{{m.group(1)}}}' is not a reference (use params., matrix. or steps.)")
        name = f"_ref{len(refs)}"
        refs[name] = ref
        return f" {name} "

    try:
        tree = ast.parse(_REF.sub(swap, text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"invalid condition {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                                 ast.Compare, ast.Constant, ast.Name, ast.Load, ast.List, ast.Tuple,
                                 *_COMPARE)):
            raise ConditionError(f"invalid condition {text!r}: {type(node).__name__} is not allowed "
                                 "(use comparisons, and, or, not and literals)")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(n in node.value for n in refs):
            raise ConditionError(f"invalid condition {text!r}: a reference inside quotes is not substituted; "
                                 "write it unquoted, e.g. ${params.mode} == 'full'")
        if isinstance(node, ast.Name) and node.id not in refs and node.id not in _NAMES:
            raise ConditionError(f"invalid condition {text!r}: unknown name '{node.id}'")
    return tree, refs


def evaluate(text: str, resolve: Callable[[Ref], Any]) -> bool:
    """Truth of the condition ``text`` with references looked up by ``resolve``."""
    tree, refs = parse_condition(text)
    values = {name: resolve(ref) for name, ref in refs.items()}
    try:
        return bool(_eval(tree.body, values))
    except TypeError as exc:
        raise ConditionError(f"cannot evaluate {text!r}: {exc}") from None


def _eval(node: ast.AST, values: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id] if node.id in values else _NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, values) for e in node.elts]
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, values)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, values) for v in node.values)
        return any(_eval(v, values) for v in node.values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, values)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ConditionError(f"{type(node).__name__} is not allowed")
