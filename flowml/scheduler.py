"""Runs the DAG: decides per node (skip, cached, run), runs the ready ones in parallel,
retries, times out, stops cleanly on failure or Ctrl-C, and records cache entries.

The loop itself is small: :meth:`Scheduler._decide` says what to do with a node whose
upstream is done, worker threads run processes through an :class:`Executor`, and
every database write happens on the main thread after a node finishes. Progress display
hangs on a :class:`Listener`. A preview (``flowml status``, ``--dry-run``) walks the same
decisions without running anything, treating outputs of steps that would run as unknown.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from flowml.cache.hashing import Content
from flowml.cache.index import Entry
from flowml.cache.keys import explain, make_key
from flowml.cache.locks import NodeLock
from flowml.cache.store import ProjectCache
from flowml.plan import Plan
from flowml.runs import Listener, NodeResult, RunOptions, RunSummary, StepContext
from flowml.environments import Environment, base_env, load_environments
from flowml.errors import FlowmlError, Problem, SpecError, StoreError, did_you_mean
from flowml.executors import Executor, ProcessResult, StepSpec, Task
from flowml.resources import Offer, Request, ResourcePool, check_offer, make_offer
from flowml.spec.conditions import ConditionError, evaluate
from flowml.spec.node import Node, is_within
from flowml.spec.interpolate import Ref, format_value, substitute
from flowml.spec.metrics import read_metrics

DONE_BAD = ("failed", "killed", "skipped")
DEPLOYED = "deployed"  # a deploy step's manifest component: the version its model URI names at decide time
# Faults of the file system or the store that fail one node rather than crash the run.
FAULTS = (OSError, sqlite3.Error, StoreError)


@dataclass
class _Decision:
    action: str  # skip | fail | cached | run
    reasons: list[str]
    manifest: dict[str, Any] | None = None
    key: str | None = None
    entry: Entry | None = None
    restore: list[str] = field(default_factory=list)
    present: dict[str, Content | None] = field(default_factory=dict)
    command: Any = None
    env_vars: dict[str, str] = field(default_factory=dict)


class _Unknown(Exception):
    """A value that depends on a step that has not run (only while planning)."""


class Scheduler:
    """Runs (or plans) the selected part of a pipeline."""

    def __init__(self, plan: Plan, cache: ProjectCache | None = None, executor: Executor | None = None,
                 options: RunOptions | None = None, listener: Listener | None = None,
                 tracking_uri: str | None = None, offer: Offer | None = None) -> None:
        """Check the selection, environments and resources, then open the cache (``.flowml/``
        next to the pipeline, its index in the store at ``tracking_uri``, unless ``cache`` is
        given), so that bad input never creates a store.

        Args:
            offer: what steps may use at once; default, when running (``executor`` given), the
                machine's. Every step must fit in it.
        """
        self.plan, self.executor = plan, executor
        self.options = options or RunOptions()
        self.listener = listener or Listener()
        self.pipeline = plan.name
        self.order = plan.order
        self.preds = plan.preds
        self.rank = {n: i for i, n in enumerate(self.order)}
        self.forced = set(self.order) if self.options.force_all else _forced(plan, self.options.force)
        self.environments = load_environments(plan)
        self.chained = self._open_chained(executor)
        self.offer = offer or (make_offer() if executor is not None else None)
        if self.offer is not None:
            check_offer(plan, self.offer)
        self.cache = cache or ProjectCache(plan.root, tracking_uri)
        self.results: dict[str, NodeResult] = {}
        self.overlay: dict[str, Content | None] = {}
        self.state_key = plan.ident  # node_state rows belong to this pipeline file
        self.last = self.cache.last_entries(self.state_key)  # the entries this workspace's outputs came from
        self.new_entries: dict[str, Entry] = {}  # nodes now holding another entry's outputs
        # names this execution's log folder when no listener gives steps a tracked run to log into
        self.logs_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self._stop = threading.Event()
        self._prepare_lock = threading.Lock()
        self._prepared: dict[str, str | None] = {}  # environment -> None once ready, else why it is not
        self._env_locks: dict[str, threading.Lock] = {}  # environment -> held while it is being made
        self._failing = False

    # planning ------------------------------------------------------------------------

    def preview(self) -> list[NodeResult]:
        """What a run would do, without running or restoring anything."""
        for name in self.order:
            try:
                decision = self._decide(name)
            except FAULTS as exc:
                decision = _Decision("fail", [_fault(exc)])
            status = {"skip": "skipped", "fail": "failed", "cached": "cached", "run": "will run"}[decision.action]
            reasons = decision.reasons or ([f"will restore {', '.join(decision.restore)}"] if decision.restore else [])
            result = NodeResult(name, status, reasons, cache_key=decision.key)
            if decision.action == "cached":
                result.outputs, result.metrics = decision.entry.outputs, decision.entry.metrics
                self.overlay.update(decision.entry.outputs)
            else:
                self.overlay.update({o: None for o in self.plan.nodes[name].outputs})
            self.results[name] = result
        return [self.results[n] for n in self.order]

    # running -------------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run the selection; returns the summary (never raises for a failing step)."""
        start = time.perf_counter()
        self.executor.start(self.plan)
        self.listener.on_start(self.order)
        waiting = {n: len(self.preds[n]) for n in self.order}
        children: dict[str, list[str]] = {n: [] for n in self.order}
        for n in self.order:
            for p in self.preds[n]:
                children[p].append(n)
        ready = [n for n in self.order if waiting[n] == 0]
        runnable: dict[str, _Decision] = {}  # decided to run, waiting for room (oldest first)
        running: dict[Future, tuple[str, _Decision]] = {}
        interrupted = False
        requests = {n: Request.of(self.plan.nodes[n].resources) for n in self.order}
        self.resources = ResourcePool(self.offer or make_offer(), self.options.jobs)
        pool = ThreadPoolExecutor(max_workers=min(self.options.jobs or len(self.order), len(self.order)) or 1,
                                  thread_name_prefix="flowml-step")
        try:
            while ready or runnable or running:
                while ready and not self._failing:
                    name = ready.pop(0)
                    decision = self._decide_or_settle(name)
                    if decision is not None:
                        runnable[name] = decision
                        continue
                    ready += self._release(name, waiting, children)
                for name in [] if self._failing else self.resources.admit(list(runnable), requests):
                    decision = runnable.pop(name)
                    context = self.listener.on_node_start(name, decision.reasons) or StepContext()
                    running[pool.submit(self._execute, name, decision, context)] = (name, decision)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: self.rank[running[f][0]]):
                    name, decision = running.pop(future)
                    self.resources.release(name)
                    try:
                        result = self._complete(name, decision, future.result())
                    except FAULTS as exc:
                        result = NodeResult(name, "failed", decision.reasons, error=_fault(exc))
                    self._finish(result)
                    ready += self._release(name, waiting, children)
                ready.sort(key=self.rank.__getitem__)
        except KeyboardInterrupt:
            interrupted = True
            self._interrupt(running)
        finally:
            pool.shutdown(wait=True)
        for name in self.order:
            if name not in self.results:
                why = "interrupted" if interrupted else "not started: an earlier step failed"
                self.results[name] = NodeResult(name, "skipped", [why])
        self.cache.flush(self.state_key, list(self.new_entries.values()))
        status = "interrupted" if interrupted else (
            "failed" if any(r.status in ("failed", "killed") for r in self.results.values()) else "success")
        summary = RunSummary(self.pipeline, status, [self.results[n] for n in self.order],
                             time.perf_counter() - start)
        self.listener.on_finish(summary)
        return summary

    def _decide_or_settle(self, name: str) -> _Decision | None:
        """The decision for a ready node that must run; any other node is settled here.

        A file-system or store fault fails the node, not the whole run.
        """
        try:
            decision = self._decide(name)
            if decision.action == "run":
                return decision
            self._finish(self._settle(name, decision))
        except FAULTS as exc:
            self._finish(NodeResult(name, "failed", error=_fault(exc)))
        return None

    def _release(self, name: str, waiting: dict[str, int], children: dict[str, list[str]]) -> list[str]:
        """Children of ``name`` that became ready."""
        out = []
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                out.append(child)
        return out

    def _finish(self, result: NodeResult) -> None:
        self.results[result.name] = result
        self._failing = self._failing or (result.status == "failed" and not self.options.keep_going)
        self.listener.on_node_end(result)

    def _interrupt(self, running: dict[Future, tuple[str, _Decision]]) -> None:
        """Ctrl-C or SIGTERM: stop every running step's process group and record them as killed."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            self._stop.set()
            if self.executor is not None:
                self.executor.kill_all()
            for future, (name, decision) in running.items():
                outcome = future.result()
                self.resources.release(name)
                if outcome.process.killed:
                    outcome.lock.release()
                    result = NodeResult(name, "killed", ["interrupted"], outcome.duration_s,
                                        attempts=outcome.attempts, logs=outcome.logs)
                else:
                    result = self._complete(name, decision, outcome)
                self._finish(result)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    # one node ------------------------------------------------------------------------

    def _decide(self, name: str) -> _Decision:
        """Skip, fail, cached or run, with the reasons, for a node whose upstream is settled.

        While previewing, upstream steps that would run have unknown outputs and metrics;
        their dependents then "will run" because of them.
        """
        node = self.plan.nodes[name]
        for up in self.preds[name]:
            if self.results[up].status in DONE_BAD:
                verb = "was skipped" if self.results[up].status == "skipped" else self.results[up].status
                return _Decision("skip", [f"upstream {up} {verb}"])
        unknown = [up for up in self.preds[name] if self.results[up].status == "will run"]
        resolve = self._resolver(node)
        try:
            if node.when and not evaluate(node.when, resolve):
                return _Decision("skip", [f"when: {node.when} is false"])
            command = substitute(node.run, resolve)
            env_vars = {k: format_value(v) for k, v in substitute(node.env_vars, resolve).items()}
            if node.deploy and unknown:
                raise _Unknown(node.deploy["model"])  # the version it names may change when they run
        except _Unknown:
            return _Decision("run", [f"upstream {up} will run" for up in unknown])
        except ConditionError as exc:
            return _Decision("fail", [str(exc)])
        manifest = self.cache.manifest(
            command=command, template=node.template, env_vars=env_vars, params=node.params_used,
            environment=self._env_fingerprint(node), inputs=node.inputs, outputs=node.outputs,
            cache_version=node.cache_version, metrics=node.metrics, producers=self.plan.producers[name],
            overlay=self.overlay)
        if node.project:
            manifest.update(self.chained[name].components(self.cache.memo))
            command = self.chained[name].command
        if node.deploy:
            try:
                manifest[DEPLOYED] = self._deployed_version(node)
            except FlowmlError as exc:
                return _Decision("fail", [str(exc)])
        key = make_key(manifest)
        decision = _Decision("run", [], manifest, key, command=command, env_vars=env_vars)
        if not node.cacheable:
            decision.reasons = ["caching is off for this step"]
            return decision
        entry = decision.entry = self.cache.lookup(key)
        if name in self.forced:
            decision.reasons = ["forced"]
            return decision
        if entry is not None:
            present, restore, lost = self.cache.outputs_state(entry)
            if lost:
                decision.reasons = [f"output {p} missing and not restorable" for p in lost]
            elif node.deploy and (down := self._not_serving(node, manifest[DEPLOYED])):
                decision.reasons = [down]
            elif node.register and (gone := self._not_registered(node, entry)):
                decision.reasons = [gone]
            else:
                decision.action, decision.restore, decision.present = "cached", restore, present
            return decision
        previous = self.last.get(name)
        decision.reasons = explain(manifest, previous.manifest if previous else None) or ["cache entry missing"]
        if node.deploy and previous is not None and previous.manifest.get(DEPLOYED) != manifest[DEPLOYED]:
            decision.reasons = [f"{node.deploy['model']} now names {manifest[DEPLOYED]} "
                                f"(deployed: {previous.manifest.get(DEPLOYED)})"]
        return decision

    def _deployed_version(self, node: Node) -> str:
        """What a deploy step would serve now: ``version 3`` for a registry URI (resolved at
        decide time, so an alias that moved reruns the step), else the URI itself."""
        from flowml.deployments.versions import current_version

        version = current_version(node.deploy["model"], self.plan.root, self.cache.index.uri)
        return f"version {version}" if version is not None else node.deploy["model"]

    def _not_serving(self, node: Node, deployed: str) -> str | None:
        """Why an up-to-date deploy step must run anyway (its deployment is gone or down), or None."""
        from flowml.deployments import target_of

        name = node.deploy["name"]
        try:
            found = target_of(self.plan.root, name).status(name)
        except FlowmlError as exc:
            return f"deployment {name} cannot be checked: {exc}"
        if found.state != "running":
            return f"deployment {name} is {found.state}"
        return None

    def _not_registered(self, node: Node, entry: Entry) -> str | None:
        """Why an up-to-date register step must run anyway, or None: the version of its model
        directory's content (the digest its cache entry recorded for that input, which the
        registry keeps as the version's content digest) was deleted, or its alias no longer
        points at it. One registry read: the alias, else the model's versions."""
        from flowml.registry import RegistryClient
        from flowml.tracking.client import all_pages

        name, alias = node.register["name"], node.register.get("alias")
        digest = entry.manifest.get("inputs", {}).get(node.inputs[0])
        try:
            registry = RegistryClient(self.cache.index.uri, self.plan.root)
            if alias:
                if registry.get_model_version_by_alias(name, alias).lineage.content_digest == digest:
                    return None
                return f"{name}@{alias} no longer points at the version this step registered"
            quoted = name.replace("'", "''")
            versions = all_pages(lambda size, token: registry.search_model_versions(f"name = '{quoted}'", size,
                                                                                    None, token))
        except FlowmlError as exc:
            return f"the version this step registered cannot be found: {exc}"
        if any(v.lineage.content_digest == digest for v in versions):
            return None
        return f"the version of {name} this step registered no longer exists"

    def _resolver(self, node: Node):
        def resolve(ref: Ref) -> Any:
            if ref.namespace == "params":
                return self.plan.params[ref.name]
            if ref.namespace == "matrix":
                return node.matrix[ref.name]
            target = self.plan.steps_of(ref.step)[0]
            metrics = self._metrics_of(target)
            if ref.name not in metrics:
                known = ", ".join(sorted(metrics)) or "none"
                raise ConditionError(f"step {target} wrote no metric '{ref.name}' (metrics: {known})")
            return metrics[ref.name]

        return resolve

    def _metrics_of(self, node: str) -> dict[str, float]:
        """Metrics of a finished node; for one outside the selection, those of its last execution."""
        result = self.results.get(node)
        if result is not None:
            if result.status == "will run":
                raise _Unknown(node)
            return result.metrics
        entry = self.last.get(node)
        if entry is None:
            raise ConditionError(f"step {node} is not selected and has never run, so its metrics are unknown")
        return entry.metrics

    def _settle(self, name: str, decision: _Decision) -> NodeResult:
        """Record a node that does not run: skipped, or cached (restoring what is missing)."""
        if decision.action in ("skip", "fail"):
            failed = decision.action == "fail"
            return NodeResult(name, "failed" if failed else "skipped", decision.reasons,
                              error=decision.reasons[0] if failed else None)
        entry = decision.entry
        start = time.perf_counter()
        if decision.restore:
            self._restore_locked(name, decision)
        self.overlay.update(entry.outputs)
        if name not in self.last or self.last[name].key != entry.key:
            self.new_entries[name] = entry
        reasons = [f"restored {', '.join(decision.restore)}"] if decision.restore else []
        return NodeResult(name, "cached", reasons, time.perf_counter() - start, entry.key, entry.outputs,
                          entry.metrics, restored=list(decision.restore), source_run=entry.run_id,
                          saved_s=entry.duration_s or 0.0)

    def _restore_locked(self, name: str, decision: _Decision) -> None:
        """Restore under the node's lock, so that a concurrent run executing the same node
        neither overwrites the restored files nor saves ours as its own."""
        lock = self.cache.node_lock(name)
        if not lock.acquire(self._stop):
            raise KeyboardInterrupt
        try:
            present, restore, _ = self.cache.outputs_state(decision.entry)  # as they are now, under the lock
            self.cache.restore(decision.entry, restore, present)
        finally:
            lock.release()

    def _execute(self, name: str, decision: _Decision, context: StepContext) -> "_Outcome":
        """Worker thread: run the process (with retries), then store its outputs."""
        outcome = _Outcome(logs={}, lock=self.cache.node_lock(name), context=context)
        try:
            return self._run_node(name, decision, outcome)
        except FAULTS as exc:
            outcome.process = ProcessResult(None, 0.0, error=_fault(exc))
            return outcome

    def _run_node(self, name: str, decision: _Decision, outcome: "_Outcome") -> "_Outcome":
        node = self.plan.nodes[name]
        env = self.environments[self._env_key(node)]
        logs = outcome.logs = outcome.context.logs or self._log_paths(name)
        if not outcome.lock.acquire(self._stop):
            outcome.process = ProcessResult(None, 0.0, killed=True)
            return outcome
        if node.cacheable and decision.key and decision.entry is None and name not in self.forced:
            # A concurrent run may have just made it; with a shared index, maybe in another
            # workspace, whose objects this store lacks: then the step runs here after all.
            peer = self.cache.peek(decision.key)
            if peer is not None and all(self.cache.objects.has_content(c) for c in peer.outputs.values()):
                outcome.peer_entry = peer
                outcome.process = ProcessResult(0, 0.0)
                return outcome
        # The step inherits the lock, so a step orphaned by a killed flowml keeps its outputs
        # locked until it exits: a rerun waits for it instead of writing beside it.
        if self.executor.remote:  # the environment wraps the command where it runs
            argv, variables, step = (_argv(decision.command), {},
                                     self._step_spec(name, node, decision, outcome.context))
        else:
            failure = self._prepare(self._env_key(node))
            if failure:
                outcome.process = ProcessResult(None, 0.0, error=failure)
                return outcome
            argv, variables, step = (env.wrap_step(_argv(decision.command), node),
                                     self._process_env(env, name, decision, outcome.context), None)
        cwd = self.chained[name].folder if node.project else self.plan.root  # a project runs in its folder
        task = Task(name, argv, cwd, variables, logs["stdout"], logs["stderr"], node.timeout,
                    pass_fds=(outcome.lock.fd,), step=step)
        start = time.perf_counter()
        outcome.process = self._attempts(task, node, outcome)
        outcome.duration_s = time.perf_counter() - start
        if not outcome.process.ok or self._stop.is_set():
            return outcome
        try:
            if outcome.process.outputs is not None:
                outcome.saved, missing = self._take_back(name, node, outcome)
            else:
                outcome.saved, missing = self.cache.save_outputs(node.outputs) if node.cacheable else (
                    self._hash_outputs(node.outputs))
            if missing:
                outcome.error = f"declared output{'s' if len(missing) > 1 else ''} not written: {', '.join(missing)}"
            elif node.metrics:
                outcome.metrics = read_metrics(self.plan.root, node.metrics)
        except (OSError, ValueError) as exc:
            outcome.error = str(exc)
        return outcome

    def _prepare(self, name: str) -> str | None:
        """Make the environment ``name`` ready before the first of its steps runs, once per run
        (whichever step thread gets there first; that environment's other steps wait, the other
        environments' steps do not): a run whose steps are all cache hits creates no environment
        at all, which is what a second machine sharing the cache wants. A remote executor's
        steps prepare theirs where they run. Returns why it could not be made (every step of
        that environment then fails with it), or None."""
        with self._prepare_lock:  # held only to find this environment's own lock
            lock = self._env_locks.setdefault(name, threading.Lock())
        with lock:  # steps of other environments go on while this one is made
            if name not in self._prepared:
                try:
                    self.environments[name].prepare()
                    self._prepared[name] = None
                except FlowmlError as exc:
                    self._prepared[name] = str(exc)
            return self._prepared[name]

    def _attempts(self, task: Task, node: Node, outcome: "_Outcome") -> ProcessResult:
        """Run ``task`` up to ``retries + 1`` times with exponential backoff (tenacity).

        Outputs are cleared before every attempt, so a failed attempt leaves nothing behind
        for the next one to append to.
        """
        from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

        def attempt() -> ProcessResult:
            outcome.attempts += 1
            try:
                _clear_outputs(self.plan.root, node.outputs)
            except OSError as exc:
                return ProcessResult(None, 0.0, error=f"cannot clear old outputs: {exc}")
            return self.executor.run(task)

        retrying = Retrying(
            stop=stop_after_attempt(node.retries + 1),
            wait=wait_exponential(multiplier=0.5, max=10),
            retry=retry_if_result(lambda r: not r.ok and not r.killed and not self._stop.is_set()),
            sleep=self._stop.wait,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        return retrying(attempt)

    def _take_back(self, name: str, node: Node, outcome: "_Outcome") -> tuple[dict[str, Content], list[str]]:
        """Outputs that a remote executor's step uploaded to its run, brought into the workspace
        from there as a cache hit's are (fetched into the object store, then restored); with
        the declared outputs the step did not write.

        Raises:
            StoreError: when some cannot be fetched.
        """
        saved = outcome.process.outputs
        entry = Entry("", name, {}, saved, {}, run_id=outcome.context.run_id)
        present, restore, lost = self.cache.outputs_state(entry)
        if lost:
            raise StoreError(f"{name}: {', '.join(lost)} could not be fetched from its run {entry.run_id} "
                             f"on the tracking server")
        self.cache.restore(entry, restore, present)
        return saved, [o for o in node.outputs if o not in saved]

    def _inputs_changed(self, node: Node, manifest: dict[str, Any]) -> list[str]:
        """Inputs whose content differs from what the key was computed with (another process,
        an editor), read from the disk even for upstream outputs: recording the entry would tie
        these outputs to inputs they never saw."""
        own = tuple(node.outputs)
        return [p for p, digest in manifest["inputs"].items() if self.cache.input_digest(p, {}, own) != digest]

    def _hash_outputs(self, outputs: list[str]) -> tuple[dict[str, Content], list[str]]:
        contents = {p: self.cache.current(p) for p in outputs}
        return {p: c for p, c in contents.items() if c}, [p for p, c in contents.items() if c is None]

    def _complete(self, name: str, decision: _Decision, outcome: "_Outcome") -> NodeResult:
        """Main thread: turn a finished process into a result and a cache entry; frees the node's lock."""
        try:
            if outcome.peer_entry is not None:
                outcome.lock.release()  # _settle takes it again for a restore: flock is per open file
                present, restore, _ = self.cache.outputs_state(outcome.peer_entry)
                peer = _Decision("cached", [], entry=outcome.peer_entry, restore=restore, present=present)
                result = self._settle(name, peer)
                result.reasons.insert(0, "made by a concurrent run")
                return result
            return self._record(name, decision, outcome)
        finally:
            outcome.lock.release()

    def _record(self, name: str, decision: _Decision, outcome: "_Outcome") -> NodeResult:
        proc = outcome.process
        result = NodeResult(name, "ran", decision.reasons, outcome.duration_s, decision.key,
                            outcome.saved, outcome.metrics, outcome.attempts, logs=outcome.logs,
                            exit_code=proc.returncode)
        if proc.killed or (self._stop.is_set() and not proc.ok):
            result.status, result.error = "killed", "interrupted"
        elif not proc.ok or outcome.error:
            result.status = "failed"
            result.error = outcome.error or _failure(proc, self.plan.nodes[name].timeout)
        if result.status != "ran":
            return result
        node = self.plan.nodes[name]
        changed = self._inputs_changed(node, decision.manifest) if node.cacheable and decision.key else []
        self.overlay.update(outcome.saved)
        if changed:
            result.warnings.append(f"{name}: {', '.join(changed)} changed while it ran, so its outputs were not cached")
        elif node.cacheable and decision.key:
            previous = decision.entry or self.cache.lookup(decision.key)
            if previous is not None and _digests(previous.outputs) != _digests(outcome.saved):
                changed = sorted(p for p in outcome.saved if previous.outputs.get(p) != outcome.saved[p])
                result.warnings.append(f"{name} is nondeterministic: same inputs, different {', '.join(changed)}")
            self.cache.record(self.state_key, Entry(decision.key, name, decision.manifest, outcome.saved,
                                                    outcome.metrics, outcome.duration_s, outcome.context.run_id),
                              published=outcome.process.outputs is not None)
        return result

    # helpers -------------------------------------------------------------------------

    def _open_chained(self, executor: Executor | None) -> dict:
        """The ``project:`` steps' projects, opened (versions resolved to commits), their
        environments added to :attr:`environments`. Imported only for a plan that has some:
        reading an MLproject costs pydantic, which a no-op rerun never imports."""
        if not any(node.project for node in self.plan.nodes.values()):
            return {}
        from flowml.projects.chain import open_chained

        chained, environments = open_chained(self.plan, remote=executor is not None and executor.remote)
        self.environments.update(environments)
        return chained

    def _env_key(self, node: Node) -> str:
        """The key of ``node``'s environment in :attr:`environments`; a project step's is its project's."""
        return self.chained[node.name].environment if node.project else node.env or ""

    def _env_fingerprint(self, node: Node) -> dict[str, str]:
        env = self.environments[self._env_key(node)]
        name = self.chained[node.name].environment_name if node.project else node.env or "local"
        return {"name": name, "fingerprint": env.fingerprint()}

    def step_runs(self) -> dict[str, dict[str, dict[str, str]]]:
        """The tags and params of some nodes' runs beyond the pipeline's: a project step's
        source and parameters."""
        return {name: {"tags": c.tags, "params": c.params} for name, c in self.chained.items()}

    def _process_env(self, env: Environment, name: str, decision: _Decision, context: StepContext) -> dict[str, str]:
        variables = base_env()
        variables.update(self.resources.env(name))  # its GPUs; a step's own env_vars may still say otherwise
        variables.update(self._step_variables(name, decision, context))
        return env.process_env(variables)

    def _step_variables(self, name: str, decision: _Decision, context: StepContext) -> dict[str, str]:
        """The variables a step gets of its own, on top of those of the process that starts it."""
        variables = dict(decision.env_vars)
        variables.update(FLOWML_PIPELINE=self.pipeline, FLOWML_STEP=name)
        if decision.key:  # what a register: step records in its version's lineage
            variables["FLOWML_CACHE_KEY"] = decision.key
        variables.update(context.env)
        return variables

    def _step_spec(self, name: str, node: Node, decision: _Decision, context: StepContext) -> StepSpec:
        """The step as a remote executor ships it: nothing of this machine's paths or variables,
        and for each upstream output it reads, the run whose artifacts hold its objects."""
        upstream = {}
        for up in self.preds[name]:
            result = self.results[up]
            for path, content in result.outputs.items():
                if any(is_within(path, i) or is_within(i, path) for i in node.inputs):
                    upstream[path] = (content, result.source_run or result.run_id)
        declared = self.plan.environments.get(node.env) if node.env else None
        environment = (declared["kind"], node.env, declared["config"]) if declared else ("local", "local", None)
        return StepSpec(_argv(decision.command), environment, self._step_variables(name, decision, context),
                        dict(decision.manifest["inputs"]), upstream, context.run_id, self.cache.index.uri, node,
                        self._env_fingerprint(node)["fingerprint"])

    def _log_paths(self, name: str) -> dict[str, str]:
        folder = os.path.join(self.cache.dir, "logs", self.logs_id)
        os.makedirs(folder, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", name)
        return {s: os.path.join(folder, f"{safe}.{s}") for s in ("stdout", "stderr")}


@dataclass
class _Outcome:
    logs: dict[str, str]
    lock: NodeLock
    context: StepContext
    process: ProcessResult | None = None
    attempts: int = 0
    saved: dict[str, Content] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    peer_entry: Entry | None = None
    duration_s: float = 0.0


def _fault(exc: BaseException) -> str:
    """A file-system or store error as one line."""
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"


def _argv(command: str | list[str]) -> list[str]:
    return ["/bin/sh", "-c", command] if isinstance(command, str) else [str(a) for a in command]


def _failure(proc: ProcessResult, timeout: float | None) -> str:
    if proc.timed_out:
        return f"timed out after {timeout:g}s"
    if proc.error:
        return proc.error
    if proc.returncode is not None and proc.returncode < 0:
        return f"killed by signal {-proc.returncode}"
    return f"exit code {proc.returncode}"


def _digests(outputs: dict[str, Content]) -> dict[str, str]:
    return {p: c.digest for p, c in outputs.items()}


def _clear_outputs(root: str, outputs: list[str]) -> None:
    """Remove stale outputs before a step runs, and make their parent folders."""
    import shutil

    for out in outputs:
        path = os.path.join(root, out)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or root, exist_ok=True)


def _forced(plan: Plan, names: tuple[str, ...]) -> set[str]:
    forced: set[str] = set()
    for name in names:
        found = plan.steps_of(name)
        if not found:
            raise SpecError(Problem(f"unknown step '{name}'{did_you_mean(name, list(plan.all_nodes))}",
                                    "command line", field="--force"))
        forced.update(n for n in found if n in plan.nodes)
    return forced


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
