"""``flowml registry``: registered models and their versions, aliases, descriptions, tags and
stages, in the tracking store (or behind the tracking server) that ``--tracking-uri`` names.

A version is written ``NAME/VERSION`` (a model name cannot hold ``/``), e.g. ``wine/3``.
"""

from __future__ import annotations

import sys

import click

from flowml.cli.group import cli
from flowml.cli.options import JSON, TRACKING_URI, echo_json, print_rich


def _client(tracking_uri: str | None):
    from flowml.registry import RegistryClient

    return RegistryClient(tracking_uri)


def _split(target: str, option: str = "NAME[/VERSION]") -> tuple[str, int | None]:
    """``wine`` -> ("wine", None); ``wine/3`` -> ("wine", 3); anything else is bad input."""
    from flowml.errors import Problem, SpecError

    name, slash, version = target.rpartition("/")
    if not slash:
        return target, None
    if not version.isdigit() or not name:
        raise SpecError(Problem(f"expected {option} such as wine or wine/3, got '{target}'", "command line",
                                field=option))
    return name, int(version)


def _name_filter(name: str) -> str:
    """The search filter for the versions of ``name`` (a quote in it doubled)."""
    quoted = name.replace("'", "''")
    return f"name = '{quoted}'"


def _bad_input(message: str, field: str):
    from flowml.errors import Problem, SpecError

    return SpecError(Problem(message, "command line", field=field))


@cli.group()
def registry() -> None:
    """Registered models: versions, aliases, descriptions, tags, stages and lineage."""


@registry.command("list")
@click.option("--filter", "filter_string", default="", metavar="FILTER",
              help="MLflow's grammar, e.g. \"name LIKE 'wine%' and tags.team = 'fraud'\".")
@click.option("--order-by", multiple=True, metavar="KEY [ASC|DESC]",
              help="name, last_updated_timestamp or creation_timestamp (repeatable) [default: name].")
@JSON
@TRACKING_URI
def registry_list(filter_string, order_by, as_json, tracking_uri):
    """Registered models with their newest version and aliases."""
    from flowml.registry.search import MAX_MODELS
    from flowml.tracking.client import all_pages

    client = _client(tracking_uri)
    found = all_pages(lambda size, token: client.search_registered_models(
        filter_string, min(size, MAX_MODELS), list(order_by), token))
    if as_json:
        echo_json({"registered_models": [m.to_dict() for m in found]})
        return
    from flowml.registry.report import models_table

    print_rich(models_table(found) if found else "no registered models")


@registry.command("versions")
@click.argument("name")
@JSON
@TRACKING_URI
def registry_versions(name, as_json, tracking_uri):
    """The versions of NAME, newest first."""
    from flowml.registry.search import MAX_VERSIONS
    from flowml.tracking.client import all_pages

    client = _client(tracking_uri)
    client.get_registered_model(name)  # an unknown name: an error that suggests a close one
    found = all_pages(lambda size, token: client.search_model_versions(
        _name_filter(name), min(size, MAX_VERSIONS), ["version_number DESC"], token))
    if as_json:
        echo_json({"model_versions": [v.to_dict() for v in found]})
        return
    from flowml.registry.report import versions_table

    print_rich(versions_table(found) if found else f"'{name}' has no versions")


@registry.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False, type=int)
@click.option("--delete", is_flag=True, help="Remove ALIAS (no VERSION).")
@TRACKING_URI
def registry_alias(name, alias, version, delete, tracking_uri):
    """Point ALIAS of NAME at VERSION (moving it), or remove it with --delete."""
    if delete == (version is not None):
        raise _bad_input("give a VERSION to set the alias, or --delete without one to remove it", "VERSION")
    client = _client(tracking_uri)
    if delete:
        client.delete_registered_model_alias(name, alias)
        click.echo(f"removed alias '{alias}' of {name}")
    else:
        client.set_registered_model_alias(name, alias, version)
        click.echo(f"{name}@{alias} -> version {version}")


