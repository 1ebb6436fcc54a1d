"""Labelled attack episodes, and the schedule that spreads them over a simulated run.

Every attack kind is one ``AttackEpisode`` subclass (``base``), registered by name in
``ATTACKS``; its episodes are actors whose requests carry an ``attack_id`` such as
``brute_force-1``. ``plan`` decides when each episode happens, ``build_episodes`` builds
them for a ``SimulationConfig``; pass them to ``traffic.generate`` (or ``run``) with
the benign actors, and the benign traffic stays byte-for-byte what it was.

=====================  ===================================  ==========================
registry name          variants (episodes cycle through)    accepted finding kinds
=====================  ===================================  ==========================
brute_force            account, ip                          brute_force
credential_stuffing    -                                    credential_stuffing
password_spraying      single_ip, pool                      password_spraying
account_takeover       guess, stuffed                       brute_force,
                                                            credential_stuffing
bola                   denied, vulnerable                   bola
endpoint_scanning      wordlist, api                        endpoint_scanning
user_enumeration       reset, login, signup                 user_enumeration
scraping               -                                    rate_anomaly
data_exfiltration      export, bulk                         data_exfiltration
oversized_payload      -                                    oversized_payload
malformed_request      -                                    malformed_request
injection              scanner, manual, json_api            injection,
                                                            malformed_request, anomaly
token_misuse           api_key, bearer, query               token_misuse
insecure_transport     plain_http, weak_tls                 insecure_transport
=====================  ===================================  ==========================

The schedule. Episodes start after a warm-up (10% of the run or 5 minutes, whichever
is less) and end before the last 5% (at most a minute). Each kind belongs to a *lane*
(``auth``: brute force, stuffing, takeover, user enumeration; ``spray``: password
spraying, slow by nature; ``objects``: BOLA, scraping, exfiltration; ``surface``:
scanning, malformed requests, oversized payloads, injection; ``credentials``: token
misuse, insecure transport). A lane's episodes never overlap: its window is cut into
one slot per episode, in a seeded random order, and each episode lasts its kind's
nominal length (jittered) or 80% of its slot, whichever is less, at a random place in
the slot. Episodes of different lanes may overlap; they never share an address, an
account or a key, so a finding's evidence still names one episode. A run shorter
than the sum of nominal lengths compresses the episodes (a password spray then runs
faster than a real one: give ``--duration 3600`` or more for realistic pacing).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from ingest.simulator.attacks.auth import (
    AccountTakeover,
    BruteForce,
    CredentialStuffing,
    PasswordSpraying,
)
from ingest.simulator.attacks.base import AttackEpisode, EpisodeContext
from ingest.simulator.attacks.enumeration import Bola, EndpointScanning, UserEnumeration
from ingest.simulator.attacks.keys import TokenMisuse
from ingest.simulator.attacks.payloads import Injection
from ingest.simulator.attacks.transport import InsecureTransport, MalformedRequests
from ingest.simulator.attacks.volume import DataExfiltration, OversizedPayload, Scraping
from ingest.simulator.traffic import SimulationConfig

__all__ = [
    "ATTACKS",
    "AttackEpisode",
    "EpisodeContext",
    "build_episodes",
    "parse_kinds",
    "plan",
]

ATTACKS: dict[str, type[AttackEpisode]] = {
    "brute_force": BruteForce,
    "credential_stuffing": CredentialStuffing,
    "password_spraying": PasswordSpraying,
    "account_takeover": AccountTakeover,
    "bola": Bola,
    "endpoint_scanning": EndpointScanning,
    "user_enumeration": UserEnumeration,
    "scraping": Scraping,
    "data_exfiltration": DataExfiltration,
    "oversized_payload": OversizedPayload,
    "malformed_request": MalformedRequests,
    "injection": Injection,
    "token_misuse": TokenMisuse,
    "insecure_transport": InsecureTransport,
}
"""Every attack kind, by name: the episode class that builds it from an
``EpisodeContext``."""

MAX_WARMUP_S = 300.0
MAX_TAIL_S = 60.0
ESTIMATED_RATE = 100.0
"""Requests per second of the default mix: a ``count``-bounded run's length estimate."""


