"""The metrics file a step declares with ``metrics:``: a JSON object of numbers."""

from __future__ import annotations

import json
import os
from typing import Any


def read_metrics(root: str, path: str) -> dict[str, float]:
    """A step's metrics file as a flat ``{name: number}`` (nested keys joined with dots).

    Raises:
        ValueError: when the file is not a JSON object of numbers.
    """
    with open(os.path.join(root, path), encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"metrics file {path} must hold a JSON object")
    flat: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[prefix[:-1]] = value
        elif isinstance(value, bool):
            flat[prefix[:-1]] = int(value)

    walk("", data)
    return flat
