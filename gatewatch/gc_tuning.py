"""Garbage-collector settings for the long-running ingest loops.

The ingest path allocates several short-lived containers per request (the decoded line,
the Event, its headers). With CPython's default thresholds a young collection runs every
700 allocations and every tenth of those walks the long-lived objects too (route
templates, caches, imported modules). Freezing what exists once the pipeline is built
and collecting the young generation less often cut that overhead without holding
garbage longer than a fraction of one batch.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_streaming() -> None:
    """Call once start-up is done, right before the ingest loop.

    Everything allocated so far is moved to the permanent generation (never scanned
    again); reference cycles made later are still collected.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
