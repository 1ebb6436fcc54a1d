"""Login throttling: account lockout, the per-address bucket, bounded memory."""

from __future__ import annotations

import threading

import pytest

from dashboard.auth.limits import LoginLimiter

IP = "198.51.100.7"


def _fail(limiter: LoginLimiter, user: str, ip: str, now: float) -> float:
    """One failed login attempt, as the login route makes it."""
    wait = limiter.check(user, ip, now)
    if wait == 0:
        limiter.failed(user, ip, now)
    return wait


def test_an_account_locks_after_max_failures_and_unlocks_after_lockout() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=900, lockout_s=600)
    for now in (0.0, 10.0):
        assert _fail(limiter, "ana", IP, now) == 0
    assert limiter.check("ana", IP, 20.0) == 0  # the third attempt may still go ahead
    limiter.failed("ana", IP, 20.0)
    # Locked: also for the right password, from any address, and counting down.
    assert limiter.check("ana", IP, 21.0) == 599.0
    assert limiter.check("ana", "203.0.113.1", 320.0) == 300.0
    assert limiter.check("bob", IP, 21.0) == 0  # other accounts are not affected
    assert limiter.check("ana", IP, 620.0) == 0  # unlocked after lockout_s
    for now in (621.0, 622.0):  # and counting afresh
        _fail(limiter, "ana", IP, now)
    assert limiter.check("ana", IP, 623.0) == 0


def test_failures_older_than_the_window_do_not_count() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=900)
    for now in (0.0, 500.0, 1000.0, 1401.0):  # never three within 900 s
        _fail(limiter, "ana", IP, now)
        assert limiter.check("ana", IP, now + 0.5) == 0, now
    _fail(limiter, "ana", IP, 1402.0)  # 500 fell out; 1000, 1401 and 1402 are in
    assert limiter.check("ana", IP, 1403.0) > 0


def test_a_success_forgets_the_failures() -> None:
    limiter = LoginLimiter(max_failures=3)
    _fail(limiter, "ana", IP, 0.0)
    _fail(limiter, "ana", IP, 1.0)
    limiter.succeeded("ana", IP, 2.0)
    _fail(limiter, "ana", IP, 3.0)
    _fail(limiter, "ana", IP, 4.0)
    assert limiter.check("ana", IP, 5.0) == 0


@pytest.mark.parametrize("spellings", [("Ana", "ANA", "ana"), ("ANNA", "anna", "Anna")])
def test_accounts_are_counted_regardless_of_case(spellings: tuple[str, ...]) -> None:
    limiter = LoginLimiter(max_failures=3)
    for spelling in spellings:
        _fail(limiter, spelling, IP, 0.0)
    assert limiter.check(spellings[-1].lower(), IP, 1.0) > 0


def test_one_address_spraying_many_accounts_is_slowed_down() -> None:
    limiter = LoginLimiter(per_ip_rate_per_minute=30)
    for i in range(30):  # a burst of 30 attempts goes ahead
        assert _fail(limiter, f"user{i}", IP, 0.0) == 0
    assert limiter.check("user30", IP, 0.0) == pytest.approx(2.0)  # then one per 2 s
    assert limiter.check("user30", "192.0.2.1", 0.0) == 0  # other addresses are not
    assert limiter.check("user30", IP, 1.0) == pytest.approx(1.0)
    assert _fail(limiter, "user30", IP, 2.0) == 0
    assert limiter.check("user31", IP, 2.0) > 0
    assert limiter.check("user31", IP, 62.0) == 0  # refilled


def test_successful_logins_do_not_use_up_the_address_budget() -> None:
    limiter = LoginLimiter(per_ip_rate_per_minute=5)
    for i in range(50):  # an office behind one NAT address
        assert limiter.check(f"user{i}", IP, 0.0) == 0
        limiter.succeeded(f"user{i}", IP, 0.0)


def test_a_locked_account_does_not_use_up_the_address_budget() -> None:
    limiter = LoginLimiter(max_failures=1, per_ip_rate_per_minute=2)
    _fail(limiter, "ana", IP, 0.0)
    for _ in range(10):
        assert limiter.check("ana", IP, 0.0) > 0
    assert limiter.check("bob", IP, 0.0) == 0


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one host
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:192.0.2.1", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        ("unix-socket", "unix-socket", True),
    ],
)
def test_which_addresses_share_a_bucket(first: str, second: str, shared: bool) -> None:
    limiter = LoginLimiter(per_ip_rate_per_minute=1)
    assert limiter.check("a", first, 0.0) == 0
    assert (limiter.check("b", second, 0.0) > 0) is shared


def test_memory_is_bounded_by_max_tracked() -> None:
    limiter = LoginLimiter(max_failures=2, per_ip_rate_per_minute=1000, max_tracked=10)
    _fail(limiter, "ana", IP, 0.0)
    for i in range(100):
        _fail(limiter, f"user{i}", f"10.0.0.{i}", 1.0)
    assert len(limiter._accounts) <= 10 and len(limiter._buckets) <= 10
    _fail(limiter, "ana", IP, 2.0)  # ana's first failure was the oldest: forgotten
    assert limiter.check("ana", IP, 3.0) == 0


def test_entries_that_remember_nothing_are_dropped() -> None:
    limiter = LoginLimiter(max_failures=5, window_s=100, lockout_s=900)
    for i in range(20):
        _fail(limiter, f"user{i}", f"10.0.0.{i}", 0.0)
    for now in (0.0, 1.0, 2.0, 3.0, 4.0):
        _fail(limiter, "locked", IP, now)
    assert len(limiter._accounts) == 21
    assert list(limiter._buckets) == [IP]  # the other 20 refilled within 2 s: forgotten
    limiter.check("someone", "192.0.2.1", 500.0)
    assert list(limiter._accounts) == ["locked"]  # locked until 904; the rest expired
    assert list(limiter._buckets) == ["192.0.2.1"]
    limiter.check("someone", "192.0.2.1", 905.0)
    assert list(limiter._accounts) == []


def test_concurrent_attempts_from_one_address_get_exactly_the_burst() -> None:
    limiter = LoginLimiter(per_ip_rate_per_minute=30)
    allowed: list[float] = []
    barrier = threading.Barrier(16)

    def attempt(worker: int) -> None:
        barrier.wait()
        for i in range(10):
            allowed.append(limiter.check(f"user{worker}-{i}", IP, 0.0))

    threads = [threading.Thread(target=attempt, args=(worker,)) for worker in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(0.0) == 30 and len(allowed) == 160


def test_a_clock_stepping_back_refills_nothing() -> None:
    limiter = LoginLimiter(per_ip_rate_per_minute=1)
    assert limiter.check("a", IP, 100.0) == 0
    assert limiter.check("a", IP, 50.0) > 0


@pytest.mark.parametrize(
    "params",
    [
        {"max_failures": 0},
        {"max_tracked": 0},
        {"window_s": 0},
        {"lockout_s": -1},
        {"per_ip_rate_per_minute": 0},
        {"per_ip_rate_per_minute": float("inf")},
    ],
)
def test_nonsense_parameters_are_refused(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LoginLimiter(**params)  # type: ignore[arg-type]


def test_repr_shows_the_parameters() -> None:
    assert repr(LoginLimiter(max_failures=3)) == (
        "LoginLimiter(max_failures=3, window_s=900, lockout_s=900, "
        "per_ip_rate_per_minute=30, max_tracked=100000)"
    )
