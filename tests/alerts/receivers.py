"""Real peers for the delivery tests, each on a free 127.0.0.1 port: an SMTP server
(aiosmtpd) that keeps the messages it accepts, and an HTTP receiver (the standard
library's server) that keeps the requests it gets and can be told to fail first.

Both are context managers; each starts in its own thread and stops on exit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(condition: threading.Condition, ready: Callable[[], bool], timeout_s: float) -> bool:
    with condition:
        return condition.wait_for(ready, timeout_s)


@dataclass(frozen=True, slots=True)
class Received:
    """One request the HTTP receiver got."""

    ts: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) closed its socket: nothing to report."""


class HttpReceiver:
    """Answers ``fail_first`` requests with ``fail_status``, then 200; keeps every request.

    >>> with HttpReceiver() as receiver:
    ...     receiver.url("/hook").startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self, *, port: int = 0, fail_first: int = 0, fail_status: int = 500, delay_s: float = 0.0
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.requests: list[Received] = []
        self._condition = threading.Condition()
        self._server = _QuietServer((HOST, port), self._handler_class())
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://{HOST}:{self.port}{path}"

    def wait_for(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until ``count`` requests were answered with success."""
        return _wait(self._condition, lambda: len(self.succeeded()) >= count, timeout_s)

    def succeeded(self) -> list[Received]:
        with self._condition:
            return self.requests[self.fail_first :]

    def _record(self, request: Received) -> int:
        with self._condition:
            self.requests.append(request)
            status = self.fail_status if len(self.requests) <= self.fail_first else 200
            self._condition.notify_all()
        return status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver._record(
                    Received(time.time(), "POST", self.path, dict(self.headers.items()), body)
                )
                payload = b'{"ok": true}' if status == 200 else b"boom"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read ``requests`` instead."""

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


class SmtpReceiver:
    """An aiosmtpd server without TLS or authentication that keeps what it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._condition = threading.Condition()
        self.port = free_port()
        self._controller = Controller(self, hostname=HOST, port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        message = message_from_bytes(content, _class=EmailMessage, policy=default_policy)
        with self._condition:
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            self._condition.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float = 5.0) -> bool:
        return _wait(self._condition, lambda: len(self.messages) >= count, timeout_s)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._controller.stop()
