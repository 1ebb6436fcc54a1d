from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from gatewatch.errors import ConfigError
from ingest.normalise.routes import (
    MAX_SEGMENTS,
    RouteTemplater,
    classify_segment,
)

OPENAPI = Path(__file__).parents[2] / "fixtures" / "openapi"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        # numeric ids
        ("8812", "{id}"),
        ("0", "{id}"),
        ("12345678901234567890", "{id}"),
        ("%31%32", "{id}"),
        # UUIDs of any version, any case
        ("550e8400-e29b-41d4-a716-446655440000", "{uuid}"),
        ("550E8400-E29B-11D4-A716-446655440000", "{uuid}"),
        ("00000000-0000-0000-0000-000000000000", "{uuid}"),
        ("018f3b6e-9c1a-7cc2-8a9d-3b1f0e2d4c5a", "{uuid}"),  # v7
        # hex: object ids, hashes
        ("3f2a9c1e7b", "{hex}"),
        ("507f1f77bcf86cd799439011", "{hex}"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "{hex}"),
        ("DEADBEEF12", "{hex}"),
        ("550e8400e29b41d4a716446655440000", "{hex}"),
        # e-mail addresses, also with a percent-encoded @
        ("alice@example.com", "{email}"),
        ("a.b+tag@mail.example.co.uk", "{email}"),
        ("alice%40example.com", "{email}"),
        ("ALICE%40EXAMPLE.COM", "{email}"),
        # dates, with or without a time
        ("2024-05-01", "{date}"),
        ("2024-01-01", "{date}"),
        ("2024-05-01T10:00:00Z", "{date}"),
        ("2024-05-01T10%3A00%3A00%2B02%3A00", "{date}"),
        # tokens: JWT, base64, base64url, API keys
        (JWT, "{token}"),
        ("dGhpcyBpcyBhIHRlc3QgdG9rZW4=", "{token}"),
        ("dXNlcjpwYXNzd29yZDEyMw==", "{token}"),
        ("SOiV0cYFSswoVY7jr6qnJw", "{token}"),
        ("0cJqo3b3rty-_t5ZemURgaFJiGzcDAV5S2qRhaLH3cg", "{token}"),
        ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "{token}"),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "{token}"),
        ("k3j4h5g6f7d8s9a0p1o2i3u4", "{token}"),
        ("CEFB2ARPRHLWSEKKQ7KR", "{token}"),
        ("%2B%2B%2B%2BEpxEAf%2F%2BejMQqgVr%2Fg%3D%3D", "{token}"),
        # ordinary words stay literal
        ("", None),
        ("v1", None),
        ("v2", None),
        ("api", None),
        ("users", None),
        ("healthz", None),
        ("search", None),
        ("me", None),
        ("index.html", None),
        ("favicon.ico", None),
        ("robots.txt", None),
        ("openapi.json", None),
        ("v1.2.3", None),
        ("en-US", None),
        ("deadbeef", None),  # hex letters but no digit: a word
        ("facade", None),
        ("@alice", None),
        ("not-an@email", None),
        ("2024-13-45", None),
        ("-1", None),
        ("1.5", None),
        ("order-items", None),
        ("how-to-reset-your-password-in-5-steps", None),
        ("ListAllOrdersForCustomerV2", None),
        ("OAuth2AuthorizationServer", None),
        ("Samsung-Galaxy-S23-Ultra-512GB", None),
        ("iphone-15-pro-max-256gb-blue", None),
        ("annual-report-2023-final.pdf", None),
        ("main.8f3a2b1c.chunk.js", None),
        ("supercalifragilisticexpialidocious", None),
        ("x1x1x1x1x1x1x1x1x1x1x1x1", None),  # mixed classes but no entropy
        ("café", None),
        ("日本語", None),
        ("%E6%97%A5%E6%9C%AC", None),
        ("١٢٣", None),  # non-ASCII digits are not ids
        ("%", None),
        ("%zz", None),
    ],
)
def test_classifier(segment: str, expected: str | None) -> None:
    assert classify_segment(segment) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/8812/orders/5", "/users/{id}/orders/{id}"),
        ("/files/3f2a9c1e7b", "/files/{hex}"),
        ("/users/alice@example.com/profile", "/users/{email}/profile"),
        ("/users/alice%40example.com/profile", "/users/{email}/profile"),
        ("/v1/items/550e8400-e29b-41d4-a716-446655440000", "/v1/items/{uuid}"),
        ("/reports/2024-05-01/summary", "/reports/{date}/summary"),
        (f"/auth/verify/{JWT}", "/auth/verify/{token}"),
        ("/api/v2/search", "/api/v2/search"),
        ("/static/favicon.ico", "/static/favicon.ico"),
        ("/healthz", "/healthz"),
        # edge cases
        ("", "/"),
        ("/", "/"),
        ("*", "*"),
        ("users/5", "/users/{id}"),  # no leading slash: read as if it had one
        ("/users/5/", "/users/{id}/"),  # trailing slash kept
        ("//admin", "//admin"),  # doubled slashes kept
        ("/a//5", "/a//{id}"),
        ("/users/5?expand=1", "/users/{id}"),  # a stray query is dropped
        ("/caf%C3%A9/7", "/caf%C3%A9/{id}"),  # literals kept as logged
        ("/café/7", "/café/{id}"),
        ("/notes/" + "x" * 200, "/notes/{param}"),  # over-long literal
    ],
)
def test_templates(path: str, expected: str) -> None:
    assert RouteTemplater().template(path) == expected


