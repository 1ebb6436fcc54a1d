"""The HTML pages through real HTTP handling: each needs a login, shows the navigation
and the hooks its script (and the browser tests) rely on, respects roles, answers an
unknown alert or actor with a 404 page, carries the session's CSRF token, and keeps to
the CSP: no inline script or style and no event-handler attributes, every script a
module served from /static."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from dashboard.pages import STATIC
from tests.dashboard.conftest import ATTACKER, Dashboard, csrf_field

# --- a small HTML reader with CSS-like selection ---------------------------------------

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip
_COMPOUND = re.compile(r"^(?P<tag>[a-z0-9]+)?(?P<rest>(?:[#.][\w-]+|\[[^\]]+\])*)$")
_PART = re.compile(
    r"#(?P<id>[\w-]+)|\.(?P<cls>[\w-]+)|\[(?P<attr>[\w-]+)(?:=\"?(?P<val>[^\"\]]*)\"?)?\]"
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: list[Element]
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def content(self) -> str:
        return "".join(self.text)


class Page(HTMLParser):
    """Every element of a page, with its ancestors and the text inside it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, list(self._open))
        self.elements.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, list(self._open)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text.append(data)

    def select(self, selector: str) -> list[Element]:
        """Elements matching ``selector``: compound selectors (``tag#id.cls[attr=v]``)
        joined by the descendant combinator."""
        *outer, last = selector.split()
        found = []
        for element in self.elements:
            if not _matches(element, last):
                continue
            ancestors = iter(reversed(element.ancestors))
            if all(any(_matches(a, part) for a in ancestors) for part in reversed(outer)):
                found.append(element)
        return found

    def one(self, selector: str) -> Element:
        found = self.select(selector)
        assert len(found) == 1, f"{selector}: {len(found)} elements"
        return found[0]


def _matches(element: Element, compound: str) -> bool:
    match = _COMPOUND.match(compound)
    assert match, compound
    if match["tag"] and element.tag != match["tag"]:
        return False
    for part in _PART.finditer(match["rest"]):
        if part["id"] and element.attrs.get("id") != part["id"]:
            return False
        if part["cls"] and part["cls"] not in element.classes:
            return False
        if part["attr"]:
            if part["attr"] not in element.attrs:
                return False
            if part["val"] is not None and element.attrs[part["attr"]] != part["val"]:
                return False
    return True


def test_the_reader_selects_like_css() -> None:
    page = Page('<div id="a"><table><tr data-x="1"><td><a class="l k" href="/">t</a></td></tr>'
                '</table></div><p><input name="q"></p><a class="l">u</a>')  # fmt: skip
    assert [e.content() for e in page.select("#a a.l")] == ["t"]
    assert len(page.select("a.l")) == 2 and not page.select("#a a.m")
    assert page.one('tr[data-x="1"]').tag == "tr" and page.one("p input[name=q]")


# --- the pages ---------------------------------------------------------------------------

# Every page, by path (``{alert}`` the seeded alert), with the hooks its script and the
# browser tests use, as a viewer sees them.
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/": ("overview.js", (
        "#kpi-events", "#kpi-failed", "#kpi-findings", "#kpi-open-alerts", "#chart-events",
        "#chart-failed", "#chart-findings", "table#top-actors", "table#open-alerts",
    )),
    "/live": ("live.js", ("#live-status", "ul#live-feed")),
    "/alerts": ("alerts.js", (
        "table#alerts-table", "select[name=state]", "select[name=severity]",
    )),
    "/alerts/{alert}": ("alert.js", (
        "#alert-title", "#alert-status", "#alert-assignee", "#alert-findings",
        "#alert-deliveries", "ul#triage-trail",
    )),
    f"/actors/ip/{ATTACKER}": ("actor.js", (
        "#actor-summary", "#actor-statuses", "#actor-paths", "#actor-findings",
        "table#actor-timeline", "select#actor-hours",
    )),
    "/routes": ("routes.js", ("table#route-inventory",)),
    "/search": ("search.js", (
        "form#search-form", "#search-form input[name=since][type=datetime-local]",
        "#search-form input[name=until][type=datetime-local]", "#search-form input[name=ip]",
        "#search-form input[name=user]", "#search-form input[name=api_key]",
        "#search-form input[name=route]", "#search-form input[name=status]",
        "#search-form select[name=method]", "#search-form select[name=kind]",
        "#search-form button[type=submit]", "table#search-results", "button#search-next",
        "a#export-csv", "a#export-jsonl", "#search-error",
    )),
}  # fmt: skip
SQL_HOOKS = ("textarea#sql-text", "button#sql-run", "table#sql-results", "#sql-error", "#sql-meta")
TRIAGE_HOOKS = (
    'button.triage[data-action="acknowledge"]', 'button.triage[data-action="resolve"]',
    'button.triage[data-action="reopen"]', "form#assign-form [name=assignee]",
    "form#comment-form textarea[name=comment]", "form#fp-form textarea[name=comment]",
    "form#fp-form input[name=hours]", "#triage-error",
)  # fmt: skip
NAV = ["/", "/live", "/alerts", "/search", "/routes"]


