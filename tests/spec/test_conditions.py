"""``when:`` conditions: comparisons and boolean logic over references, never ``eval``."""

from __future__ import annotations

import pytest

from flowml.spec.conditions import ConditionError, evaluate, parse_condition

VALUES = {"n": 3, "lr": 0.1, "mode": "full", "flag": True, "off": False, "rmse": 0.75, "tags": ["a", "b"]}
seen: list = []


def resolve(ref):
    seen.append(ref)
    return VALUES[ref.name]


@pytest.mark.parametrize("text, expected", [
    ("${steps.evaluate.metrics.rmse} < 0.8", True),
    ("${steps.evaluate.metrics.rmse} >= 0.8", False),
    ("${params.n} == 3", True),
    ("${params.n} != 3", False),
    ("${params.n} > 2 and ${params.lr} <= 0.1", True),
    ("${params.n} > 5 and ${params.lr} <= 0.1", False),
    ("${params.n} > 5 or ${params.mode} == 'full'", True),
    ("${params.n} > 5 or ${params.mode} == 'fast'", False),
    ("not ${params.flag}", False),
    ("not ${params.off}", True),
    ("${params.flag}", True),
    ("${params.off}", False),
    ("${params.flag} == true", True),
    ("${params.flag} == True", True),
    ("${params.off} == false", True),
    ("${params.mode} in ['full', 'fast']", True),
    ("${params.mode} in ('a', 'b')", False),
    ("${params.mode} not in ['full']", False),
    ("'a' in ${params.tags}", True),
    ("0 < ${params.lr} < 1", True),
    ("0 < ${params.lr} < 0.05", False),
    ("-1 < ${params.n}", True),
    ("not (${params.n} == 3 and ${params.flag})", False),
    ("${params.n} == 3 and (${params.off} or ${params.mode} == 'full')", True),
    ("${params.mode} != null", True),
    ("true", True),
    ("false or false", False),
])
def test_evaluate(text, expected):
    assert evaluate(text, resolve) is expected


def test_references_are_resolved_once_each_and_parsed():
    seen.clear()
    tree, refs = parse_condition("${params.n} > 1 and ${steps.ev.metrics.rmse} < 0.8")
    assert [(r.namespace, r.name) for r in refs.values()] == [("params", "n"), ("steps", "rmse")]
    assert list(refs.values())[1].step == "ev"
    assert evaluate("${params.n} > 1 and ${steps.ev.metrics.rmse} < 0.8", resolve) is True
    assert [r.name for r in seen] == ["n", "rmse"]


def test_string_values_are_not_code():
    """A resolved value is data: a string that looks like code is compared, never run."""
    values = {"s": "__import__('os').system('exit 1')"}
    assert evaluate("${params.s} == 'x'", lambda ref: values[ref.name]) is False


@pytest.mark.parametrize("text, words", [
    ("__import__('os')", "Call is not allowed"),
    ("open('/etc/passwd')", "Call is not allowed"),
    ("${params.mode}.upper() == 'FULL'", "not allowed"),
    ("${params.n}.real == 3", "Attribute is not allowed"),
    ("${params.n} + 1 > 3", "BinOp is not allowed"),
    ("${params.tags}[0] == 'a'", "Subscript is not allowed"),
    ("(lambda: 1)() == 1", "not allowed"),
    ("[x for x in [1]] == [1]", "ListComp is not allowed"),
    ("1 if ${params.flag} else 2", "IfExp is not allowed"),
    ("{'a': 1} == {}", "Dict is not allowed"),
    ("(x := 1) == 1", "not allowed"),
    ("f'{1}' == '1'", "JoinedStr is not allowed"),
    ("~${params.n} == 1", "not allowed"),
    ("foo > 1", "unknown name 'foo'"),
    ("os == 1", "unknown name 'os'"),
    ("${params.n} >", "invalid condition"),
    ("${HOME} == '/root'", "is not a reference"),
])
def test_rejected(text, words):
    with pytest.raises(ConditionError) as exc:
        parse_condition(text)
    assert words in str(exc.value)
    with pytest.raises(ConditionError):
        evaluate(text, resolve)


def test_type_mismatch_at_evaluation_is_a_condition_error():
    with pytest.raises(ConditionError) as exc:
        evaluate("${params.mode} < 1", resolve)
    assert "cannot evaluate" in str(exc.value)


def test_quoted_reference_is_rejected_with_a_hint():
    """A reference inside quotes would compare the placeholder text; it is refused instead."""
    with pytest.raises(ConditionError, match="inside quotes"):
        evaluate("'${params.mode}' == 'full'", resolve)
