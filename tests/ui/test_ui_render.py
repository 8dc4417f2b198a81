"""The formatting every page shares: values any writer may send must never break a page."""

from __future__ import annotations

import math

import pytest

from flowml.server.ui.render import format_duration, format_number, format_time


@pytest.mark.parametrize("ms", [10**16, -99999999999999999, 2**63 - 1])
def test_a_timestamp_out_of_the_calendar_shows_as_its_number(ms):
    assert format_time(ms) == str(ms)


def test_times_and_durations_read_as_people_write_them():
    assert format_time(None) == ""
    assert len(format_time(1_700_000_000_000)) == len("2023-11-14 22:13:20")
    assert [format_duration(s) for s in (0.42, 12.3, 245, 7380)] == ["0.4s", "12s", "4m 05s", "2h 03m"]


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, None])
def test_a_duration_that_is_not_finite_is_left_blank(seconds):
    assert format_duration(seconds) == ""


def test_numbers_keep_six_significant_digits_and_name_what_is_not_finite():
    assert [format_number(v) for v in (4.0, 0.9777777, 1e20, math.nan, math.inf, None)] == [
        "4", "0.977778", "1e+20", "nan", "inf", ""]


def test_a_listing_stops_checking_names_at_its_limit(tmp_path):
    from flowml.server.routes.artifacts import folder_entries

    for i in range(10):
        (tmp_path / f"f{i}.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    entries, more = folder_entries(str(tmp_path), limit=3)
    assert [e[0] for e in entries] == ["f0.txt", "f1.txt", "f2.txt"] and more == 8
    assert folder_entries(str(tmp_path)) [1] == 0 and len(folder_entries(str(tmp_path))[0]) == 11


def test_a_fifo_among_the_artifacts_is_refused_without_blocking(tmp_path):
    import os

    from flowml.errors import TrackingError
    from flowml.server.routes.artifacts import open_for_reading

    os.mkfifo(tmp_path / "stdout.txt")
    with pytest.raises(TrackingError, match="not a file"):
        open_for_reading(str(tmp_path / "stdout.txt"), "logs/stdout.txt")
    with pytest.raises(TrackingError, match="is a folder"):
        open_for_reading(str(tmp_path), "logs")