def test_long_paths_keep_a_bounded_head() -> None:
    routes = RouteTemplater()
    deep = "/a" * 100
    assert routes.template(deep) == "/a" * MAX_SEGMENTS + "/{...}"
    assert routes.template("/a" * MAX_SEGMENTS) == "/a" * MAX_SEGMENTS
    assert routes.template("/x/" + "y" * 5000) == "/x/{...}"
    assert routes.template("/" + "7" * 5000) == "/{...}"
    wide = "/items/" + "/".join(str(i) for i in range(1000))
    assert routes.template(wide) == "/items" + "/{id}" * (MAX_SEGMENTS - 1) + "/{...}"


@pytest.mark.parametrize("collapse_after", [2, 5, 50])
def test_collapses_after_n_distinct_values_and_not_before(collapse_after: int) -> None:
    routes = RouteTemplater(collapse_after=collapse_after)
    names = [f"user{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(collapse_after + 1)]
    for name in names[:-1]:
        assert routes.template(f"/users/{name}/repos") == f"/users/{name}/repos"
        assert routes.template(f"/users/{name}/repos") == f"/users/{name}/repos"
    assert routes.template(f"/users/{names[-1]}/repos") == "/users/{param}/repos"
    # From then on every value collapses, including those seen before.
    assert routes.template(f"/users/{names[0]}/repos") == "/users/{param}/repos"
    assert routes.template("/users/zed") == "/users/{param}"
    # Classified values keep their class, and other prefixes are untouched.
    assert routes.template("/users/42/repos") == "/users/{id}/repos"
    assert routes.template(f"/teams/{names[0]}") == f"/teams/{names[0]}"


def test_repeated_and_classified_values_do_not_count_towards_collapse() -> None:
    routes = RouteTemplater(collapse_after=3)
    for _ in range(10):
        for name in ("ann", "bob", "cy"):
            routes.template(f"/u/{name}")
    for i in range(100):
        routes.template(f"/u/{i}")
        routes.template(f"/u/{i:08x}a")
    assert routes.template("/u/ann") == "/u/ann"
    assert routes.template("/u/dee") == "/u/{param}"


def test_collapse_forgets_the_literal_values() -> None:
    routes = RouteTemplater(collapse_after=10)
    for i in range(10):
        routes.template(f"/blog/post-{i}-title/comments")
    assert routes.node_count == 1 + 10 * 2
    assert len(routes) == 10
    routes.template("/blog/post-x-title/comments")
    assert routes.node_count == 3  # blog, {param}, comments
    assert len(routes) == 1


def test_the_first_segment_never_collapses() -> None:
    routes = RouteTemplater(collapse_after=5)
    probes = [f"/probe-{i}.php" for i in range(1000)]  # a scanner's word list
    assert [routes.template(p) for p in probes] == probes
    assert routes.template("/api/users") == "/api/users"
    assert routes.node_count <= 256 + 1  # past the root limit, probes are not learned


def test_memory_stays_bounded_under_a_flood_of_distinct_paths() -> None:
    routes = RouteTemplater(max_templates=5_000, collapse_after=50, cache_size=20_000)
    for i in range(1_000_000):
        # 200 top-level prefixes with 40 children each (never collapsing), then
        # distinct values underneath: fills the tree and keeps collapsing.
        routes.template(f"/r{i % 200}/c{i % 40}/v{i}")
        if i % 100_000 == 0:
            assert routes.node_count <= 5_000
            assert routes.cached <= 20_000
    assert routes.node_count <= 5_000
    assert routes.node_count > 4_000  # the flood did fill the tree
    assert len(routes) <= 5_000
    assert routes.cached <= 20_000
    # A full tree still templates: new paths by the classifier alone.
    assert routes.template("/brand-new/42/x") == "/brand-new/{id}/x"


def test_full_tree_falls_back_to_the_classifier_without_learning() -> None:
    routes = RouteTemplater(max_templates=3, collapse_after=2)
    assert routes.template("/a/b/c") == "/a/b/c"
    assert routes.node_count == 3
    for name in ("x1", "x2", "x3", "x4"):
        assert routes.template(f"/d/{name}") == f"/d/{name}"  # nothing learned, no collapse
    assert routes.template("/d/7") == "/d/{id}"
    assert routes.node_count == 3
    assert len(routes) == 1


@pytest.mark.parametrize("cache_size", [1, 2, 3, 10])
def test_cache_is_bounded_and_consistent(cache_size: int) -> None:
    routes = RouteTemplater(cache_size=cache_size)
    for i in range(100):
        path = f"/items/{i % 7}/x{i % 5}"
        assert routes.template(path) == routes.template(path)
        assert routes.cached <= cache_size


def test_long_paths_are_not_cached() -> None:
    routes = RouteTemplater()
    routes.template("/x" * 400)
    assert routes.cached == 0


def test_same_sequence_gives_same_templates() -> None:
    rnd = random.Random(7)
    words = ["users", "orders", "alice", "bob", "42", "3f2a9c1e7b", "search", "v1", "me"]
    paths = [
        "/" + "/".join(rnd.choice(words) + str(rnd.randrange(3)) for _ in range(rnd.randint(1, 4)))
        for _ in range(5_000)
    ]
    first = RouteTemplater(collapse_after=3, max_templates=200, cache_size=50)
    second = RouteTemplater(collapse_after=3, max_templates=200, cache_size=50)
    assert [first.template(p) for p in paths] == [second.template(p) for p in paths]


def test_weird_input_never_raises() -> None:
    rnd = random.Random(1234)
    routes = RouteTemplater(collapse_after=3, max_templates=500, cache_size=100)
    samples = [
        bytes(rnd.randrange(256) for _ in range(rnd.randrange(300))).decode("latin-1")
        for _ in range(3_000)
    ]
    samples += ["/" + s for s in samples[:1_000]]
    samples += [
        "/" * 100_000,
        "/" + "a" * 1_000_000,
        "/%" * 5_000,
        "/\x00/\x00",
        "/\udcff/\ud800",
        "/%ff%fe/%c3%28",
        "/" + "Ab1" * 3_000,
        "/" + "@" * 3_000,
        "/" + "a@b." * 500 + "com",
        "?",
        "/?",
        "#",
        " ",
    ]
    for path in samples:
        template = routes.template(path)
        assert template == "*" or template.startswith("/")
        assert len(template) <= 4 * (MAX_SEGMENTS + 1) + 2048


def _shop() -> RouteTemplater:
    return RouteTemplater.from_openapi_file(OPENAPI / "shop.json")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/users", "/v1/users"),
        ("/v1/users/42", "/v1/users/{userId}"),
        ("/v1/users/alice", "/v1/users/{userId}"),
        ("/v1/users/me", "/v1/users/me"),  # the literal wins
        ("/v1/users/me/settings", "/v1/users/me/settings"),
        ("/v1/users/me/orders/7", "/v1/users/{userId}/orders/{orderId}"),  # backtracks
        ("/v1/users/42/orders/7", "/v1/users/{userId}/orders/{orderId}"),
        ("/v1/files/report.pdf", "/v1/files/{name}.{ext}"),
        ("/v1/items/9:cancel", "/v1/items/{itemId}:cancel"),
        ("/v1/items/9", "/v1/items/{itemId}"),
        ("/internal/users/42", "/internal/users/{userId}"),
        ("/health", "/health"),  # a path item's own servers
        # not in the document: learned and classified as usual
        ("/v1/health", "/v1/health"),
        ("/users/42", "/users/{id}"),
        ("/v1/users/42/", "/v1/users/{id}/"),  # trailing slashes must match exactly
        ("/v1/users//orders/7", "/v1/users//orders/{id}"),  # a parameter is never empty
        ("/v1/unknown/123", "/v1/unknown/{id}"),
    ],
)
def test_openapi_json_seeding(path: str, expected: str) -> None:
    assert _shop().template(path) == expected


