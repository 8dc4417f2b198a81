"""Bounded views of a file for a page: what kind of file a name is, its first bytes, its last
lines, a window of it, and the shapes the artifact previews draw (pretty JSON, a CSV table, an
MLmodel's flavors and signature).

Nothing here reads a whole file: every read is capped, so a 10 GB log or CSV costs the page no
more than a small one. Text is decoded as UTF-8 with invalid bytes replaced, never guessed.
The functions take open binary handles and return plain values, so they are tested without a
server.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

TEXT_LIMIT = 256 * 1024  # bytes of a text file a preview shows
PARSE_LIMIT = 256 * 1024  # a JSON or MLmodel file larger than this is shown as text (laying out 1 MB takes ~0.3 s)
TABLE_ROWS = 200  # rows of a CSV/TSV preview
TAIL_LINES = 200  # lines of a log's tail on the run page
TAIL_LIMIT = 256 * 1024  # bytes read from a log's end at most, however long its lines
BLOCK = 64 * 1024  # read size when walking back from a file's end
SNIFF = 8192  # bytes looked at to tell text from binary

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml"}
KINDS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".tsv": "tsv"}


def kind_of(name: str) -> str:
    """The preview a file gets from its name: ``mlmodel``, ``image``, ``json``, ``yaml``, ``csv``,
    ``tsv``, or ``text`` (which :func:`is_binary` may still turn into a download only)."""
    base = os.path.basename(name)
    if base == "MLmodel":
        return "mlmodel"
    ext = os.path.splitext(base)[1].lower()
    return "image" if ext in IMAGE_TYPES else KINDS.get(ext, "text")


def image_type(name: str) -> str | None:
    """The image media type a file is served with, or None (then it is served as text)."""
    return IMAGE_TYPES.get(os.path.splitext(name)[1].lower())


def format_size(size: int | None) -> str:
    """``812 B``, ``1.8 KB``, ``2.4 MB``: a file's size for a listing."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


# reading -------------------------------------------------------------------------------------

