"""What a user sees while a pipeline runs: a live table on a terminal, plain lines in CI
or when piped, and a closing summary (with the tail of a failed step's log).

Both views are :class:`~flowml.scheduler.Listener` implementations, so the scheduler
knows nothing about terminals. ``rich`` is imported only for the live view.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO

from flowml.runs import Listener, NodeResult, RunSummary

LOG_TAIL_LINES = 15
_STYLE = {"ran": "green", "cached": "cyan", "failed": "bold red", "skipped": "yellow", "killed": "magenta",
          "running": "bold blue", "waiting": "dim", "will run": "bold"}


def make_listener(stream: IO[str], live: bool | None = None) -> Listener:
    """A live view on an interactive terminal outside CI, plain lines otherwise."""
    if live is None:
        live = stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"
    return LiveProgress(stream) if live else PlainProgress(stream)


class PlainProgress(Listener):
    """One line per event, for logs and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self.lock:
            print(text, file=self.stream, flush=True)

    def on_node_start(self, name: str, reasons: list[str]) -> None:
        self._line(f"running  {name}" + (f"  ({'; '.join(reasons)})" if reasons else ""))

    def on_node_end(self, result: NodeResult) -> None:
        self._line(describe(result))

    def on_finish(self, summary: RunSummary) -> None:
        self._line(render_summary(summary))


class LiveProgress(Listener):
    """A table of steps with their state and duration, redrawn in place."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console

        self.console = Console(file=stream)
        self.states: dict[str, tuple[str, str, float | None]] = {}
        self.started: dict[str, float] = {}
        self.live = None

    def on_start(self, names: list[str]) -> None:
        from rich.live import Live

        self.states = {n: ("waiting", "", None) for n in names}
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False,
                         get_renderable=self._table)
        self.live.start()

    def on_node_start(self, name: str, reasons: list[str]) -> None:
        self.started[name] = time.perf_counter()
        self.states[name] = ("running", "; ".join(reasons), None)

    def on_node_end(self, result: NodeResult) -> None:
        self.states[result.name] = (result.status, "; ".join(result.reasons) if result.status != "failed"
                                    else (result.error or ""), result.duration_s)

    def on_finish(self, summary: RunSummary) -> None:
        if self.live is not None:
            self.live.stop()
        self.console.print(render_summary(summary), highlight=False, markup=False)

    def _table(self):
        from rich.table import Table
        from rich.text import Text

        table = Table(show_header=False, box=None, pad_edge=False)
        now = time.perf_counter()
        for name, (state, note, duration) in self.states.items():
            if state == "running":
                duration = now - self.started[name]
            shown = "" if duration is None else f"{duration:6.1f}s"
            # Text, not markup: step names such as train[alpha=0.1] look like markup tags.
            table.add_row(Text(f"{state:8}", style=_STYLE.get(state, "")), Text(name), shown, Text(note, style="dim"))
        return table


def describe(result: NodeResult) -> str:
    """``ran      train[alpha=0.1]  1.23s  (param alpha 0.5 -> 0.3)``."""
    text = f"{result.status:8} {result.name}"
    if result.status in ("ran", "failed", "killed"):
        text += f"  {result.duration_s:.2f}s"
    if result.status == "failed":
        text += f"  ({result.error})" if result.error else ""
        if result.attempts > 1:
            text += f" after {result.attempts} attempts"
    elif result.reasons:
        text += f"  ({'; '.join(result.reasons)})"
    return text


def render_summary(summary: RunSummary) -> str:
    """Counts per status, then warnings and failed steps with their log tails."""
    counts: dict[str, int] = {}
    for r in summary.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"{summary.pipeline}: {summary.status} in {summary.duration_s:.2f}s ({parts or 'nothing to do'})"]
    lines += [f"warning: {w}" for w in summary.warnings]
    for r in summary.results:
        if r.status == "failed":
            lines.append(f"{r.name} failed: {r.error}")
            lines += _log_tail(r)
    return "\n".join(lines)


def _log_tail(result: NodeResult) -> list[str]:
    out = []
    for stream in ("stderr", "stdout"):
        path = result.logs.get(stream)
        if not path or not os.path.exists(path) or not os.path.getsize(path):
            continue
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - 16384))
            tail = fh.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        out.append(f"  --- {stream} ({os.path.relpath(path)}) ---")
        out += [f"  {line}" for line in tail]
    return out


def plan_lines(results: list[NodeResult]) -> str:
    """``flowml status`` text: each node and why it will run, or that it is cached."""
    lines = []
    for r in results:
        verb = {"will run": "will run", "cached": "cached", "skipped": "skipped", "failed": "fails"}[r.status]
        lines.append(f"{verb:9}{r.name}" + (f"  ({'; '.join(r.reasons)})" if r.reasons else ""))
    if not results:
        lines.append("nothing selected")
    return "\n".join(lines)

