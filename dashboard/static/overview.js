// The overview: key figures, traffic and failed-authentication charts, findings by
// kind, the top actors (from /api/v1/overview) and the open alerts (from
// /api/v1/alerts), refreshed every 10 seconds.

import { barChart, lineChart } from "./charts.js";
import {
  actorLink, alertHref, api, byId, clearError, every, fill, fmtNum, h, localizeTimes,
  messageRow, sevBadge, showError, stamp, statusBadge, timeEl,
} from "./lib.js";

const REFRESH_MS = 10_000;
const OPEN_ALERT_HOURS = 24 * 30;

const windowSelect = byId("overview-window");
const errorBox = byId("overview-error");
const updated = byId("overview-updated");

const sum = (points) => (Array.isArray(points) ? points : [])
  .reduce((acc, p) => acc + (Number(p && p.value) || 0), 0);

function pick(object, ...names) {
  if (!object || typeof object !== "object") return undefined;
  for (const name of names) {
    if (object[name] !== undefined && object[name] !== null) return object[name];
  }
  return undefined;
}

/** Findings per kind as bars, from a list ({kind, count}) or a map (kind -> count or series). */
function kindCounts(value) {
  let items = [];
  if (Array.isArray(value)) {
    items = value.map((row) => ({
      label: pick(row, "kind", "label", "name"),
      value: Array.isArray(row && row.series) ? sum(row.series) : Number(pick(row, "count", "findings", "value")),
    }));
  } else if (value && typeof value === "object") {
    items = Object.entries(value).map(([kind, v]) => ({
      label: kind, value: Array.isArray(v) ? sum(v) : Number(v),
    }));
  }
  return items.filter((i) => i.label !== undefined && Number.isFinite(i.value) && i.value > 0)
    .sort((a, b) => b.value - a.value || String(a.label).localeCompare(String(b.label)));
}

function openAlertCount(data) {
  const totals = data.totals || {};
  const direct = pick(totals, "open_alerts");
  if (typeof direct === "number") return direct;
  const open = data.open_alerts;
  if (typeof open === "number") return open;
  if (Array.isArray(open)) return open.length;
  if (open && typeof open === "object") {
    return Object.values(open).reduce((acc, n) => acc + (Number(n) || 0), 0);
  }
  return undefined;
}

function severityMix(open) {
  if (!open || typeof open !== "object" || Array.isArray(open)) return "";
  return ["critical", "high", "medium", "low"]
    .filter((s) => Number(open[s]) > 0).map((s) => `${open[s]} ${s}`).join(" · ");
}

function showKpis(data, minutes) {
  const totals = data.totals || {};
  const seconds = minutes * 60;
  const events = pick(totals, "events", "requests");
  const eventsValue = events !== undefined ? Number(events) : undefined;
  byId("kpi-events").textContent = fmtNum(eventsValue);
  const peak = Math.max(0, ...(data.events_per_s || []).map((p) => Number(p.value) || 0));
  byId("kpi-events-rate").textContent = eventsValue !== undefined
    ? `avg ${fmtNum(eventsValue / seconds)}/s · peak ${fmtNum(peak)}/s` : "";

  const failed = pick(totals, "failed_auth", "failed_authentications", "failed");
  const failedValue = failed !== undefined ? Number(failed) : sum(data.failed_auth_per_min);
  byId("kpi-failed").textContent = fmtNum(failedValue);
  byId("kpi-failed-rate").textContent = eventsValue
    ? `${((failedValue / eventsValue) * 100).toFixed(1)}% of requests` : "";

  const kinds = kindCounts(data.findings_by_kind);
  const findings = pick(totals, "findings");
  byId("kpi-findings").textContent = fmtNum(
    findings !== undefined ? findings : kinds.reduce((acc, k) => acc + k.value, 0),
  );
  byId("kpi-findings-kinds").textContent = kinds.length
    ? `${kinds.length} kind${kinds.length === 1 ? "" : "s"} · most ${kinds[0].label}` : "none in this window";

  const open = openAlertCount(data);
  if (open !== undefined) byId("kpi-open-alerts").textContent = fmtNum(open);
  byId("kpi-open-alerts-mix").textContent = severityMix(pick(data, "open_alerts_by_severity", "open_alerts"));
}

