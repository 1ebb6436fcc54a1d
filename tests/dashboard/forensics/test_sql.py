"""Analysts' SQL against a real embedded store: SELECTs over the allowed tables run;
writes are refused by the database itself and by the checks before it; other tables,
databases and table functions are refused; limits hold."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError

from dashboard.forensics.sql import (
    FORENSIC_TABLES,
    MAX_SQL_CHARS,
    ForensicSqlError,
    SqlResult,
    _readonly_session,
    run_readonly_sql,
)
from tests.dashboard.forensics.conftest import Seeded

STORED_EVENTS = 305  # 303 in the window, one either side; replays collapsed


def run(seeded: Seeded, sql: str, **options: object) -> SqlResult:
    options.setdefault("allowed_tables", FORENSIC_TABLES)
    return run_readonly_sql(seeded.store, sql, **options)  # type: ignore[arg-type]


def state(seeded: Seeded) -> tuple[object, ...]:
    """What a write would change: rows, tables, databases, the store's own session."""
    store = seeded.store
    return (
        store.count("events"),
        store.count("findings"),
        store.query("SELECT sum(position), any(user) FROM t_forensics.events FINAL"),
        store.query("SELECT name, create_table_query FROM system.tables "
                    "WHERE database = 't_forensics' ORDER BY name"),
        store.query("SELECT name FROM system.databases ORDER BY name"),
        store.query("SELECT getSetting('readonly'), getSetting('max_execution_time')"),
    )  # fmt: skip


def test_a_select_runs_and_unqualified_names_are_the_gatewatch_tables(seeded: Seeded) -> None:
    result = run(seeded, "SELECT count() AS n FROM events FINAL")
    assert result.columns == ["n"] and result.rows == [[STORED_EVENTS]]
    assert not result.truncated and result.elapsed_ms > 0
    qualified = run(seeded, "select count() from t_forensics.events final;")
    assert qualified.rows == [[STORED_EVENTS]]


@pytest.mark.parametrize(
    "sql",
    [
        "WITH recent AS (SELECT * FROM events FINAL WHERE status = 401) SELECT count() FROM recent",
        "WITH ['alice', 'bob'] AS who SELECT count() FROM events FINAL WHERE user IN who",
        "SELECT count() FROM events FINAL WHERE request_id IN "
        "(SELECT arrayJoin(evidence) FROM findings WHERE kind = 'brute_force')",
        "(SELECT 1 AS x) UNION ALL (SELECT 2 AS x)",
        "SELECT f.id, count() FROM findings AS f FINAL ARRAY JOIN evidence AS rid "
        "JOIN events AS e ON e.request_id = rid GROUP BY f.id",
        "SELECT ';' AS semicolon, 'it''s' AS quoted -- a comment; with a semicolon\n",
        "/* leading comment */ SELECT count() FROM dead_letters;  -- trailing",
        "SELECT path FROM events WHERE path LIKE '%/users/1%' AND user_agent != '{x}' LIMIT 1",
    ],
)
def test_ordinary_analyst_queries_run(seeded: Seeded, sql: str) -> None:
    assert run(seeded, sql).rows


def test_values_come_back_as_json(seeded: Seeded) -> None:
    result = run(
        seeded,
        "SELECT ts, client_ip, toDate(ts) AS day, map('a', 1) AS m, [1.5] AS a, nan AS n, "
        "toDecimal32(1.25, 2) AS d, toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0') AS u, "
        "NULL AS nothing, toIPv6('2001:db8::1') AS v6 "
        "FROM events WHERE client_ip = toIPv6('203.0.113.9') LIMIT 1",
    )
    ts, ip, day, m, a, n, d, u, nothing, v6 = result.rows[0]
    assert ts.endswith("Z") and ts.startswith(day) and ip == "203.0.113.9"
    assert (m, a, n, d, u, nothing, v6) == (
        {"a": 1}, [1.5], None, "1.25", "61f0c404-5cb3-11e7-907b-a6006ad3dba0", None, "2001:db8::1"
    )  # fmt: skip
    assert orjson.loads(orjson.dumps(result.rows)) == result.rows


