"""Where rendered alerts go: the console, a JSON-lines file, a Slack-style webhook, or
any Apprise URL (chat, email, webhooks).

A channel is built once from its name and URL (an invalid URL stops startup), says which
format it wants its body in, and sends one message at a time. A failed send raises
``DeliveryError`` whose text is safe to log and store: the URL's secrets never appear.

>>> mask_url("slack://T000/B000/XXXX")
'slack://T0…/…'
>>> mask_url("mailtos://alerts:hunter2@smtp.example.com:465?to=soc@example.com")
'mailtos://al…:…@smtp.example.com:465?to=…'
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import orjson
from apprise import Apprise, AppriseAsset, NotifyFormat
from apprise.plugins.base import NotifyBase

from gatewatch.errors import GatewatchError

log = logging.getLogger(__name__)

Format = Literal["markdown", "html", "text"]

_MASK = "…"
_HTML_SCHEMES = frozenset({"mailto", "mailtos"})
_TEXT_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_SLACK_SCHEMES = {"slack+http": "http", "slack+https": "https"}
_NOTIFY_FORMAT: dict[Format, NotifyFormat] = {
    "markdown": NotifyFormat.MARKDOWN,
    "html": NotifyFormat.HTML,
    "text": NotifyFormat.TEXT,
}
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


class DeliveryError(GatewatchError):
    """A channel could not deliver a message. The text names the channel and the reason
    and holds no secret; ``retriable`` is False when trying again cannot help (the
    receiver rejected the request as invalid)."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        self.retriable = retriable
        super().__init__(message)


class Channel(Protocol):
    """One destination. ``send`` delivers one message or raises ``DeliveryError``; it
    gives up after the channel's timeout, so a dead peer cannot hold a sender."""

    name: str
    format: Format

    async def send(self, title: str, body: str) -> None: ...


# --- masking ---------------------------------------------------------------------------


def _clip(part: str) -> str:
    return f"{part[:2]}{_MASK}" if part else ""


def _is_network_host(host: str) -> bool:
    """A host name or address (shown) rather than a token in the host position (masked):
    Apprise puts webhook ids and API keys there (``slack://T000/…``, ``pover://…``)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        labels = host.split(".")
        return (
            len(labels) > 1
            and len(host) <= 253
            and labels[-1].isalpha()
            and all(_HOST_LABEL.match(label) for label in labels)
        )
    return True


def _split_netloc(netloc: str) -> tuple[str, str, str, str | None]:
    """``(user, password, host, port)``; the port is None when it is not a number (then
    Apprise uses that place for a token and the whole host part is a secret)."""
    userinfo, _, hostport = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host, port = f"{host}]", rest.removeprefix(":")
    else:
        host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        return user, password, hostport, None
    return user, password, host, port


def mask_url(url: str) -> str:
    """The URL with its secrets cut: user names clipped, passwords, paths and query
    values replaced, a host kept only when it is a real host name or address."""
    if url == "console" or url.startswith("file:"):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _clip(url)
    if not parts.scheme or "://" not in url:
        return _clip(url)
    user, password, host, port = _split_netloc(parts.netloc)
    masked = f"{parts.scheme}://"
    if user or password:
        masked += _clip(user) + (f":{_MASK}" if password else "") + "@"
    if port is None:
        masked += _clip(host)
    else:
        masked += host if _is_network_host(host) else _clip(host)
        masked += f":{port}" if port else ""
    if parts.path.strip("/"):
        masked += f"/{_MASK}"
    if parts.query:
        keys = [pair.partition("=")[0] for pair in parts.query.split("&") if pair]
        masked += "?" + "&".join(f"{key}={_MASK}" for key in keys)
    if parts.fragment:
        masked += f"#{_MASK}"
    return masked


def _secrets_of(url: str) -> tuple[str, ...]:
    """Every part of ``url`` that could be a secret, longest first, for scrubbing error
    text that a library built from the URL (a path in a connection error, say)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return (url,)
    user, password, host, port = _split_netloc(parts.netloc)
    found = {user, password}
    if port is None or not _is_network_host(host):
        found.add(host)
    found.update(parts.path.split("/"))
    found.update(pair.partition("=")[2] for pair in parts.query.split("&"))
    found.add(parts.fragment)
    found |= {unquote(part) for part in found}
    return tuple(sorted((part for part in found if len(part) >= 3), key=len, reverse=True))


def mask_urls(text: str) -> str:
    """``text`` with every URL in it masked, for errors raised by code we do not own.

    >>> mask_urls("POST https://hooks.example.com/T1/B2/secret failed")
    'POST https://hooks.example.com/… failed'
    """
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group(0)), text)


class _Scrubber:
    """Removes one URL's secrets, and any URL at all, from text meant for logs."""

    def __init__(self, url: str) -> None:
        self._secrets = _secrets_of(url)

    def __call__(self, text: str) -> str:
        text = mask_urls(text)
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


# --- channels --------------------------------------------------------------------------


class ConsoleChannel:
    """Prints each alert to standard output: the default when nothing is configured."""

    format: Format = "text"

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, title: str, body: str) -> None:
        try:
            sys.stdout.write(f"{title}\n{body}\n\n")
            sys.stdout.flush()
        except OSError as exc:
            raise DeliveryError(f"{self.name}: cannot write to stdout: {exc}") from exc

    def __repr__(self) -> str:
        return f"ConsoleChannel(name={self.name!r})"


