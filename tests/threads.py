"""Reading state from one thread while another changes it, as /metrics reads the
detectors' state while detection runs."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def reads_during(work: Callable[[], object], read: Callable[[], object]) -> int:
    """Run ``work`` in a worker thread and call ``read`` in this one until it is done,
    with the GIL handed over as often as CPython allows, so a read that walks a table
    the work is changing sees it change. Returns how many reads ran; an error in the
    work is raised here, after the worker has stopped."""
    done = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the calling thread
            failed.append(exc)
        finally:
            done.set()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    worker = threading.Thread(target=run)
    worker.start()
    reads = 0
    try:
        while not done.is_set():
            read()
            reads += 1
    finally:
        worker.join()
        sys.setswitchinterval(switch)
    if failed:
        raise failed[0]
    return reads
