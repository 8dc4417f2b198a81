"""Running ``uv``: the binary the ``uv`` package ships (or ``FLOWML_UV``), with an environment
that lets nothing around flowml choose for it (no active virtualenv, no Python downloads unless
the user asked for them), and its error message turned into one flowml error."""

from __future__ import annotations

import os
import subprocess

from flowml.environments import EnvSetupError
from flowml.environments.uv.pipconfig import cert_file

UV_ENV = "FLOWML_UV"  # another uv binary, e.g. a newer one on PATH


class UvError(EnvSetupError):
    """uv failed; ``message`` is uv's."""

    def __init__(self, doing: str, message: str) -> None:
        super().__init__(f"{doing} failed: {message}")
        self.doing, self.message = doing, message


def uv_binary() -> str:
    """``FLOWML_UV`` if set, else the binary of the installed ``uv`` package."""
    chosen = os.environ.get(UV_ENV)
    if chosen:
        return chosen
    from uv import find_uv_bin  # the uv package: only when an environment is made

    return find_uv_bin()


def uv_env() -> dict[str, str]:
    """The caller's variables for uv, less those that would point it at another environment.

    Python downloads are off unless ``UV_PYTHON_DOWNLOADS`` says otherwise: an interpreter
    that is not on the machine is an error to report, not a file to fetch. pip's ``cert``
    bundle, if any, is uv's ``SSL_CERT_FILE`` unless that is set."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME")}
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    cert = cert_file(env)
    if cert and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = cert
    env["UV_NO_PROGRESS"] = "1"
    return env


def run_uv(args: list[str], cwd: str, doing: str, env: dict[str, str] | None = None) -> str:
    """Run ``uv ARGS`` in ``cwd``; its stdout.

    Raises:
        UvError: uv exited non-zero (the message is uv's own, ``error:`` prefix dropped), or
            could not be started.
    """
    try:
        proc = subprocess.run([uv_binary(), *args, "--color", "never"], cwd=cwd, env=env or uv_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as exc:
        raise UvError(doing, f"cannot run uv: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise UvError(doing, _message(proc.stderr) or f"uv exited with {proc.returncode}")
    return proc.stdout


def _message(stderr: str) -> str:
    """uv's error text without progress lines and its ``error:`` prefix."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("error:")), 0)
    text = "\n".join(lines[start:])
    return text[len("error:"):].strip() if text.startswith("error:") else text
