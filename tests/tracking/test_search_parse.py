"""The search_runs grammar (flowml.tracking.search): what each filter, order_by and page token
parses to, and where each malformed one is said to go wrong."""

from __future__ import annotations

import pytest

from flowml.errors import TrackingError
from flowml.tracking.search import (EXPERIMENTS, RUNS, Clause, Order, decode_page_token, encode_page_token,
                                    parse_filter, parse_order_by)


@pytest.mark.parametrize("text, clause", [
    # metrics: every numeric operator, and the number forms
    ("metrics.rmse = 1", Clause("metric", "rmse", "=", 1.0)),
    ("metrics.rmse != 1", Clause("metric", "rmse", "!=", 1.0)),
    ("metrics.rmse > 0.5", Clause("metric", "rmse", ">", 0.5)),
    ("metrics.rmse >= 2.", Clause("metric", "rmse", ">=", 2.0)),
    ("metrics.rmse < -3", Clause("metric", "rmse", "<", -3.0)),
    ("metrics.rmse <= 1e-3", Clause("metric", "rmse", "<=", 0.001)),
    ("metric.rmse<-2.5E+2", Clause("metric", "rmse", "<", -250.0)),
    ("metrics.rmse > .25", Clause("metric", "rmse", ">", 0.25)),
    # params: every string operator and IS [NOT] NULL, each prefix spelling
    ("params.model = 'cnn'", Clause("param", "model", "=", "cnn")),
    ("param.model != \"cnn\"", Clause("param", "model", "!=", "cnn")),
    ("parameters.model LIKE 'c%'", Clause("param", "model", "LIKE", "c%")),
    ("parameter.model ilike '%N_'", Clause("param", "model", "ILIKE", "%N_")),
    ("params.model IS NULL", Clause("param", "model", "IS NULL", None)),
    ("params.model is not null", Clause("param", "model", "IS NOT NULL", None)),
    # tags
    ("tags.team = 'vision'", Clause("tag", "team", "=", "vision")),
    ("tag.team != ''", Clause("tag", "team", "!=", "")),
    ("tags.team Like 'v%'", Clause("tag", "team", "LIKE", "v%")),
    ("tags.team ILIKE 'V%'", Clause("tag", "team", "ILIKE", "V%")),
    ("tags.team IS  NULL", Clause("tag", "team", "IS NULL", None)),
    ("tags.team IS NOT NULL", Clause("tag", "team", "IS NOT NULL", None)),
    # key quoting: backticks, double quotes, dotted unquoted keys, quotes doubled inside
    ("tags.`mlflow.parentRunId` = 'p1'", Clause("tag", "mlflow.parentRunId", "=", "p1")),
    ('params."my key" = \'v\'', Clause("param", "my key", "=", "v")),
    ("tags.mlflow.source.type = 'LOCAL'", Clause("tag", "mlflow.source.type", "=", "LOCAL")),
    ("metrics.`val-loss` < 1", Clause("metric", "val-loss", "<", 1.0)),
    ("metrics.`a``b` < 1", Clause("metric", "a`b", "<", 1.0)),
    ("metrics.1st > 0", Clause("metric", "1st", ">", 0.0)),
    # a param or tag named like an attribute is still a param or tag
    ("params.start_time = '5'", Clause("param", "start_time", "=", "5")),
    ("tags.run_id IS NULL", Clause("tag", "run_id", "IS NULL", None)),
    # string values: either quote, the other one inside, a doubled one, spaces kept
    ("params.a = 'say \"hi\"'", Clause("param", "a", "=", 'say "hi"')),
    ("params.a = \"it's\"", Clause("param", "a", "=", "it's")),
    ("params.a = 'it''s'", Clause("param", "a", "=", "it's")),
    ("params.a = ' x  y '", Clause("param", "a", "=", " x  y ")),
    ("params.a LIKE 'a\\_b\\\\'", Clause("param", "a", "LIKE", "a\\_b\\\\")),
    # attributes: bare, each prefix spelling, string and numeric ones, aliases
    ("run_id = 'r1'", Clause("attribute", "run_id", "=", "r1")),
    ("attributes.run_name != 'x'", Clause("attribute", "run_name", "!=", "x")),
    ("attribute.status LIKE 'FIN%'", Clause("attribute", "status", "LIKE", "FIN%")),
    ("attr.user_id ILIKE 'ANN'", Clause("attribute", "user_id", "ILIKE", "ANN")),
    ("run.artifact_uri = 's3://b/r1'", Clause("attribute", "artifact_uri", "=", "s3://b/r1")),
    ("start_time >= 1664067852747", Clause("attribute", "start_time", ">=", 1664067852747.0)),
    ("attributes.end_time != 5", Clause("attribute", "end_time", "!=", 5.0)),
    ("created < 10", Clause("attribute", "start_time", "<", 10.0)),
    ("attributes.`Run name` = 'x'", Clause("attribute", "run_name", "=", "x")),
    # IN lists (run_id only)
    ("run_id IN ('a')", Clause("attribute", "run_id", "IN", ("a",))),
    ("attributes.run_id in ( 'a' , \"b\",'c')", Clause("attribute", "run_id", "IN", ("a", "b", "c"))),
    ("run_id NOT IN ('a', 'b')", Clause("attribute", "run_id", "NOT IN", ("a", "b"))),
    ("run_id not  in('a')", Clause("attribute", "run_id", "NOT IN", ("a",))),
])
def test_one_clause(text, clause):
    assert parse_filter(text) == [clause]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_filter_is_no_filter(text):
    assert parse_filter(text) == []


