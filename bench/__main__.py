"""Run every benchmark and print its figures: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

from bench import alerts, anomaly, dashboard, detect, kafka, nab, parse, payloads, queries, store
from bench.common import SHARED_DATA


def main() -> None:
    found = f"found at {SHARED_DATA}" if SHARED_DATA.is_dir() else "absent"
    print(f"shared evaluation data: {found} (bench.payloads and bench.nab read it)")
    for module in (parse, detect, store, queries, kafka, alerts, dashboard):
        print(f"\n== {module.__name__} ==")
        module.main()
    print(f"\n== {anomaly.__name__} ==")
    anomaly.main([])
    print(f"\n== {nab.__name__} ==")
    nab.main([])  # says so and skips without ../shared
    print(f"\n== {payloads.__name__} ==")
    payloads.main([])  # about 10 minutes; its sections on ../shared skip themselves


if __name__ == "__main__":
    main()