def _path(template: str, dashboard: Dashboard) -> str:
    return template.format(alert=dashboard.alert_id)


def _get(client: TestClient, path: str, status: int = 200) -> Page:
    response = client.get(path)
    assert response.status_code == status, (path, response.text)
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def _nav(page: Page) -> list[str]:
    return [a.attrs["href"] for a in page.select("header nav a")]


@pytest.mark.parametrize("template", [*PAGES, "/sql", "/alerts/nope"])
def test_every_page_sends_visitors_without_a_login_to_it(
    dashboard: Dashboard, template: str
) -> None:
    response = dashboard.app_client.get(_path(template, dashboard), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


@pytest.mark.parametrize("template", PAGES)
def test_each_page_shows_its_hooks_the_navigation_and_the_logout_form(
    dashboard: Dashboard, template: str
) -> None:
    script, hooks = PAGES[template]
    page = _get(dashboard.login("vic"), _path(template, dashboard))
    for hook in hooks:
        assert page.select(hook), f"{template}: no {hook}"
    assert _nav(page) == NAV  # no SQL for a viewer
    logout = page.one('form.logout[action="/logout"]')
    assert logout.attrs["method"] == "post"
    token = page.one("form.logout input[name=csrf]").attrs["value"]
    assert token and page.one('meta[name="csrf-token"]').attrs["content"] == token
    assert [s.attrs["src"] for s in page.select("script")] == [f"/static/{script}"]
    assert "vic (viewer)" in page.one("form.logout").content()


def test_the_current_page_is_marked_in_the_navigation(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    assert [a.attrs["href"] for a in _get(client, "/routes").select("nav a[aria-current]")] == [
        "/routes"
    ]
    alert = _get(client, f"/alerts/{dashboard.alert_id}")
    assert [a.attrs["href"] for a in alert.select("nav a[aria-current]")] == ["/alerts"]


def test_the_login_page_has_no_session_token(dashboard: Dashboard) -> None:
    page = _get(dashboard.app_client, "/login")
    assert not page.select('meta[name="csrf-token"]') and not page.select("header nav")


def test_the_overview_lists_the_open_alert_with_a_link_to_it(dashboard: Dashboard) -> None:
    page = _get(dashboard.login("vic"), "/")
    row = page.one("#open-alerts tr[data-alert-id]")
    assert row.attrs["data-alert-id"] == dashboard.alert_id
    link = page.one("#open-alerts tr[data-alert-id] a.alert-link")
    assert link.attrs["href"] == f"/alerts/{dashboard.alert_id}"
    assert f"brute_force from ip {ATTACKER}" in link.content()
    assert page.one("#kpi-open-alerts").content().strip() == "1"


def test_the_alert_page_starts_with_the_alert_header(dashboard: Dashboard) -> None:
    page = _get(dashboard.login("vic"), f"/alerts/{dashboard.alert_id}")
    assert page.one("#alert").attrs["data-alert-id"] == dashboard.alert_id
    assert f"brute_force from ip {ATTACKER}" in page.one("#alert-title").content()
    assert page.one("#alert-status").content().strip() == "new"
    actor = page.one("#alert-actor a.actor")
    assert actor.attrs["href"] == f"/actors/ip/{ATTACKER}"


def test_analysts_get_the_triage_controls_and_the_sql_page(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    alert = _get(client, f"/alerts/{dashboard.alert_id}")
    for hook in TRIAGE_HOOKS:
        assert alert.select(hook), hook
    assert _nav(alert) == [*NAV, "/sql"]
    sql = _get(client, "/sql")
    for hook in SQL_HOOKS:
        assert sql.select(hook), hook
    assert [s.attrs["src"] for s in sql.select("script")] == ["/static/sql.js"]
    tables = {b.attrs["data-table"] for b in sql.select("button.sql-table")}
    assert {"events", "findings", "alerts"} <= tables
    assert _nav(_get(dashboard.login("ada"), "/")) == [*NAV, "/sql"]


def test_viewers_get_no_triage_controls_and_a_403_page_for_sql(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    alert = _get(client, f"/alerts/{dashboard.alert_id}")
    for hook in TRIAGE_HOOKS:
        assert not alert.select(hook), hook
    assert alert.select("ul#triage-trail")  # the trail is for every reader
    refused = _get(client, "/sql", 403)
    assert not refused.select("#sql-text") and not refused.select("script")
    assert "analyst" in refused.one("section.problem").content()
    assert _nav(refused) == NAV


@pytest.mark.parametrize(
    "alert_id",
    [
        "nope",
        "a-123",
        "a-" + "g" * 20,
        "A-" + "0" * 20,
        "a-" + "0" * 21,
        "a" * 300,
        "a-" + "0" * 20,  # well-formed, but no such alert
    ],
)
def test_a_malformed_or_unknown_alert_is_a_404_page(dashboard: Dashboard, alert_id: str) -> None:
    page = _get(dashboard.login("vic"), f"/alerts/{alert_id}", 404)
    assert page.one("section.problem") and not page.select("#alert-title")
    assert _nav(page) == NAV


def test_an_unknown_actor_kind_is_a_404_page(dashboard: Dashboard) -> None:
    page = _get(dashboard.login("vic"), "/actors/route/x", 404)
    assert not page.select("#actor-timeline")


def test_values_from_the_address_are_shown_as_text(dashboard: Dashboard) -> None:
    value = '<img src=x onerror="alert(1)">'
    response = dashboard.login("vic").get(
        "/actors/user/%3Cimg%20src%3Dx%20onerror%3D%22alert(1)%22%3E"
    )
    assert response.status_code == 200
    page = Page(response.text)
    assert not page.select("img")
    assert page.one("#actor-value").content() == value
    assert page.one("#actor").attrs["data-value"] == value


def _all_pages(dashboard: Dashboard) -> list[tuple[str, str]]:
    """Every page as an analyst sees it, the error pages and the login page: (path,
    HTML)."""
    analyst, viewer = dashboard.login("ana"), dashboard.login("vic")
    paths = [_path(t, dashboard) for t in PAGES] + ["/sql"]
    pages = [(p, analyst.get(p).text) for p in paths]
    pages += [(f"{p} (viewer)", viewer.get(p).text) for p in ("/sql", "/alerts/nope")]
    return [*pages, ("/login", dashboard.app_client.get("/login").text)]


def test_no_page_has_inline_script_style_or_event_handlers(dashboard: Dashboard) -> None:
    for path, html in _all_pages(dashboard):
        page = Page(html)
        assert not page.select("style"), path
        for element in page.elements:
            assert "style" not in element.attrs, (path, element.tag)
            handlers = [name for name in element.attrs if name.startswith("on")]
            assert not handlers, (path, element.tag, handlers)
            for name in ("href", "src", "action"):
                assert not element.attrs.get(name, "").lower().startswith("javascript:"), path
        for script in page.select("script"):
            assert script.attrs.get("src", "").startswith("/static/"), (path, script.attrs)
            assert script.attrs.get("type") == "module", path
            assert not script.content().strip(), path
        for sheet in page.select("link[rel=stylesheet]"):
            assert sheet.attrs["href"].startswith("/static/"), path


def test_the_scripts_and_what_they_import_are_served_as_javascript(
    dashboard: Dashboard,
) -> None:
    scripts = sorted(STATIC.glob("*.js"))
    assert {"lib.js", "charts.js", "overview.js", "sql.js"} <= {s.name for s in scripts}
    for script in scripts:
        response = dashboard.app_client.get(f"/static/{script.name}")
        assert response.status_code == 200, script.name
        kind = response.headers["content-type"].split(";")[0]
        assert kind in ("text/javascript", "application/javascript"), (script.name, kind)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        text = script.read_text()
        for imported in re.findall(r'from "\./([\w-]+\.js)"', text):
            assert (STATIC / imported).is_file(), (script.name, imported)
        assert "innerHTML" not in text and "eval(" not in text, script.name
    css = dashboard.app_client.get("/static/app.css")
    assert css.headers["content-type"].startswith("text/css")


def test_page_views_are_audited(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    for path in ("/live", f"/alerts/{dashboard.alert_id}", "/alerts/nope", "/sql", "/search"):
        client.get(path)
    gw = client.app.state.gw  # type: ignore[attr-defined]
    gw.audit.flush()
    rows = dashboard.store.query(
        f"SELECT action, target, status FROM {dashboard.store.database}.audit_log "
        "WHERE principal = 'vic' AND startsWith(action, 'view_') ORDER BY ts"
    )
    assert [tuple(row) for row in rows] == [
        ("view_live", "", 200),
        ("view_alert", dashboard.alert_id, 200),
        ("view_alert", "", 404),
        ("view_sql", "", 403),
        ("view_search", "", 200),
    ]


def test_the_session_token_on_the_page_lets_its_scripts_make_changes(
    dashboard: Dashboard,
) -> None:
    client = dashboard.login("ana")
    page = _get(client, f"/alerts/{dashboard.alert_id}")
    token = page.one('meta[name="csrf-token"]').attrs["content"]
    assert token == csrf_field(client.get("/").text)
    response = client.post(
        f"/api/v1/alerts/{dashboard.alert_id}/triage",
        json={"action": "acknowledge"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 201
    again = _get(client, f"/alerts/{dashboard.alert_id}")
    assert again.one("#alert-status").content().strip() == "acknowledged"
    assert "acknowledge" in again.one("#triage-trail").content()
