"""Paths shaped like a probe for files that should not be served.

Scanners ask for what a site might have left behind: a script's source under another
extension (``cart.jsp.java``, ``index.php.bak``), path info after a file
(``/login.jsp/123.jsp``, ``/logo.jpg/x``), backup copies (``~``). An API's own routes
are words and ids, not files under files, so such a path is worth a finding even as a
single request from an address never seen before. Common compound extensions that
sites do serve (``.tar.gz``, ``.min.js``, source maps) are not probes.
"""

from __future__ import annotations

import re

from detectors.payload.classify import Signal

PROBE_RULE = 990600
_FILE = r"[^/]*\.[A-Za-z][A-Za-z0-9]{0,4}"
_PROBE = re.compile(
    rf"/{_FILE}/[^/]"  # path info after a file
    rf"|/{_FILE}\.[A-Za-z0-9]{{1,5}}(?:/|$)"  # a file under two extensions
    r"|/[^/]+~(?:/|$)"  # an editor's backup copy
)
_SERVED = re.compile(
    r"\.(?:min\.(?:js|css)|tar\.(?:gz|bz2|xz|zst)|d\.ts|(?:js|css)\.map|"
    r"[a-z0-9]+\.(?:gz|br|zst|sig|asc|sha256|md5))(?:/|$)",
    re.IGNORECASE,
)


def probe_path(path: str) -> Signal | None:
    """A signal when ``path`` is shaped like a probe for a file.

    >>> probe_path("/tienda1/publico/carrito.jsp.java").matched
    'carrito.jsp.java'
    >>> probe_path("/login.jsp/123.jsp").subkind
    'probe_path'
    >>> [probe_path(p) for p in ("/api/v1/orders/12", "/static/app.min.js", "/v1.2/users")]
    [None, None, None]
    """
    if "." not in path and "~" not in path:
        return None
    found = _PROBE.search(path)
    if found is None or _SERVED.search(path):
        return None
    matched = found.group().strip("/").split("/", 1)[0]
    return Signal(
        rule_id=PROBE_RULE,
        kind="endpoint_scanning",
        subkind="probe_path",
        severity=2,
        variable="REQUEST_FILENAME",
        name="",
        matched=matched,
        fragment=path[:200],
        paranoia_level=1,
    )
