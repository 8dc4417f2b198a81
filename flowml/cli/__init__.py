"""The ``flowml`` command. Errors become one message and an exit code here, and only here.

Exit codes: 0 success, 1 a step failed, 2 bad input, 130 interrupted. Each command module
(one per group of commands) imports what it needs inside its functions, so ``flowml --help``
stays fast.
"""

from __future__ import annotations

import sys

import click

# Importing each command module attaches its commands to the group.
from flowml.cli import deployments, models, pipeline, registry, runs, server  # noqa: F401
from flowml.cli import env  # noqa: F401
from flowml.cli.group import cli
from flowml.errors import FlowmlError

__all__ = ["cli", "main"]


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
