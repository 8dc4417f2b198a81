"""The pipeline descriptor: pydantic models of pipeline.yaml, loading, interpolation, errors with file:line.

Nothing is re-exported here on purpose: ``flowml.spec.node`` and ``flowml.spec.conditions``
must stay importable without pulling in pydantic (see ``flowml.plan``).
"""
