"""Checks on what a user logs, with MLflow's limits, so that a store never holds a name or a
value that MLflow's client or server would refuse."""

from __future__ import annotations

import numbers
import posixpath
import re

from flowml.errors import TrackingError

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_RUN_NAME = 250
MAX_USER_ID = 256
MAX_EXPERIMENT_NAME = 256
_KEY = re.compile(r"^[/\w.\- :]*$")  # MLflow: alphanumerics, _ - . space / (and : on POSIX)


def check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key:
        raise TrackingError(f"{kind} key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY:
        raise TrackingError(f"{kind} key '{key[:40]}...' is {len(key)} characters long; the limit is {MAX_KEY}")
    if not _KEY.match(key):
        raise TrackingError(f"invalid {kind} key '{key}': use letters, digits, _ - . space / and :")
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise TrackingError(f"invalid {kind} key '{key}': it must be a relative path without '.' or '..' parts")
    return key


def param_value(key: str, value: object) -> str:
    text = str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise TrackingError(f"param '{key}' value is {len(text)} characters long; the limit is {MAX_PARAM_VALUE}")
    return text


def tag_value(key: str, value: object) -> str:
    text = str(value)
    if len(text) > MAX_TAG_VALUE:
        raise TrackingError(f"tag '{key}' value is {len(text)} characters long; the limit is {MAX_TAG_VALUE}")
    return text


def metric_value(key: str, value: object) -> float:
    """A metric's value as a float; numpy scalars pass, strings are refused (as in MLflow)."""
    if isinstance(value, numbers.Real):
        return float(value)
    raise TrackingError(f"metric '{key}' must be a number, got {type(value).__name__} {value!r}")


def int64(name: str, value: object) -> int:
    """An integer that fits in 64 bits; numpy integers and integral floats pass (``step=np.int64(3)``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
            value = int(value)
        else:
            raise TrackingError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not -(2 ** 63) <= value < 2 ** 63:
        raise TrackingError(f"{name} {value} does not fit in 64 bits")
    return value


def user_id(user: object) -> str:
    text = "" if user is None else str(user)
    if len(text) > MAX_USER_ID:
        raise TrackingError(f"user id '{text[:40]}...' is {len(text)} characters long; the limit is {MAX_USER_ID}")
    return text


def run_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > MAX_RUN_NAME:
        raise TrackingError(f"run name must be a string of at most {MAX_RUN_NAME} characters")
    return name


def experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TrackingError(f"experiment name must be a non-empty string, got {name!r}")
    if len(name) > MAX_EXPERIMENT_NAME:
        raise TrackingError(f"experiment name is longer than {MAX_EXPERIMENT_NAME} characters")
    return name


_INT64 = (-(2 ** 63), 2 ** 63)


def metric_rows(metrics, seen_keys: set[str]) -> list[tuple[str, float, int, int]]:
    """Metrics checked as ``(key, value, timestamp, step)`` with a float value.

    Keys already in ``seen_keys`` are not checked again (and new ones are added), and plain
    floats and ints skip the general checks: a batch of a thousand values of a few keys
    must not cost a thousand regex matches.
    """
    rows = []
    low, high = _INT64
    for m in metrics:
        key, value, timestamp, step = m.key, m.value, m.timestamp, m.step
        if key not in seen_keys:
            seen_keys.add(check_key("metric", key))
        if type(value) is not float:
            value = float(value) if type(value) is int else metric_value(key, value)
        if type(timestamp) is not int or not low <= timestamp < high:
            timestamp = int64("timestamp", timestamp)
        if type(step) is not int or not low <= step < high:
            step = int64("step", step)
        rows.append((key, value, timestamp, step))
    return rows
