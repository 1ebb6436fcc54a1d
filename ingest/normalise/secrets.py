"""Secrets become stable salted fingerprints before anything is stored.

A fingerprint is ``fp:`` + 16 hex digits of a keyed BLAKE2b of the secret: the same
key, token or cookie always gives the same fingerprint (analysts can group and search
by it) but the secret cannot be read back or guessed offline without the salt.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote_plus

FINGERPRINT_PREFIX = "fp:"
_RECENT_MAX = 4096
_MAX_HEADERS = 64
_MAX_HEADER_VALUE = 1024


class Fingerprinter:
    """Keyed, stable fingerprints of secrets.

    >>> fp = Fingerprinter(b"salt")
    >>> fp("hunter2") == fp("hunter2"), fp("hunter2").startswith("fp:"), len(fp("x"))
    (True, True, 19)
    """

    __slots__ = ("_key", "_recent")

    def __init__(self, salt: bytes) -> None:
        if not salt:
            raise ValueError("a fingerprint salt must not be empty")
        self._key = hashlib.blake2b(salt, digest_size=32).digest()
        # Sessions send the same token on every request: a small memo of recent
        # fingerprints saves the hash. It holds nothing the process did not already
        # read in clear, and is bounded.
        self._recent: dict[str, str] = {}

    def __call__(self, secret: str) -> str:
        known = self._recent.get(secret)
        if known is not None:
            return known
        if secret.startswith(FINGERPRINT_PREFIX):
            return secret  # already masked (for example by an upstream Gatewatch)
        digest = hashlib.blake2b(
            secret.encode("utf-8", "surrogatepass"), key=self._key, digest_size=8
        )
        fingerprint = FINGERPRINT_PREFIX + digest.hexdigest()
        if len(self._recent) >= _RECENT_MAX:
            self._recent.clear()
        self._recent[secret] = fingerprint
        return fingerprint

    def __repr__(self) -> str:
        return "Fingerprinter(<salt hidden>)"


def load_or_create_salt(data_dir: Path) -> bytes:
    """The installation's salt, created (mode 0600) on first use under ``data_dir``."""
    path = data_dir / "fingerprint.salt"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(salt)
    return salt


class SecretMasker:
    """Masks the secrets a request carries: query parameters, headers, bodies, raw text.

    >>> m = SecretMasker(Fingerprinter(b"s"), ["token"], ["authorization", "cookie"])
    >>> masked, key = m.query("page=2&token=abc123")
    >>> masked == "page=2&token=" + key, key.startswith("fp:")
    (True, True)
    >>> m.authorization("Bearer abc.def.ghi").startswith("Bearer fp:")
    True
    >>> m.cookie("sid=42; theme=dark").count("fp:")
    2
    """

    def __init__(
        self,
        fingerprint: Fingerprinter,
        sensitive_query_params: Iterable[str],
        sensitive_headers: Iterable[str],
    ) -> None:
        self.fingerprint = fingerprint
        self.sensitive_query_params = frozenset(p.lower() for p in sensitive_query_params)
        self.sensitive_headers = frozenset(h.lower() for h in sensitive_headers)
        names = "|".join(
            re.escape(n) for n in sorted(self.sensitive_query_params | self.sensitive_headers)
        )
        # key=value, "key": "value", key: value — in query strings, JSON, headers, forms.
        self._text_pattern = re.compile(
            rf"""(?ix)
            (?P<key>(?:^|(?<=[\s?&;,{{"'])){_PREFIXED}(?:{names}))
            (?P<sep>"?\s*[:=]\s*"?)
            (?P<scheme>(?:bearer|basic|token|digest)\s+)?
            (?P<value>[^\s&;,"'}}]+)
            """
        )
        self._jwt_pattern = re.compile(r"\beyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]*")

    def query(self, query: str) -> tuple[str, str]:
        """The query with sensitive parameter values fingerprinted, and the fingerprint
        of the first credential found there ("" when none)."""
        if not query or "=" not in query:
            return query, ""
        found = ""
        parts = query.split("&")
        changed = False
        for i, part in enumerate(parts):
            name, eq, value = part.partition("=")
            if eq and value and unquote_plus(name).lower() in self.sensitive_query_params:
                masked = self.fingerprint(unquote_plus(value))
                parts[i] = f"{name}={masked}"
                changed = True
                found = found or masked
        return ("&".join(parts) if changed else query), found

    def authorization(self, value: str) -> str:
        scheme, space, credentials = value.strip().partition(" ")
        if space and credentials:
            return f"{scheme} {self.fingerprint(credentials.strip())}"
        return self.fingerprint(value)

    def cookie(self, value: str) -> str:
        masked = []
        for pair in value.split(";"):
            name, eq, content = pair.strip().partition("=")
            if eq:
                masked.append(f"{name}={self.fingerprint(content)}")
            elif name:
                masked.append(self.fingerprint(name))
        return "; ".join(masked)

    def headers(
        self, headers: Mapping[str, object], skip: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """Lower-case names, text values (capped), sensitive values fingerprinted;
        names in ``skip`` (already handled by the caller) are left out."""
        result: dict[str, str] = {}
        for raw_name, raw_value in headers.items():
            if len(result) >= _MAX_HEADERS:
                break
            name = str(raw_name).lower()
            if name in skip:
                continue
            value = raw_value if isinstance(raw_value, str) else _header_text(raw_value)
            if name in self.sensitive_headers:
                if name in ("authorization", "proxy-authorization"):
                    value = self.authorization(value)
                elif name in ("cookie", "set-cookie"):
                    value = self.cookie(value)
                else:
                    value = self.fingerprint(value)
            elif len(value) > _MAX_HEADER_VALUE:
                value = value[:_MAX_HEADER_VALUE]
            result[name] = value
        return result

    def text(self, text: str) -> str:
        """Best-effort masking of free text (bodies, dead-letter lines): credential
        fields written as ``key=value`` or ``"key": "value"``, and bare JWTs."""
        if not text:
            return text
        masked = self._text_pattern.sub(self._mask_match, text)
        return self._jwt_pattern.sub(lambda m: self.fingerprint(m.group(0)), masked)

    def _mask_match(self, match: re.Match[str]) -> str:
        scheme = match.group("scheme") or ""
        value = match.group("value")
        return f"{match.group('key')}{match.group('sep')}{scheme}{self.fingerprint(value)}"


# Header/field names are matched with optional http_/request_ prefixes as log formats
# write them (nginx ``http_authorization``, Traefik ``request_Authorization``).
_PREFIXED = r"(?:\$?http_|request_)?"


def _header_text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)
