"""The ``flowml`` command. Errors become one message and an exit code here, and only here.

Exit codes: 0 success, 1 a step failed, 2 bad input, 130 interrupted. Every command
imports what it needs inside its function, so ``flowml --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import click

from flowml.version import __version__
from flowml.errors import FlowmlError

EXIT = {"success": 0, "failed": 1, "interrupted": 130}
PIPELINE = click.argument("pipeline", default="pipeline.yaml", type=click.Path(dir_okay=True))
PARAMS = click.option("-P", "--param", "params", multiple=True, metavar="KEY=VALUE",
                      help="Override a param (typed like its default).")
TRACKING_URI = click.option("--tracking-uri", metavar="URI", envvar="FLOWML_TRACKING_URI",
                            help="Tracking store [default: .flowml/flowml.db next to the pipeline; "
                                 "env FLOWML_TRACKING_URI].")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowml")
def cli() -> None:
    """flowml: ML pipelines that skip what did not change."""


@cli.command()
@PIPELINE
@PARAMS
@click.option("--target", "targets", multiple=True, metavar="STEP", help="Run STEP and what it needs.")
@click.option("--from", "from_", multiple=True, metavar="STEP", help="Run STEP and everything downstream.")
@click.option("--force", multiple=True, metavar="STEP", help="Run STEP even if it is cached.")
@click.option("--force-all", is_flag=True, help="Run every selected step.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Steps at once [default: cores].")
@click.option("-k", "--keep-going", is_flag=True, help="After a failure, run every branch not downstream of it.")
@click.option("--dry-run", is_flag=True, help="Say what would run, and why; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (progress goes to stderr).")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), help="Write a JUnit XML report.")
@click.option("--live/--no-live", default=None, help="Live table on a terminal [default: when interactive].")
@click.option("--experiment", metavar="NAME", help="Experiment of the runs [default: the pipeline's name].")
@click.option("--no-track", is_flag=True, help="Record no runs (the cache still works).")
@TRACKING_URI
def run(pipeline, params, targets, from_, force, force_all, jobs, keep_going, dry_run, as_json, junit, live,
        experiment, no_track, tracking_uri):
    """Run PIPELINE, skipping every step whose inputs did not change.

    Each step execution, cache hits included, is tracked as a run nested under one run
    for the pipeline; a rerun where nothing changed records nothing.
    """
    from flowml.runs import RunOptions

    options = RunOptions(targets, from_, force, force_all, jobs, keep_going)
    if junit and not os.access(os.path.dirname(os.path.abspath(junit)), os.W_OK):
        _write(junit, "", "--junit")  # fails now with the reason, before any step runs
    if dry_run:
        _plan(pipeline, params, options, as_json, tracking_uri)
        return
    import signal

    from flowml.executors import load_executor
    from flowml.progress import make_listener
    from flowml.recorder import RunRecorder
    from flowml.reports import junit_xml, summary_json
    from flowml.runs import Listeners

    def terminate(signum, frame):
        raise KeyboardInterrupt

    # SIGHUP too: a closed terminal or SSH session must stop the steps, not orphan them.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    with _scheduler(pipeline, params, options, tracking_uri, load_executor("local")) as scheduler:
        progress = make_listener(sys.stderr, live)
        scheduler.listener = progress if no_track else Listeners(
            progress, RunRecorder(scheduler.plan, scheduler.cache.index.uri, experiment))
        summary = scheduler.run()
    if as_json:
        click.echo(summary_json(summary))
    if junit:
        _write(junit, junit_xml(summary), "--junit")
    sys.exit(EXIT[summary.status])


@cli.command()
@PIPELINE
@PARAMS
@click.option("--target", "targets", multiple=True, metavar="STEP", help="Only STEP and what it needs.")
@click.option("--from", "from_", multiple=True, metavar="STEP", help="Only STEP and everything downstream.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@TRACKING_URI
def status(pipeline, params, targets, from_, as_json, tracking_uri):
    """Say which steps of PIPELINE will run, and why."""
    from flowml.runs import RunOptions

    _plan(pipeline, params, RunOptions(targets, from_), as_json, tracking_uri)


def _plan(pipeline, params, options, as_json: bool, tracking_uri: str | None) -> None:
    with _scheduler(pipeline, params, options, tracking_uri) as scheduler:
        results = scheduler.preview()
    if as_json:
        import json

        click.echo(json.dumps([{"name": r.name, "will_run": r.status == "will run", "status": r.status,
                                "reasons": r.reasons} for r in results], indent=2))
    else:
        from flowml.progress import plan_lines

        click.echo(plan_lines(results))


class _scheduler:
    """Open the pipeline's plan and a scheduler on it (which opens the cache); closes the cache on exit."""

    def __init__(self, pipeline, params, options, tracking_uri=None, executor=None) -> None:
        from flowml.plan import write_plan
        from flowml.scheduler import Scheduler

        plan, key = _open_plan(pipeline, params, options.targets, options.from_)
        self.scheduler = Scheduler(plan, None, executor, options, tracking_uri=tracking_uri)
        if key is not None:
            write_plan(plan, key)

    def __enter__(self):
        return self.scheduler

    def __exit__(self, *exc) -> None:
        self.scheduler.cache.close()


