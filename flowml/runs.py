"""What a run is made of: its options, one result per node, the summary, and the hooks
(:class:`Listener`) the scheduler calls, on which progress views and, later, tracking hang."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowml.cache.hashing import Content


@dataclass
class RunOptions:
    """What to run and how (the ``flowml run`` flags)."""

    targets: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    force: tuple[str, ...] = ()
    force_all: bool = False
    jobs: int | None = None  # None: as many as the CPUs offered allow (flowml.resources)
    keep_going: bool = False


@dataclass
class NodeResult:
    """What happened to (or would happen to) one node."""

    name: str
    status: str  # ran | cached | failed | skipped | killed; in a plan also "will run"
    reasons: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    cache_key: str | None = None
    outputs: dict[str, Content] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    logs: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # outputs a cached node copied back
    source_run: str | None = None  # for a cached node: the run that produced its outputs
    saved_s: float = 0.0  # for a cached node: how long that run took
    exit_code: int | None = None
    run_id: str | None = None  # the tracked run of this execution (set by the recorder)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": "; ".join(self.reasons),
                "duration_s": round(self.duration_s, 3), "cache_key": self.cache_key,
                "outputs": {p: c.digest for p, c in self.outputs.items()},
                "error": self.error, "attempts": self.attempts, "logs": self.logs, "run_id": self.run_id,
                "source_run_id": self.source_run}


@dataclass
class RunSummary:
    pipeline: str
    status: str  # success | failed | interrupted
    results: list[NodeResult]
    duration_s: float
    run_id: str | None = None  # the pipeline's tracked run (set by the recorder; None when nothing was recorded)

    @property
    def warnings(self) -> list[str]:
        return [w for r in self.results for w in r.warnings]

    def to_json(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "status": self.status, "run_id": self.run_id,
                "duration_s": round(self.duration_s, 3), "warnings": self.warnings,
                "steps": [r.to_json() for r in self.results]}


@dataclass
class StepContext:
    """What listeners give a step about to run: the run it is tracked as, variables for its
    process (the tracking URI and run id), and the files its stdout and stderr go to."""

    run_id: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)


class Listener:
    """Hooks the scheduler calls; progress views and the tracking recorder implement them."""

    def on_start(self, names: list[str]) -> None: ...

    def on_node_start(self, name: str, reasons: list[str]) -> StepContext | None: ...

    def on_node_end(self, result: NodeResult) -> None: ...

    def on_finish(self, summary: RunSummary) -> None: ...


class Listeners(Listener):
    """Several listeners as one; the step context is the union of what each gives."""

    def __init__(self, *listeners: Listener) -> None:
        self.listeners = listeners

    def on_start(self, names: list[str]) -> None:
        for listener in self.listeners:
            listener.on_start(names)

    def on_node_start(self, name: str, reasons: list[str]) -> StepContext:
        merged = StepContext()
        for listener in self.listeners:
            context = listener.on_node_start(name, reasons)
            if context is not None:
                merged.run_id = merged.run_id or context.run_id
                merged.env.update(context.env)
                merged.logs = merged.logs or context.logs
        return merged

    def on_node_end(self, result: NodeResult) -> None:
        for listener in self.listeners:
            listener.on_node_end(result)

    def on_finish(self, summary: RunSummary) -> None:
        for listener in self.listeners:
            listener.on_finish(summary)
