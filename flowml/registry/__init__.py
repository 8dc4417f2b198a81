"""The model registry: registered models, numbered versions, aliases, tags, stages and lineage."""
