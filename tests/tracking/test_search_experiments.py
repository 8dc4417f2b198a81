"""search_experiments with MLflow's filter, order_by and page tokens, on SQLite and PostgreSQL,
through the store, the client and the module-level function.

Six hand-made experiments, all named ``<stem>-<suffix>`` (the stem is unique to the test, so
that the PostgreSQL tests can share one database), created in this order, so that their ids
increase from e1 to e6; their times are then set by hand. Every expected answer below was
worked out from the table by hand.

    exp  suffix  creation  last_update  tags                        stage
    e1   wine    1000      5000         team=fraud, env=prod        active
    e2   Wine    2000      2000         team=Fraud                  active
    e3   beer    3000      4000         team=vision, note=50%off    active
    e4   whisky  3000      1000         -                           active
    e5   water   4000      4000         env=dev                     deleted
    e6   wheat   5000      6000         team=nlp, "my key"=v        active

Orders on ``name`` leave out e2 ("Wine"), so that the answers do not depend on the database's
collation.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from flowml.errors import TrackingError
from flowml.tracking.entities import ViewType
from flowml.tracking.sql import tables as t

TABLE = {  # exp: (suffix, creation_time, last_update_time, tags)
    "e1": ("wine", 1000, 5000, {"team": "fraud", "env": "prod"}),
    "e2": ("Wine", 2000, 2000, {"team": "Fraud"}),
    "e3": ("beer", 3000, 4000, {"team": "vision", "note": "50%off"}),
    "e4": ("whisky", 3000, 1000, {}),
    "e5": ("water", 4000, 4000, {"env": "dev"}),
    "e6": ("wheat", 5000, 6000, {"team": "nlp", "my key": "v"}),
}
ACTIVE = {"e1", "e2", "e3", "e4", "e6"}


class Made:
    """The experiments of the table in one store: ``stem``, and ids both ways."""

    def __init__(self, store) -> None:
        self.store = store
        self.stem = f"exp-{uuid.uuid4().hex[:12]}"
        self.ids = {}
        for exp, (suffix, _, _, tags) in TABLE.items():
            self.ids[exp] = store.create_experiment(f"{self.stem}-{suffix}", tags=tags)
        store.delete_experiment(self.ids["e5"])
        with store.engine.begin() as conn:
            for exp, (_, created, updated, _) in TABLE.items():
                conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == int(self.ids[exp]))
                             .values(creation_time=created, last_update_time=updated))
        self.names = {v: k for k, v in self.ids.items()}

    def mine(self, filter_string: str = "") -> str:
        """``filter_string`` limited to this test's experiments."""
        return f"name LIKE '{self.stem}-%'" + (f" AND {filter_string}" if filter_string else "")

    def search(self, filter_string: str = "", view_type: str = ViewType.ACTIVE_ONLY, order_by=(),
               max_results: int = 1000, page_token: str | None = None) -> tuple[list[str], str | None]:
        found, token = self.store.search_experiments(view_type, max_results, self.mine(filter_string),
                                                     list(order_by), page_token)
        return [self.names[e.experiment_id] for e in found], token


@pytest.fixture
def made(store) -> Made:
    return Made(store)