def test_clauses_joined_by_and_in_any_case():
    assert parse_filter("  metrics.a > 1 AND params.b = 'x' and tags.c IS NULL And status='OK'  ") == [
        Clause("metric", "a", ">", 1.0),
        Clause("param", "b", "=", "x"),
        Clause("tag", "c", "IS NULL", None),
        Clause("attribute", "status", "=", "OK"),
    ]


def test_and_inside_a_string_is_part_of_the_value():
    assert parse_filter("params.a = 'x AND y' AND params.b = 'or'") == [
        Clause("param", "a", "=", "x AND y"), Clause("param", "b", "=", "or")]


def _error(text: str, position: int, detail: str) -> tuple[str, str]:
    return text, f'invalid filter "{text}" at position {position}: {detail}'


@pytest.mark.parametrize("text, message", [
    _error("metrics.rmse < abc", 15, "expected a number for metrics.rmse, got 'abc'"),
    _error("metrics.rmse < '1'", 15, "expected a number for metrics.rmse, got \"'1'\""),
    _error("metrics.rmse <", 14, "expected a number for metrics.rmse, got the end of the filter"),
    _error("start_time > 'x'", 13, "expected a number for start_time, got \"'x'\""),
    # empty key, unknown prefix, unknown attribute
    _error("metrics. > 1", 8, "empty key after 'metrics.'; quote a key that has special characters with "
                              "backticks, e.g. metrics.`my-key`"),
    _error("tags.`` = 'x'", 5, "empty key after 'tags.'; quote a key that has special characters with "
                               "backticks, e.g. tags.`my-key`"),
    _error("metrics.val-loss > 1", 11, "unexpected '-' after metrics.val; quote a key that has special "
                                       "characters with backticks, e.g. metrics.`my-key`"),
    _error("metric.a > 1 and foo.bar = 'x'", 17,
           "unknown prefix 'foo'; expected one of metrics., params., tags., attributes."),
    _error("Metrics.a > 1", 0, "unknown prefix 'Metrics'; expected one of metrics., params., tags., attributes."),
    _error("attributes.nope = 'x'", 11, "unknown attribute 'nope'; valid attributes are start_time, end_time, "
                                        "run_id, run_name, status, user_id, artifact_uri"),
    _error("rmse > 1", 0, "unknown attribute 'rmse'; valid attributes are start_time, end_time, "
                          "run_id, run_name, status, user_id, artifact_uri"),
    _error("> 1", 0, "expected a name such as metrics.<key> or an attribute, got '>'"),
    _error("(metrics.a > 1)", 0, "expected a name such as metrics.<key> or an attribute, got '(metrics.a'"),
    # operators: missing, unknown, wrong for the kind
    _error("metrics.a", 9, "expected an operator after metrics.a, got the end of the filter"),
    _error("metrics.a == 1", 11, "expected a number for metrics.a, got '='"),
    _error("metrics.a <> 1", 11, "expected a number for metrics.a, got '>'"),
    _error("params.a CONTAINS 'x'", 9, "expected an operator after params.a, got 'CONTAINS'"),
    _error("metrics.a LIKE 'x'", 10, "LIKE is not an operator for metrics.a (a metric); "
                                     "use one of =, !=, >, >=, <, <="),
    _error("metrics.a IS NULL", 10, "IS NULL is not an operator for metrics.a (a metric); "
                                    "use one of =, !=, >, >=, <, <="),
    _error("params.a > 'x'", 9, "> is not an operator for params.a (a param); "
                                "use one of =, !=, LIKE, ILIKE, IS NULL, IS NOT NULL"),
    _error("tags.a IN ('x')", 7, "IN is not an operator for tags.a (a tag); "
                                 "use one of =, !=, LIKE, ILIKE, IS NULL, IS NOT NULL"),
    _error("status IN ('x')", 7, "IN is not an operator for status (an attribute); use one of =, !=, LIKE, ILIKE"),
    _error("run_id IS NULL", 7, "IS NULL is not an operator for run_id (an attribute); "
                                "use one of =, !=, LIKE, ILIKE, IN, NOT IN"),
    _error("end_time LIKE '1%'", 9, "LIKE is not an operator for end_time (an attribute); "
                                    "use one of =, !=, >, >=, <, <="),
    _error("tags.a IS 'x'", 10, "expected NULL or NOT after IS, got \"'x'\""),
    _error("tags.a IS NOT", 13, "expected NULL after IS NOT, got the end of the filter"),
    _error("run_id NOT LIKE 'x'", 11, "expected IN after NOT, got 'LIKE'"),
    # values: missing, unquoted, unterminated, bad lists, bad LIKE patterns
    _error("params.a = ", 11, "expected a quoted string for params.a, got the end of the filter"),
    _error("params.a = abc", 11, "expected a quoted string for params.a, got 'abc'"),
    _error("params.a = 1", 11, "expected a quoted string for params.a, got '1'"),
    _error("tags.`a = 'x'", 5, "unterminated key: no closing `"),
    _error("params.a = 'abc", 11, "unterminated string: no closing '"),
    _error('params.a = "abc\'', 11, 'unterminated string: no closing "'),
    _error("run_id IN 'a'", 10, "expected ( and a list of quoted strings for run_id, got \"'a'\""),
    _error("run_id IN ()", 11, "expected a quoted string for run_id, got ')'"),
    _error("run_id IN ('a',)", 15, "expected a quoted string for run_id, got ')'"),
    _error("run_id IN ('a' 'b')", 15, "expected , or ) in the list for run_id, got \"'b')\""),
    _error("run_id IN ('a'", 14, "expected , or ) in the list for run_id, got the end of the filter"),
    _error("params.a LIKE 'x\\'", 14, "a LIKE pattern cannot end with the escape character \\"),
    # joining: OR, trailing garbage, dangling AND
    _error("metrics.a > 1 OR metrics.b < 2", 14, "OR is not supported, only AND"),
    _error("metrics.a > 1 or metrics.b < 2", 14, "OR is not supported, only AND"),
    _error("metrics.a > 1 junk", 14, "expected AND or the end of the filter, got 'junk'"),
    _error("metrics.a > 1.2.3", 15, "expected AND or the end of the filter, got '.3'"),
    _error("params.a = 'x' 'y'", 15, "expected AND or the end of the filter, got \"'y'\""),
    _error("metrics.a > 1 AND", 17, "expected a clause after AND, got the end of the filter"),
    _error("metrics.a > 1 AND  ", 19, "expected a clause after AND, got the end of the filter"),
    _error("metrics.a > 1 AND AND metrics.b > 1", 18, "unknown attribute 'AND'; valid attributes are start_time, "
                                                  "end_time, run_id, run_name, status, user_id, artifact_uri"),
])
def test_bad_filter_names_the_token_and_its_position(text, message):
    with pytest.raises(TrackingError) as caught:
        parse_filter(text)
    assert str(caught.value) == message
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_order_by_items():
    assert parse_order_by([
        "metrics.rmse", "params.lr DESC", "tags.`mlflow.user` asc", 'param."a b"  Desc ',
        "start_time DESC", "attributes.run_name", "end_time", "status", "run_id", "user_id",
        "artifact_uri", "tags.mlflow.source.type",
    ]) == [
        Order("metric", "rmse", True),
        Order("param", "lr", False),
        Order("tag", "mlflow.user", True),
        Order("param", "a b", False),
        Order("attribute", "start_time", False),
        Order("attribute", "run_name", True),
        Order("attribute", "end_time", True),
        Order("attribute", "status", True),
        Order("attribute", "run_id", True),
        Order("attribute", "user_id", True),
        Order("attribute", "artifact_uri", True),
        Order("tag", "mlflow.source.type", True),
    ]


