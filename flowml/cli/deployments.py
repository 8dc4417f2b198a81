"""Deployments: serve a model under a name (local process or container), see it, remove it."""

from __future__ import annotations

import os

import click

from flowml.cli.group import cli
from flowml.cli.options import JSON, echo_json, print_rich


@cli.group()
def deployments() -> None:
    """Serve models under a name: create (or switch to a new version), list, status, logs, delete.

    Deployments belong to the project (the nearest folder up from here with a .flowml/).
    """


@deployments.command("create")
@click.argument("name")
@click.option("-m", "--model-uri", required=True, metavar="URI",
              help="models:/NAME@ALIAS (followed on redeploys), models:/NAME/VERSION, runs:/..., or a folder.")
@click.option("-t", "--target", default="local", show_default=True, help="local, docker, or a plugin's target.")
@click.option("-p", "--port", type=click.IntRange(1, 65535), help="[default: the deployment's port, else a free one]")
@click.option("--host", help="Address the server binds [local default: 127.0.0.1].")
@click.option("--workers", type=click.IntRange(1, 64), help="Server worker processes.")
@click.option("--timeout", type=click.FloatRange(1), help="Seconds to wait for the server to answer [default: 120].")
@click.option("--base-image", metavar="IMAGE", help="docker target: the image's Python base, running this "
              "Python's version [default: python:MAJOR.MINOR-slim-bookworm].")
@JSON
def create(name, model_uri, target, port, host, workers, timeout, base_image, as_json):
    """Deploy MODEL_URI as NAME, or switch NAME to it; returns once it answers /ping.

    If the new version fails to start, the one deployed before keeps serving.
    """
    import signal

    from flowml.deployments import load_target
    from flowml.deployments.records import check_name
    from flowml.tracking.stores import project_root

    def interrupt(signum, frame):  # a pipeline's timeout or Ctrl-C: stop the half-started server too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if ":" not in model_uri.split("/", 1)[0] and os.path.exists(model_uri):
        model_uri = os.path.abspath(model_uri)  # a folder: the server does not run from here
    config = {k: v for k, v in {"port": port, "host": host, "workers": workers, "timeout": timeout,
                                "base_image": base_image}.items() if v}
    deployment = load_target(target, project_root()).deploy(check_name(name), model_uri, config)
    if as_json:
        echo_json(deployment.to_json())
        return
    version = f" (version {deployment.version})" if deployment.version else ""
    click.echo(f"deployment {deployment.name}: {deployment.model_uri}{version} serving at {deployment.url}")


@deployments.command("list")
@JSON
def list_(as_json):
    """The project's deployments, each checked now."""
    from flowml.deployments import all_deployments
    from flowml.tracking.stores import project_root

    found = all_deployments(project_root())
    if as_json:
        echo_json({"deployments": [d.to_json() for d in found]})
        return
    if not found:
        click.echo("no deployments")
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("name", "target", "model", "version", "url", "state"):
        table.add_column(column)
    for d in found:
        table.add_row(d.name, d.target, d.model_uri, d.version or "-", d.url, d.state)
    print_rich(table)


@deployments.command("status")
@click.argument("name")
@JSON
def status(name, as_json):
    """What NAME serves, where, and whether it answers now (running, unhealthy or stopped)."""
    from flowml.deployments import target_of
    from flowml.tracking.stores import project_root

    deployment = target_of(project_root(), name).status(name)
    if as_json:
        echo_json(deployment.to_json())
        return
    for label, value in (("name", deployment.name), ("target", deployment.target), ("model", deployment.model_uri),
                         ("version", deployment.version or "-"), ("url", deployment.url),
                         ("state", deployment.state), ("log", deployment.log or "-")):
        click.echo(f"{label + ':':9}{value}")


@deployments.command("logs")
@click.argument("name")
@click.option("-n", "--tail", type=click.IntRange(1), metavar="N", help="Only the last N lines.")
def logs(name, tail):
    """What NAME's server wrote (requests, reloads, errors)."""
    from flowml.deployments import target_of
    from flowml.tracking.stores import project_root

    click.echo(target_of(project_root(), name).logs(name, tail), nl=False)


@deployments.command("delete")
@click.argument("name")
def delete(name):
    """Stop NAME's server (process or containers) and forget it."""
    from flowml.deployments import target_of
    from flowml.tracking.stores import project_root

    target_of(project_root(), name).delete(name)
    click.echo(f"deleted deployment {name}")
