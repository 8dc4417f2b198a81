"""The bounded reads and preview shapes behind the run page and the artifact pages (no server)."""

from __future__ import annotations

import io
import json

import pytest

from flowml.server.ui import previews
from flowml.server.ui.previews import (csv_table, format_size, kind_of, mlmodel_view, preview, pretty_json, tail_lines,
                                       window)


class CountingReader(io.BytesIO):
    """A file that remembers how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def lines(n: int, width: int = 0) -> bytes:
    return "".join(f"line {i}{'x' * width}\n" for i in range(1, n + 1)).encode()


@pytest.mark.parametrize("name, kind", [
    ("model/MLmodel", "mlmodel"), ("a/b.JSON", "json"), ("conda.yaml", "yaml"), ("x.yml", "yaml"),
    ("t.csv", "csv"), ("t.tsv", "tsv"), ("p.png", "image"), ("p.JPG", "image"), ("p.svg", "image"),
    ("page.html", "text"), ("model.skops", "text"), ("README", "text"), ("mlmodel", "text"),
])
def test_kind_of_a_name(name, kind):
    assert kind_of(name) == kind


def test_sizes_read_as_people_say_them():
    assert [format_size(n) for n in (None, 0, 812, 1843, 5 * 1024 * 1024 // 2, 3 * 1024 ** 4)] == \
        ["", "0 B", "812 B", "1.8 KB", "2.5 MB", "3072.0 GB"]


def test_tail_of_a_long_file_reads_only_its_end():
    data = lines(100_000)
    handle = CountingReader(data)
    shown, whole = tail_lines(handle, count=200)
    assert shown[0] == "line 99801" and shown[-1] == "line 100000" and len(shown) == 200
    assert not whole
    assert handle.bytes_read <= previews.BLOCK  # one block from the end, not the file


def test_tail_of_a_short_file_is_the_whole_file():
    assert tail_lines(io.BytesIO(b"a\nb\nc\n")) == (["a", "b", "c"], True)
    assert tail_lines(io.BytesIO(b"a\nb\nno newline at the end")) == (["a", "b", "no newline at the end"], True)
    assert tail_lines(io.BytesIO(b"")) == ([], True)


def test_tail_of_very_long_lines_stops_at_its_byte_limit():
    handle = CountingReader(lines(50, width=20_000))
    shown, whole = tail_lines(handle, count=200, limit=64 * 1024)
    assert handle.bytes_read <= 64 * 1024
    assert shown[-1].startswith("line 50") and not whole
    assert all(line.startswith("line ") for line in shown)  # the first, cut line was dropped


def test_tail_drops_a_character_cut_at_the_block_edge():
    data = ("é" * 40_000 + "\nlast\n").encode()  # 2-byte characters across the 64 KB block edge
    shown, whole = tail_lines(io.BytesIO(data), count=1)
    assert shown == ["last"] and not whole


def test_windows_page_forward_and_back_without_gaps_or_overlap():
    data = lines(5000)
    handle = io.BytesIO(data)
    forward, start = [], 0
    while True:
        part = window(handle, start=start, limit=4096)
        forward.append(part.text)
        assert part.text.endswith("\n") and part.size == len(data)
        if part.end == part.size:
            break
        start = part.end
    assert "".join(forward) == data.decode()
    back, end = [], len(data)
    while end > 0:
        part = window(handle, end=end, limit=4096)
        assert part.start == 0 or data[part.start - 1:part.start] == b"\n"  # starts at a line
        back.append(part.text)
        end = part.start
    assert "".join(reversed(back)) == data.decode()


def test_window_beyond_the_end_is_empty_and_offsets_are_clamped():
    part = window(io.BytesIO(b"abc\n"), start=99)
    assert (part.text, part.start, part.end, part.size) == ("", 4, 4, 4)
    assert window(io.BytesIO(b"abc\n"), start=-5).text == "abc\n"


def test_pretty_json_keeps_short_values_on_one_line_and_key_order():
    assert pretty_json('{"b": 1, "a": [1, 2]}') == '{"b": 1, "a": [1, 2]}'
    rows = json.dumps({"columns": ["alcohol", "colour"], "data": [[12.5 + i, "red"] for i in range(8)],
                       "note": "x" * 120})
    assert pretty_json(rows).splitlines() == [
        "{", '  "columns": ["alcohol", "colour"],', '  "data": [',
        *(f'    [{12.5 + i}, "red"]' + ("," if i < 7 else "") for i in range(8)),
        "  ],", f'  "note": "{"x" * 120}"', "}"]
    assert json.loads(pretty_json(rows)) == json.loads(rows)


def test_pretty_json_packs_long_lists_of_numbers_and_round_trips():
    text = pretty_json(json.dumps({"values": list(range(100)), "nested": [{"a": [None, True, "é\"q"]}] * 20}))
    lines = text.splitlines()
    assert lines[1].startswith('  "values": [') and lines[2].startswith("    0, 1, 2, 3")
    assert max(len(line) for line in lines) <= 100
    assert json.loads(text) == {"values": list(range(100)), "nested": [{"a": [None, True, "é\"q"]}] * 20}
    assert pretty_json("[NaN, Infinity]") == "[NaN, Infinity]"


def test_pretty_json_refuses_what_is_not_json_or_nests_too_deep():
    assert pretty_json("{nope") is None
    assert pretty_json("[" * 100_000 + "]" * 100_000) is None


def test_csv_table_pads_ragged_rows_and_stops_at_its_rows():
    table = csv_table("a,b\n1\n2,3,4\n")
    assert table.header == ["a", "b", ""] and table.rows == [["1", "", ""], ["2", "3", "4"]] and not table.more
    many = csv_table("n\n" + "".join(f"{i}\n" for i in range(500)), max_rows=200)
    assert len(many.rows) == 200 and many.more and many.rows[-1] == ["199"]
    tsv = csv_table('x\ty\n"q,1"\t2\n', delimiter="\t")
    assert tsv.rows == [["q,1", "2"]]


def test_csv_table_of_a_cut_file_drops_its_partial_last_line():
    table = csv_table("a,b\n1,2\n3,4", cut=True)
    assert table.rows == [["1", "2"]] and table.more


MLMODEL = """
artifact_path: model
flavors:
  python_function: {loader_module: flowml.sklearn, model_path: model.skops}
  sklearn: {sklearn_version: 1.5.0, serialization_format: skops}
