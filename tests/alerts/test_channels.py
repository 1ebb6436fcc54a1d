"""Channels against real peers on 127.0.0.1: an SMTP server and an HTTP receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from alerts.channels import DeliveryError, build_channel, mask_url, mask_urls
from tests.alerts.receivers import HttpReceiver, SmtpReceiver, free_port

pytestmark = pytest.mark.timeout(10)

TITLE = "[CRITICAL] Credential stuffing on POST /login"
HTML_BODY = "<p><b>412</b> failed logins from <code>203.0.113.7</code></p>"
MD_BODY = "**412** failed logins from `203.0.113.7`"


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def send(url: str, title: str = TITLE, body: str = MD_BODY, *, timeout_s: float = 5.0) -> None:
    asyncio.run(build_channel("ops", url, timeout_s=timeout_s).send(title, body))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("slack://T000/B000/XXXX", "slack://T0…/…"),
        ("mailtos://alerts:hunter2@smtp.example.com:465", "mailtos://al…:…@smtp.example.com:465"),
        ("json://127.0.0.1:8080/hook?token=abc123", "json://127.0.0.1:8080/…?token=…"),
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/", "tgram://12…"),
        ("mmost://mattermost.example.com/8xqtoken", "mmost://mattermost.example.com/…"),
        ("console", "console"),
        ("file:alerts.jsonl", "file:alerts.jsonl"),
    ],
)
def test_mask_url_keeps_the_place_and_hides_the_secrets(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_mask_urls_masks_every_url_in_a_text() -> None:
    text = "POST http://u:pw1234@relay.example.com/hook/SECRET failed; retry slack://T1/B2/X3"
    masked = mask_urls(text)
    assert "pw1234" not in masked and "SECRET" not in masked and "B2" not in masked
    assert "relay.example.com" in masked


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("console", "text"),
        ("file:alerts.jsonl", "text"),
        ("mailto://127.0.0.1:2525?mode=insecure&from=gw@example.com", "html"),
        ("mailtos://user:pw@smtp.example.com", "html"),
        ("json://127.0.0.1:8080/hook", "text"),
        ("form://127.0.0.1:8080/hook", "text"),
        ("xml://127.0.0.1:8080/hook", "text"),
        ("mmost://127.0.0.1:8065/token123", "markdown"),
        ("slack://T000/B000/XXXX", "markdown"),
        ("slack+https://chat.example.com/hooks/abc", "markdown"),
    ],
)
def test_format_follows_the_scheme(url: str, fmt: str) -> None:
    assert build_channel("ops", url).format == fmt


@pytest.mark.parametrize(
    "url",
    [
        "nosuchscheme://admin:hunter22@example.com/tok3nSecret",
        "mailto://admin:hunter22@/?from=not-an-address",
        "slack+https://:hunter22@/tok3nSecret",
    ],
)
def test_invalid_url_names_the_channel_and_hides_secrets(url: str) -> None:
    with pytest.raises(ValueError, match="'ops'") as caught:
        build_channel("ops", url)
    assert "hunter22" not in str(caught.value) and "tok3nSecret" not in str(caught.value)


def test_console_prints_title_and_body(capsys: pytest.CaptureFixture[str]) -> None:
    send("console", body="412 failed logins")
    assert capsys.readouterr().out == f"{TITLE}\n412 failed logins\n\n"


def test_file_appends_one_json_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    send(f"file://{path}", body="first")
    send(f"file://{path}", body="second")
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["body"] for line in lines] == ["first", "second"]
    assert set(lines[0]) == {"ts", "title", "body"} and lines[0]["title"] == TITLE


def test_email_reaches_smtp_with_text_and_html_parts() -> None:
    with SmtpReceiver() as smtp:
        url = (
            f"mailto://127.0.0.1:{smtp.port}?mode=insecure"
            "&from=gatewatch@example.com&to=soc@example.com"
        )
        channel = build_channel("email", url)
        asyncio.run(channel.send(TITLE, HTML_BODY))
        assert smtp.wait_for(1)
    message = smtp.messages[0]
    assert "gatewatch@example.com" in message["From"]
    assert "soc@example.com" in message["To"]
    assert message["Subject"] == TITLE
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and rich is not None
    assert "412 failed logins from 203.0.113.7" in " ".join(plain.get_content().split())
    assert "<code>203.0.113.7</code>" in rich.get_content()
    assert smtp.envelopes[0] == ("gatewatch@example.com", ["soc@example.com"])


def test_json_webhook_gets_title_and_message(http: HttpReceiver) -> None:
    send(http.url("/alerts", scheme="json"), body="plain text body")
    assert http.wait_for(1)
    request = http.requests[0]
    assert request.path == "/alerts"
    assert request.headers["Content-Type"].startswith("application/json")
    payload = request.json()
    assert payload["title"] == TITLE and payload["message"] == "plain text body"


def test_mattermost_webhook_gets_its_payload(http: HttpReceiver) -> None:
    send(http.url("/hooktoken42", scheme="mmost"))
    assert http.wait_for(1)
    request = http.requests[0]
    assert request.path == "/hooks/hooktoken42"
    payload = request.json()
    assert TITLE in payload["text"] and MD_BODY in payload["text"]
    assert payload["username"] == "Gatewatch"


def test_slack_style_webhook_gets_text_and_blocks(http: HttpReceiver) -> None:
    send(http.url("/services/T1/B2/token", scheme="slack+http"))
    assert http.wait_for(1)
    request = http.requests[0]
    assert request.path == "/services/T1/B2/token"
    payload = request.json()
    assert payload["text"] == f"{TITLE}\n{MD_BODY}"
    header, section = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": TITLE}}
    assert section["text"] == {"type": "mrkdwn", "text": MD_BODY}


def test_http_500_is_a_delivery_error() -> None:
    with HttpReceiver(fail_first=5) as http:
        with pytest.raises(DeliveryError, match="500") as apprise_error:
            send(http.url("/hook", scheme="json"))
        with pytest.raises(DeliveryError, match="HTTP 500") as slack_error:
            send(http.url("/hook", scheme="slack+http"))
    assert apprise_error.value.retriable and slack_error.value.retriable


def test_http_404_is_not_worth_retrying() -> None:
    with (
        HttpReceiver(fail_first=1, fail_status=404) as http,
        pytest.raises(DeliveryError, match="HTTP 404") as caught,
    ):
        send(http.url("/gone", scheme="slack+http"))
    assert not caught.value.retriable


@pytest.mark.parametrize(
    "url",
    [
        "json://gwuser:s3cretPass@127.0.0.1:{port}/hook/T0kenValue123?token=T0kenValue123",
        "slack+http://gwuser:s3cretPass@127.0.0.1:{port}/services/T0kenValue123",
        "mmost://127.0.0.1:{port}/T0kenValue123",
        "mailto://gwuser:s3cretPass@127.0.0.1:{port}?mode=insecure&from=gw@example.com",
    ],
)
def test_errors_never_carry_the_url_secrets(url: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        send(url.format(port=free_port()), timeout_s=3.0)
    text = str(caught.value)
    assert text.startswith("ops: ")
    assert "s3cretPass" not in text and "T0kenValue123" not in text


def test_a_silent_peer_times_out_within_the_bound() -> None:
    with HttpReceiver(delay_s=3.0) as http:
        with pytest.raises(DeliveryError, match="ops"):
            send(http.url("/hook", scheme="slack+http"), timeout_s=0.5)
        with pytest.raises(DeliveryError, match="ops"):
            send(http.url("/hook", scheme="json"), timeout_s=0.5)
