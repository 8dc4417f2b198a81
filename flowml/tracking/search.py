"""The filter, order_by and page_token grammar of MLflow's ``search_runs`` and
``search_experiments``, parsed into plain records.

Pure Python on purpose: the REST server validates a request with it before touching the
database, and ``flowml.tracking.sql.query`` turns the records into SQL. A hand-written
scanner rather than MLflow's sqlparse: every error can then name the offending token and
its 0-based position, e.g. ``invalid filter "metrics.rmse < abc" at position 15: expected
a number for metrics.rmse, got 'abc'``.

A filter is clauses joined by ``AND`` (``OR`` and parentheses are not MLflow syntax).
A clause is ``<entity>.<key> <op> <value>``, or ``<attribute> <op> <value>``. What the
entities, attributes and operators are is a :class:`Grammar`; :data:`RUNS` (the default) is
``search_runs``'s:

- metrics: ``= != > >= < <=`` against a number;
- params and tags: ``= != LIKE ILIKE`` against a quoted string, or ``IS [NOT] NULL``;
- attributes: ``start_time``/``end_time`` as metrics, the others as params (no ``IS NULL``),
  and ``run_id [NOT] IN ('a', 'b')``.

:data:`EXPERIMENTS` is ``search_experiments``'s (MLflow's ``SearchExperimentsUtils``): tags
with ``= != LIKE ILIKE``; attributes ``name`` (as a string) and ``creation_time``,
``last_update_time`` (as numbers); ``order_by`` on ``name``, ``experiment_id``,
``creation_time`` and ``last_update_time`` only. :data:`LOGGED_MODELS` is ``search_logged_models``'s.

Keys are quoted with backticks or double quotes when they are not dotted words; strings with
single or double quotes, a doubled quote standing for itself. In LIKE patterns ``%`` is any
run of characters, ``_`` any one, and a backslash makes the next character literal.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from flowml.errors import TrackingError

# The most results one page of a search may hold (MLflow's SEARCH_MAX_RESULTS_THRESHOLD).
SEARCH_MAX_RESULTS = 50_000

_NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_LIST_OPS = ("IN", "NOT IN")
_KIND_NAMES = {"metric": "a metric", "param": "a param", "tag": "a tag", "attribute": "an attribute"}
# How errors spell each kind's prefix.
_SHOWN_PREFIXES = {"metric": "metrics.", "param": "params.", "tag": "tags.", "attribute": "attributes."}


@dataclass(frozen=True)
class Grammar:
    """What one search accepts: entity prefixes (spelling -> kind, case-sensitive as in
    MLflow), the operators of each keyed kind, the attributes a filter may name (numeric ones
    compare with numbers, string ones with quoted strings), MLflow's aliases of attributes,
    the attributes that take ``[NOT] IN`` lists, and what ``order_by`` may name."""

    prefixes: dict[str, str]
    ops: dict[str, tuple[str, ...]]
    numeric_attributes: tuple[str, ...]
    string_attributes: tuple[str, ...]
    order_attributes: tuple[str, ...]
    order_kinds: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    list_attributes: tuple[str, ...] = ()

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.numeric_attributes + self.string_attributes

    @property
    def kinds(self) -> tuple[str, ...]:
        """The keyed kinds (all but ``attribute``), in the order errors list them."""
        return tuple(self.ops)


# search_runs: entity prefixes as MLflow spells them (case-sensitive there too), and its
# aliases, from the column titles of its UI.
RUNS = Grammar(
    prefixes={
        "metric": "metric", "metrics": "metric",
        "param": "param", "params": "param", "parameter": "param", "parameters": "param",
        "tag": "tag", "tags": "tag",
        "attribute": "attribute", "attributes": "attribute", "attr": "attribute", "run": "attribute",
    },
    ops={"metric": _NUMERIC_OPS, "param": _STRING_OPS + _NULL_OPS, "tag": _STRING_OPS + _NULL_OPS},
    numeric_attributes=("start_time", "end_time"),
    string_attributes=("run_id", "run_name", "status", "user_id", "artifact_uri"),
    order_attributes=("start_time", "end_time", "run_id", "run_name", "status", "user_id", "artifact_uri"),
    order_kinds=("metric", "param", "tag"),
    aliases={"created": "start_time", "Created": "start_time",
             "run name": "run_name", "Run name": "run_name", "Run Name": "run_name"},
    list_attributes=("run_id",),
)

# search_experiments, as MLflow's SearchExperimentsUtils and SQL store take it: tags without
# IS NULL, no metrics or params, no IN, order_by on attributes only. Its code takes the
# prefixes attribute., tag. and tags.; its documentation spells attributes., so that one too.
EXPERIMENTS = Grammar(
    prefixes={"tag": "tag", "tags": "tag", "attribute": "attribute", "attributes": "attribute"},
    ops={"tag": _STRING_OPS},
    numeric_attributes=("creation_time", "last_update_time"),
    string_attributes=("name",),
    order_attributes=("name", "experiment_id", "creation_time", "last_update_time"),
)

# search_logged_models, as MLflow's SearchLoggedModelsUtils takes it (flowml keeps no metrics
# on logged models, so ``metrics.`` is refused rather than matching nothing).
LOGGED_MODELS = Grammar(
    prefixes={"tag": "tag", "tags": "tag", "param": "param", "params": "param",
              "attribute": "attribute", "attributes": "attribute"},
    ops={"tag": _STRING_OPS, "param": _STRING_OPS},
    numeric_attributes=("creation_timestamp", "last_updated_timestamp"),
    string_attributes=("name", "model_id", "model_type", "status", "source_run_id"),
    order_attributes=("name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp",
                      "last_updated_timestamp"),
    aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
)

_WORD = re.compile(r"[A-Za-z_]\w*")
_UNQUOTED_KEY = re.compile(r"\w+(?:\.\w+)*")
_SYMBOL_OP = re.compile(r"<=|>=|!=|=|<|>")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TOKEN = re.compile(r"\S+")
_KEY_QUOTES = "`\""
_STRING_QUOTES = "'\""


@dataclass(frozen=True)
class Clause:
    """One comparison of a filter.

    ``kind`` is ``metric``, ``param``, ``tag`` or ``attribute``; ``key`` the unquoted name
    (for attributes the canonical column, aliases resolved); ``op`` upper case; ``value`` a
    float for numeric comparisons, a str for string ones, a tuple of str for ``IN``/``NOT IN``,
    None for ``IS NULL``/``IS NOT NULL``.
    """

    kind: str
    key: str
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class Order:
    """One ``order_by`` item: what to sort on and in which direction."""

    kind: str
    key: str
    ascending: bool = True


def parse_filter(text: str, grammar: Grammar = RUNS) -> list[Clause]:
    """Parse a filter of ``grammar`` (default ``search_runs``'s); blank means no filter (``[]``)."""
    scan = _Scanner(text, "filter")
    scan.skip_space()
    if scan.at_end():
        return []
    clauses = [_clause(scan, grammar)]
    while True:
        scan.skip_space()
        if scan.at_end():
            return clauses
        start = scan.pos
        word = scan.match(_WORD)
        if word is not None and word.upper() == "AND":
            scan.skip_space()
            if scan.at_end():
                raise scan.error(scan.pos, "expected a clause after AND, got the end of the filter")
            clauses.append(_clause(scan, grammar))
        elif word is not None and word.upper() == "OR":
            raise scan.error(start, "OR is not supported, only AND")
        else:
            raise scan.error(start, f"expected AND or the end of the filter, got {scan.token_at(start)!r}")


def parse_order_by(items: list[str], grammar: Grammar = RUNS) -> list[Order]:
    """Parse ``order_by`` items of ``grammar`` (default ``search_runs``'s), each
    ``<entity>.<key> [ASC|DESC]`` or an attribute; a key may appear once (MLflow refuses
    duplicates too)."""
    orders: list[Order] = []
    for item in items:
        scan = _Scanner(item, "order_by")
        scan.skip_space()
        start = scan.pos
        kind, key, shown = _identifier(scan, grammar, grammar.order_attributes)
        if kind != "attribute" and kind not in grammar.order_kinds:
            raise scan.error(start, f"{shown} ({_KIND_NAMES[kind]}) cannot be ordered on; use one of "
                                    f"{', '.join(grammar.order_attributes)}")
        scan.skip_space()
        ascending = True
        if not scan.at_end():
            direction_at = scan.pos
            direction = scan.match(_WORD)
            if direction is None or direction.upper() not in ("ASC", "DESC"):
                raise scan.error(direction_at, f"expected ASC or DESC after {shown}, "
                                               f"got {scan.token_at(direction_at)!r}")
            ascending = direction.upper() == "ASC"
            scan.skip_space()
            if not scan.at_end():
                raise scan.error(scan.pos, f"expected the end of the item, got {scan.token_at(scan.pos)!r}")
        if any((o.kind, o.key) == (kind, key) for o in orders):
            raise scan.error(start, f"{shown} is already ordered on")
        orders.append(Order(kind, key, ascending))
    return orders


def encode_page_token(offset: int) -> str:
    """The opaque token for the page that starts at ``offset`` (MLflow's shape: base64 JSON)."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a token from :func:`encode_page_token` stands for; none or empty is 0."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise TrackingError(f"invalid page_token {token!r}") from None
    if type(offset) is not int or offset < 0:
        raise TrackingError(f"invalid page_token {token!r}")
    return offset


class _Scanner:
    """A position in the text being parsed, and errors that point into it."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def match(self, pattern: re.Pattern) -> str | None:
        """Consume and return what ``pattern`` matches here, or None (consuming nothing)."""
        found = pattern.match(self.text, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group()

    def quoted(self, what: str) -> str:
        """Consume a string quoted by the character here; a doubled quote stands for itself."""
        start, quote = self.pos, self.peek()
        parts = []
        self.pos += 1
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                raise self.error(start, f"unterminated {what}: no closing {quote}")
            parts.append(self.text[self.pos:end])
            self.pos = end + 1
            if self.peek() != quote:
                return quote.join(parts)
            self.pos += 1

    def token_at(self, pos: int) -> str:
        """The text at ``pos`` up to the next space, to quote in an error."""
        found = _TOKEN.match(self.text, pos)
        return found.group() if found else ""

    def describe(self, pos: int) -> str:
        """What stands at ``pos``, for 'got ...' in an error."""
        return repr(self.token_at(pos)) if pos < len(self.text) else f"the end of the {self.what}"

    def error(self, pos: int, message: str) -> TrackingError:
        return TrackingError(f'invalid {self.what} "{self.text}" at position {pos}: {message}')


def _identifier(scan: _Scanner, grammar: Grammar, attributes: tuple[str, ...]) -> tuple[str, str, str]:
    """Consume ``<entity>.<key>`` or a bare attribute name, one of ``attributes``; return
    (kind, key, text as written)."""
    start = scan.pos
    example = _SHOWN_PREFIXES[grammar.kinds[0]]
    name = scan.match(_WORD)
    if name is None:
        raise scan.error(start, f"expected a name such as {example}<key> or an attribute, "
                                f"got {scan.describe(start)}")
    if scan.peek() == ".":
        kind = grammar.prefixes.get(name)
        if kind is None:
            shown_prefixes = ", ".join(_SHOWN_PREFIXES[k] for k in grammar.kinds + ("attribute",))
            raise scan.error(start, f"unknown prefix {name!r}; expected one of {shown_prefixes}")
        scan.pos += 1
        key_at = scan.pos
        if scan.peek() and scan.peek() in _KEY_QUOTES:
            key = scan.quoted("key")
        else:
            key = scan.match(_UNQUOTED_KEY) or ""
        if not key:
            raise scan.error(key_at, f"empty key after '{name}.'; quote a key that has special "
                                     f"characters with backticks, e.g. {name}.`my-key`")
    else:
        kind, key, key_at = "attribute", name, start
    if scan.peek() and not scan.peek().isspace() and scan.peek() not in "<>=!":
        raise scan.error(scan.pos, f"unexpected {scan.peek()!r} after {scan.text[start:scan.pos]}; quote a "
                                   f"key that has special characters with backticks, e.g. {example}`my-key`")
    if kind == "attribute":
        key = grammar.aliases.get(key, key)
        if key not in attributes:
            raise scan.error(key_at, f"unknown attribute {key!r}; valid attributes are "
                                     f"{', '.join(attributes)}")
    return kind, key, scan.text[start:scan.pos]


def _operator(scan: _Scanner, shown: str) -> str:
    """Consume a comparison operator, normalised to upper case with single spaces."""
    start = scan.pos
    symbol = scan.match(_SYMBOL_OP)
    if symbol is not None:
        return symbol
    word = (scan.match(_WORD) or "").upper()
    if word in ("LIKE", "ILIKE", "IN"):
        return word
    if word == "IS":
        if _expect_word(scan, ("NULL", "NOT"), "after IS") == "NULL":
            return "IS NULL"
        _expect_word(scan, ("NULL",), "after IS NOT")
        return "IS NOT NULL"
    if word == "NOT":
        _expect_word(scan, ("IN",), "after NOT")
        return "NOT IN"
    raise scan.error(start, f"expected an operator after {shown}, got {scan.describe(start)}")


def _expect_word(scan: _Scanner, words: tuple[str, ...], where: str) -> str:
    """Consume the next word, which must be one of ``words`` (any case); return it upper case."""
    scan.skip_space()
    start = scan.pos
    word = (scan.match(_WORD) or "").upper()
    if word not in words:
        raise scan.error(start, f"expected {' or '.join(words)} {where}, got {scan.describe(start)}")
    return word


def _clause(scan: _Scanner, grammar: Grammar) -> Clause:
    kind, key, shown = _identifier(scan, grammar, grammar.attributes)
    scan.skip_space()
    op_at = scan.pos
    op = _operator(scan, shown)
    numeric = kind == "metric" or (kind == "attribute" and key in grammar.numeric_attributes)
    if kind == "attribute":
        allowed = _NUMERIC_OPS if numeric else _STRING_OPS + (_LIST_OPS if key in grammar.list_attributes else ())
    else:
        allowed = grammar.ops[kind]
    if op not in allowed:
        raise scan.error(op_at, f"{op} is not an operator for {shown} ({_KIND_NAMES[kind]}); "
                                f"use one of {', '.join(allowed)}")
    if op in ("IS NULL", "IS NOT NULL"):
        return Clause(kind, key, op, None)
    scan.skip_space()
    if op in ("IN", "NOT IN"):
        return Clause(kind, key, op, _string_list(scan, shown))
    value_at = scan.pos
    if numeric:
        number = scan.match(_NUMBER)
        if number is None:
            raise scan.error(value_at, f"expected a number for {shown}, got {scan.describe(value_at)}")
        return Clause(kind, key, op, float(number))
    value = _string(scan, shown)
    if op in ("LIKE", "ILIKE") and re.search(r"(?<!\\)(?:\\\\)*\\$", value):
        raise scan.error(value_at, "a LIKE pattern cannot end with the escape character \\")
    return Clause(kind, key, op, value)


def _string(scan: _Scanner, shown: str) -> str:
    if not (scan.peek() and scan.peek() in _STRING_QUOTES):
        raise scan.error(scan.pos, f"expected a quoted string for {shown}, got {scan.describe(scan.pos)}")
    return scan.quoted("string")


def _string_list(scan: _Scanner, shown: str) -> tuple[str, ...]:
    """Consume ``('a', 'b', ...)``, at least one string."""
    if scan.peek() != "(":
        raise scan.error(scan.pos, f"expected ( and a list of quoted strings for {shown}, "
                                   f"got {scan.describe(scan.pos)}")
    scan.pos += 1
    values = []
    while True:
        scan.skip_space()
        values.append(_string(scan, shown))
        scan.skip_space()
        if scan.peek() == ")":
            scan.pos += 1
            return tuple(values)
        if scan.peek() != ",":
            raise scan.error(scan.pos, f"expected , or ) in the list for {shown}, "
                                       f"got {scan.describe(scan.pos)}")
        scan.pos += 1