model_uuid: 48afb325
run_id: 0123abcd
model_id: null
signature:
  inputs: '[{"type": "double", "name": "alcohol", "required": true}, {"type": "string", "name": "colour", "required": false}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: '[{"name": "threshold", "type": "double", "default": 0.5, "shape": null}]'
saved_input_example_info: {artifact_path: input_example.json, type: dataframe}
"""


def test_mlmodel_view_has_flavors_signature_tables_ids_and_the_rest():
    view = mlmodel_view(MLMODEL)
    assert list(view.flavors) == ["python_function", "sklearn"]
    assert view.flavors["sklearn"]["serialization_format"] == "skops"
    assert [(c.name, c.type, c.detail) for c in view.inputs] == [("alcohol", "double", ""),
                                                               ("colour", "string", "optional")]
    assert [(c.name, c.type, c.detail) for c in view.outputs] == [("[0]", "tensor int64", "shape (any)")]
    assert [(c.name, c.type, c.detail) for c in view.params] == [("threshold", "double", "default 0.5")]
    assert view.ids == {"run_id": "0123abcd", "model_uuid": "48afb325", "artifact_path": "model"}
    assert "saved_input_example_info" in view.rest and "model_id" not in view.rest and "signature" not in view.rest


def test_a_broken_signature_is_reported_and_kept_as_text():
    view = mlmodel_view("flavors: {}\nsignature: {inputs: 'not json'}\n")
    assert view.signature_error and view.inputs is None
    assert "not json" in view.rest


def test_mlmodel_view_of_what_is_not_a_mapping_is_none():
    assert mlmodel_view("- a list\n") is None
    assert mlmodel_view("flavors: [unclosed\n") is None


def test_mlmodel_view_refuses_aliases_that_would_expand_into_gigabytes():
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = "flavors:\n  x:\n" + "".join(f"    {line}\n" for line in levels)  # 10^9 items once loaded
    assert len(bomb) < 1000
    assert mlmodel_view(bomb) is None  # shown as its text instead


def test_preview_shapes_by_kind():
    assert preview(io.BytesIO(b"\x89PNG..."), "p.png", 7).kind == "image"
    assert preview(io.BytesIO(b"PK\x03\x04\0\0binary"), "model.skops", 12).kind == "binary"
    shown = preview(io.BytesIO(b'{"a":1}'), "m.json", 7)
    assert (shown.kind, shown.text) == ("json", '{"a": 1}')
    bad = preview(io.BytesIO(b"{oops"), "m.json", 5)
    assert bad.kind == "text" and bad.text == "{oops" and "not valid JSON" in bad.note
    assert preview(io.BytesIO(b"a,b\n1,2\n"), "t.csv", 8).table.rows == [["1", "2"]]
    assert preview(io.BytesIO(MLMODEL.encode()), "model/MLmodel", len(MLMODEL)).model.flavors
    assert preview(io.BytesIO(b"k: v\n"), "c.yaml", 5).kind == "yaml"


def test_preview_of_a_large_file_reads_only_its_head():
    big = json.dumps({"values": list(range(400_000))}).encode()  # over the parse limit
    handle = CountingReader(big)
    shown = preview(handle, "big.json", len(big))
    assert shown.kind == "text" and shown.cut and "Larger than" in shown.note
    assert handle.bytes_read <= previews.TEXT_LIMIT + 1
    text = CountingReader(lines(100_000))
    assert preview(text, "out.log", 10**6).cut and text.bytes_read <= previews.TEXT_LIMIT + 1
