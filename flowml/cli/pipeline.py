"""Commands on a pipeline: run it, show its status or DAG, collect cache garbage, print its schema."""

from __future__ import annotations

import os
import sys

import click

from flowml.cli.group import cli
from flowml.cli.options import EXIT, PARAMS, PIPELINE, TRACKING_URI, write_report


@cli.command()
@PIPELINE
@PARAMS
@click.option("-e", "--entry-point", metavar="NAME", help="The MLproject's entry point to run [default: main].")
@click.option("--version", metavar="REV", help="For a git repository: the branch, tag or commit to run "
                                               "[default: its default branch].")
@click.option("--target", "targets", multiple=True, metavar="STEP", help="Run STEP and what it needs.")
@click.option("--from", "from_", multiple=True, metavar="STEP", help="Run STEP and everything downstream.")
@click.option("--force", multiple=True, metavar="STEP", help="Run STEP even if it is cached.")
@click.option("--force-all", is_flag=True, help="Run every selected step.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Steps at once, at most [default: as many as the CPUs allow].")
@click.option("--cpus", type=float, callback=lambda ctx, param, value: _positive(value), metavar="N",
              help="CPUs the running steps may reserve together [default: this machine's].")
@click.option("--memory", callback=lambda ctx, param, value: _size(value), metavar="SIZE",
              help="Memory the running steps may reserve together, e.g. 8G or 16Gi [default: this machine's].")
@click.option("--gpus", type=click.IntRange(min=0), metavar="N",
              help="GPUs to hand out, as device ids 0 to N-1 [default: those nvidia-smi lists].")
@click.option("-k", "--keep-going", is_flag=True, help="After a failure, run every branch not downstream of it.")
@click.option("--executor", "executor_name", default="local", show_default=True, metavar="NAME",
              help="Where steps run: local, or an executor a plugin installs (dask: pip install flowml-dask).")
@click.option("--scheduler", "scheduler_address", metavar="ADDRESS",
              help="The cluster's scheduler for --executor dask, e.g. tcp://scheduler:8786 "
                   "[default: $FLOWML_DASK_SCHEDULER].")
@click.option("--dry-run", is_flag=True, help="Say what would run, and why; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (progress goes to stderr).")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), help="Write a JUnit XML report.")
@click.option("--live/--no-live", default=None, help="Live table on a terminal [default: when interactive].")
@click.option("--experiment", metavar="NAME", help="Experiment of the runs [default: the pipeline's name].")
@click.option("--no-track", is_flag=True, help="Record no runs (the cache still works).")
@TRACKING_URI
def run(pipeline, params, entry_point, version, targets, from_, force, force_all, jobs, cpus, memory, gpus,
        keep_going, executor_name, scheduler_address, dry_run, as_json, junit, live, experiment, no_track,
        tracking_uri):
    """Run PIPELINE, skipping every step whose inputs did not change.

    Each step execution, cache hits included, is tracked as a run nested under one run
    for the pipeline; a rerun where nothing changed records nothing. Steps run in parallel
    as long as the CPUs, memory and GPUs they declare fit in what the machine (or --cpus,
    --memory, --gpus) offers. With --executor dask they run on a Dask cluster's workers,
    which need only reach the tracking server (a flowml server); the offer is then the
    cluster's.

    PIPELINE is a pipeline file, a folder holding pipeline.yaml or an MLflow MLproject (run
    as a one-step pipeline of its entry point), or a git repository, URI[#subdir], checked
    out at --version into a cache (its runs are recorded in the store of the folder flowml
    runs in).
    """
    from flowml.projects.source import open_project
    from flowml.resources import make_offer
    from flowml.runs import RunOptions

    source = open_project(pipeline, version, entry_point)
    if source.fetched and not tracking_uri:
        from flowml.tracking.stores import default_uri

        tracking_uri = default_uri()  # a checkout in the cache is no place for the user's runs
    options = RunOptions(targets, from_, force, force_all, jobs, keep_going)
    offer = make_offer(cpus, memory, gpus)
    if junit and not os.access(os.path.dirname(os.path.abspath(junit)), os.W_OK):
        write_report(junit, "", "--junit")  # fails now with the reason, before any step runs
    if dry_run:
        _plan(source, params, options, as_json, tracking_uri, offer)
        return
    import signal

    from flowml.progress import make_listener
    from flowml.recorder import RunRecorder
    from flowml.reports import junit_xml, summary_json
    from flowml.runs import Listeners

    def terminate(signum, frame):
        raise KeyboardInterrupt

    # SIGHUP too: a closed terminal or SSH session must stop the steps, not orphan them.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    executor = _executor(executor_name, scheduler_address, source.folder, tracking_uri, no_track)
    try:
        capacity = executor.capacity()
        if capacity is not None:
            offer.fill(capacity.total, capacity.largest, capacity.where)
        with _scheduler(source, params, options, tracking_uri, executor, offer) as scheduler:
            progress = make_listener(sys.stderr, live)
            tags = source.run_tags(scheduler.plan.environments)
            scheduler.listener = progress if no_track else Listeners(
                progress, RunRecorder(scheduler.plan, scheduler.cache.index.uri, experiment, tags, scheduler.step_runs()))
            summary = scheduler.run()
    finally:
        executor.close()
    if as_json:
        click.echo(summary_json(summary))
    if junit:
        write_report(junit, junit_xml(summary), "--junit")
    sys.exit(EXIT[summary.status])


