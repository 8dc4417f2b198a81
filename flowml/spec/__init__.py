"""The pipeline descriptor: pydantic models of pipeline.yaml, loading, interpolation, errors with file:line."""

from flowml.spec.load import load_pipeline
from flowml.spec.models import Pipeline, Step

__all__ = ["Pipeline", "Step", "load_pipeline"]
