"""Exports of a search: CSV with a header and defused formulas, JSON Lines that parse,
both stopping at max_rows and saying so."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from dashboard.forensics.export import export_events
from dashboard.forensics.search import EVENT_COLUMNS, EventSearch, search_events
from tests.dashboard.forensics.conftest import SINCE, UNTIL, Seeded

EVERYTHING = EventSearch(since=SINCE, until=UNTIL)
IN_WINDOW = 303


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def test_csv_has_a_header_and_every_matching_event(seeded: Seeded) -> None:
    export = export_events(seeded.store, EVERYTHING, "csv")
    chunks = list(export)
    assert len(chunks) > 1  # streamed page by page, header first
    header, *rows = read_csv(b"".join(chunks))
    assert header == list(EVENT_COLUMNS)
    assert len(rows) == export.rows == IN_WINDOW and not export.truncated
    identities = {(row[header.index("source")], row[header.index("position")]) for row in rows}
    assert len(identities) == IN_WINDOW


def test_csv_cells_that_look_like_formulas_stay_text(seeded: Seeded) -> None:
    q = EventSearch(since=SINCE, until=UNTIL, route="/api/v1/auth/login")
    header, *rows = read_csv(b"".join(export_events(seeded.store, q, "csv")))
    agents = {row[header.index("user_agent")] for row in rows}
    assert agents == {
        "curl/8.5",
        '\'=HYPERLINK("http://evil.example")',
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1)",
    }
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_jsonl_lines_parse_into_the_search_rows(seeded: Seeded) -> None:
    q = EventSearch(since=SINCE, until=UNTIL, user="carol", limit=1000)
    export = export_events(seeded.store, q, "jsonl")
    rows = [orjson.loads(line) for line in b"".join(export).splitlines()]
    assert rows == search_events(seeded.store, q).rows
    assert export.rows == len(rows) > 0 and not export.truncated
    assert '=HYPERLINK("http://evil.example")' in {r["user_agent"] for r in rows}  # JSON as is


@pytest.mark.parametrize("max_rows", [1, 49, 50, 51, 100, 302, 303, 304, 10_000])
def test_csv_stops_at_max_rows_across_pages(
    seeded: Seeded, max_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dashboard.forensics.export._PAGE", 50)
    export = export_events(seeded.store, EVERYTHING, "csv", max_rows=max_rows)
    _header, *rows = read_csv(b"".join(export))
    expected = min(max_rows, IN_WINDOW)
    assert len(rows) == export.rows == expected
    assert len({tuple(row) for row in rows}) == expected
    assert export.truncated == (max_rows < IN_WINDOW)


def test_a_truncated_jsonl_export_says_so_in_its_last_line(seeded: Seeded) -> None:
    export = export_events(seeded.store, EVERYTHING, "jsonl", max_rows=10)
    lines = b"".join(export).splitlines()
    assert len(lines) == 11 and export.rows == 10 and export.truncated
    assert orjson.loads(lines[-1]) == {"truncated": True, "rows": 10}


def test_an_export_of_exactly_all_rows_is_not_truncated(seeded: Seeded) -> None:
    export = export_events(seeded.store, EVERYTHING, "jsonl", max_rows=IN_WINDOW)
    lines = b"".join(export).splitlines()
    assert len(lines) == IN_WINDOW == export.rows and not export.truncated


def test_an_empty_export_is_just_the_header(seeded: Seeded) -> None:
    q = EventSearch(since=SINCE, until=UNTIL, ip="192.0.2.0/24")
    assert read_csv(b"".join(export_events(seeded.store, q, "csv"))) == [list(EVENT_COLUMNS)]
    assert b"".join(export_events(seeded.store, q, "jsonl")) == b""


def test_bad_arguments_are_refused(seeded: Seeded) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        export_events(seeded.store, EVERYTHING, "csv", max_rows=0)
    with pytest.raises(ValueError, match="format"):
        export_events(seeded.store, EVERYTHING, "xml")  # type: ignore[arg-type]
