// The alerts list: /api/v1/alerts with the page's filters (kept in the address, so a
// filtered list can be shared), refreshed every 15 seconds.

import {
  actorLink, alertHref, api, byId, clearError, every, fill, fmtNum, h, messageRow, query,
  sevBadge, showError, statusBadge, timeEl,
} from "./lib.js";

const REFRESH_MS = 15_000;
const COLUMNS = 9;

const form = byId("alerts-filters");
const table = byId("alerts-table");
const errorBox = byId("alerts-error");
const count = byId("alerts-count");

function filters() {
  const values = Object.fromEntries(new FormData(form));
  return { state: values.state, severity: values.severity, kind: values.kind, hours: values.hours || 168 };
}

function row(alert) {
  return h("tr", { dataset: { alertId: alert.id }, class: [`sev-row-${alert.severity}`, alert.state === "closed" && "closed"] },
    h("td", null, timeEl(alert.updated)),
    h("td", null, sevBadge(alert.severity)),
    h("td", null, statusBadge(alert.status)),
    h("td", null, h("a", { class: "alert-link", href: alertHref(alert.id) }, alert.title)),
    h("td", null, actorLink(alert.actor_type, alert.actor)),
    h("td", { class: "muted" }, alert.state),
    h("td", { class: "num" }, fmtNum(alert.finding_count)),
    h("td", { class: "num" }, fmtNum(alert.risk)),
    h("td", null, alert.assignee || h("span", { class: "muted" }, "–")));
}

async function refresh() {
  const params = filters();
  try {
    const alerts = await api(`/api/v1/alerts${query({ ...params, limit: 500 })}`);
    fill(table.tBodies[0], alerts.length ? alerts.map(row) : messageRow(COLUMNS, "No alerts match."));
    count.textContent = `${fmtNum(alerts.length)} alert${alerts.length === 1 ? "" : "s"}${alerts.length >= 500 ? " (the latest 500)" : ""}`;
    clearError(errorBox);
  } catch (err) {
    showError(errorBox, err);
  }
}

// The filters from the address, then the address from the filters.
const fromUrl = new URLSearchParams(window.location.search);
for (const name of ["state", "severity", "kind", "hours"]) {
  const field = form.elements.namedItem(name);
  const value = fromUrl.get(name);
  if (field && value !== null && [...field.options].some((o) => o.value === value)) field.value = value;
}

const refreshNow = every(REFRESH_MS, refresh);
form.addEventListener("change", () => {
  window.history.replaceState(null, "", `/alerts${query(filters())}`);
  refreshNow();
});
form.addEventListener("submit", (event) => event.preventDefault());
