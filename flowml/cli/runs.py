"""Commands on tracked runs and experiments: list, show, compare."""

from __future__ import annotations

import click

from flowml.cli.group import cli
from flowml.cli.options import JSON, TRACKING_URI, echo_json, print_rich


@cli.group()
def runs() -> None:
    """List, show and compare tracked runs."""


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
        echo_json({"runs": [r.to_dict() for r in page], "next_page_token": page.token})
        return
    from flowml.tracking.report import runs_table

    print_rich(runs_table(page) if page else "no runs")
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
        echo_json({**run.to_dict(), "children": [c.to_dict() for c in children], "artifacts": artifacts})
        return
    from flowml.tracking.report import run_details

    print_rich(run_details(run, children, artifacts))


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
        echo_json(comparison(found))
    else:
        print_rich(comparison_table(found))


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
        echo_json({"experiments": [{**e.to_dict(), "run_count": stats.get(e.experiment_id, (0, None))[0],
                                     "last_run_start_time": stats.get(e.experiment_id, (0, None))[1]}
                                    for e in found]})
        return
    from flowml.tracking.report import experiments_table

    print_rich(experiments_table(found, stats))


def _artifact_files(client, run_id: str) -> list[str]:
    """Every artifact file of a run, as paths relative to its artifact root."""
    files, folders = [], [None]
    while folders:
        for info in client.list_artifacts(run_id, folders.pop()):
            (folders if info.is_dir else files).append(info.path)
    return sorted(files)
