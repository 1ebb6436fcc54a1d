"""The dashboard's forensic layer: validated search over events and findings, exports,
and analysts' read-only SQL. Routes call these; nothing here knows about HTTP."""

from dashboard.forensics.export import EventExport, ExportFormat, export_events
from dashboard.forensics.search import (
    EventSearch,
    FindingSearch,
    HttpMethod,
    Page,
    search_events,
    search_findings,
)
from dashboard.forensics.sql import FORENSIC_TABLES, ForensicSqlError, SqlResult, run_readonly_sql

__all__ = [
    "FORENSIC_TABLES",
    "EventExport",
    "EventSearch",
    "ExportFormat",
    "FindingSearch",
    "ForensicSqlError",
    "HttpMethod",
    "Page",
    "SqlResult",
    "export_events",
    "run_readonly_sql",
    "search_events",
    "search_findings",
]