@pytest.mark.parametrize("filter_text, expected", [
    # name: = and != are case-sensitive
    ("name = '{stem}-wine'", {"e1"}),
    ("attributes.name = '{stem}-Wine'", {"e2"}),
    ("name = '{stem}-WINE'", set()),
    ("attribute.name != '{stem}-wine'", {"e2", "e3", "e4", "e6"}),
    # LIKE is case-sensitive, ILIKE not; _ is one character
    ("name LIKE '{stem}-w%'", {"e1", "e4", "e6"}),
    ("name LIKE '{stem}-W%'", {"e2"}),
    ("name ILIKE '{stem}-W%'", {"e1", "e2", "e4", "e6"}),
    ("name ILIKE '{stem}-WINE'", {"e1", "e2"}),
    ("name LIKE '{stem}-%ee%'", {"e3"}),
    ("name LIKE '{stem}-wh_at'", {"e6"}),
    ("name LIKE '{stem}-w_'", set()),
    # numeric attributes
    ("creation_time = 3000", {"e3", "e4"}),
    ("creation_time != 3000", {"e1", "e2", "e6"}),
    ("creation_time > 3000", {"e6"}),
    ("creation_time >= 3000", {"e3", "e4", "e6"}),
    ("creation_time < 2000", {"e1"}),
    ("creation_time <= 2000", {"e1", "e2"}),
    ("attribute.creation_time > 1.5e3", {"e2", "e3", "e4", "e6"}),
    ("last_update_time > 4000", {"e1", "e6"}),
    ("attributes.last_update_time <= 2000", {"e2", "e4"}),
    # tags: the experiment must have the key, != included; quoted keys; LIKE escapes
    ("tags.team = 'fraud'", {"e1"}),
    ("tags.team != 'fraud'", {"e2", "e3", "e6"}),
    ("tags.team LIKE 'F%'", {"e2"}),
    ("tags.team ILIKE 'f%'", {"e1", "e2"}),
    ("tag.env = 'prod'", {"e1"}),
    ("tags.env != 'prod'", set()),  # e5 (dev) is deleted
    ("tags.`my key` = 'v'", {"e6"}),
    ("tags.\"my key\" LIKE '_'", {"e6"}),
    ("tags.note LIKE '%\\%%'", {"e3"}),
    ("tags.note LIKE '50_off'", {"e3"}),
    ("tags.nope = 'x'", set()),
    # clauses are ANDed
    ("", ACTIVE),
    ("tags.team ILIKE 'f%' AND creation_time > 1000", {"e2"}),
    ("name LIKE '%w%' and tags.team != 'nlp'", {"e1"}),
    ("creation_time >= 2000 AND last_update_time < 4500", {"e2", "e3", "e4"}),
])
def test_filter(made, filter_text, expected):
    found, token = made.search(filter_text.replace("{stem}", made.stem))
    assert len(found) == len(set(found)), "an experiment was listed twice"
    assert set(found) == expected and token is None


def test_view_types(made):
    assert set(made.search()[0]) == ACTIVE
    assert made.search(view_type=ViewType.DELETED_ONLY)[0] == ["e5"]
    assert set(made.search(view_type=ViewType.ALL)[0]) == set(TABLE)
    assert made.search("tags.env = 'dev'", ViewType.DELETED_ONLY)[0] == ["e5"]
    assert made.search("tags.env = 'dev'", ViewType.ACTIVE_ONLY)[0] == []
    made.store.restore_experiment(made.ids["e5"])
    assert made.search("tags.env = 'dev'")[0] == ["e5"]


@pytest.mark.parametrize("order_by, expected", [
    # MLflow's default: creation_time DESC, then experiment_id ASC (e3 and e4 tie)
    ((), ["e6", "e5", "e3", "e4", "e2", "e1"]),
    # given orders, then experiment_id DESC unless it is one of them
    (("creation_time",), ["e1", "e2", "e4", "e3", "e5", "e6"]),
    (("creation_time ASC",), ["e1", "e2", "e4", "e3", "e5", "e6"]),
    (("creation_time DESC",), ["e6", "e5", "e4", "e3", "e2", "e1"]),
    (("last_update_time",), ["e4", "e2", "e5", "e3", "e1", "e6"]),
    (("attributes.last_update_time DESC",), ["e6", "e1", "e5", "e3", "e2", "e4"]),
    (("experiment_id",), ["e1", "e2", "e3", "e4", "e5", "e6"]),
    (("experiment_id DESC",), ["e6", "e5", "e4", "e3", "e2", "e1"]),
    (("last_update_time DESC", "experiment_id ASC"), ["e6", "e1", "e3", "e5", "e2", "e4"]),
    (("creation_time asc", "experiment_id desc"), ["e1", "e2", "e4", "e3", "e5", "e6"]),
])
def test_order(made, order_by, expected):
    assert made.search(view_type=ViewType.ALL, order_by=order_by)[0] == expected


@pytest.mark.parametrize("order_by, expected", [
    (("name",), ["e3", "e5", "e6", "e4", "e1"]),
    (("attribute.name ASC",), ["e3", "e5", "e6", "e4", "e1"]),
    (("name DESC",), ["e1", "e4", "e6", "e5", "e3"]),
    (("creation_time", "name DESC"), ["e1", "e4", "e3", "e5", "e6"]),
    (("creation_time DESC", "name"), ["e6", "e5", "e3", "e4", "e1"]),
])
def test_order_by_name(made, order_by, expected):
    without_e2 = f"name != '{made.stem}-Wine'"
    assert made.search(without_e2, ViewType.ALL, order_by)[0] == expected