class FileChannel:
    """Appends one JSON object per alert (``ts``, ``title``, ``body``) to a file and
    syncs it to disk before the send counts as delivered."""

    format: Format = "text"

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    async def send(self, title: str, body: str) -> None:
        line = orjson.dumps({"ts": time.time(), "title": title, "body": body}) + b"\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise DeliveryError(f"{self.name}: cannot append to {self.path}: {exc}") from exc

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def __repr__(self) -> str:
        return f"FileChannel(name={self.name!r}, path={str(self.path)!r})"


class SlackWebhookChannel:
    """POSTs a Slack incoming-webhook payload (``text`` plus ``blocks``) to any host:
    Apprise's ``slack://`` only reaches hooks.slack.com, while Mattermost, Rocket.Chat
    and self-hosted relays accept the same payload. URL: ``slack+https://host/path``.
    """

    format: Format = "markdown"

    def __init__(self, name: str, url: str, *, timeout_s: float) -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError(f"alert channel {name!r}: {mask_url(url)} names no host")
        self.name = name
        self.timeout_s = timeout_s
        self._https = _SLACK_SCHEMES[parts.scheme] == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._masked = mask_url(url)
        self._scrub = _Scrubber(url)

    @staticmethod
    def payload(title: str, body: str) -> dict[str, object]:
        """Slack's header block holds 150 characters and a section 3,000; ``text`` is
        the full message for clients that ignore blocks (and for notifications)."""
        return {
            "text": f"{title}\n{body}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
            ],
        }

    async def send(self, title: str, body: str) -> None:
        data = orjson.dumps(self.payload(title, body))
        try:
            status = await asyncio.wait_for(
                asyncio.to_thread(self._post, data), timeout=self.timeout_s + 1.0
            )
        except TimeoutError as exc:
            raise DeliveryError(f"{self.name}: no answer within {self.timeout_s:g} s") from exc
        except OSError as exc:
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            raise DeliveryError(f"{self.name}: {self._masked}: {reason}") from exc
        if not 200 <= status < 300:
            retriable = status == 429 or status >= 500
            raise DeliveryError(f"{self.name}: {self._masked}: HTTP {status}", retriable=retriable)

    def _post(self, data: bytes) -> int:
        connection_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_type(self._host, self._port, timeout=self.timeout_s)
        try:
            connection.request(
                "POST", self._target, body=data, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def __repr__(self) -> str:
        return f"SlackWebhookChannel(name={self.name!r}, url={self._masked!r})"


class AppriseChannel:
    """Any URL Apprise understands (its documentation lists them): Slack, Teams,
    Mattermost (``mmost://``), email (``mailto://``, ``mailtos://``), JSON, form and XML
    webhooks, and more. One service per channel; the URL is checked when built.

    Email goes as HTML, which Apprise sends as multipart/alternative with a plain-text
    part derived from the HTML. For an SMTP relay without TLS: ``mailto://host:25?
    mode=insecure&from=gatewatch@example.com&to=soc@example.com``.
    """

    def __init__(self, name: str, url: str, *, timeout_s: float) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._masked = mask_url(url)
        self._scrub = _Scrubber(url)
        scheme = urlsplit(url).scheme.lower()
        self.format: Format = (
            "html" if scheme in _HTML_SCHEMES else "text" if scheme in _TEXT_SCHEMES else "markdown"
        )
        asset = AppriseAsset(
            app_id="Gatewatch",
            app_desc="Gatewatch alerts",
            storage_mode="memory",
            service_timeout=timeout_s,
        )
        service = _instantiate(url, asset)
        if service is None:
            raise ValueError(
                f"alert channel {name!r}: {self._masked} is not a valid Apprise URL"
                " (unknown scheme, or a required part is missing or malformed)"
            )
        self._apprise = Apprise(asset=asset)
        self._apprise.add(service)

    async def send(self, title: str, body: str) -> None:
        try:
            result = await asyncio.wait_for(
                self._apprise.async_notify(
                    body=body,
                    title=title,
                    body_format=_NOTIFY_FORMAT[self.format],
                    timeout=self.timeout_s,
                ),
                timeout=self.timeout_s + 1.0,
            )
        except TimeoutError as exc:
            raise DeliveryError(f"{self.name}: no answer within {self.timeout_s:g} s") from exc
        if result:
            return
        problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        reason = self._scrub("; ".join(problems[-3:]) or f"Apprise status {result.status.name}")
        raise DeliveryError(f"{self.name}: {self._masked}: {reason}")

    def __repr__(self) -> str:
        return f"AppriseChannel(name={self.name!r}, url={self._masked!r})"


def _instantiate(url: str, asset: AppriseAsset) -> NotifyBase | None:
    with warnings.catch_warnings():
        # Apprise's email plugin imports imghdr (deprecated in 3.11) while it loads
        # its plugins; nothing of ours uses it, and warnings are errors in the tests.
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        return Apprise.instantiate(url, asset=asset)


def build_channel(name: str, url: str, *, timeout_s: float = 10.0) -> Channel:
    """The channel for ``url``: ``console``, ``file:///abs/path`` or ``file:relative``,
    ``slack+https://host/path``, or an Apprise URL. Raises ``ValueError`` naming the
    channel (its URL masked) when the URL cannot work."""
    if url == "console":
        return ConsoleChannel(name)
    if url.startswith("file:"):
        path = url.removeprefix("file://") if url.startswith("file://") else url[len("file:") :]
        if not path or path.endswith("/"):
            raise ValueError(f"alert channel {name!r}: {url!r} names no file")
        return FileChannel(name, Path(unquote(path)))
    scheme = url.partition("://")[0].lower()
    if scheme in _SLACK_SCHEMES:
        return SlackWebhookChannel(name, url, timeout_s=timeout_s)
    return AppriseChannel(name, url, timeout_s=timeout_s)
