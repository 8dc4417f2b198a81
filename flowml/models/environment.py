"""The environment files of a model directory: ``requirements.txt``, ``python_env.yaml`` and
``conda.yaml``, as MLflow writes them, so ``mlflow models serve --env-manager virtualenv``
(or conda) and flowml's image builder can recreate what the model needs.

The flavor names its packages; each is pinned to the version installed here (the one the model
was trained with). ``pip_requirements`` replaces that list and ``extra_pip_requirements`` adds
to it, as in MLflow; either may be a list or the path of a requirements file.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

import yaml

from flowml.models.errors import ModelError

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_FILE = "conda.yaml"
ENV_CONF = {"conda": CONDA_FILE, "virtualenv": PYTHON_ENV_FILE}  # python_function's ``env`` entry


def pinned(package: str) -> str:
    """``package==<installed version>``, or the bare name when it is not installed here."""
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def requirements(packages: list[str], pip_requirements: list[str] | str | None = None,
                 extra_pip_requirements: list[str] | str | None = None) -> list[str]:
    """The model's pip requirements: ``packages`` pinned, or ``pip_requirements`` instead,
    plus ``extra_pip_requirements``.

    Raises:
        ModelError: both ``pip_requirements`` and ``extra_pip_requirements`` given (MLflow's rule:
            the second would silently be ignored), or a requirements file that cannot be read.
    """
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise ModelError("give pip_requirements (the whole list) or extra_pip_requirements (additions), not both")
    base = _lines(pip_requirements, "pip_requirements") if pip_requirements is not None else \
        [pinned(p) for p in packages]
    extra = _lines(extra_pip_requirements, "extra_pip_requirements") if extra_pip_requirements is not None else []
    out: list[str] = []
    for line in [*base, *extra]:
        if line not in out:
            out.append(line)
    return out


def _lines(value: list[str] | str, what: str) -> list[str]:
    """A list of requirement strings, or the lines of the requirements file ``value`` names."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    try:
        with open(value, encoding="utf-8") as src:
            return [line.strip() for line in src if line.strip() and not line.lstrip().startswith("#")]
    except OSError as exc:
        raise ModelError(f"{what}: cannot read requirements file {value}: {exc.strerror}") from None


def write_environment(path: str, reqs: list[str]) -> dict[str, str]:
    """Write the three environment files into the model directory; returns python_function's ``env``."""
    with open(os.path.join(path, REQUIREMENTS_FILE), "w", encoding="utf-8") as out:
        out.write("\n".join(reqs) + ("\n" if reqs else ""))
    python = platform.python_version()
    build = [pinned("pip"), pinned("setuptools"), pinned("wheel")]
    python_env = {"python": python, "build_dependencies": build, "dependencies": [f"-r {REQUIREMENTS_FILE}"]}
    conda = {"name": "flowml-env", "channels": ["conda-forge"],
             "dependencies": [f"python={python}", "pip", {"pip": reqs}]}
    for name, content in ((PYTHON_ENV_FILE, python_env), (CONDA_FILE, conda)):
        with open(os.path.join(path, name), "w", encoding="utf-8") as out:
            yaml.safe_dump(content, out, default_flow_style=False, sort_keys=False)
    return dict(ENV_CONF)