def test_order_by_alias_and_nothing():
    assert parse_order_by(["created DESC"]) == [Order("attribute", "start_time", False)]
    assert parse_order_by([]) == []


def _order_error(item: str, position: int, detail: str) -> tuple[list[str], str]:
    return [item], f'invalid order_by "{item}" at position {position}: {detail}'


@pytest.mark.parametrize("items, message", [
    _order_error("metrics.rmse DOWN", 13, "expected ASC or DESC after metrics.rmse, got 'DOWN'"),
    _order_error("metrics.rmse DESC x", 18, "expected the end of the item, got 'x'"),
    _order_error("metrics.rmse > 1", 13, "expected ASC or DESC after metrics.rmse, got '>'"),
    _order_error("lifecycle_stage", 0, "unknown attribute 'lifecycle_stage'; valid attributes are start_time, "
                                       "end_time, run_id, run_name, status, user_id, artifact_uri"),
    _order_error("nope.x", 0, "unknown prefix 'nope'; expected one of metrics., params., tags., attributes."),
    _order_error("tags.", 5, "empty key after 'tags.'; quote a key that has special characters with "
                             "backticks, e.g. tags.`my-key`"),
    _order_error("", 0, "expected a name such as metrics.<key> or an attribute, got the end of the order_by"),
    (["metrics.a", "params.a", " metric.a DESC"],
     'invalid order_by " metric.a DESC" at position 1: metric.a is already ordered on'),
    (["start_time", "created DESC"], 'invalid order_by "created DESC" at position 0: created is already ordered on'),
])
def test_bad_order_by_names_the_token_and_its_position(items, message):
    with pytest.raises(TrackingError) as caught:
        parse_order_by(items)
    assert str(caught.value) == message
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("offset", [0, 1, 1000, 2**40])
def test_page_token_round_trip(offset):
    token = encode_page_token(offset)
    assert token.isascii() and str(offset) not in token  # opaque, not a bare number
    assert decode_page_token(token) == offset


