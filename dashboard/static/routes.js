// The route inventory (API discovery): every route template seen in the window, from
// /api/v1/routes, sortable and filterable here. A route called without credentials
// that does not refuse them is badged: it may be an API nobody meant to expose.

import {
  api, byId, clearError, fill, fmtNum, fmtPct, h, messageRow, query, showError, timeEl, toMs,
} from "./lib.js";

const table = byId("route-inventory");
const hoursSelect = byId("route-hours");
const filterBox = byId("route-filter");
const unauthOnly = byId("route-unauth-only");
const errorBox = byId("routes-error");
const count = byId("routes-count");
const COLUMNS = table.tHead.rows[0].cells.length;

let routes = [];
let sort = { key: "requests", descending: true };

const methodsOf = (r) => (Array.isArray(r.methods) ? r.methods.join(" ") : String(r.methods || ""));

/** Called without credentials and served (the API's heuristic): open to anyone. */
const isUnauthenticated = (r) => Number(r.unauthenticated) > 0 && r.auth_required === false;

function sortValue(route, key) {
  if (key === "methods") return methodsOf(route);
  if (key === "first_seen" || key === "last_seen") return toMs(route[key]);
  if (key === "auth_required") return route.auth_required ? 1 : isUnauthenticated(route) ? -1 : 0;
  const value = route[key];
  return typeof value === "number" ? value : String(value ?? "");
}

function compare(a, b) {
  const x = sortValue(a, sort.key);
  const y = sortValue(b, sort.key);
  const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
  return (sort.descending ? -order : order) || String(a.route).localeCompare(String(b.route));
}

function searchHref(route) {
  const hours = Number(hoursSelect.value) || 24;
  const until = new Date(Date.now() + 60 * 1000);
  const since = new Date(until.getTime() - Math.min(hours, 31 * 24) * 3600 * 1000);
  return `/search${query({ since: since.toISOString(), until: until.toISOString(), route })}`;
}

function authCell(r) {
  if (r.auth_required) return h("span", { class: "badge auth" }, "required");
  if (isUnauthenticated(r)) {
    return h("span", { class: "badge unauth", title: `${fmtNum(r.unauthenticated)} requests without credentials were answered` }, "no auth");
  }
  return h("span", { class: "muted", title: "No request without credentials was seen" }, "unknown");
}

function row(r) {
  const errorClass = Number(r.error_rate) >= 0.05 ? "hot" : "";
  return h("tr", { class: ["route-row", isUnauthenticated(r) && "unauth"], dataset: { route: r.route } },
    h("td", { class: "mono wrap" }, h("a", { href: searchHref(r.route), title: "Search its requests" }, r.route)),
    h("td", { class: "mono" }, methodsOf(r)),
    h("td", { class: "num" }, fmtNum(r.requests)),
    h("td", { class: ["num", errorClass] }, fmtPct(r.error_rate)),
    h("td", { class: "num" }, fmtPct(r.client_error_rate)),
    h("td", { class: "num" }, `${fmtPct(r.unauthenticated_share)} `, h("span", { class: "muted" }, `(${fmtNum(r.unauthenticated)})`)),
    h("td", null, authCell(r)),
    h("td", { class: "num" }, fmtNum(r.distinct_clients)),
    h("td", { class: "num" }, fmtNum(r.p95_latency_ms)),
    h("td", null, timeEl(r.first_seen)),
    h("td", null, timeEl(r.last_seen)));
}

function show() {
  const needle = filterBox.value.trim().toLowerCase();
  const shown = routes
    .filter((r) => !unauthOnly.checked || isUnauthenticated(r))
    .filter((r) => !needle || `${r.route} ${methodsOf(r)}`.toLowerCase().includes(needle))
    .sort(compare);
  fill(table.tBodies[0], shown.length ? shown.map(row) : messageRow(COLUMNS, routes.length ? "No route matches." : "No traffic in this window."));
  const open = routes.filter(isUnauthenticated).length;
  count.textContent = `${fmtNum(shown.length)} of ${fmtNum(routes.length)} routes · ${fmtNum(open)} without authentication`;
  for (const th of table.tHead.rows[0].cells) {
    const active = th.dataset.sort === sort.key;
    th.setAttribute("aria-sort", active ? (sort.descending ? "descending" : "ascending") : "none");
  }
}

async function load() {
  try {
    const data = await api(`/api/v1/routes${query({ hours: hoursSelect.value, limit: 1000 })}`);
    routes = Array.isArray(data) ? data : (data && (data.routes || data.rows)) || [];
    clearError(errorBox);
    show();
  } catch (err) {
    showError(errorBox, err);
    fill(table.tBodies[0], messageRow(COLUMNS, "Could not load the inventory."));
  }
}

for (const th of table.tHead.rows[0].cells) {
  if (!th.dataset.sort) continue;
  th.tabIndex = 0;
  const choose = () => {
    const key = th.dataset.sort;
    sort = { key, descending: sort.key === key ? !sort.descending : th.dataset.type !== "text" };
    show();
  };
  th.addEventListener("click", choose);
  th.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      choose();
    }
  });
}
hoursSelect.addEventListener("change", load);
filterBox.addEventListener("input", show);
unauthOnly.addEventListener("change", show);
load();
