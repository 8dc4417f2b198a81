"""Sizes as people write them (``512M``, ``4G``, ``1.5Gi``), for pipeline.yaml and the
command line alike: this module imports nothing heavy, so the CLI may use it freely."""

from __future__ import annotations

import re
from typing import Any

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(i?))?B?\s*$", re.IGNORECASE)


def parse_size(v: Any) -> int:
    """Bytes from ``1073741824``, ``"512M"``, ``"4G"`` or ``"1.5Gi"``.

    As in Kubernetes, ``K``/``M``/``G``/``T`` are powers of 1000 and ``Ki``/``Mi``/``Gi``/``Ti``
    powers of 1024; the letter may be lower case and a trailing ``B`` is allowed.

    Raises:
        ValueError: for anything else, or a size under one byte.
    """
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    if isinstance(v, str) and (m := _SIZE.match(v)):
        number, unit, binary = m.groups()
        power = " KMGT".index(unit.upper()) if unit else 0
        size = round(float(number) * (1024 if binary else 1000) ** power)
        if size > 0:
            return size
    raise ValueError(f"expected a positive size such as 512M, 4G, 1.5Gi or a number of bytes, got {v!r}")
