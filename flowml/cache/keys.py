"""Cache keys: the components of a step execution, their digest, and why two differ.

A key hashes, in canonical JSON, everything that can change a step's outputs: the
interpolated command and its environment variables, the params it uses, the environment's
fingerprint, the content of every input (upstream outputs included, which gives early
cutoff: an upstream step that rewrites identical bytes does not invalidate its
dependents), the code it runs, its declared outputs and metrics file, and its
``cache: {version: N}``; for a ``project:`` step, the project's commit (or its files' digest),
subfolder, entry point and typed parameters (:mod:`flowml.projects.chain`).
The full manifest is stored with each entry so that :func:`explain` can say in words
why a step will run.
"""

from __future__ import annotations

import json
from typing import Any

from flowml.cache.hashing import hash_bytes

KEY_FORMAT = 1
MISSING = "missing"  # the digest of an input that does not exist
PROJECT = "project"  # a project: step's project: {commit, subdir | files, entry_point, parameters}
PROJECT_SOURCE = "project_source"  # the uri and version it names: one commit under two names is one key
# Manifest fields that explain a key but are not part of it.
EXPLAIN_ONLY = ("template", "producers", PROJECT_SOURCE)


def make_key(manifest: dict[str, Any]) -> str | None:
    """Digest of the manifest's key fields; None while an input is still unknown."""
    if any(d is None for d in manifest["inputs"].values()):
        return None
    keyed = {k: v for k, v in manifest.items() if k not in EXPLAIN_ONLY}
    keyed["format"] = KEY_FORMAT
    return hash_bytes(json.dumps(keyed, sort_keys=True, separators=(",", ":"), default=str).encode())


def explain(new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """Why the execution described by ``new`` differs from the previous one, ``old``."""
    if old is None:
        return ["never ran"]
    reasons: list[str] = []
    params_new, params_old = new.get("params", {}), old.get("params", {})
    for name in sorted(set(params_new) | set(params_old)):
        a, b = params_old.get(name, "(unset)"), params_new.get(name, "(unset)")
        if a != b:
            reasons.append(f"param {name} {_show(a)} -> {_show(b)}")
    reasons += _explain_project(new, old, bool(reasons))
    if new.get("command") != old.get("command") and (new.get("template") != old.get("template") or not reasons):
        reasons.append("command changed")
    if new.get("env_vars") != old.get("env_vars"):
        changed = sorted(k for k in set(new["env_vars"]) | set(old.get("env_vars", {}))
                         if new["env_vars"].get(k) != old.get("env_vars", {}).get(k))
        reasons.append(f"environment variable {', '.join(changed)} changed")
    if new.get("environment") != old.get("environment"):
        reasons.append(f"environment {new['environment'].get('name', '')} changed".replace("  ", " "))
    reasons += _explain_inputs(new, old)
    reasons += _changed_files(new.get("code", {}), old.get("code", {}), "code")
    if new.get("outputs") != old.get("outputs"):
        reasons.append("declared outputs changed")
    if new.get("metrics") != old.get("metrics"):
        reasons.append("metrics file changed")
    if new.get("cache_version") != old.get("cache_version"):
        reasons.append(f"cache version {old.get('cache_version')} -> {new.get('cache_version')}")
    if not reasons and make_key(new) != make_key(old):
        reasons.append("cache key format changed")
    return reasons


def _explain_project(new: dict, old: dict, params_changed: bool) -> list[str]:
    """A project step's reasons: its commit moved or its files changed, another entry point,
    other parameters (unless a pipeline param already says so)."""
    a, b = old.get(PROJECT) or {}, new.get(PROJECT) or {}
    if a == b:
        return []
    source = new.get(PROJECT_SOURCE) or {}
    what = f"project {source.get('uri', '')}".rstrip()
    reasons = []
    if a.get("commit") and b.get("commit") and a["commit"] != b["commit"]:
        named = source.get("version") or "the default branch"
        reasons.append(f"{what}: {named} is now commit {b['commit'][:12]} (was {a['commit'][:12]})")
    elif a.get("files") != b.get("files") or a.get("commit") != b.get("commit") or a.get("subdir") != b.get("subdir"):
        reasons.append(f"{what}: its files changed" if a.get("files") and b.get("files") else f"{what} changed")
    if a.get("entry_point") != b.get("entry_point"):
        reasons.append(f"entry point {a.get('entry_point')} -> {b.get('entry_point')}")
    pa, pb = a.get("parameters", {}), b.get("parameters", {})
    if not params_changed:
        reasons += [f"project parameter {k} {_show(pa.get(k, '(unset)'))} -> {_show(pb.get(k, '(unset)'))}"
                    for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
    return reasons


def _explain_inputs(new: dict, old: dict) -> list[str]:
    """Input reasons: by upstream step for produced inputs, by path for the others."""
    reasons: list[str] = []
    blamed: set[str] = set()
    new_inputs, old_inputs = new["inputs"], old.get("inputs", {})
    plain_new, plain_old = {}, {}
    for path in sorted(set(new_inputs) | set(old_inputs)):
        producer = new.get("producers", {}).get(path) if path in new_inputs else None
        if producer is None:
            if path in new_inputs:
                plain_new[path] = new_inputs[path]
            if path in old_inputs:
                plain_old[path] = old_inputs[path]
            continue
        digest = new_inputs[path]
        if producer in blamed or digest == old_inputs.get(path):
            continue
        blamed.add(producer)
        if digest is None:
            reasons.append(f"upstream {producer} will run")
        elif digest == MISSING:
            reasons.append(f"input {path} missing (an output of {producer})")
        else:
            reasons.append(f"upstream {producer} produced different outputs")
    return reasons + _changed_files(plain_new, plain_old, "input")


def _changed_files(new: dict[str, str], old: dict[str, str], what: str) -> list[str]:
    out = []
    for path in sorted(set(new) | set(old)):
        if path not in old:
            out.append(f"{what} {path} added")
        elif path not in new:
            out.append(f"{what} {path} removed")
        elif new[path] != old[path]:
            out.append(f"{what} {path} missing" if new[path] == MISSING else f"{what} {path} changed")
    return out


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)