@pytest.mark.parametrize("token", [None, ""])
def test_no_page_token_is_the_first_page(token):
    assert decode_page_token(token) == 0


@pytest.mark.parametrize("token", [
    "not base64!",
    "abc",  # bad padding
    "bm90IGpzb24=",  # base64 of "not json"
    "WzVd",  # [5]
    "eyJhIjogNX0=",  # {"a": 5}
    "eyJvZmZzZXQiOiAiNSJ9",  # {"offset": "5"}
    "eyJvZmZzZXQiOiAtMX0=",  # {"offset": -1}
    "eyJvZmZzZXQiOiB0cnVlfQ==",  # {"offset": true}
    "eyJvZmZzZXQiOiAxLjV9",  # {"offset": 1.5}
])
def test_bad_page_token(token):
    with pytest.raises(TrackingError) as caught:
        decode_page_token(token)
    assert str(caught.value) == f"invalid page_token {token!r}"
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


# search_experiments (search.EXPERIMENTS) ----------------------------------------------

@pytest.mark.parametrize("text, clause", [
    # name: the string operators, bare or with either attribute prefix
    ("name = 'wine'", Clause("attribute", "name", "=", "wine")),
    ("attributes.name != \"wine\"", Clause("attribute", "name", "!=", "wine")),
    ("attribute.name LIKE 'w%'", Clause("attribute", "name", "LIKE", "w%")),
    ("name ilike 'W_NE'", Clause("attribute", "name", "ILIKE", "W_NE")),
    # times: the numeric operators
    ("creation_time = 1", Clause("attribute", "creation_time", "=", 1.0)),
    ("creation_time != 1", Clause("attribute", "creation_time", "!=", 1.0)),
    ("creation_time > 1664067852747", Clause("attribute", "creation_time", ">", 1664067852747.0)),
    ("attributes.last_update_time >= 2.5e3", Clause("attribute", "last_update_time", ">=", 2500.0)),
    ("last_update_time<-1", Clause("attribute", "last_update_time", "<", -1.0)),
    ("attribute.last_update_time <= .5", Clause("attribute", "last_update_time", "<=", 0.5)),
    # tags: the string operators, both prefixes, quoted keys
    ("tags.team = 'fraud'", Clause("tag", "team", "=", "fraud")),
    ("tag.team != ''", Clause("tag", "team", "!=", "")),
    ("tags.team LIKE 'f%'", Clause("tag", "team", "LIKE", "f%")),
    ("tags.team ILIKE 'F%'", Clause("tag", "team", "ILIKE", "F%")),
    ("tags.`mlflow.note.content` = 'x'", Clause("tag", "mlflow.note.content", "=", "x")),
    ('tags."my key" = \'v\'', Clause("tag", "my key", "=", "v")),
    ("tags.name = 'x'", Clause("tag", "name", "=", "x")),  # a tag named like an attribute
])
def test_one_experiment_clause(text, clause):
    assert parse_filter(text, EXPERIMENTS) == [clause]


