"""The JSON Schema of pipeline.yaml, generated from the pydantic models."""

from __future__ import annotations

import json

from flowml.spec.models import Pipeline

SCHEMA_ID = "https://flowml.dev/schemas/pipeline.schema.json"


def pipeline_schema_text() -> str:
    """The schema as committed in ``schemas/pipeline.schema.json`` (stable key order)."""
    schema = Pipeline.model_json_schema(by_alias=True)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "flowml pipeline.yaml (v1)", **schema}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
