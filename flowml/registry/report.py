"""What ``flowml registry`` prints: rich tables for people (``--json`` gives MLflow's shapes).
rich is imported only here, inside the functions; every cell is plain text, never markup."""

from __future__ import annotations

from typing import Any

from flowml.registry.entities import ModelVersion, RegisteredModel
from flowml.tracking.report import add_row, format_time, pairs_table


def models_table(models: list[RegisteredModel]):
    """One row per registered model: its newest version, aliases, last change and description."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "latest", "aliases", "updated", "description"):
        table.add_column(column, justify="right" if column == "latest" else "left")
    for model in models:
        newest = max((v.version for v in model.latest_versions), default=None)
        add_row(table, model.name, "" if newest is None else str(newest), _aliases(model.aliases),
             format_time(model.last_updated_timestamp), _first_line(model.description))
    return table


def versions_table(versions: list[ModelVersion]):
    """One row per version: stage, aliases, when, the run and step that made it, its source."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("version", "stage", "aliases", "created", "run", "step", "source"):
        table.add_column(column, justify="right" if column == "version" else "left")
    for v in versions:
        add_row(table, str(v.version), v.current_stage, ", ".join(v.aliases), format_time(v.creation_timestamp),
             v.run_id or "", v.lineage.step or "", v.source)
    return table


def model_details(model: RegisteredModel):
    """A registered model: its fields, tags, and the newest version of each stage."""
    from rich.console import Group

    parts: list[Any] = [pairs_table("registered model", {
        "name": model.name, "description": model.description, "created": format_time(model.creation_timestamp),
        "updated": format_time(model.last_updated_timestamp), "aliases": _aliases(model.aliases)})]
    if model.tags:
        parts.append(pairs_table("tags", dict(sorted(model.tags.items()))))
    if model.latest_versions:
        table = versions_table(sorted(model.latest_versions, key=lambda v: -v.version))
        table.title, table.title_justify = "latest version of each stage", "left"
        parts.append(table)
    return Group(*parts)


def version_details(version: ModelVersion):
    """A version with its lineage: the run, step and pipeline run that made it, the step's
    cache key, the model's content digest and the digests of the step's inputs."""
    from rich.console import Group

    fields = {"model": version.name, "version": str(version.version), "stage": version.current_stage,
              "status": version.status, "description": version.description, "aliases": ", ".join(version.aliases),
              "source": version.source, "run": version.run_id, "logged model": version.model_id,
              "created": format_time(version.creation_timestamp), "updated": format_time(version.last_updated_timestamp)}
    parts: list[Any] = [pairs_table("model version", {k: v for k, v in fields.items() if v})]
    if version.tags:
        parts.append(pairs_table("tags", dict(sorted(version.tags.items()))))
    lineage = version.lineage
    parts.append(pairs_table("lineage", {"step": lineage.step, "step run": lineage.run_id,
                                    "pipeline run": lineage.pipeline_run_id, "cache key": lineage.cache_key,
                                    "content digest": lineage.content_digest}
                        if lineage else {"": "none recorded (registered outside a pipeline)"}))
    if lineage.input_digests:
        parts.append(pairs_table("inputs (digest)", dict(sorted(lineage.input_digests.items()))))
    return Group(*parts)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias} -> {version}" for alias, version in sorted(aliases.items()))


def _first_line(text: str | None, width: int = 60) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[:width - 1] + "…"