def test_experiment_clauses_joined_by_and():
    assert parse_filter(" name LIKE 'w%' and tags.team = 'fraud' AND creation_time > 5 ", EXPERIMENTS) == [
        Clause("attribute", "name", "LIKE", "w%"),
        Clause("tag", "team", "=", "fraud"),
        Clause("attribute", "creation_time", ">", 5.0),
    ]
    assert parse_filter("  ", EXPERIMENTS) == []


def test_the_runs_grammar_is_the_default():
    assert parse_filter("run_id IN ('a')", RUNS) == parse_filter("run_id IN ('a')")
    assert parse_order_by(["metrics.a DESC"], RUNS) == parse_order_by(["metrics.a DESC"])


@pytest.mark.parametrize("text, message", [
    # what search_runs takes and search_experiments does not
    _error("metrics.rmse > 1", 0, "unknown prefix 'metrics'; expected one of tags., attributes."),
    _error("params.a = 'x'", 0, "unknown prefix 'params'; expected one of tags., attributes."),
    _error("name = 'a' AND run.name = 'b'", 15, "unknown prefix 'run'; expected one of tags., attributes."),
    _error("attr.name = 'a'", 0, "unknown prefix 'attr'; expected one of tags., attributes."),
    _error("run_id = 'a'", 0, "unknown attribute 'run_id'; valid attributes are creation_time, "
                              "last_update_time, name"),
    _error("attributes.experiment_id = '1'", 11, "unknown attribute 'experiment_id'; valid attributes are "
                                                 "creation_time, last_update_time, name"),
    _error("created > 1", 0, "unknown attribute 'created'; valid attributes are creation_time, "
                             "last_update_time, name"),
    _error("tags.team IS NULL", 10, "IS NULL is not an operator for tags.team (a tag); "
                                    "use one of =, !=, LIKE, ILIKE"),
    _error("tags.team IS NOT NULL", 10, "IS NOT NULL is not an operator for tags.team (a tag); "
                                        "use one of =, !=, LIKE, ILIKE"),
    _error("name IN ('a', 'b')", 5, "IN is not an operator for name (an attribute); use one of =, !=, LIKE, ILIKE"),
    _error("name NOT IN ('a')", 5, "NOT IN is not an operator for name (an attribute); "
                                   "use one of =, !=, LIKE, ILIKE"),
    # operators and values of the wrong kind
    _error("name > 'a'", 5, "> is not an operator for name (an attribute); use one of =, !=, LIKE, ILIKE"),
    _error("creation_time LIKE '1%'", 14, "LIKE is not an operator for creation_time (an attribute); "
                                          "use one of =, !=, >, >=, <, <="),
    _error("creation_time > '5'", 16, "expected a number for creation_time, got \"'5'\""),
    _error("last_update_time = now", 19, "expected a number for last_update_time, got 'now'"),
    _error("name = wine", 7, "expected a quoted string for name, got 'wine'"),
    _error("tags.team = 5", 12, "expected a quoted string for tags.team, got '5'"),
    _error("name LIKE 'w\\'", 10, "a LIKE pattern cannot end with the escape character \\"),
    # the scanner's errors, as for runs, with a tag for example
    _error("tags.my-key = 'x'", 7, "unexpected '-' after tags.my; quote a key that has special characters with "
                                   "backticks, e.g. tags.`my-key`"),
    _error("= 'x'", 0, "expected a name such as tags.<key> or an attribute, got '='"),
    _error("name = 'a' OR name = 'b'", 11, "OR is not supported, only AND"),
    _error("name = 'a' name = 'b'", 11, "expected AND or the end of the filter, got 'name'"),
    _error("name = 'a", 7, "unterminated string: no closing '"),
])
def test_bad_experiment_filter_names_the_token_and_its_position(text, message):
    with pytest.raises(TrackingError) as caught:
        parse_filter(text, EXPERIMENTS)
    assert str(caught.value) == message
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_experiment_order_by_items():
    assert parse_order_by(["name", "experiment_id DESC", "attributes.creation_time asc",
                           "attribute.last_update_time Desc "], EXPERIMENTS) == [
        Order("attribute", "name", True),
        Order("attribute", "experiment_id", False),
        Order("attribute", "creation_time", True),
        Order("attribute", "last_update_time", False),
    ]
    assert parse_order_by([], EXPERIMENTS) == []