def _open_plan(pipeline, params, targets, from_):
    """The plan stored for this invocation, or one compiled now with the key to store it under.

    Compiling imports pydantic and networkx; reading a stored plan imports neither. The key
    and the compiled plan come from the same bytes of the file, read once.
    """
    from flowml.errors import pipeline_file
    from flowml.plan import plan_key, read_plan

    path = pipeline_file(pipeline)
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError:
        text = None  # load_pipeline reports it
    key = plan_key(path, text, params, targets, from_) if text is not None else None
    plan = read_plan(os.path.dirname(path), key) if key else None
    if plan is not None:
        return plan, None
    from flowml.dag import build_dag, compile_plan
    from flowml.spec.load import load_pipeline

    return compile_plan(build_dag(load_pipeline(path, params, text=text)), targets, from_), key


@cli.command()
@PIPELINE
@PARAMS
@click.option("--dot", "fmt", flag_value="dot", help="Graphviz DOT.")
@click.option("--mermaid", "fmt", flag_value="mermaid", help="A Mermaid flowchart.")
def dag(pipeline, params, fmt):
    """Print the DAG of PIPELINE (text, DOT or Mermaid)."""
    from flowml import dag as dag_mod
    from flowml.spec.load import load_pipeline

    graph = dag_mod.build_dag(load_pipeline(pipeline, params))
    render = {"dot": dag_mod.render_dot, "mermaid": dag_mod.render_mermaid}.get(fmt, dag_mod.render_text)
    click.echo(render(graph))


@cli.command()
@click.argument("pipeline", default="pipeline.yaml", type=click.Path(dir_okay=True))
@click.option("--superseded", is_flag=True,
              help="Also drop cache entries that are no step's latest result (only the current state stays restorable).")
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@TRACKING_URI
def gc(pipeline, superseded, dry_run, tracking_uri):
    """Free the space of cache objects, memo rows and logs that PIPELINE's store no longer needs."""
    from flowml.cache.gc import collect
    from flowml.cache.store import STORE_DIR, ProjectCache
    from flowml.errors import pipeline_file

    root = os.path.dirname(pipeline_file(pipeline))
    if not os.path.isdir(os.path.join(root, STORE_DIR)):
        click.echo(f"nothing to collect: no {STORE_DIR}/ in {root}")
        return
    cache = ProjectCache(root, tracking_uri)
    try:
        report = collect(cache, superseded, dry_run)
    finally:
        cache.close()
    click.echo(("would remove " if dry_run else "removed ") + str(report))


@cli.group()
def runs() -> None:
    """List, show and compare tracked runs."""


JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (MLflow's shapes).")


@runs.command("list")
@click.option("-e", "--experiment", "experiments", multiple=True, metavar="NAME",
              help="Only runs of this experiment (repeatable) [default: all].")
@click.option("--filter", "filter_string", default="", metavar="FILTER",
              help="MLflow's search grammar, e.g. \"metrics.rmse < 0.8 and params.alpha = '0.5'\".")
@click.option("--order-by", multiple=True, metavar="KEY [ASC|DESC]", help="e.g. 'metrics.rmse ASC' (repeatable).")
@click.option("-n", "--max-results", type=click.IntRange(1, 50_000), default=100, show_default=True)
@click.option("--deleted", is_flag=True, help="Show deleted runs instead.")
@click.option("--page-token", metavar="TOKEN", help="The next page: the token a previous --json listing gave.")
@JSON
@TRACKING_URI
def runs_list(experiments, filter_string, order_by, max_results, deleted, page_token, as_json, tracking_uri):
    """List runs, newest first; a pipeline's step runs are shown under it."""
    from flowml.errors import TrackingError
    from flowml.tracking.client import FlowmlClient, all_pages
    from flowml.tracking.entities import ViewType

    client = FlowmlClient(tracking_uri)

    def every_experiment():
        return all_pages(lambda size, token: client.search_experiments(ViewType.ALL, size, page_token=token))

    ids = []
    for name in experiments:
        found = client.get_experiment_by_name(name)
        if found is None:
            known = [e.name for e in every_experiment()]
            from flowml.errors import did_you_mean

            raise TrackingError(f"no experiment named '{name}'{did_you_mean(name, known)}", "RESOURCE_DOES_NOT_EXIST")
        ids.append(found.experiment_id)
    ids = ids or [e.experiment_id for e in every_experiment()]
    page = client.search_runs(ids, filter_string, ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY,
                              max_results, list(order_by), page_token)
    if as_json:
        _echo_json({"runs": [r.to_dict() for r in page], "next_page_token": page.token})
        return
    from flowml.tracking.report import runs_table

    _print(runs_table(page) if page else "no runs")
    if page.token:
        click.echo(f"(more than {max_results}; raise --max-results or narrow --filter)", err=True)


@runs.command("show")
@click.argument("run_id")
@JSON
@TRACKING_URI
def runs_show(run_id, as_json, tracking_uri):
    """Params, metrics (latest value), tags, artifacts and child runs of RUN_ID."""
    from flowml.tracking.client import FlowmlClient

    client = FlowmlClient(tracking_uri)
    run = client.get_run(run_id)
    children = client.child_runs(run_id)
    artifacts = _artifact_files(client, run_id)
    if as_json:
        _echo_json({**run.to_dict(), "children": [c.to_dict() for c in children], "artifacts": artifacts})
        return
    from flowml.tracking.report import run_details

    _print(run_details(run, children, artifacts))


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@JSON
@TRACKING_URI
def runs_compare(run_ids, as_json, tracking_uri):
    """Params and metrics of RUN_IDS side by side; rows that differ are marked *."""
    from flowml.tracking.client import FlowmlClient
    from flowml.tracking.report import comparison, comparison_table

    client = FlowmlClient(tracking_uri)
    found = [client.get_run(r) for r in run_ids]
    if as_json:
        _echo_json(comparison(found))
    else:
        _print(comparison_table(found))


@cli.group()
def experiments() -> None:
    """List tracked experiments."""


@experiments.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deleted experiments.")
@click.option("--filter", "filter_string", default="", metavar="FILTER",
              help="MLflow's experiment search grammar, e.g. \"name LIKE 'wine%' and tags.team = 'fraud'\".")
@click.option("--order-by", multiple=True, metavar="KEY [ASC|DESC]",
              help="name, experiment_id, creation_time or last_update_time (repeatable) "
                   "[default: creation_time DESC].")
@JSON
@TRACKING_URI
def experiments_list(show_all, filter_string, order_by, as_json, tracking_uri):
    """Experiments with their number of runs and last activity, newest first."""
    from flowml.tracking.client import FlowmlClient, all_pages
    from flowml.tracking.entities import ViewType

    client = FlowmlClient(tracking_uri)
    view = ViewType.ALL if show_all else ViewType.ACTIVE_ONLY
    found = all_pages(lambda size, token: client.search_experiments(view, size, filter_string, list(order_by), token))
    stats = client.store.experiment_stats()
    if as_json:
        _echo_json({"experiments": [{**e.to_dict(), "run_count": stats.get(e.experiment_id, (0, None))[0],
                                     "last_run_start_time": stats.get(e.experiment_id, (0, None))[1]}
                                    for e in found]})
        return
    from flowml.tracking.report import experiments_table

    _print(experiments_table(found, stats))


def _artifact_files(client, run_id: str) -> list[str]:
    """Every artifact file of a run, as paths relative to its artifact root."""
    files, folders = [], [None]
    while folders:
        for info in client.list_artifacts(run_id, folders.pop()):
            (folders if info.is_dir else files).append(info.path)
    return sorted(files)


def _echo_json(value) -> None:
    import json

    click.echo(json.dumps(value, indent=2))


def _print(renderable) -> None:
    from rich.console import Console

    # Piped output is for grep and copy-paste: never truncate ids to a guessed 80 columns.
    Console(width=None if sys.stdout.isatty() else 250).print(renderable)


STORE_URI = click.option("--backend-store-uri", metavar="URI", envvar="FLOWML_TRACKING_URI",
                         help="The SQL store [default: .flowml/flowml.db here; env FLOWML_TRACKING_URI].")


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


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--openapi", is_flag=True, help="The server's OpenAPI document instead (schemas/openapi.json).")
def schema(output, openapi):
    """Print the JSON Schema of pipeline.yaml (committed as schemas/pipeline.schema.json)."""
    if openapi:
        from flowml.server.app import openapi_text

        text = openapi_text()
    else:
        from flowml.spec.schema import pipeline_schema_text

        text = pipeline_schema_text()
    if output:
        _write(output, text, "--output")
    else:
        click.echo(text, nl=False)


def _write(path: str, text: str, option: str) -> None:
    """Write a report the user asked for; a path that cannot be written is bad input."""
    from flowml.errors import Problem, SpecError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SpecError(Problem(f"cannot write {path}: {exc.strerror}", "command line", field=option)) from None


def main() -> None:
    """Entry point: run the CLI and turn flowml's errors into a message and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except FlowmlError as exc:
        click.echo(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