@pytest.mark.parametrize("order_by", [(), ("name DESC",), ("last_update_time",), ("creation_time DESC",)])
@pytest.mark.parametrize("size", [1, 2, 4, 5, 6])
def test_pages_cover_everything_once_in_order(made, order_by, size):
    whole, token = made.search(view_type=ViewType.ALL, order_by=order_by)
    assert len(whole) == 6 and token is None
    pages, token = [], None
    while True:
        page, token = made.search(view_type=ViewType.ALL, order_by=order_by, max_results=size, page_token=token)
        pages.append(page)
        if token is None:
            break
    assert [exp for page in pages for exp in page] == whole
    assert [len(page) for page in pages] == [size] * (6 // size) + ([6 % size] if 6 % size else [])


def test_max_results_bounds(made, store):
    assert made.search(max_results=1)[0] == ["e6"]
    assert len(store.search_experiments(ViewType.ALL, 50_000)[0]) >= 7  # the Default one, the table's six
    for bad in (0, -1, 50_001):
        with pytest.raises(TrackingError, match=f"max_results must be between 1 and 50000, got {bad}") as info:
            store.search_experiments(max_results=bad)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_experiments_come_with_their_tags(made, store):
    found, _ = store.search_experiments(filter_string=made.mine("tags.team ILIKE '%'"), order_by=["experiment_id"])
    assert [(e.name, e.tags) for e in found] == [(f"{made.stem}-{TABLE[x][0]}", TABLE[x][3])
                                                 for x in ("e1", "e2", "e3", "e6")]
    e1 = found[0]
    assert (e1.experiment_id, e1.creation_time, e1.last_update_time, e1.lifecycle_stage) == (
        made.ids["e1"], 1000, 5000, "active")


@pytest.mark.parametrize("filter_text, order_by, message", [
    ("metrics.a > 1", [], 'invalid filter "metrics.a > 1" at position 0: unknown prefix \'metrics\'; '
                          "expected one of tags., attributes."),
    ("experiment_id = '1'", [], "unknown attribute 'experiment_id'; valid attributes are creation_time, "
                                "last_update_time, name"),
    ("tags.a IS NULL", [], "IS NULL is not an operator for tags.a (a tag); use one of =, !=, LIKE, ILIKE"),
    ("name IN ('a')", [], "IN is not an operator for name (an attribute); use one of =, !=, LIKE, ILIKE"),
    ("creation_time > 'x'", [], "at position 16: expected a number for creation_time, got \"'x'\""),
    ("", ["tags.team"], 'invalid order_by "tags.team" at position 0: tags.team (a tag) cannot be ordered on; '
                        "use one of name, experiment_id, creation_time, last_update_time"),
    ("", ["start_time"], "unknown attribute 'start_time'; valid attributes are name, experiment_id, "
                         "creation_time, last_update_time"),
    ("", ["name", "name DESC"], "name is already ordered on"),
])
def test_bad_filter_or_order_is_invalid_parameter_value(store, filter_text, order_by, message):
    with pytest.raises(TrackingError) as info:
        store.search_experiments(filter_string=filter_text, order_by=order_by)
    assert message in str(info.value)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_bad_page_token(store):
    with pytest.raises(TrackingError, match="invalid page_token 'nonsense'"):
        store.search_experiments(page_token="nonsense")


def test_client_returns_a_paged_list(client):
    stem = f"exp-{uuid.uuid4().hex[:12]}"
    ids = [client.create_experiment(f"{stem}-{n}") for n in range(3)]
    first = client.search_experiments(max_results=2, filter_string=f"name LIKE '{stem}-%'",
                                      order_by=["experiment_id DESC"])
    assert [e.experiment_id for e in first] == ids[:0:-1] and first.token
    rest = client.search_experiments(ViewType.ACTIVE_ONLY, 2, f"name LIKE '{stem}-%'", ["experiment_id DESC"],
                                     first.token)
    assert [e.experiment_id for e in rest] == ids[:1] and rest.token is None
