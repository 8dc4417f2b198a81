"""What the server accepts as an artifact path or an artifact location.

MLflow's server has had a long line of CVEs here: paths with ``..`` (plain, URL-encoded,
double-encoded, with backslashes), absolute paths, ``file://`` URIs, ``#`` and ``?`` cutting
a location short, symbolic links leading out of the artifact root, and artifact locations
naming URLs the server then fetched. Every path and location a request brings goes through
one of the functions below before it touches the disk:

- :func:`artifact_path` checks a path relative to an artifact root and returns where it is on
  disk, refusing anything whose real path (symbolic links resolved) leaves the root;
- :func:`validate_artifact_location` checks an experiment's ``artifact_location``:
  ``mlflow-artifacts:/...``, or a local folder under the artifacts destination; never a URL
  the server would fetch. :func:`validate_model_source` checks a model version's ``source``
  the same way, also taking ``runs:/`` and ``models:/`` URIs, and local folders under the
  artifact location of the run or logged model the request names.

All decode the text repeatedly until it stops changing, so that ``%252e%252e%252f`` is seen as
``../``; the decoded form is the name used on disk, so a path means the same file however many
times a client encoded it. A ``%`` still there after decoding is a plain character (it cannot
start an escape any more) and is allowed.
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Callable
from urllib.parse import unquote

from flowml.errors import TrackingError

MAX_PATH_CHARS = 1024  # the whole relative path
MAX_NAME_BYTES = 255  # one segment, as most file systems allow
_DECODE_ROUNDS = 8
_FORBIDDEN_CHARS = {"\\": "a backslash", "#": "'#'", ";": "';'", "?": "'?'"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")  # C:, file:, http: ... at the start of a path
_UPLOAD_TMP = re.compile(r"^\..+\.upload-[0-9a-f]{32}$")  # the proxy's in-progress uploads


def decode(text: str) -> str:
    """``text`` URL-decoded until it stops changing; refused if it never does."""
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(text, errors="strict") if "%" in text else text
        if decoded == text:
            return text
        text = decoded
    raise TrackingError("invalid path: too many levels of URL encoding")


def clean_path(path: str | None) -> str:
    """The relative artifact path ``path`` names, checked without touching the disk: '' for the
    root, else segments joined with '/', without '.' segments.

    Refused (INVALID_PARAMETER_VALUE): after decoding, a '..' segment (also in its Unicode
    look-alikes, checked on the NFKC form), an absolute path or one starting with a drive letter or
    a URI scheme (``C:``, ``file:``), empty segments (``a//b``), names of only dots and spaces
    (Windows reads ``.. `` as ``..``), backslashes, NUL and other control characters, '#', ';', '?',
    U+FFFD (what invalid UTF-8 was decoded to), and paths or names longer than the file system takes.
    """
    if path is None:
        return ""
    text = _decoded(path, _bad)
    if text in ("", ".", "./"):
        return ""
    if text.startswith("/") or _SCHEME.match(text):
        raise _bad(path, "it must be relative (no leading '/', drive letter or scheme)")
    if len(text) > MAX_PATH_CHARS:
        raise _bad(path[:80] + "...", f"it is longer than {MAX_PATH_CHARS} characters")
    segments = text[:-1].split("/") if text.endswith("/") else text.split("/")
    kept = []
    for segment in segments:
        folded = unicodedata.normalize("NFKC", segment)
        if segment == "" or folded.strip() == "":
            raise _bad(path, "it has an empty segment")
        if folded == ".." or segment == "..":
            raise _bad(path, "'..' is not allowed")
        if folded == ".":
            continue
        if folded.strip(" .") == "":
            raise _bad(path, "a name of only dots and spaces is not allowed")
        if is_upload_temp(segment):
            raise _bad(path, "the name is reserved for uploads in progress")
        if len(segment.encode("utf-8")) > MAX_NAME_BYTES:
            raise _bad(path[:80] + "...", f"a name is longer than {MAX_NAME_BYTES} bytes")
        kept.append(segment)
    return "/".join(kept)


def artifact_path(root: str, path: str | None) -> tuple[str, str]:
    """``(relative, absolute)`` for ``path`` under the artifact root ``root``: the checks of
    :func:`clean_path`, then its real path (symbolic links resolved, those of a missing path's
    existing parents too) must be ``root``'s real path or under it. The absolute path is ``path``
    joined to the real root, not the link's target, so that deleting or replacing a link inside
    the root acts on the link."""
    rel = clean_path(path)
    real_root = os.path.realpath(root)
    full = os.path.join(real_root, *rel.split("/")) if rel else real_root
    if not _inside(os.path.realpath(full), real_root):
        raise _bad(path or "", "it leads out of the artifact root")
    return rel, full


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def is_upload_temp(name: str) -> bool:
    """Whether ``name`` is a file the proxy is still receiving (hidden from listings)."""
    return bool(_UPLOAD_TMP.match(name))


def upload_temp_name(name: str, token: str) -> str:
    return f".{name[:MAX_NAME_BYTES - 60]}.upload-{token}"


# artifact locations --------------------------------------------------------------------

ARTIFACTS_SCHEME = "mlflow-artifacts"
SOURCE_SCHEMES = ("runs", "models")  # a model version's source may name a run's or a registry's files


def validate_artifact_location(uri: str | None, destination: str | None = None) -> str | None:
    """``uri`` if the server may use it as an experiment's ``artifact_location``, else
    INVALID_PARAMETER_VALUE.

    Accepted: ``mlflow-artifacts:/<path>`` (no host: a location on another server would send
    clients' uploads there), and, when ``destination`` is given, a local folder or ``file://``
    URI whose real path is under it. Refused: every other scheme (``http``, ``https``, ``ftp``,
    ``s3``...: the server never fetches a URL it is given), ``..`` (in any encoding), '#', '?',
    ';', backslashes, control characters, and local paths when no destination is known.
    None and '' pass through (the store picks the location)."""
    if uri is None or uri == "":
        return uri
    return _location(uri, lambda: [destination] if destination else [], ())


def validate_model_source(source: str, local_roots: Callable[[], list[str]]) -> str:
    """``source`` if the server may record it as a model version's source, else
    INVALID_PARAMETER_VALUE: the checks of :func:`validate_artifact_location`, where also
    ``runs:/<run_id>/<path>`` and ``models:/...`` pass (without a host; whether the run or
    model exists is the store's check), and a local path must lie under one of the folders
    ``local_roots()`` returns (the artifacts destination, the artifact location of the run
    or logged model the request names), called only for a local path."""
    if not isinstance(source, str) or not source:
        raise _bad_location(str(source), "a model version source must be a non-empty string")
    return _location(source, local_roots, SOURCE_SCHEMES)


def _location(uri: str, local_roots: Callable[[], list[str]], schemes: tuple[str, ...]) -> str:
    text = _decoded(uri, _bad_location)
    match = _SCHEME.match(text)
    scheme = match.group(0)[:-1].lower() if match and len(match.group(0)) > 2 else ""  # 'C:' is a drive
    if scheme == ARTIFACTS_SCHEME or scheme in schemes:
        rest = text[len(scheme) + 1:]
        if rest.startswith("//"):
            raise _bad_location(uri, f"a {scheme}: URI must not name a host")
        _relative(uri, rest.lstrip("/"))
        return uri
    if scheme == "file":
        rest = text[len("file:"):]
        if rest.startswith("//"):
            host, _, rest = rest[2:].partition("/")
            if host not in ("", "localhost"):
                raise _bad_location(uri, "a file: URI must not name a host")
            rest = "/" + rest
        return _local(uri, rest, local_roots())
    if scheme:
        accepted = ", ".join(f"{s}:/" for s in (ARTIFACTS_SCHEME, *schemes))
        raise _bad_location(uri, f"the '{scheme}' scheme is not accepted ({accepted} or a folder under "
                                 "the artifacts destination are)")
    if match:  # a drive letter
        raise _bad_location(uri, "Windows drive paths are not accepted")
    return _local(uri, text, local_roots())


def local_folder(location: str | None) -> str | None:
    """The folder a local artifact location (a path or ``file:`` URI) names, else None."""
    if not location or (_SCHEME.match(location) and not location.lower().startswith("file:")):
        return None
    if location.lower().startswith("file:"):
        rest = location[len("file:"):]
        if rest.startswith("//"):
            host, _, rest = rest[2:].partition("/")
            if host not in ("", "localhost"):
                return None
            rest = "/" + rest
        return unquote(rest)
    return location


def _local(uri: str, path: str, roots: list[str]) -> str:
    """A local folder: checked as decoded, and as written and decoded once (the forms a
    repository might open it by), against the real paths of ``roots``: every form must lie
    under one of them."""
    if not roots:
        raise _bad_location(uri, "local paths are not accepted here; use mlflow-artifacts:/")
    if not path.startswith("/"):
        raise _bad_location(uri, "a local location must be an absolute path")
    _relative(uri, path.lstrip("/"))
    real_roots = [os.path.realpath(root) for root in roots]
    literal = uri[len("file:"):] if uri.lower().startswith("file:") else uri
    if literal.startswith("//"):  # file://host/path: the host was checked, keep the path
        literal = "/" + literal[2:].partition("/")[2]
    for form in {path, literal, unquote(literal)}:
        if not form.startswith("/") or not any(_inside(os.path.realpath(form), root) for root in real_roots):
            raise _bad_location(uri, "it is outside the server's artifacts destination"
                                     + (" and the run's or model's artifact location" if len(roots) > 1 else ""))
    return uri


def _relative(uri: str, path: str) -> None:
    """The path part of a location: the checks of :func:`clean_path` (empty is fine)."""
    if path in ("", "/"):
        return
    try:
        clean_path(path)
    except TrackingError as exc:
        raise _bad_location(uri, str(exc).split(": ", 1)[-1]) from None


def _decoded(value: object, bad) -> str:
    """``value`` fully URL-decoded, its characters checked as written and after NFKC
    normalization; ``bad(value, why)`` makes the error (a path's or a location's)."""
    if not isinstance(value, str):
        raise bad(str(value), "expected a string")
    try:
        text = decode(value)
    except UnicodeDecodeError:
        raise bad(value, "it is not valid UTF-8 once URL-decoded") from None
    for form in (text, unicodedata.normalize("NFKC", text)):
        _check_chars(value, form, bad)
    return text


def _check_chars(original: str, text: str, bad) -> None:
    for char, name in _FORBIDDEN_CHARS.items():
        if char in text:
            raise bad(original, f"{name} is not allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise bad(original, "control characters (NUL, newline...) are not allowed")
    if "\ufffd" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # U+FFFD: what bad UTF-8 decodes to
        raise bad(original, "it is not valid UTF-8")


def _bad(path: str, why: str) -> TrackingError:
    return TrackingError(f"invalid artifact path {_shown(path)}: {why}")


def _bad_location(uri: str, why: str) -> TrackingError:
    return TrackingError(f"invalid artifact location {_shown(uri)}: {why}")


def _shown(text: str) -> str:
    return repr(text[:200])
