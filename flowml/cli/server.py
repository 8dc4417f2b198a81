"""The tracking server, its tokens, and `flowml ui`."""

from __future__ import annotations

import os

import click

from flowml.cli.group import cli
from flowml.cli.options import STORE_URI


@cli.group(invoke_without_command=True)
@STORE_URI
@click.option("--artifacts-destination", metavar="DIR", type=click.Path(file_okay=False),
              help="Where proxied artifacts live [default: .flowml/artifacts here].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--allowed-hosts", metavar="HOST[,HOST]", default="",
              help="Host headers to accept [default: loopback names when bound to loopback].")
@click.option("--auth", is_flag=True, help="Require bearer tokens (make them with: flowml server tokens create).")
@click.pass_context
def server(ctx, backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts, auth):
    """Serve MLflow's tracking REST API and artifact proxy over a flowml store."""
    if ctx.invoked_subcommand is None:
        _serve(backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts, auth)


@server.group()
def tokens() -> None:
    """Bearer tokens for a server started with --auth."""


@tokens.command("create")
@click.option("--role", type=click.Choice(["read", "write", "admin"]), required=True)
@click.option("--name", default="", help="What the token is for (shown by tokens list).")
@STORE_URI
def tokens_create(role, name, backend_store_uri):
    """Make a token and print it (once: only its hash is kept)."""
    token, text = _token_store(backend_store_uri).create_token(name, role)
    click.echo(f"created token {token.token_id} ({role}); give it to clients as FLOWML_TRACKING_TOKEN:", err=True)
    click.echo(text)


@tokens.command("list")
@STORE_URI
def tokens_list(backend_store_uri):
    """Tokens with their role; secrets are never shown again."""
    for token in _token_store(backend_store_uri).list_tokens():
        state = "revoked" if token.revoked_at else "active"
        click.echo(f"{token.token_id}  {token.role:<5}  {state:<7}  {token.name}")


@tokens.command("revoke")
@click.argument("token_id")
@STORE_URI
def tokens_revoke(token_id, backend_store_uri):
    """Revoke a token: requests with it are refused from now on."""
    _token_store(backend_store_uri).revoke_token(token_id)
    click.echo(f"revoked {token_id}")


def _token_store(uri):
    from flowml.tracking.stores import artifact_root_for, resolve_uri
    from flowml.tracking.sql.store import SqlStore

    uri = resolve_uri(uri)
    return SqlStore(uri, artifact_root_for(uri))


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
def ui(port):
    """Serve this project's store on 127.0.0.1 (what `flowml server` does with the defaults)."""
    _serve(None, None, "127.0.0.1", port, 1, "", False)


def _serve(store_uri, artifacts, host, port, workers, allowed_hosts, auth) -> None:
    import json

    import uvicorn

    from flowml.server.config import ServerConfig
    from flowml.server.main import CONFIG_ENV
    from flowml.tracking.stores import STORE_DIR, resolve_uri

    config = ServerConfig(resolve_uri(store_uri), os.path.abspath(artifacts or os.path.join(STORE_DIR, "artifacts")),
                          host, port, tuple(h.strip() for h in allowed_hosts.split(",") if h.strip()), auth=auth)
    if "*" in config.host_allow_list():
        click.echo(f"warning: bound to {host} without --allowed-hosts: any Host header is accepted", err=True)
    os.environ[CONFIG_ENV] = json.dumps(config.to_json())
    from flowml.server.main import app

    app()  # open (and migrate) the store once here, so that workers do not race to migrate it
    click.echo(f"flowml server on http://{host}:{port} (store {config.backend_store_uri})", err=True)
    # h11, not httptools: httptools drops a raw "#..." from the request target before flowml
    # sees it, so a path like "a#/../../x" would be served as "a" instead of being refused.
    uvicorn.run("flowml.server.main:app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, http="h11")
