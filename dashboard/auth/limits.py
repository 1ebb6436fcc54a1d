"""Login throttling: an account locks after repeated failures, and each client address
has a token bucket of attempts, against password spraying across accounts.

The caller passes the time, so tests need no sleeping. State is in memory (a restart
forgets it), bounded by ``max_tracked`` entries per table: the least recently active
go first, and entries with nothing left to remember go as soon as they are seen.
Accounts are keyed case-insensitively (the user store is), IPv6 clients by their /64
(one host usually holds a whole /64).

>>> limiter = LoginLimiter(max_failures=2, lockout_s=60)
>>> limiter.check("ana", "192.0.2.1", now=0.0)
0.0
>>> limiter.failed("ana", "192.0.2.1", now=0.0)
>>> limiter.failed("ANA", "192.0.2.1", now=1.0)
>>> limiter.check("ana", "192.0.2.7", now=1.0)  # locked, from any address
60.0
>>> limiter.check("ana", "192.0.2.7", now=61.0)
0.0
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

_MAX_KEY = 256


@dataclass
class _Account:
    failures: deque[float] = field(default_factory=deque)  # within the window, oldest first
    locked_until: float = -math.inf


@dataclass
class _Bucket:
    tokens: float
    updated: float


class LoginLimiter:
    """Decides whether a login attempt may go ahead.

    Call ``check`` before verifying the password, then ``failed`` or ``succeeded``.
    ``max_failures`` failures for one account within ``window_s`` lock it for
    ``lockout_s``, also against the right password. Each address may start
    ``per_ip_rate_per_minute`` attempts a minute, in bursts of as many; a successful
    login gives its attempt back, so only failures use the budget up. Thread-safe."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 900,
        lockout_s: float = 900,
        per_ip_rate_per_minute: float = 30,
        max_tracked: int = 100_000,
    ) -> None:
        if max_failures < 1 or max_tracked < 1:
            raise ValueError("max_failures and max_tracked must be at least 1")
        for name, value in (
            ("window_s", window_s),
            ("lockout_s", lockout_s),
            ("per_ip_rate_per_minute", per_ip_rate_per_minute),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.per_ip_rate_per_minute = per_ip_rate_per_minute
        self.max_tracked = max_tracked
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LoginLimiter(max_failures={self.max_failures}, window_s={self.window_s}, "
            f"lockout_s={self.lockout_s}, per_ip_rate_per_minute="
            f"{self.per_ip_rate_per_minute}, max_tracked={self.max_tracked})"
        )

    def check(self, user: str, ip: str, now: float) -> float:
        """0 if the attempt may go ahead (it then counts against ``ip``), else the
        seconds until the account unlocks or the address may try again."""
        with self._lock:
            self._forget(now)
            account = self._accounts.get(_user_key(user))
            if account is not None and account.locked_until > now:
                return account.locked_until - now
            key = _ip_key(ip)
            bucket = self._refilled(key, now)
            if bucket.tokens < 1:
                return (1 - bucket.tokens) * 60 / self.per_ip_rate_per_minute
            bucket.tokens -= 1
            self._buckets[key] = bucket
            self._buckets.move_to_end(key)
            _cap(self._buckets, self.max_tracked)
            return 0.0

    def failed(self, user: str, ip: str, now: float) -> None:
        """Count a failed attempt against the account (``ip`` paid in ``check``)."""
        key = _user_key(user)
        with self._lock:
            account = self._accounts.pop(key, None) or _Account()
            if account.locked_until <= now:
                failures = account.failures
                while failures and failures[0] <= now - self.window_s:
                    failures.popleft()
                failures.append(now)
                if len(failures) >= self.max_failures:
                    account.locked_until = now + self.lockout_s
                    failures.clear()
            self._accounts[key] = account  # the most recently active, last
            _cap(self._accounts, self.max_tracked)

    def succeeded(self, user: str, ip: str, now: float) -> None:
        """Forget the account's failures and give ``ip`` its attempt back."""
        with self._lock:
            key = _user_key(user)
            account = self._accounts.get(key)
            if account is not None:
                account.failures.clear()
                if account.locked_until <= now:
                    del self._accounts[key]
            bucket = self._buckets.get(_ip_key(ip))
            if bucket is not None:
                bucket.tokens = min(bucket.tokens + 1, self.per_ip_rate_per_minute)

    def _refilled(self, key: str, now: float) -> _Bucket:
        capacity = self.per_ip_rate_per_minute
        bucket = self._buckets.get(key)
        if bucket is None:
            return _Bucket(capacity, now)
        elapsed = max(0.0, now - bucket.updated)  # a clock that steps back refills nothing
        bucket.tokens = min(capacity, bucket.tokens + elapsed * capacity / 60)
        bucket.updated = max(bucket.updated, now)
        return bucket

    def _forget(self, now: float) -> None:
        """Drop the least recently active entries while they remember nothing."""
        while self._accounts:
            account = next(iter(self._accounts.values()))
            last = account.failures[-1] if account.failures else -math.inf
            if account.locked_until > now or last > now - self.window_s:
                break
            self._accounts.popitem(last=False)
        while self._buckets:
            bucket = next(iter(self._buckets.values()))
            elapsed = now - bucket.updated
            if bucket.tokens + elapsed * self.per_ip_rate_per_minute / 60 < (
                self.per_ip_rate_per_minute
            ):
                break
            self._buckets.popitem(last=False)


def _cap(table: OrderedDict[str, _Account] | OrderedDict[str, _Bucket], size: int) -> None:
    while len(table) > size:
        table.popitem(last=False)


def _user_key(user: str) -> str:
    return user.casefold()[:_MAX_KEY]


def _ip_key(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:_MAX_KEY]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)