WRITES = [
    "INSERT INTO events (request_id, ts) VALUES ('forged', now64(3))",
    "INSERT INTO findings SELECT * FROM findings",
    "CREATE TABLE scratch (x UInt8) ENGINE = Memory",
    "CREATE DATABASE forensics_scratch",
    "CREATE FUNCTION forensics_f AS x -> x",
    "DROP TABLE findings",
    "DROP DATABASE t_forensics",
    "DETACH TABLE events",
    "TRUNCATE TABLE events",
    "ALTER TABLE events DELETE WHERE 1",
    "ALTER TABLE events UPDATE user = 'x' WHERE 1",
    "ALTER TABLE events DROP COLUMN body",
    "DELETE FROM events WHERE 1",
    "RENAME TABLE events TO events_old",
    "OPTIMIZE TABLE events FINAL",
    "SYSTEM DROP MARK CACHE",
    "SET readonly = 0",
    "SET max_execution_time = 0",
]


@pytest.mark.parametrize("sql", WRITES)
def test_the_database_itself_refuses_writes_in_an_analyst_session(seeded: Seeded, sql: str) -> None:
    """Straight to the session, past every check in Python: readonly=1 alone stops it."""
    before = state(seeded)
    with _readonly_session(seeded.store, {"max_execution_time": 5}) as session:
        with pytest.raises(ClickHouseError) as caught:
            session.client.command(sql)
        assert "readonly" in str(caught.value).lower()
        assert session.lines("SELECT toString(getSetting('readonly'))") == ["1"]
    assert state(seeded) == before


@pytest.mark.parametrize(
    "sql",
    [
        *WRITES,
        "SELECT 1; DROP TABLE events",
        "SELECT 1;DROP TABLE events;",
        "SELECT 1 -- x\n; INSERT INTO events (request_id) VALUES ('x')",
        "WITH x AS (SELECT 1) INSERT INTO events (request_id) SELECT 'x'",
        # readonly=1 lets these through (chDB 26.9): only the statement check stops them.
        "SYSTEM STOP MERGES",
        "SYSTEM STOP TTL MERGES",
        "KILL QUERY WHERE 1",
        "USE system",
        "SHOW TABLES FROM system",
        "EXPLAIN SELECT 1",
        "SELECT count() FROM events SETTINGS readonly = 0",
        "SELECT request_id FROM events SETTINGS max_result_rows = 0, max_execution_time = 0",
    ],
)
def test_anything_but_one_select_is_refused_and_changes_nothing(seeded: Seeded, sql: str) -> None:
    before = state(seeded)
    with pytest.raises(ForensicSqlError):
        run(seeded, sql)
    assert state(seeded) == before


def test_settings_in_a_subquery_do_not_lift_the_limits(seeded: Seeded) -> None:
    result = run(
        seeded,
        "SELECT * FROM (SELECT getSetting('readonly'), getSetting('max_execution_time') "
        "SETTINGS readonly = 0, max_execution_time = 0)",
        timeout_s=7,
    )
    assert result.rows == [[1, 7.0]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM system.tables",
        "SELECT * FROM system.one",
        "SELECT name FROM `system`.`users`",
        'SELECT * FROM "system"."settings"',
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM INFORMATION_SCHEMA.TABLES",
        "SELECT * FROM gw_session.events",  # another Gatewatch database
        "SELECT * FROM t_forensics.schema_migrations",
        "SELECT * FROM audit_log",
        "SELECT * FROM events JOIN system.one ON 1",
        "SELECT count() FROM events WHERE user IN (SELECT name FROM system.users)",
        "SELECT (SELECT count() FROM system.tables)",
        "SELECT count() FROM events WHERE 1 IN system.numbers",
        "SELECT count() FROM events WHERE 1 IN schema_migrations",
        "WITH leak AS (SELECT * FROM system.tables) SELECT * FROM leak",
        "SELECT * FROM numbers(10)",
        "SELECT * FROM events, generateRandom('a UInt8') LIMIT 1",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')",
        "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV', 'x String')",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM executable('id', 'TSV', 'x String')",
        "SELECT * FROM merge('t_forensics', '.*')",
        "SELECT * FROM view(SELECT * FROM system.tables)",
        "SELECT * FROM dictionary('d')",
        "SELECT file('/etc/hostname')",
        "SELECT dictGet('d', 'a', toUInt64(1))",
        "SELECT joinGet('j', 'v', 1)",
        "SELECT hasColumnInTable('system', 'users', 'name')",
        "SELECT getServerSetting('path')",
    ],
)
def test_other_tables_databases_and_functions_are_refused(seeded: Seeded, sql: str) -> None:
    with pytest.raises(ForensicSqlError, match="not allowed"):
        run(seeded, sql)


