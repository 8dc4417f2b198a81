"""The filter and order_by grammars of MLflow's registry searches, for the shared parser in
:mod:`flowml.tracking.search` (so errors point at the offending token the same way).

``search_registered_models`` (MLflow's ``SearchModelUtils`` and SQL store): ``name`` with
``= != LIKE ILIKE [NOT] IN``, ``tags.<key>`` with ``= != LIKE ILIKE``; order by ``name``,
``last_updated_timestamp`` (alias ``timestamp``) or ``creation_timestamp``, then by name.

``search_model_versions`` (``SearchModelVersionUtils``): ``name``, ``run_id`` and
``source_path`` as strings (``IN`` for the first two), ``version_number`` as a whole
number, tags as above; order by ``name``, ``version_number``, ``creation_timestamp`` or
``last_updated_timestamp``; by default ``last_updated_timestamp DESC, name, version_number DESC``.
"""

from __future__ import annotations

from flowml.tracking.search import Grammar

_TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
_PREFIXES = {"tag": "tag", "tags": "tag", "attribute": "attribute", "attributes": "attribute"}

# How many results one page may hold (MLflow's thresholds), and the default page sizes.
MAX_MODELS = 1000
MAX_VERSIONS = 200_000
DEFAULT_MODELS = 100
DEFAULT_VERSIONS = 10_000

REGISTERED_MODELS = Grammar(
    prefixes=_PREFIXES,
    ops={"tag": _TAG_OPS},
    numeric_attributes=(),
    string_attributes=("name",),
    order_attributes=("name", "last_updated_timestamp", "creation_timestamp"),
    aliases={"timestamp": "last_updated_timestamp"},
    list_attributes=("name",),
)

MODEL_VERSIONS = Grammar(
    prefixes=_PREFIXES,
    ops={"tag": _TAG_OPS},
    numeric_attributes=("version_number",),
    string_attributes=("name", "run_id", "source_path"),
    order_attributes=("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
    list_attributes=("name", "run_id"),
)

DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
