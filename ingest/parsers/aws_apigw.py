"""AWS API Gateway access logs in JSON, for REST APIs and HTTP APIs.

API Gateway writes whatever JSON template the stage declares, built from ``$context``
variables; AWS's documented example (the console's "JSON" choice) is::

    {"requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
     "caller": "$context.identity.caller", "user": "$context.identity.user",
     "requestTime": "$context.requestTime", "httpMethod": "$context.httpMethod",
     "resourcePath": "$context.resourcePath", "status": "$context.status",
     "protocol": "$context.protocol", "responseLength": "$context.responseLength"}

and HTTP APIs log ``routeKey`` ("GET /pets/{id}") where REST APIs log ``resourcePath``.
The examples quote every value (``"status": "200"``: it stays a string) and ``-`` means
none. Keys are read under
the short names of AWS's examples and under the variable's own name without
``$context.`` (``identity.sourceIp``), the first present of several winning:

* ``request_id``: ``requestId`` (every access log format must include it)
* ``ts``: ``requestTimeEpoch``, else ``requestTime`` (CLF text)
* ``client_ip``: ``ip``, ``sourceIp``, ``identity.sourceIp`` (the TCP peer of API
  Gateway; no forwarding header is available to access logs)
* ``method``: ``httpMethod``; ``status``: ``status``; ``response_bytes``:
  ``responseLength``; ``host``: ``domainName``; ``user_agent``: ``userAgent``,
  ``identity.userAgent``
* ``latency_ms``: ``responseLatency``, else ``integrationLatency`` /
  ``integration.latency`` (the backend's share, short of API Gateway's own overhead)
* ``route``: ``resourcePath``, else the path of ``routeKey`` (``$default`` has none)
* ``path``: ``path`` (``$context.path``, which includes the stage); when a format logs
  no path, as AWS's examples do not, the route template stands in for it
* ``api_key_id``: ``apiKeyId``, ``identity.apiKeyId``; ``api_key``: ``apiKey``,
  ``identity.apiKey`` (the key itself: a secret, fingerprinted downstream)
* ``user``: the authorizer's ``sub`` claim (``sub``, ``claims.sub``,
  ``authorizer.claims.sub``), else a Lambda authorizer's ``principalId`` /
  ``authorizer.principalId``, else the IAM ``user`` / ``identity.user``, else
  ``caller`` / ``identity.caller``

An object without ``requestId``, or with none of ``httpMethod``, ``routeKey``,
``resourcePath``, ``requestTime``, ``requestTimeEpoch``, is not an access log line.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent, load_json_object, pick_first

# RawEvent key -> keys holding it, first present wins.
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request_id", ("requestId",)),
    ("ts", ("requestTimeEpoch", "requestTime")),
    ("client_ip", ("ip", "sourceIp", "identity.sourceIp")),
    ("method", ("httpMethod",)),
    ("path", ("path",)),
    ("status", ("status",)),
    ("response_bytes", ("responseLength",)),
    ("latency_ms", ("responseLatency", "integrationLatency", "integration.latency")),
    ("host", ("domainName",)),
    ("user_agent", ("userAgent", "identity.userAgent")),
    ("api_key_id", ("apiKeyId", "identity.apiKeyId")),
    ("api_key", ("apiKey", "identity.apiKey")),
    (
        "user",
        (
            "sub",
            "claims.sub",
            "authorizer.claims.sub",
            "principalId",
            "authorizer.principalId",
            "user",
            "identity.user",
            "caller",
            "identity.caller",
        ),
    ),
)


class AwsApiGatewayParser:
    """Parses API Gateway JSON access log lines (REST and HTTP APIs).

    >>> raw = AwsApiGatewayParser().parse(b'{"requestId": "c6af9ac6-7b61-11e6-9a41",'
    ...     b' "ip": "198.51.100.23", "requestTime": "14/Nov/2023:22:13:20 +0000",'
    ...     b' "httpMethod": "GET", "routeKey": "GET /pets/{id}", "status": "200",'
    ...     b' "responseLength": "48"}')
    >>> raw["ts"], raw["status"], raw["route"], raw["path"]
    ('14/Nov/2023:22:13:20 +0000', '200', '/pets/{id}', '/pets/{id}')
    """

    name: ClassVar[str] = "aws-apigw"

    def parse(self, line: bytes) -> RawEvent:
        return self.from_object(load_json_object(line))

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """The fields of an already decoded access log line (see the module docstring)."""
        if "requestId" not in obj:
            raise ParseError("not an API Gateway access log: missing field 'requestId'")
        if (
            "httpMethod" not in obj
            and "routeKey" not in obj
            and "resourcePath" not in obj
            and "requestTime" not in obj
            and "requestTimeEpoch" not in obj
        ):
            raise ParseError(
                "not an API Gateway access log: none of httpMethod, routeKey, resourcePath,"
                " requestTime, requestTimeEpoch"
            )
        get = obj.get
        fields: dict[str, Any] = {}
        pick_first(obj, _FIELDS, fields)

        route = get("resourcePath")
        if not (isinstance(route, str) and route.startswith("/")):
            route = _route_of_key(get("routeKey"))
        if route is not None:
            fields["route"] = route
            if "path" not in fields:
                fields["path"] = route
        return cast("RawEvent", fields)


def _route_of_key(route_key: Any) -> str | None:
    """The path template of an HTTP API route key: ``GET /pets/{id}`` -> ``/pets/{id}``."""
    if not isinstance(route_key, str):
        return None
    if route_key.startswith("/"):
        return route_key
    _method, _, template = route_key.partition(" ")
    return template if template.startswith("/") else None