def test_only_the_allowed_tables_are_readable(seeded: Seeded) -> None:
    assert run(seeded, "SELECT count() FROM findings", allowed_tables=frozenset({"findings"}))
    with pytest.raises(ForensicSqlError, match="events is not allowed; query only findings"):
        run(seeded, "SELECT count() FROM events", allowed_tables=frozenset({"findings"}))


def test_into_outfile_writes_no_file(seeded: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(ForensicSqlError, match="INTO OUTFILE"):
        run(seeded, f"SELECT * FROM events INTO OUTFILE '{target}'")
    assert not target.exists()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "empty"),
        ("  -- nothing\n", "empty"),
        ("SELECT " + "1 + " * MAX_SQL_CHARS + "1", "longer than"),
        ("SELECT $$a;b$$", "unexpected character '\\$'"),
        ("SELECT 1 # comment", "unexpected character '#'"),
        ("SELECT 'unterminated", "unterminated '"),
        ("SELECT 1 /* unterminated", "unterminated /\\*"),
        ("SELECT 1 /* a /* nested */ */", "nested comments"),
    ],
)
def test_text_that_cannot_be_read_safely_is_refused(seeded: Seeded, sql: str, message: str) -> None:
    with pytest.raises(ForensicSqlError, match=message):
        run(seeded, sql)


def test_the_row_limit_truncates_and_says_so(seeded: Seeded) -> None:
    sql = "SELECT request_id, source FROM events FINAL ORDER BY request_id, source"
    everything = run(seeded, sql)
    assert len(everything.rows) == STORED_EVENTS and not everything.truncated
    capped = run(seeded, sql, max_rows=10)
    assert capped.truncated and capped.rows == everything.rows[:10]
    exact = run(seeded, sql, max_rows=STORED_EVENTS)
    assert not exact.truncated and exact.rows == everything.rows


def test_a_slow_query_is_stopped_by_the_time_limit(seeded: Seeded) -> None:
    started = time.monotonic()
    with pytest.raises(ForensicSqlError) as caught:
        run(
            seeded,
            "SELECT count() FROM events AS a, events AS b, events AS c, events AS d "
            "WHERE a.latency_ms + b.latency_ms + c.latency_ms + d.latency_ms > 1e9",
            timeout_s=0.2,
        )
    assert caught.value.code == 159 and "TIMEOUT_EXCEEDED" in str(caught.value)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT FROM WHERE", 62),
        ("SELECT no_such_column FROM events", 47),
        ("SELECT count() FROM events WHERE toUInt8(user) = 1", 6),
    ],
)
def test_errors_are_one_clean_line_with_the_clickhouse_code(
    seeded: Seeded, sql: str, code: int
) -> None:
    with pytest.raises(ForensicSqlError) as caught:
        run(seeded, sql)
    message = str(caught.value)
    assert caught.value.code == code and message.startswith(f"Code: {code}. ")
    assert "\n" not in message and "DB::Exception" not in message
    assert "(version" not in message and "Traceback" not in message
