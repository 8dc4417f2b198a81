"""The ``local`` environment: the interpreter (and virtualenv) running flowml.

``python`` in a step's command must mean this interpreter, so its folder goes first on
PATH. The fingerprint is the Python implementation and version plus the set of installed
distributions with their versions (the names of the ``*.dist-info`` folders on
``sys.path``): upgrading scikit-learn reruns the steps, while machines with the same
packages (a laptop and CI) agree. Listing those folders costs well under a millisecond.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

import xxhash

from flowml.environments import Environment


class LocalEnvironment(Environment):
    def fingerprint(self) -> str:
        return _fingerprint()

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        bindir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath)
        if path.split(os.pathsep)[0] != bindir:
            env["PATH"] = bindir + os.pathsep + path
        return env


@functools.cache
def _fingerprint() -> str:
    dists: set[str] = set()
    for entry in sys.path[1:]:  # [0] is the script's folder or the working folder, not an install
        try:
            dists.update(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
    packages = xxhash.xxh3_64_hexdigest("\n".join(sorted(dists)).encode())
    return f"{platform.python_implementation().lower()}-{platform.python_version()}-{packages}"
