"""Analysts' own SQL over Gatewatch's tables: one SELECT, read-only, bounded.

Four checks, outermost first; the last alone stops every write:

1. The text is one statement beginning ``SELECT``, ``WITH`` or ``(`` (a small lexer,
   before anything is sent: chDB runs ``a; b`` as two statements).
2. ClickHouse parses it (``EXPLAIN AST``; nothing runs): no table functions, no
   ``INTO OUTFILE``, none of the functions that read outside the tables (``file``,
   ``dictGet``, ``joinGet`` ...), and every table named is an allowed table of the
   Gatewatch database or a CTE.
3. ClickHouse resolves it (``EXPLAIN QUERY TREE``): every table it would read is an
   allowed Gatewatch table.
4. It runs with ``readonly=1`` at the database level, a time limit, a memory limit and
   a cap on result rows. Embedded (chDB), each step runs on a connection of its own
   whose session is made read-only before the statement arrives (and is closed
   afterwards, so the store's connection is never touched); against a server the
   settings ride with the request.

``readonly=1`` refuses INSERT, DDL, ALTER, SET and most SYSTEM statements, and settings
in the statement itself; it lets ``SYSTEM STOP|START MERGES`` (and TTL MERGES, MOVES,
FETCHES, REPLICATION QUEUES), ``KILL QUERY`` and ``USE`` through (chDB 26.9), and it
allows ``INTO OUTFILE`` and the ``file()`` function: checks 1 and 2 are what stop those.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from gatewatch.errors import GatewatchError
from gatewatch.store.client import Store

FORENSIC_TABLES = frozenset(
    {"events", "findings", "dead_letters", "alerts", "alert_deliveries", "alert_triage",
     "suppressions"}
)  # fmt: skip
MAX_SQL_CHARS = 20_000

_LEXEME = re.compile(
    r"""(?P<space>\s+)
    |(?P<comment>--[^\r\n]*|/\*.*?\*/)
    |(?P<string>'(?:[^'\\]|\\.|'')*')
    |(?P<quoted>"(?:[^"\\\x00-\x1f]|"")*"|`(?:[^`\\\x00-\x1f]|``)*`)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>[0-9][A-Za-z0-9_.]*)
    |(?P<unclosed>/\*|['"`])
    |(?P<symbol>[-+*/%=<>!|^~&?:.,()\[\]{}])
    |(?P<semicolon>;)
    """,
    re.VERBOSE | re.DOTALL,
)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# How EXPLAIN AST prints a table (or identifier) node's text: a plain name, maybe
# qualified, maybe aliased. Anything else is refused rather than guessed at.
_AST_TABLE = re.compile(
    rf"(?P<name>{_NAME}(?:\.{_NAME})?)(?: \(alias {_NAME}\))?(?: \(children \d+\))?", re.ASCII
)
_AST_ALIAS = re.compile(rf" \(alias ({_NAME})\)", re.ASCII)
_IN_FUNCTION = re.compile(r"(?:global)?(?:not)?(?:null)?in", re.IGNORECASE)
_FORBIDDEN_FUNCTIONS = frozenset(
    {"file", "hascolumnintable", "getserversetting", "getclienthttpheader", "getmacro",
     "generateserialid", "filesystemavailable", "filesystemcapacity", "filesystemunreserved",
     "catboostevaluate"}
)  # fmt: skip
_FORBIDDEN_PREFIXES = ("dict", "joinget")  # dictGet*, dictHas, dictIsIn, joinGet*
_ERROR_CODE = re.compile(r"Code: (\d+)\. ")


class ForensicSqlError(GatewatchError):
    """An analyst's SQL was refused or failed; the message is one clean line (the
    ClickHouse error code and text when ClickHouse raised it)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SqlResult:
    """Column names, rows of JSON-able values, whether ``max_rows`` cut the result
    short, and the wall time of running the statement and reading its rows."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float


def run_readonly_sql(
    store: Store,
    sql: str,
    *,
    max_rows: int = 10_000,
    timeout_s: float = 30,
    allowed_tables: frozenset[str],
    max_memory_bytes: int = 1 << 30,
) -> SqlResult:
    """Run one SELECT over ``allowed_tables`` of the store's database (unqualified
    names resolve there); raises ForensicSqlError when refused or failed."""
    if max_rows < 1 or timeout_s <= 0 or max_memory_bytes < 1:
        raise ValueError("max_rows, timeout_s and max_memory_bytes must be positive")
    statement, ctes = _single_select(sql)
    limits: dict[str, Any] = {"max_execution_time": timeout_s, "max_memory_usage": max_memory_bytes}
    capped = {**limits, "max_result_rows": max_rows + 1, "result_overflow_mode": "break"}
    try:
        # EXPLAIN output runs to many rows: the row cap must not cut what is checked.
        with _readonly_session(store, limits) as inspect:
            _check_parsed(inspect.lines(f"EXPLAIN AST {statement}"), store, allowed_tables, ctes)
            _check_resolved(inspect.lines(f"EXPLAIN QUERY TREE {statement}"), store, allowed_tables)
        with _readonly_session(store, capped) as run:
            started = time.perf_counter()
            columns, rows = run.fetch(statement, max_rows + 1)
            elapsed_ms = (time.perf_counter() - started) * 1000
    except ClickHouseError as exc:
        raise _clean_error(exc) from exc
    return SqlResult(
        columns,
        [[_json_value(v) for v in row] for row in rows[:max_rows]],
        len(rows) > max_rows,
        round(elapsed_ms, 3),
    )


def _single_select(sql: str) -> tuple[str, frozenset[str]]:
    """The statement without a trailing semicolon, and the CTE names it defines.

    >>> _single_select("WITH a AS (SELECT 1) SELECT * FROM a; -- done")
    ('WITH a AS (SELECT 1) SELECT * FROM a', frozenset({'a'}))
    """
    if len(sql) > MAX_SQL_CHARS:
        raise ForensicSqlError(f"the query is longer than {MAX_SQL_CHARS} characters")
    tokens: list[tuple[str, str]] = []  # (kind, text), comments and spaces left out
    end = None
    position = 0
    while position < len(sql):
        match = _LEXEME.match(sql, position)
        if match is None:
            raise ForensicSqlError(f"unexpected character {sql[position]!r} at {position}")
        kind = match.lastgroup or ""
        if kind == "unclosed":
            raise ForensicSqlError(f"unterminated {match.group()} at {position}")
        if kind == "comment" and "/*" in match.group()[2:]:
            raise ForensicSqlError("nested comments are not supported")
        if kind == "semicolon":
            end = position if end is None else end
        elif kind not in ("space", "comment"):
            if end is not None:
                raise ForensicSqlError("only one statement can run at a time")
            tokens.append((kind, match.group()))
        position = match.end()
    if not tokens:
        raise ForensicSqlError("the query is empty")
    first_kind, first = tokens[0]
    if not ((first_kind == "word" and first.upper() in ("SELECT", "WITH")) or first == "("):
        raise ForensicSqlError("only a SELECT statement (or WITH ... SELECT) can run")
    ctes = {
        name[1:-1] if kind == "quoted" else name
        for (kind, name), (_, keyword), (_, bracket) in zip(
            tokens, tokens[1:], tokens[2:], strict=False
        )
        if kind in ("word", "quoted") and keyword.upper() == "AS" and bracket == "("
    }
    return sql[:end].strip(), frozenset(ctes)


def _check_parsed(
    lines: list[str], store: Store, allowed: frozenset[str], ctes: frozenset[str]
) -> None:
    """Refuse what the parsed statement names outside the allowed tables."""
    if not lines or not lines[0].startswith("SelectWithUnionQuery"):
        raise ForensicSqlError("only a SELECT statement (or WITH ... SELECT) can run")
    # IN may test against a named expression (WITH [1, 2] AS s ... x IN s) too.
    aliases = ctes | {m[1] for line in lines for m in _AST_ALIAS.finditer(line)}
    ancestors: list[list[Any]] = []  # [depth, kind, name, children seen so far]
    for line in lines:
        text = line.lstrip(" ")
        depth = len(line) - len(text)
        kind, _, rest = text.partition(" ")
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        index = ancestors[-1][3] if ancestors else 0
        if ancestors:
            ancestors[-1][3] += 1
        parent = ancestors[-1][1] if ancestors else ""
        name = rest.partition(" ")[0]
        if kind == "Function":
            _check_function(name, table_function=parent == "TableExpression")
        elif kind == "TableIdentifier":
            _check_table(rest, store, allowed, ctes)
        elif kind == "Identifier" and index == 1 and _is_in_operand(ancestors):
            _check_table(rest, store, allowed, aliases)
        elif kind == "Literal" and depth == 1:
            raise ForensicSqlError("INTO OUTFILE is not allowed")
        ancestors.append([depth, kind, name, 0])


def _is_in_operand(ancestors: list[list[Any]]) -> bool:
    """Whether the node being read is an argument of IN (the set it tests against)."""
    return (
        len(ancestors) >= 2
        and ancestors[-1][1] == "ExpressionList"
        and ancestors[-2][1] == "Function"
        and _IN_FUNCTION.fullmatch(ancestors[-2][2]) is not None
    )


def _check_function(name: str, *, table_function: bool) -> None:
    if table_function:
        raise ForensicSqlError(f"table function {name}() is not allowed: query the tables")
    lowered = name.lower()
    if lowered in _FORBIDDEN_FUNCTIONS or lowered.startswith(_FORBIDDEN_PREFIXES):
        raise ForensicSqlError(f"function {name}() is not allowed")


def _check_table(text: str, store: Store, allowed: frozenset[str], names: frozenset[str]) -> None:
    """An allowed table, qualified or not, or one of the query's own ``names``."""
    match = _AST_TABLE.fullmatch(text)
    if match is None:
        raise ForensicSqlError(
            f"unsupported table name or alias {text.split(' (', maxsplit=1)[0]!r}"
        )
    name = match["name"]
    database, _, table = name.rpartition(".")
    if (database == store.database and table in allowed) or (
        not database and (table in allowed or table in names)
    ):
        return
    raise _not_allowed(name, allowed)


