"""The root ``flowml`` group, which every command module attaches its commands to."""

import click

from flowml.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowml")
def cli() -> None:
    """flowml: ML pipelines that skip what did not change."""