@cli.command()
@PIPELINE
@PARAMS
@click.option("--target", "targets", multiple=True, metavar="STEP", help="Only STEP and what it needs.")
@click.option("--from", "from_", multiple=True, metavar="STEP", help="Only STEP and everything downstream.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@TRACKING_URI
def status(pipeline, params, targets, from_, as_json, tracking_uri):
    """Say which steps of PIPELINE (a pipeline file, or a folder with pipeline.yaml or an MLproject)
    will run, and why."""
    from flowml.projects.source import open_project
    from flowml.runs import RunOptions

    _plan(open_project(pipeline), params, RunOptions(targets, from_), as_json, tracking_uri)


def _executor(name: str, scheduler_address: str | None, pipeline: str, tracking_uri: str | None, no_track: bool):
    """The executor ``name``; one that runs steps on other machines needs a tracking server that
    they can reach, where step outputs travel as artifacts of the steps' runs.

    Raises:
        SpecError: for --scheduler without such an executor, or a remote one without a server.
    """
    from flowml.errors import Problem, SpecError, pipeline_file
    from flowml.executors import load_executor
    from flowml.tracking.stores import resolve_uri

    if scheduler_address and name == "local":
        raise SpecError(Problem("--scheduler names the cluster of an executor that runs steps elsewhere "
                                "(--executor dask); the local executor has none", "command line", field="--scheduler"))
    executor = load_executor(name, **({"scheduler": scheduler_address} if scheduler_address else {}))
    if not executor.remote:
        return executor
    uri = resolve_uri(tracking_uri, os.path.dirname(pipeline_file(pipeline)))
    if no_track or not uri.startswith(("http://", "https://")):
        why = "--no-track records no runs" if no_track else f"the tracking store is {uri}, not a server"
        raise SpecError(Problem(f"--executor {name} runs steps on other machines, which fetch inputs and upload "
                                f"outputs through a tracking server, but {why}; start `flowml server` and pass "
                                "--tracking-uri http://HOST:PORT (or set FLOWML_TRACKING_URI)",
                                "command line", field="--executor"))
    return executor


def _plan(source, params, options, as_json: bool, tracking_uri: str | None, offer=None) -> None:
    with _scheduler(source, params, options, tracking_uri, offer=offer) as scheduler:
        results = scheduler.preview()
    if as_json:
        import json

        click.echo(json.dumps([{"name": r.name, "will_run": r.status == "will run", "status": r.status,
                                "reasons": r.reasons} for r in results], indent=2))
    else:
        from flowml.progress import plan_lines

        click.echo(plan_lines(results))


class _scheduler:
    """Open the plan of a project source and a scheduler on it (which opens the cache); closes the cache on exit."""

    def __init__(self, source, params, options, tracking_uri=None, executor=None, offer=None) -> None:
        from flowml.plan import write_plan
        from flowml.scheduler import Scheduler

        plan, key = _open_plan(source, params, options.targets, options.from_)
        self.scheduler = Scheduler(plan, None, executor, options, tracking_uri=tracking_uri, offer=offer)
        if key is not None:
            write_plan(plan, key)

    def __enter__(self):
        return self.scheduler

    def __exit__(self, *exc) -> None:
        self.scheduler.cache.close()


def _open_plan(source, params, targets, from_):
    """The plan stored for this invocation, or one compiled now with the key to store it under.

    Compiling imports pydantic and networkx; reading a stored plan imports neither. The key
    and the compiled plan come from the same bytes of the file, read once. An MLproject's
    plan is compiled every time: it depends on more than one file (its environment file, the
    project's files, the paths its parameters name).
    """
    if source.mlproject:
        from flowml.dag import build_dag, compile_plan

        return compile_plan(build_dag(source.load(params)), targets, from_), None
    from flowml.plan import plan_key, read_plan

    path = source.pipeline
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


def _positive(value: float | None) -> float | None:
    """``--cpus``: a positive, finite number."""
    import math

    if value is not None and not (value > 0 and math.isfinite(value)):
        raise click.BadParameter(f"expected a positive number of CPUs, got {value:g}")
    return value


def _size(value: str | None) -> int | None:
    """``--memory``: bytes from ``8G``, ``16Gi`` or a number of bytes."""
    from flowml.spec.units import parse_size

    try:
        return None if value is None else parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


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



@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--openapi", is_flag=True, help="The server's OpenAPI document instead (schemas/openapi.json).")
@click.option("--mlmodel", is_flag=True, help="The JSON Schema of a model's MLmodel file instead "
              "(schemas/mlmodel.schema.json).")
def schema(output, openapi, mlmodel):
    """Print the JSON Schema of pipeline.yaml (committed as schemas/pipeline.schema.json)."""
    if openapi and mlmodel:
        from flowml.errors import Problem, SpecError

        raise SpecError(Problem("--openapi and --mlmodel each pick one document: give one of them", "command line"))
    if openapi:
        from flowml.server.app import openapi_text

        text = openapi_text()
    elif mlmodel:
        from flowml.models.mlmodel import mlmodel_schema_text

        text = mlmodel_schema_text()
    else:
        from flowml.spec.schema import pipeline_schema_text

        text = pipeline_schema_text()
    if output:
        write_report(output, text, "--output")
    else:
        click.echo(text, nl=False)
