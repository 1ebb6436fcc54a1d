"""Attacks on the login endpoint: brute force, credential stuffing, password spraying,
and an account takeover (a burst of failures, then a success and the attacker inside
the account).

The shop's login answers 401 to a wrong password and to an unknown account alike, and
its gateway starts answering 429 to a client that keeps failing for long; a success
gives a bearer token whose ``sub`` is the account's id.
"""

from __future__ import annotations

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.attacks.base import (
    TOOL_AGENTS,
    AttackEpisode,
    EpisodeContext,
    Move,
    distinct_usernames,
    hosting_ipv4,
    leaked_username,
    proxy_ipv4,
    rotating_agent,
    web_user_id,
)
from ingest.simulator.identity import issue_jwt

LOGIN = endpoints.LOGIN
_PRIVILEGED = (
    "admin@shop.example",
    "support@shop.example",
    "ops@shop.example",
    "finance@shop.example",
    "test@shop.example",
)
_ORG_DOMAINS = ("globex.example", "initech.example", "acme.example")


class BruteForce(AttackEpisode):
    """Password guessing from one address with a tool: ``account`` guesses one
    account's password 60-200 times; ``ip`` works through a password list against 3-6
    accounts (privileged names first), 15 or more guesses each. Every guess fails (401);
    after about 50 failures the gateway rate-limits a quarter of them (429)."""

    kind = "brute_force"
    accepted_kinds = ("brute_force",)
    variants = ("account", "ip")
    lane = "auth"
    nominal_s = 180.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        ip = hosting_ipv4(rng) if rng.random() < 0.6 else network.residential_ipv4(rng)
        client = self.client(ip, rng.choice(TOOL_AGENTS))
        if self.variant == "ip":
            targets = list(_PRIVILEGED[: 1 + int(rng.random() * 2)])
            targets += [leaked_username(rng) for _ in range(2 + int(rng.random() * 4))]
            count = rng.randrange(90, 240)
        else:
            targets = [leaked_username(rng)]
            count = rng.randrange(60, 200)
        times = self.paced(count, min_gap_s=0.25)
        lockout = rng.randrange(40, 60)
        moves = [
            Move(
                client,
                LOGIN,
                LOGIN.route,
                429 if i >= lockout and rng.random() < 0.25 else 401,
                targets[i % len(targets)],
            )
            for i in range(len(times))
        ]
        self.schedule(times, moves)
        self.description = (
            f"{ip} guesses passwords {len(moves)} times for {len(targets)} account(s) "
            f"({', '.join(targets[:3])}{', ...' if len(targets) > 3 else ''})"
        )


class CredentialStuffing(AttackEpisode):
    """A leaked combo list replayed through a proxy pool: 40-150 addresses (residential
    proxies, cloud, hosting), each making a few attempts over several minutes, every
    attempt a different username and a forged browser user agent; 1-2% of the pairs
    still work (200), and the bot then checks the account's profile with its token."""

    kind = "credential_stuffing"
    accepted_kinds = ("credential_stuffing",)
    lane = "auth"
    nominal_s = 420.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        sources = rng.randrange(40, 150)
        clients = [self.client(proxy_ipv4(rng), rotating_agent(rng)) for _ in range(sources)]
        attempts = int(sources * (3 + 5 * rng.random()))
        attempts = max(sources, min(attempts, int(context.duration_s * 4)))
        success_rate = 0.01 + 0.01 * rng.random()
        plan: list[tuple[float, Move]] = []
        successes = 0
        for t, username in zip(
            self.scattered(attempts), distinct_usernames(rng, attempts), strict=True
        ):
            client = clients[int(rng.random() * sources)]
            agent = rotating_agent(rng)
            if rng.random() >= success_rate:
                plan.append((t, Move(client, LOGIN, LOGIN.route, 401, username, user_agent=agent)))
                continue
            successes += 1
            sub = str(web_user_id(rng))
            token = f"Bearer {issue_jwt(rng, sub, int(t))}"
            plan.append((t, Move(client, LOGIN, LOGIN.route, 200, username, user_agent=agent)))
            check = endpoints.USER
            path = f"/api/v1/users/{sub}"
            after = min(t + 0.3 + rng.random() * 2.0, self.end_ts)
            plan.append((after, Move(client, check, path, 200, sub, authorization=token)))
        plan.sort(key=lambda item: item[0])
        self.schedule([t for t, _ in plan], [move for _, move in plan])
        self.description = (
            f"{attempts} logins with leaked pairs from {sources} proxy addresses, "
            f"{successes} succeeding"
        )


