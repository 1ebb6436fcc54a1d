"""The three forensic queries on 10M stored events (target: <= 300 ms each).

The events are generated inside ClickHouse (INSERT ... SELECT from numbers()) with a
skewed, realistic shape: 200k client IPs (a few very busy), 100k users each seen from
few addresses (as in real traffic; NAT addresses carry many users), 2k API keys, 60
routes, 3% failed auth, spread over 7 days ending now. Generation is not what is
measured; the queries are. Set BENCH_EVENTS to change the size.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta

from bench.common import OUT, figure, repeat_ms, timed
from gatewatch.store.client import Store
from gatewatch.store.queries import (
    TimeRange,
    actor_activity,
    failed_auth_over_time,
    top_talkers,
)

EVENTS = int(os.environ.get("BENCH_EVENTS", "10000000"))

GENERATE = """
INSERT INTO {db}.events (ts, client_ip, request_id, method, scheme, host, path, route, query,
    status, latency_ms, request_bytes, response_bytes, user_agent, user, api_key, tls_version,
    body, headers, source, position)
SELECT
    now64(3) - toIntervalMillisecond(intDiv(number * 604800000, {n})) AS ts,
    toIPv6(IPv4NumToString(toUInt32(3325256704 + ipidx))) AS client_ip,
    toString(generateUUIDv4()) AS request_id,
    ['GET','GET','GET','POST','PUT','DELETE'][1 + cityHash64(number, 4) % 6] AS method,
    'https', 'api.example.com',
    concat('/api/v1/r', toString(cityHash64(number, 5) % 60), '/', toString(number % 100000)),
    concat('/api/v1/r', toString(cityHash64(number, 5) % 60), '/{{id}}') AS route,
    '' AS query,
    multiIf(cityHash64(number, 6) % 100 < 2, 401, cityHash64(number, 6) % 100 < 3, 403,
            cityHash64(number, 6) % 100 < 6, 404, 200) AS status,
    toFloat32(cityHash64(number, 7) % 500) AS latency_ms,
    cityHash64(number, 8) % 2000, cityHash64(number, 9) % 20000,
    concat('client/', toString(cityHash64(number, 10) % 50)) AS user_agent,
    concat('user', toString((ipidx * 7 + cityHash64(number, 11) % 3) % 100000)) AS user,
    if(cityHash64(number, 12) % 10 = 0, concat('fp:', lower(hex(ipidx % 2000))), '') AS api_key,
    'TLSv1.3', '', map(), 'bench', number
FROM (
    SELECT number,
        if(cityHash64(number, 1) % 1000 < 50, cityHash64(number, 2) % 20,
           cityHash64(number, 3) % 200000) AS ipidx
    FROM numbers({n})
)
"""


def main() -> None:
    path = OUT / "chdb-queries"
    shutil.rmtree(path, ignore_errors=True)
    store = Store(f"chdb://{path}", database="bench")
    store.migrate()
    with timed() as t:
        store.command(GENERATE.format(db="bench", n=EVENTS), settings={"max_insert_threads": 2})
        store.command("OPTIMIZE TABLE bench.events FINAL")
    stored = store.count("events")
    figure("events generated and merged", stored, "rows", f"({t.wall:.0f} s)")
    bytes_on_disk = store.query(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' "
        "AND table = 'events' AND active"
    )[0][0]
    figure("events stored, compressed", bytes_on_disk / max(stored, 1), "bytes/row")

    (busy_ip,) = store.query(
        "SELECT toString(client_ip) FROM bench.events "
        "GROUP BY client_ip ORDER BY count() DESC LIMIT 1"
    )[0]
    (user,) = store.query("SELECT any(user) FROM bench.events WHERE user != ''")[0]
    (key,) = store.query("SELECT any(api_key) FROM bench.events WHERE api_key != ''")[0]
    (route,) = store.query("SELECT any(route) FROM bench.events")[0]
    now = datetime.now(UTC)
    day = TimeRange(now - timedelta(days=1), now)
    week = TimeRange(now - timedelta(days=7), now)
    ip = busy_ip.removeprefix("::ffff:")

    cases = [
        ("actor: busiest IP, last 24 h (1000 rows)", lambda: actor_activity(store, "ip", ip, day)),
        ("actor: one user, 7 days", lambda: actor_activity(store, "user", user, week)),
        (
            "actor: one API key, 24 h (1000 rows)",
            lambda: actor_activity(store, "api_key", key, day),
        ),
        ("top talkers on one route, 7 days", lambda: top_talkers(store, week, route=route)),
        ("top talkers on the 10 busiest routes, 24 h", lambda: top_talkers(store, day)),
        ("top talkers on the 10 busiest routes, 7 days", lambda: top_talkers(store, week)),
        ("failed auth per 5 min, last 24 h", lambda: failed_auth_over_time(store, day)),
        ("failed auth per 1 h, 7 days", lambda: failed_auth_over_time(store, week, bucket="1h")),
    ]
    for name, run in cases:
        median, worst = repeat_ms(run)
        figure(f"query {name}", median, "ms median", f"max {worst:.0f} ms; {stored:,} events")
    store.close()


if __name__ == "__main__":
    main()
