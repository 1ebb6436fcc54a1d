"""The OWASP Core Rule Set on ModSecurity v3 (the ``libmodsecurity`` wheel), run over a
request rebuilt from what the access log carried.

Rules come from Debian's ``modsecurity-crs`` package (``/usr/share/modsecurity-crs``
and ``/etc/modsecurity/crs``), loaded in detection-only mode with request-body access,
at a paranoia level, without the IP-reputation rules (they need GeoIP, and addresses
are judged elsewhere) and without the response rules (logs carry no response body).

One engine is built per process and reused: loading the rules takes about a second,
inspecting a request about 0.9 ms, which is why the payload stage puts a prefilter in
front of it (issue 7). ``tests/detectors/test_crs.py`` shows it at work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from libmodsecurity import ModSecurity, RuleMessage, RulesSet, Transaction

RULES_DIR = Path("/usr/share/modsecurity-crs/rules")
SETUP_FILE = Path("/etc/modsecurity/crs/crs-setup.conf")
SKIPPED = ("REQUEST-910-",)  # IP reputation: needs GeoIP, and is not about payloads
_BASE = """SecRuleEngine DetectionOnly
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 1048576
SecRequestBodyLimitAction ProcessPartial
SecArgumentSeparator &
SecCookieFormat 0
SecRule REQUEST_HEADERS:Content-Type "@rx (?i)^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
"""
API_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_ANOMALY_RULES = frozenset({949110, 949111, 980130, 980140})  # totals, not attacks


class CrsError(Exception):
    """The rules could not be loaded: the file, line and reason."""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One CRS rule that matched: its id, message, the variable and data it matched."""

    rule_id: int
    message: str
    data: str
    severity: int
    tags: tuple[str, ...]

    @property
    def family(self) -> int:
        """The rule file's number: 942 for SQL injection, 930 for LFI, ..."""
        return self.rule_id // 1000


class CrsEngine:
    """The CRS, loaded once; ``inspect`` is safe to call from several threads."""

    def __init__(self, rules: RulesSet, paranoia_level: int) -> None:
        self.paranoia_level = paranoia_level
        self._modsecurity = ModSecurity()
        self._modsecurity.set_connector_information("Gatewatch payload stage")
        self._modsecurity.set_log_callback(_quiet)
        self._rules = rules  # shared, read-only: transactions may run on several threads

    @classmethod
    def load(
        cls,
        *,
        paranoia_level: int = 1,
        rules_dir: Path = RULES_DIR,
        setup_file: Path = SETUP_FILE,
        allowed_methods: Iterable[str] = API_METHODS,
        extra_rules: str = "",
    ) -> CrsEngine:
        """Load the rule set; ``extra_rules`` (SecLang, e.g. exclusions) go last.

        ``allowed_methods`` replaces CRS's web-site default (GET HEAD POST OPTIONS):
        an API's PUT, PATCH and DELETE are not attacks.
        """
        if not 1 <= paranoia_level <= 4:
            raise ValueError(f"paranoia_level: 1 to 4, got {paranoia_level}")
        if not rules_dir.is_dir() or not setup_file.is_file():
            raise CrsError(
                f"the Core Rule Set is not installed ({rules_dir}, {setup_file}): "
                "apt-get install modsecurity-crs"
            )
        files = [
            p for p in sorted(rules_dir.glob("REQUEST-*.conf")) if not p.name.startswith(SKIPPED)
        ]
        if not files:
            raise CrsError(f"no REQUEST-*.conf rule files in {rules_dir}")
        rules = RulesSet()
        _load(rules, _BASE, "base")
        _load_file(rules, setup_file)
        _load(
            rules,
            f'SecAction "id:900000,phase:1,nolog,pass,t:none,'
            f'setvar:tx.paranoia_level={paranoia_level}"',
            "paranoia level",
        )
        methods = " ".join(sorted({m.upper() for m in allowed_methods}))
        if not methods or not all(m.isalpha() for m in methods.split()):
            raise ValueError(f"allowed_methods: HTTP method names, got {methods!r}")
        _load(
            rules,
            f'SecAction "id:900001,phase:1,nolog,pass,t:none,'
            f"setvar:'tx.allowed_methods={methods}'\"",
            "allowed methods",
        )
        for path in files:
            _load_file(rules, path)
        if extra_rules:
            _load(rules, extra_rules, "extra rules")
        return cls(rules, paranoia_level)

    def inspect(
        self,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        client_ip: str = "0.0.0.0",  # noqa: S104 - an address for the rules, nothing binds
    ) -> list[RuleMatch]:
        """The attack rules a request matches (anomaly totals left out), in rule order."""
        transaction = Transaction(self._modsecurity, self._rules)
        transaction.process_connection(client_ip, 0, "127.0.0.1", 443)
        transaction.process_uri(uri, method, "1.1")
        for name, value in headers:
            transaction.add_request_header(name, value)
        transaction.process_request_headers()
        if body:
            transaction.append_request_body(body)
        transaction.process_request_body()
        seen: dict[int, RuleMatch] = {}
        for message in transaction.get_rule_messages():
            if message.rule_id in _ANOMALY_RULES or message.rule_id in seen:
                continue
            seen[message.rule_id] = RuleMatch(
                rule_id=message.rule_id,
                message=_text(message, "message"),
                data=_text(message, "data")[:512],
                severity=message.severity,
                tags=tuple(message.tags),
            )
        return list(seen.values())


def _text(message: RuleMessage, field: str) -> str:
    """A message field; the binding decodes it as UTF-8 and fails on other bytes
    (a matched latin-1 value), which must not lose the match."""
    try:
        return str(getattr(message, field))
    except UnicodeDecodeError:
        return "(matched data is not UTF-8)"


def _quiet(_: str) -> None:
    """ModSecurity's server log: the matches are read from the transaction instead."""


def _load(rules: RulesSet, text: str, what: str) -> None:
    if rules.load(text) < 0:
        raise CrsError(f"{what}: {rules.get_parser_error().strip()}")


def _load_file(rules: RulesSet, path: Path) -> None:
    if rules.load_from_uri(str(path)) < 0:
        raise CrsError(rules.get_parser_error().strip())
