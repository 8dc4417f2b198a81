"""Commands on the shared environments (python venvs made with uv, conda prefixes): list them,
prune the unused."""

from __future__ import annotations

import click

from flowml.cli.group import cli
from flowml.cli.options import JSON, echo_json, print_rich


@cli.group()
def env() -> None:
    """The environments shared by every project: python (uv) venvs and conda prefixes (in FLOWML_ENV_DIR)."""


@env.command("list")
@JSON
def env_list(as_json):
    """Environments, most recently used first: python, packages, size, last use and the projects
    that used them."""
    from flowml.environments.store import EnvStore

    store = EnvStore()
    found = store.environments()
    if as_json:
        echo_json({"folder": store.root, "environments": [i.to_json() for i in found]})
        return
    if not found:
        click.echo(f"no environments in {store.root}")
        return
    from rich.table import Table

    table = Table(title=store.root, title_justify="left")
    for column in ("key", "python", "packages", "size", "last used", "projects"):
        table.add_column(column, justify="right" if column in ("packages", "size") else "left")
    for info in found:
        table.add_row(info.key + (" (in use)" if info.in_use else ""), info.python, str(info.packages),
                      _size(info.size), _ago(info.last_used), "\n".join(info.projects) or "-")
    print_rich(table)


@env.command("prune")
@click.option("--days", type=click.FloatRange(min=0), default=30, show_default=True,
              help="Remove environments not used for this many days.")
@click.option("--all", "remove_all", is_flag=True, help="Remove every environment not in use.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@JSON
def env_prune(days, remove_all, dry_run, as_json):
    """Remove environments not used for --days days or whose projects no longer exist (never
    one a running flowml holds); also interrupted creations and old resolutions."""
    from flowml.environments.store import EnvStore

    report = EnvStore().prune(days, remove_all, dry_run)
    if as_json:
        echo_json([{"key": i.key, "action": action, "reason": why, "size": i.size} for i, action, why in report])
        return
    for info, action, why in report:
        click.echo(f"{action:<13}{info.key}  {_size(info.size)}  ({why})")
    freed = sum(i.size for i, action, _ in report if action != "kept")
    verb = "would free" if dry_run else "freed"
    click.echo(f"{sum(1 for _, a, _ in report if a != 'kept')} environment(s), {verb} {_size(freed)}")


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GB"


def _ago(when: float) -> str:
    import time

    seconds = max(0.0, time.time() - when)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit} ago"
    return "just now"