def _check_resolved(lines: list[str], store: Store, allowed: frozenset[str]) -> None:
    """Refuse a resolved statement reading any table but the allowed ones."""
    # system.one is what a SELECT without FROM reads; written out, check 2 refused it.
    readable = {f"{store.database}.{table}" for table in allowed} | {"system.one"}
    for line in lines:
        if "TABLE_FUNCTION" in line:
            raise ForensicSqlError("table functions are not allowed: query the tables")
        if "table_name: " in line:
            name = line.rpartition("table_name: ")[2].partition(", ")[0]
            if name not in readable:
                raise _not_allowed(name, allowed)
        elif line.lstrip().startswith("TABLE id:"):
            raise ForensicSqlError("unsupported table name or alias")


def _not_allowed(name: str, allowed: frozenset[str]) -> ForensicSqlError:
    return ForensicSqlError(f"table {name} is not allowed; query only {', '.join(sorted(allowed))}")


class _Session:
    """Runs statements under read-only settings, already applied to the connection
    (embedded) or sent with each request (server)."""

    def __init__(self, client: Any, per_query: dict[str, Any] | None) -> None:
        self.client = client
        self.per_query = per_query

    def lines(self, sql: str) -> list[str]:
        """The one-column output of an EXPLAIN."""
        result = self.client.query(sql, settings=self.per_query)
        return [str(row[0]) for row in result.result_rows]

    def fetch(self, sql: str, max_rows: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and at most ``max_rows`` rows, read as a stream that stops
        (and cancels the query) once it has them."""
        rows: list[tuple[Any, ...]] = []
        stream = self.client.query_row_block_stream(sql, settings=self.per_query, tz_mode="aware")
        with stream:
            columns = [str(name) for name in stream.source.column_names]
            for block in stream:
                rows.extend(block)
                if len(rows) >= max_rows:
                    break
        return columns, rows[:max_rows]


@contextmanager
def _readonly_session(store: Store, limits: dict[str, Any]) -> Iterator[_Session]:
    settings = {**limits, "readonly": 1}  # last: once applied, no setting can change
    if not store.embedded:
        yield _Session(store.client, {"database": store.database, **settings})
        return
    client = clickhouse_connect.get_client(
        dsn=store.dsn, database=store.database, settings=settings
    )
    try:
        yield _Session(client, None)
    finally:
        client.close()


def _clean_error(exc: Exception) -> ForensicSqlError:
    """ClickHouse's error as one line: its code and message, no stack, no URL."""
    text = " ".join(str(exc).split())
    match = _ERROR_CODE.search(text)
    if match is None:
        return ForensicSqlError("the query failed: " + re.sub(r"\w+://\S*", "<url>", text)[:300])
    detail = text[match.end() :].rpartition("DB::Exception: ")[2]
    detail = re.sub(r" \(version [^)]*\)", "", detail)
    detail = re.sub(r"(\([A-Z_]+\))(?:\.? \1)+", r"\1", detail)
    code = int(match[1])
    return ForensicSqlError(f"Code: {code}. {detail}"[:500], code=code)


def _json_value(value: Any) -> Any:
    """A ClickHouse value as JSON can carry it: times ISO 8601 (UTC with Z), IPv4-mapped
    addresses as IPv4, decimals and UUIDs as text, non-finite floats as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        spec = "milliseconds" if value.microsecond % 1000 == 0 < value.microsecond else "auto"
        if value.tzinfo is None:
            return value.isoformat(timespec=spec)
        return value.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, IPv6Address):
        return str(value.ipv4_mapped or value)
    if isinstance(value, IPv4Address | UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)