def parse_kinds(spec: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of registry names, checked.

    >>> parse_kinds("bola, brute_force")
    ('bola', 'brute_force')
    >>> len(parse_kinds("all")) == len(ATTACKS)
    True
    >>> parse_kinds("bola,nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: unknown attack kind 'nope' (known: all, account_takeover, bola, ...)
    """
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if names == ["all"]:
        return tuple(ATTACKS)
    if not names:
        raise ValueError("no attack kind given")
    for name in names:
        if name not in ATTACKS:
            known = ", ".join(["all", *sorted(ATTACKS)])
            raise ValueError(f"unknown attack kind {name!r} (known: {known})")
    return tuple(dict.fromkeys(names))


def plan(
    kinds: Iterable[str],
    *,
    seed: int,
    start_ts: float,
    duration_s: float,
    count: int | None = None,
    host: str = "api.example.com",
    lb_share: float = 0.25,
    server_error_rate: float = 0.003,
) -> list[EpisodeContext]:
    """When and how each episode happens: ``count`` episodes of every kind in
    ``kinds`` (default: one per variant of the kind), ``attack_id`` ``KIND-N``,
    sorted by start. Deterministic for its arguments.

    >>> episodes = plan(["bola", "brute_force"], seed=1, start_ts=0.0, duration_s=3600.0)
    >>> [e.attack_id for e in sorted(episodes, key=lambda e: e.attack_id)]
    ['bola-1', 'bola-2', 'brute_force-1', 'brute_force-2']
    >>> all(300.0 <= e.start_ts and e.end_ts <= 3540.0 for e in episodes)
    True
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    warmup = min(0.1 * duration_s, MAX_WARMUP_S)
    tail = min(0.05 * duration_s, MAX_TAIL_S)
    window_start = start_ts + warmup
    window = duration_s - warmup - tail
    lanes: dict[str, list[tuple[str, int, str]]] = {}
    for kind in kinds:
        cls = ATTACKS[kind]
        episodes = len(cls.variants) if count is None else count
        for index in range(1, episodes + 1):
            variant = cls.variants[(index - 1) % len(cls.variants)]
            lanes.setdefault(cls.lane, []).append((kind, index, variant))
    contexts: list[EpisodeContext] = []
    for lane, specs in lanes.items():
        rng = random.Random(f"{seed}/attack-plan/{lane}")  # noqa: S311 - simulation
        rng.shuffle(specs)
        slot = window / len(specs)
        for n, (kind, index, variant) in enumerate(specs):
            nominal = ATTACKS[kind].nominal_s * (0.8 + 0.4 * rng.random())
            duration = min(nominal, 0.8 * slot)
            offset = rng.random() * (slot - duration) * 0.9
            contexts.append(
                EpisodeContext(
                    attack_id=f"{kind}-{index}",
                    kind=kind,
                    index=index,
                    variant=variant,
                    start_ts=window_start + n * slot + offset,
                    duration_s=duration,
                    seed=seed,
                    host=host,
                    lb_share=lb_share,
                    server_error_rate=server_error_rate,
                )
            )
    contexts.sort(key=lambda c: (c.start_ts, c.attack_id))
    return contexts


def build_episodes(
    config: SimulationConfig, kinds: Iterable[str], *, count: int | None = None
) -> list[AttackEpisode]:
    """The episodes ``plan`` gives for ``config``'s run, built and ready to ``run``.

    A run bounded by ``count`` rather than ``duration_s`` is assumed to last
    ``count / ESTIMATED_RATE`` seconds; episodes it ends before are cut short or absent.
    """
    if config.duration_s is not None:
        duration = config.duration_s
    elif config.count is not None:
        duration = config.count / ESTIMATED_RATE
    else:
        raise ValueError("an endless run has no schedule: give a duration or a count")
    contexts = plan(
        kinds,
        seed=config.seed,
        start_ts=config.start_ts,
        duration_s=duration,
        count=count,
        host=config.host,
        lb_share=config.lb_share,
        server_error_rate=config.server_error_rate,
    )
    return [ATTACKS[context.kind](context) for context in contexts]