@pytest.mark.parametrize("items, message", [
    _order_error("tags.team", 0, "tags.team (a tag) cannot be ordered on; use one of name, experiment_id, "
                                 "creation_time, last_update_time"),
    _order_error("  tag.`a b` DESC", 2, "tag.`a b` (a tag) cannot be ordered on; use one of name, experiment_id, "
                                        "creation_time, last_update_time"),
    _order_error("metrics.rmse", 0, "unknown prefix 'metrics'; expected one of tags., attributes."),
    _order_error("start_time", 0, "unknown attribute 'start_time'; valid attributes are name, experiment_id, "
                                  "creation_time, last_update_time"),
    _order_error("lifecycle_stage DESC", 0, "unknown attribute 'lifecycle_stage'; valid attributes are name, "
                                            "experiment_id, creation_time, last_update_time"),
    _order_error("name UP", 5, "expected ASC or DESC after name, got 'UP'"),
    (["creation_time", "attributes.creation_time DESC"],
     'invalid order_by "attributes.creation_time DESC" at position 0: attributes.creation_time is already '
     'ordered on'),
])
def test_bad_experiment_order_by_names_the_token_and_its_position(items, message):
    with pytest.raises(TrackingError) as caught:
        parse_order_by(items, EXPERIMENTS)
    assert str(caught.value) == message
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