def read_head(handle: BinaryIO, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` bytes, and whether the file goes on after them."""
    data = handle.read(limit + 1)
    return data[:limit], len(data) > limit


def is_binary(head: bytes) -> bool:
    """Whether a file that starts with ``head`` is not text (a NUL byte, as git and grep decide)."""
    return b"\0" in head[:SNIFF]


def decode(data: bytes, complete: bool = True) -> str:
    """UTF-8 text of ``data``; invalid bytes become U+FFFD. When ``complete`` is False the data was
    cut, and a character split at the cut is dropped rather than shown as garbage."""
    return codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=complete)


def tail_lines(handle: BinaryIO, count: int = TAIL_LINES, limit: int = TAIL_LIMIT) -> tuple[list[str], bool]:
    """The last ``count`` lines of a file, read back from its end a block at a time, at most
    ``limit`` bytes; and whether those lines are the whole file."""
    end = handle.seek(0, os.SEEK_END)
    start, data = end, b""
    while start > 0 and data.count(b"\n") <= count and end - start < limit:
        step = min(BLOCK, start, limit - (end - start))
        start -= step
        handle.seek(start)
        data = handle.read(step) + data
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline: no empty last line
    whole = start == 0 and len(lines) <= count
    if start > 0 and len(lines) > 1:
        lines = lines[1:]  # the first line read is probably cut
    return [decode(line) for line in lines[-count:]], whole


@dataclass
class Window:
    """A part of a file: its text, the byte offsets it spans (``start`` included, ``end`` not)
    and the file's size."""

    text: str
    start: int
    end: int
    size: int


def window(handle: BinaryIO, start: int | None = None, end: int | None = None, limit: int = TEXT_LIMIT) -> Window:
    """At most ``limit`` bytes of a file, cut at line ends: from ``start`` forward, or back from
    ``end`` when no start is given (neither: the file's first bytes). Pages built from the offsets
    a window reports meet without overlap or gap."""
    size = handle.seek(0, os.SEEK_END)
    if start is None and end is not None:
        end = max(0, min(end, size))
        start = max(0, end - limit)
        handle.seek(start)
        data = handle.read(end - start)
        if start > 0 and b"\n" in data[:-1]:
            cut = data.index(b"\n") + 1
            start, data = start + cut, data[cut:]
        return Window(decode(data), start, end, size)
    start = max(0, min(start or 0, size))
    handle.seek(start)
    data = handle.read(limit)
    stop = start + len(data)
    if stop < size and b"\n" in data:
        data = data[:data.rindex(b"\n") + 1]
        stop = start + len(data)
    return Window(decode(data, complete=stop == size), start, stop, size)


# shapes of previews ----------------------------------------------------------------------------

def pretty_json(text: str) -> str | None:
    """``text`` laid out for reading, or None if it is not JSON: keys in their order, and a list
    or object that fits in :data:`JSON_WIDTH` columns kept on one line (so an input example's
    rows read as rows, not a number per line)."""
    try:
        value = json.loads(text)
        out: list[str] = []
        _write_json(value, 0, out)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return None
    return "".join(out)


JSON_WIDTH = 100
_STRING = json.encoder.encode_basestring  # C-accelerated where the json module has its speedups


def _write_json(value: Any, indent: int, out: list[str], lead: int = 0) -> None:
    """``value`` into ``out`` at ``indent``, on a line where ``lead`` columns (a key) precede it."""
    line = _one_line(value, JSON_WIDTH - indent - lead - 1)  # 1: the comma after it
    if line is not None or not isinstance(value, (dict, list)):
        out.append(line if line is not None else _scalar(value))  # a string too long for a line
        return
    pad = "\n" + " " * (indent + 2)
    if isinstance(value, list) and not any(isinstance(item, (dict, list)) for item in value):
        out.append("[" + pad + ("," + pad).join(_packed([_scalar(v) for v in value], JSON_WIDTH - indent - 3)))
        out.append("\n" + " " * indent + "]")
        return
    opening, closing, items = ("{", "}", value.items()) if isinstance(value, dict) else ("[", "]", enumerate(value))
    out.append(opening)
    for i, (key, item) in enumerate(items):
        prefix = _STRING(key) + ": " if opening == "{" else ""
        out.append(("," if i else "") + pad + prefix)
        _write_json(item, indent + 2, out, len(prefix))
    out.append("\n" + " " * indent + closing)


def _packed(texts: list[str], width: int) -> list[str]:
    """Scalars of a long list, as many to a line as fit in ``width`` (as numpy prints arrays)."""
    lines, line = [], ""
    for text in texts:
        if line and len(line) + len(text) + 2 > width:
            lines.append(line)
            line = text
        else:
            line = f"{line}, {text}" if line else text
    return lines + [line]


def _one_line(value: Any, budget: int) -> str | None:
    """``value`` as one line of JSON if that takes at most ``budget`` characters, else None,
    given as soon as it is sure: a large list costs no more than its first ``budget`` characters."""
    if not isinstance(value, (dict, list)):
        text = _scalar(value)
        return text if len(text) <= budget else None
    parts, used = [], 2
    for key, item in (value.items() if isinstance(value, dict) else ((None, v) for v in value)):
        inner = _one_line(item, budget + 2 - used)
        if inner is None:
            return None
        part = inner if key is None else _STRING(key) + ": " + inner
        used += len(part) + 2
        if used > budget + 2:
            return None
        parts.append(part)
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    return opening + ", ".join(parts) + closing


def _scalar(value: Any) -> str:
    """A JSON scalar as JSON writes it (without building an encoder per value)."""
    if isinstance(value, str):
        return _STRING(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return repr(value)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    more: bool  # the file has rows after those shown


def csv_table(text: str, delimiter: str = ",", cut: bool = False, max_rows: int = TABLE_ROWS) -> Table:
    """The first ``max_rows`` rows of CSV/TSV ``text`` under its first row; ``cut``: the text is
    the head of a longer file, so its last, probably partial, line is dropped. Short rows are
    padded to the widest row so the table stays a grid."""
    if cut and "\n" in text:
        text = text[:text.rindex("\n") + 1]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    rows: list[list[str]] = []
    more = cut
    try:
        header = next(reader, [])
        for row in reader:
            if len(rows) == max_rows:
                more = True
                break
            rows.append(row)
    except csv.Error:  # a NUL or a quote left open: show what was read
        more = True
    return _padded(header, rows, more)


def _padded(header: list[str], rows: list[list[str]], more: bool) -> Table:
    width = max([len(header), *(len(r) for r in rows)])

    def fill(row: list[str]) -> list[str]:
        return row + [""] * (width - len(row))

    return Table(fill(header), [fill(r) for r in rows], more)


@dataclass
class Column:
    """One entry of a signature, as a table row."""

    name: str
    type: str
    detail: str = ""  # a tensor's shape, 'optional', a param's default


@dataclass
class MLmodelView:
    """An MLmodel file for a page: its flavors with their settings, its signature, the ids that
    tie it to a run or a logged model, and everything else as YAML."""

    flavors: dict[str, dict[str, str]]  # each flavor's settings, values as JSON unless strings
    inputs: list[Column] | None
    outputs: list[Column] | None
    params: list[Column] | None
    ids: dict[str, str]
    rest: str
    signature_error: str | None = None


ID_KEYS = ("run_id", "model_id", "model_uuid", "artifact_path", "utc_time_created", "flowml_version", "mlflow_version")


def mlmodel_view(text: str) -> MLmodelView | None:
    """The MLmodel file ``text`` shaped for the page, or None if it is not a YAML mapping.

    A document with aliases is not laid out (shown as its text instead): a few hundred bytes of
    nested aliases expand into gigabytes once loaded ("billion laughs"), and an MLmodel that
    MLflow or flowml wrote never has any."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader)):
            return None
        entry = yaml.load(text, Loader=loader)
    except yaml.YAMLError:
        return None
    if not isinstance(entry, dict):
        return None
    flavors = entry.pop("flavors", None) or {}
    signature = entry.pop("signature", None)
    ids = {key: str(value) for key, value in ((k, entry.pop(k, None)) for k in ID_KEYS) if value not in (None, "")}
    view = MLmodelView({str(name): _settings(value) for name, value in flavors.items()}, None, None, None, ids, "")
    if isinstance(signature, dict):
        try:
            view.inputs, view.outputs, view.params = _signature(signature)
        except Exception as exc:  # noqa: BLE001 - a bad signature is shown as text, never a failed page
            view.signature_error = str(exc)
            entry["signature"] = signature
    view.rest = yaml.safe_dump(entry, sort_keys=True, allow_unicode=True) if entry else ""
    return view


def _settings(flavor: Any) -> dict[str, str]:
    """A flavor's settings for a table: strings as they are, other values as JSON (``null``, lists)."""
    if not isinstance(flavor, dict):
        flavor = {"value": flavor}
    return {str(key): value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            for key, value in flavor.items()}


def _signature(entry: dict) -> tuple[list[Column] | None, list[Column] | None, list[Column] | None]:
    from flowml.models.signature import ModelSignature, TensorSpec

    signature = ModelSignature.from_dict(entry)

    def columns(schema) -> list[Column] | None:
        if schema is None:
            return None
        return [Column(spec.name or f"[{i}]", f"tensor {spec.dtype}", "shape " + _shape(spec.shape))
                if isinstance(spec, TensorSpec) else
                Column(spec.name or f"[{i}]", _type(spec.type), "" if spec.required else "optional")
                for i, spec in enumerate(schema)]

    params = None
    if signature.params is not None:
        params = [Column(p.name, _type(p.type), f"default {json.dumps(p.default)}"
                         + (f", shape {_shape(p.shape)}" if p.shape is not None else "")) for p in signature.params]
    return columns(signature.inputs), columns(signature.outputs), params


def _type(kind: str | dict) -> str:
    return kind if isinstance(kind, str) else json.dumps(kind)


def _shape(shape: tuple[int, ...]) -> str:
    """``(-1, 13)`` as ``(any, 13)``."""
    return "(" + ", ".join("any" if n == -1 else str(n) for n in shape) + ")"


# a file's preview ------------------------------------------------------------------------------

@dataclass
class Preview:
    """What the artifact page shows for one file. ``kind`` is one of ``text``, ``json``, ``yaml``,
    ``csv``, ``tsv``, ``mlmodel``, ``image`` (drawn from the raw file) or ``binary`` (a download
    link only); ``cut``: the file goes on past what is shown."""

    kind: str
    size: int
    text: str = ""
    cut: bool = False
    table: Table | None = None
    model: MLmodelView | None = None
    note: str = ""


def preview(handle: BinaryIO, name: str, size: int) -> Preview:
    """The preview of the file ``name`` (``size`` bytes) open at ``handle``: at most
    :data:`TEXT_LIMIT` bytes read, or :data:`PARSE_LIMIT` for a JSON or MLmodel file small
    enough to parse; a file that does not parse as its name says is shown as text, with a note."""
    kind = kind_of(name)
    if kind == "image":
        return Preview("image", size)
    parsed = kind in ("json", "mlmodel") and size <= PARSE_LIMIT
    head, cut = read_head(handle, PARSE_LIMIT if parsed else TEXT_LIMIT)
    if is_binary(head):
        return Preview("binary", size)
    text = decode(head, complete=not cut)
    too_large = kind in ("json", "mlmodel") and not parsed
    note = f"Larger than {format_size(PARSE_LIMIT)}: shown as text." if too_large else ""
    if parsed and kind == "json":
        pretty = pretty_json(text)
        if pretty is not None:
            return Preview("json", size, *_capped(pretty))
        note = "This file is not valid JSON; it is shown as text."
    if parsed and kind == "mlmodel":
        model = mlmodel_view(text)
        if model is not None:
            return Preview("mlmodel", size, model=model)
        note = "This MLmodel file is not a YAML mapping; it is shown as text."
    if kind in ("csv", "tsv"):
        return Preview(kind, size, table=csv_table(text, "," if kind == "csv" else "\t", cut), cut=cut)
    shown, longer = _capped(text)
    return Preview("yaml" if kind == "yaml" else "text", size, shown, cut or longer, note=note)


def _capped(text: str) -> tuple[str, bool]:
    return text[:TEXT_LIMIT], len(text) > TEXT_LIMIT