@registry.command("describe")
@click.argument("target", metavar="NAME[/VERSION]")
@click.argument("text", required=False)
@JSON
@TRACKING_URI
def registry_describe(target, text, as_json, tracking_uri):
    """Show a model or a version (with its lineage); with TEXT, set its description first."""
    name, version = _split(target)
    client = _client(tracking_uri)
    if version is None:
        found = client.update_registered_model(name, text) if text is not None else client.get_registered_model(name)
        if as_json:
            echo_json({"registered_model": found.to_dict()})
            return
        from flowml.registry.report import model_details

        print_rich(model_details(found))
        return
    found = (client.update_model_version(name, version, text) if text is not None
             else client.get_model_version(name, version))
    if as_json:
        echo_json({"model_version": found.to_dict()})
        return
    from flowml.registry.report import version_details

    print_rich(version_details(found))


@registry.command("tag")
@click.argument("target", metavar="NAME[/VERSION]")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--delete", is_flag=True, help="Remove KEY (no VALUE).")
@TRACKING_URI
def registry_tag(target, key, value, delete, tracking_uri):
    """Set tag KEY to VALUE on a model or a version, or remove it with --delete."""
    if delete == (value is not None):
        raise _bad_input("give a VALUE to set the tag, or --delete without one to remove it", "VALUE")
    name, version = _split(target)
    client = _client(tracking_uri)
    if version is None:
        (client.delete_registered_model_tag(name, key) if delete else client.set_registered_model_tag(name, key, value))
    elif delete:
        client.delete_model_version_tag(name, version, key)
    else:
        client.set_model_version_tag(name, version, key, value)
    click.echo(f"{'removed' if delete else 'set'} tag {key} on {target}")


@registry.command("stage")
@click.argument("target", metavar="NAME/VERSION")
@click.argument("stage")
@click.option("--archive-existing", is_flag=True,
              help="Move the other versions in STAGE to Archived (Staging and Production only).")
@TRACKING_URI
def registry_stage(target, stage, archive_existing, tracking_uri):
    """Move a version to STAGE: None, Staging, Production or Archived (MLflow's deprecated stages)."""
    name, version = _split(target, "NAME/VERSION")
    if version is None:
        raise _bad_input(f"expected NAME/VERSION such as wine/3, got '{target}'", "NAME/VERSION")
    moved = _client(tracking_uri).transition_model_version_stage(name, version, stage, archive_existing)
    click.echo(f"{name}/{version} is now in stage {moved.current_stage}")


@registry.command("delete")
@click.argument("target", metavar="NAME[/VERSION]")
@click.option("-y", "--yes", is_flag=True, help="Delete a whole model without asking.")
@TRACKING_URI
def registry_delete(target, yes, tracking_uri):
    """Delete a version, or a registered model with all its versions."""
    name, version = _split(target)
    client = _client(tracking_uri)
    if version is not None:
        client.delete_model_version(name, version)
        click.echo(f"deleted version {version} of {name}")
        return
    client.get_registered_model(name)  # an unknown name fails before any question
    count = len(client.search_model_versions(_name_filter(name), 10_000))
    if not yes:
        if not sys.stdin.isatty():
            raise _bad_input(f"deleting '{name}' deletes its {count} version(s) too; pass --yes to confirm", "--yes")
        click.confirm(f"Delete registered model '{name}' and its {count} version(s)?", abort=True)
    client.delete_registered_model(name)
    click.echo(f"deleted registered model {name}")


@registry.command("register")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("-n", "--name", required=True, help="The registered model (created if new).")
@click.option("--alias", help="Point this alias at the version (moving it from another).")
@JSON
@TRACKING_URI
def registry_register(model_dir, name, alias, as_json, tracking_uri):
    """Register MODEL_DIR as a new version of NAME; content already registered under NAME
    returns that version instead. This is what a pipeline's register: step runs: there the
    version also records its lineage (step, runs, cache key, input digests)."""
    from flowml.registry.register import register_directory

    version = register_directory(model_dir, name, alias, tracking_uri)
    if as_json:
        echo_json({"model_version": version.to_dict()})
        return
    click.echo(f"{name} version {version.version}" + (f" (@{alias})" if alias else ""))
