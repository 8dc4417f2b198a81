"""What the commands share: options, JSON and table output, and writing reports."""

from __future__ import annotations

import sys

import click

EXIT = {"success": 0, "failed": 1, "interrupted": 130}
PIPELINE = click.argument("pipeline", default="pipeline.yaml", type=click.Path(dir_okay=True))
PARAMS = click.option("-P", "--param", "params", multiple=True, metavar="KEY=VALUE",
                      help="Override a param (typed like its default).")
TRACKING_URI = click.option("--tracking-uri", metavar="URI", envvar="FLOWML_TRACKING_URI",
                            help="Tracking store [default: .flowml/flowml.db next to the pipeline; "
                                 "env FLOWML_TRACKING_URI].")
STORE_URI = click.option("--backend-store-uri", metavar="URI", envvar="FLOWML_TRACKING_URI",
                         help="The SQL store [default: .flowml/flowml.db here; env FLOWML_TRACKING_URI].")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (MLflow's shapes).")


def echo_json(value) -> None:
    import json

    click.echo(json.dumps(value, indent=2))


def print_rich(renderable) -> None:
    from rich.console import Console

    # Piped output is for grep and copy-paste: never truncate ids to a guessed 80 columns.
    Console(width=None if sys.stdout.isatty() else 250).print(renderable)


def write_report(path: str, text: str, option: str) -> None:
    """Write a report the user asked for; a path that cannot be written is bad input."""
    from flowml.errors import Problem, SpecError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SpecError(Problem(f"cannot write {path}: {exc.strerror}", "command line", field=option)) from None
