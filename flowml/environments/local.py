"""The ``local`` environment: the interpreter (and virtualenv) running flowml.

``python`` in a step's command must mean this interpreter, so its folder goes first on
PATH. The fingerprint is the Python implementation and version, not the executable's path,
so that machines sharing a cache (a laptop and CI) agree when their Pythons do.
"""

from __future__ import annotations

import os
import platform
import sys

from flowml.environments import Environment


class LocalEnvironment(Environment):
    def fingerprint(self) -> str:
        return f"{platform.python_implementation().lower()}-{platform.python_version()}"

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        bindir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath)
        if path.split(os.pathsep)[0] != bindir:
            env["PATH"] = bindir + os.pathsep + path
        return env
