"""Apache httpd access logs in the combined and common formats (mod_log_config).

``LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\"" combined``
and ``common`` (the same without referer and user agent), optionally preceded by
``%v:%p`` (``vhost_combined``) or followed by ``"%{X-Forwarded-For}i"`` and further
fields. ``ingest.parsers.clf`` reads them and documents where each field goes; ``%b``
writes ``-`` for an empty body, which leaves ``response_bytes`` out.
"""

from __future__ import annotations

from typing import ClassVar

from ingest.parsers.base import RawEvent
from ingest.parsers.clf import parse_combined


class ApacheCombinedParser:
    """Parses Apache combined and common log lines.

    >>> raw = ApacheCombinedParser().parse(b'192.0.2.44 - - [14/Nov/2023:23:13:20 +0100]'
    ...     b' "DELETE /v1/users/8812 HTTP/1.1" 204 -')
    >>> raw["ts"], raw["method"], raw["path"], raw["status"], "response_bytes" in raw
    ('14/Nov/2023:23:13:20 +0100', 'DELETE', '/v1/users/8812', '204', False)
    """

    name: ClassVar[str] = "apache"

    def parse(self, line: bytes) -> RawEvent:
        return parse_combined(line)