class PasswordSpraying(AttackEpisode):
    """A few common passwords tried against 40-120 accounts of one organisation, one
    attempt per account per round (one or two rounds), paced slowly over the episode
    (20-30 minutes when the run is long enough) to stay under lockout thresholds;
    ``single_ip`` from one server, ``pool`` from 2-4 addresses of one cloud /24. One
    or two accounts with a weak password fall (200) and are not tried again."""

    kind = "password_spraying"
    accepted_kinds = ("password_spraying",)
    variants = ("single_ip", "pool")
    lane = "spray"
    nominal_s = 1800.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        agent = rng.choice((*TOOL_AGENTS, catalogue.BROWSER_AGENTS[0]))
        if self.variant == "pool":
            a, b, c, _ = network.cloud_ipv4(rng).split(".")
            last = rng.sample(range(2, 250), 2 + int(rng.random() * 3))
            clients = [self.client(f"{a}.{b}.{c}.{d}", agent) for d in last]
        else:
            clients = [self.client(hosting_ipv4(rng), agent)]
        domain = rng.choice(_ORG_DOMAINS)
        names: dict[str, None] = {}
        wanted = rng.randrange(40, 120)
        while len(names) < wanted:
            first, last_name = rng.choice(catalogue.FIRST_NAMES), rng.choice(catalogue.LAST_NAMES)
            names.setdefault(f"{first[0]}{last_name}@{domain}")
        accounts = list(names)
        rounds = 1 if rng.random() < 0.4 else 2
        winners = set(rng.sample(range(len(accounts)), int(rng.random() * 3)))
        won_round = {account: rng.randrange(rounds) for account in winners}
        moves: list[Move] = []
        fallen: set[int] = set()
        for round_ in range(rounds):
            for index, account in enumerate(accounts):
                if index in fallen:
                    continue
                status = 200 if won_round.get(index) == round_ else 401
                if status == 200:
                    fallen.add(index)
                client = clients[len(moves) % len(clients)]
                moves.append(Move(client, LOGIN, LOGIN.route, status, account))
        self.schedule(self.paced(len(moves), min_gap_s=0.5, jitter=0.8), moves)
        self.description = (
            f"{len(clients)} address(es) spray {rounds} password(s) over {len(accounts)} "
            f"accounts at {domain}, {len(fallen)} falling"
        )


class AccountTakeover(AttackEpisode):
    """A burst of failed logins, then a success, then the attacker inside the account:
    reading the profile, addresses and orders and changing the e-mail address.
    ``guess``: one address guesses one account's password 15-40 times; ``stuffed``: a
    small proxy pool fails on 60-150 accounts once each and one of them works."""

    kind = "account_takeover"
    accepted_kinds = ("brute_force", "credential_stuffing")
    variants = ("guess", "stuffed")
    lane = "auth"
    nominal_s = 150.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        self.emitter.server_error_rate = 0.0  # the takeover must succeed when planned
        burst_span = context.duration_s * 0.7
        if self.variant == "stuffed":
            clients = [
                self.client(proxy_ipv4(rng), rotating_agent(rng))
                for _ in range(5 + int(rng.random() * 11))
            ]
            usernames = distinct_usernames(rng, rng.randrange(60, 150))
            times = self.paced(len(usernames), min_gap_s=0.2, span=burst_span)
            usernames = usernames[: len(times)]
            moves = [Move(rng.choice(clients), LOGIN, LOGIN.route, 401, name) for name in usernames]
            moves[-1] = moves[-1]._replace(status=200)
            victim, winner = usernames[-1], moves[-1].client
        else:
            ip = hosting_ipv4(rng) if rng.random() < 0.5 else network.residential_ipv4(rng)
            winner = self.client(ip, rng.choice(TOOL_AGENTS))
            victim = leaked_username(rng)
            times = self.paced(rng.randrange(16, 41), min_gap_s=0.3, span=burst_span)
            moves = [Move(winner, LOGIN, LOGIN.route, 401, victim) for _ in times]
            moves[-1] = moves[-1]._replace(status=200)
        sub = str(web_user_id(rng))
        token = f"Bearer {issue_jwt(rng, sub, int(times[-1]))}"
        user_path = f"/api/v1/users/{sub}"
        inside = [
            (endpoints.USER, user_path, 200),
            (endpoints.USER_ADDRESSES, f"{user_path}/addresses", 200),
            (endpoints.USER_ORDERS, f"{user_path}/orders", 200),
            (endpoints.USER_UPDATE, user_path, 200),
        ]
        if rng.random() < 0.5:
            order = f"/api/v1/orders/{rng.randrange(1_000_000, 10_000_000)}"
            inside.insert(3, (endpoints.ORDER, order, 200))
        follow_start = self.start_ts + burst_span + 1.0
        times += self.paced(
            len(inside), min_gap_s=0.5, start=follow_start, span=self.end_ts - follow_start
        )
        for endpoint, path, status in inside:
            moves.append(Move(winner, endpoint, path, status, sub, authorization=token))
        self.schedule(times, moves)
        self.description = (
            f"{len(moves) - len(inside) - 1} failed logins, then {winner.ip} logs in as "
            f"{victim} and reads and changes the account"
        )