function showCharts(data) {
  lineChart(byId("chart-events"), data.events_per_s, {
    label: "Events per second", className: "series-events", unit: "/s",
  });
  lineChart(byId("chart-failed"), data.failed_auth_per_min, {
    label: "Failed authentications per minute", className: "series-failed", unit: "/min",
  });
  const byKind = data.findings_by_kind;
  const isSeries = Array.isArray(byKind) && byKind.length > 0 && byKind.every((p) => p && "t" in p && !("kind" in p));
  if (isSeries) {
    lineChart(byId("chart-findings"), byKind, { label: "Findings", className: "series-findings" });
  } else {
    barChart(byId("chart-findings"), kindCounts(byKind).map((k) => ({ ...k, className: "series-findings" })), {
      label: "Findings by kind",
    });
  }
}

function showTopActors(actors) {
  const body = byId("top-actors").tBodies[0];
  const rows = (Array.isArray(actors) ? actors : []).map((a) => {
    const kind = pick(a, "entity_type", "actor_type", "kind", "type") || "ip";
    const value = pick(a, "entity", "actor", "value", "ip");
    const count = pick(a, "findings", "count", "requests");
    const severity = pick(a, "worst_severity", "severity");
    return h("tr", { class: severity ? `sev-row-${severity}` : null },
      h("td", { class: "wrap" }, actorLink(kind, value), " ", h("span", { class: "muted" }, kind)),
      h("td", { class: "num" }, fmtNum(count)),
      h("td", null, severity ? sevBadge(severity) : "–"),
      h("td", null, a.last_seen ? timeEl(a.last_seen, { ago: true }) : "–"));
  });
  fill(body, rows.length ? rows : messageRow(4, "No actors with findings in this window."));
}

function alertRow(alert) {
  return h("tr", { dataset: { alertId: alert.id }, class: `sev-row-${alert.severity}` },
    h("td", null, timeEl(alert.updated)),
    h("td", null, sevBadge(alert.severity)),
    h("td", null, statusBadge(alert.status)),
    h("td", null, h("a", { class: "alert-link", href: alertHref(alert.id) }, alert.title)),
    h("td", { class: "num" }, fmtNum(alert.finding_count)),
    h("td", { class: "num" }, fmtNum(alert.risk)));
}

function showOpenAlerts(alerts) {
  const body = byId("open-alerts").tBodies[0];
  fill(body, alerts.length ? alerts.map(alertRow) : messageRow(6, "No open alerts."));
}

async function refresh() {
  const minutes = Number(windowSelect.value) || 60;
  const [overview, alerts] = await Promise.allSettled([
    api(`/api/v1/overview?minutes=${minutes}`),
    api(`/api/v1/alerts?state=open&hours=${OPEN_ALERT_HOURS}&limit=200`),
  ]);
  const problems = [];
  if (overview.status === "fulfilled" && overview.value) {
    showKpis(overview.value, minutes);
    showCharts(overview.value);
    showTopActors(overview.value.top_actors);
  } else if (overview.status === "rejected") {
    problems.push(`Overview: ${overview.reason.message}`);
  }
  if (alerts.status === "fulfilled" && Array.isArray(alerts.value)) {
    showOpenAlerts(alerts.value);
    if (overview.status !== "fulfilled") byId("kpi-open-alerts").textContent = fmtNum(alerts.value.length);
  } else if (alerts.status === "rejected") {
    problems.push(`Open alerts: ${alerts.reason.message}`);
  }
  if (problems.length) showError(errorBox, problems.join(" "));
  else clearError(errorBox);
  stamp(updated);
}

localizeTimes(byId("open-alerts"));
const refreshNow = every(REFRESH_MS, refresh);
windowSelect.addEventListener("change", () => refreshNow());