def test_openapi_templates_are_not_learned() -> None:
    routes = _shop()
    for i in range(200):
        routes.template(f"/v1/users/name{i}")
    assert len(routes) == 0
    assert routes.template("/v1/users/me") == "/v1/users/me"


def test_openapi_yaml_seeding_with_server_variables() -> None:
    pytest.importorskip("yaml")
    routes = RouteTemplater.from_openapi_file(OPENAPI / "billing.yaml")
    assert routes.template("/api/v2/invoices/in_123") == "/api/v2/invoices/{invoiceId}"
    assert routes.template("/api/v2/invoices/drafts") == "/api/v2/invoices/drafts"
    assert (
        routes.template("/api/v2/customers/c9/invoices")
        == "/api/v2/customers/{customerId}/invoices"
    )


def test_swagger2_base_path() -> None:
    routes = RouteTemplater.from_openapi_file(OPENAPI / "petstore-swagger2.json")
    assert routes.template("/legacy/pets/7") == "/legacy/pets/{petId}"
    assert routes.template("/legacy/pets/findByStatus") == "/legacy/pets/findByStatus"
    assert routes.template("/legacy/stores/1/pets/2") == "/legacy/stores/{storeId}/pets/{petId}"
    assert routes.template("/pets/7") == "/pets/{id}"


