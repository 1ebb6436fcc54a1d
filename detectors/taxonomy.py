"""What each finding kind means to a SOC: its OWASP API Top 10 2023 id, its MITRE
ATT&CK technique, and the severity it gets unless a detector's config says otherwise.

One table, so every detector labels a kind the same way.
"""

from __future__ import annotations

from typing import NamedTuple

from gatewatch.finding import Severity


class KindInfo(NamedTuple):
    owasp: str
    mitre: str
    severity: Severity


TAXONOMY: dict[str, KindInfo] = {
    # API2 Broken Authentication; T1110.001 guessing, .003 spraying, .004 stuffing.
    "brute_force": KindInfo("API2:2023", "T1110.001", Severity.HIGH),
    "credential_stuffing": KindInfo("API2:2023", "T1110.004", Severity.HIGH),
    "password_spraying": KindInfo("API2:2023", "T1110.003", Severity.HIGH),
    # API1 Broken Object Level Authorization; T1213 data from information repositories.
    "bola": KindInfo("API1:2023", "T1213", Severity.HIGH),
    # API9 Improper Inventory Management; T1595.003 wordlist scanning.
    "endpoint_scanning": KindInfo("API9:2023", "T1595.003", Severity.MEDIUM),
    # API2; T1589.001 gather victim identity: credentials / account names.
    "user_enumeration": KindInfo("API2:2023", "T1589.001", Severity.MEDIUM),
    # API8 Security Misconfiguration (unsanitised input reaching interpreters); T1190.
    "injection": KindInfo("API8:2023", "T1190", Severity.HIGH),
    "malformed_request": KindInfo("API8:2023", "T1595.002", Severity.LOW),
    # API4 Unrestricted Resource Consumption; T1499.003 application exhaustion flood.
    "oversized_payload": KindInfo("API4:2023", "T1499.003", Severity.MEDIUM),
    "rate_anomaly": KindInfo("API4:2023", "T1499.003", Severity.MEDIUM),
    # API3 Broken Object Property Level Authorization (excessive data); T1567 exfiltration.
    "data_exfiltration": KindInfo("API3:2023", "T1567", Severity.HIGH),
    # API2; T1550.001 use of application access tokens.
    "token_misuse": KindInfo("API2:2023", "T1550.001", Severity.HIGH),
    # API8; T1557 adversary-in-the-middle (what cleartext or weak TLS invites).
    "insecure_transport": KindInfo("API8:2023", "T1557", Severity.MEDIUM),
    "anomaly": KindInfo("API4:2023", "", Severity.MEDIUM),
}