def test_openapi_from_a_mapping_and_in_repr() -> None:
    document = json.loads((OPENAPI / "shop.json").read_text())
    routes = RouteTemplater(openapi=document, collapse_after=7)
    assert routes.template("/v1/users/42") == "/v1/users/{userId}"
    assert routes.openapi is document
    assert repr(routes) == (
        "RouteTemplater(max_templates=10000, collapse_after=7, cache_size=100000, "
        "openapi=<OpenAPI document, 10 paths>)"
    )
    assert "openapi=None" in repr(RouteTemplater())
    assert RouteTemplater()  # truthy even before it has learned anything


def test_yaml_needs_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now fails
    with pytest.raises(ConfigError, match="PyYAML"):
        RouteTemplater.from_openapi_file(OPENAPI / "billing.yaml")
    # JSON still works without it.
    assert _shop().template("/v1/users/42") == "/v1/users/{userId}"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "cannot read"),
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.yaml", "paths: [unclosed", "not valid YAML"),
        ("list.json", "[1, 2]", "must be a mapping"),
        ("plain.json", '{"paths": {}}', "not an OpenAPI or Swagger document"),
        ("paths.json", '{"openapi": "3.0.0", "paths": []}', "paths: must be a mapping"),
        ("key.json", '{"openapi": "3.0.0", "paths": {"users": {}}}', "paths.users"),
        ("servers.json", '{"openapi": "3.0.0", "servers": {}, "paths": {}}', "servers"),
        ("url.json", '{"openapi": "3.0.0", "servers": [{}], "paths": {}}', r"servers\[0\]\.url"),
        ("base.json", '{"swagger": "2.0", "basePath": 1, "paths": {}}', "basePath"),
    ],
)
def test_bad_documents_name_the_file_and_key(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        RouteTemplater.from_openapi_file(path)
    assert caught.value.source == str(path)


def test_unknown_extension_reads_json_then_yaml(tmp_path: Path) -> None:
    as_json = tmp_path / "spec.txt"
    as_json.write_text('{"openapi": "3.0.0", "paths": {"/a/{x}": {}}}')
    assert RouteTemplater.from_openapi_file(as_json).template("/a/b") == "/a/{x}"
    pytest.importorskip("yaml")
    as_yaml = tmp_path / "spec"
    as_yaml.write_text("openapi: 3.0.0\npaths:\n  /b/{y}: {}\n")
    assert RouteTemplater.from_openapi_file(as_yaml).template("/b/c") == "/b/{y}"


@pytest.mark.parametrize(
    "kwargs",
    [{"max_templates": 0}, {"collapse_after": 1}, {"cache_size": 0}],
)
def test_invalid_params(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RouteTemplater(**kwargs)
