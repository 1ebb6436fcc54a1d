// One actor (an IP, a user or an API key): what it did in the chosen window, from
// /api/v1/actors/{kind}/{value}: a summary, its status mix, activity over time, the
// paths it touched, its findings, and every request (newest first).

import { barChart, lineChart } from "./charts.js";
import {
  actorLink, api, byId, clearError, fill, fmtNum, h, httpStatusClass, messageRow, query,
  sevBadge, showError, stamp, timeEl, toMs,
} from "./lib.js";

const root = byId("actor");
const kind = root.dataset.kind;
const value = root.dataset.value;
const hoursSelect = byId("actor-hours");
const errorBox = byId("actor-error");

const MAX_SPAN_HOURS = 31 * 24;
// Requests come oldest first up to the limit: a busy actor's latest may be cut off.
const REQUEST_LIMIT = 2000;

function setField(name, content) {
  const node = byId("actor-summary").querySelector(`[data-field="${name}"]`);
  if (node) fill(node, content);
}

function showSummary(data) {
  const requests = data.requests || [];
  setField("first_seen", data.first_seen ? timeEl(data.first_seen) : "–");
  setField("last_seen", data.last_seen ? [timeEl(data.last_seen), " ", h("span", { class: "muted" }, timeEl(data.last_seen, { ago: true }))] : "–");
  setField("requests", [fmtNum(requests.length), data.truncated ? h("span", { class: "muted" }, " (the oldest only: narrow the window)") : null]);
  setField("paths", fmtNum((data.paths || []).length));
  setField("findings", fmtNum((data.findings || []).length));
}

function showStatuses(mix) {
  const items = Object.entries(mix || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([label, count]) => ({ label, value: count, className: `http-${label}` }));
  barChart(byId("actor-statuses"), items, { label: "Responses by status class" });
}

function showActivity(requests, hours) {
  const end = Date.now();
  const start = end - hours * 3600 * 1000;
  const buckets = 60;
  const step = (end - start) / buckets;
  const counts = new Array(buckets).fill(0);
  for (const r of requests) {
    const i = Math.floor((toMs(r.ts) - start) / step);
    if (i >= 0 && i < buckets) counts[i] += 1;
  }
  const points = counts.map((n, i) => ({ t: new Date(start + i * step).toISOString(), value: n }));
  const unit = step >= 3600 * 1000 ? `/${Math.round(step / 60000)} min` : `/${Math.round(step / 1000)} s`;
  lineChart(byId("actor-activity"), requests.length ? points : [], {
    label: "Requests over time", className: "series-events", unit, height: 140, fillGaps: false,
  });
}

function showPaths(paths) {
  const rows = (paths || []).map((p) => h("tr", null,
    h("td", { class: "mono wrap" }, p.path),
    h("td", { class: "num" }, fmtNum(p.requests))));
  fill(byId("actor-paths").tBodies[0], rows.length ? rows : messageRow(2, "No requests in this window."));
}

function showFindings(findings) {
  const items = (findings || []).map((f) => h("li", { class: `sev-row-${f.severity}` },
    sevBadge(f.severity), " ",
    h("span", { class: "feed-kind" }, f.subkind ? `${f.kind} · ${f.subkind}` : f.kind), " ",
    h("span", { class: "finding-summary" }, f.summary), " ",
    h("span", { class: "muted" }, timeEl(f.detected))));
  fill(byId("actor-findings"), items.length ? items : h("li", { class: "empty muted" }, "No findings in this window."));
}

function showTimeline(requests, truncated) {
  const rows = [...(requests || [])].reverse().map((r) => h("tr", { class: "request" },
    h("td", null, timeEl(r.ts)),
    h("td", null, r.method),
    h("td", null, h("span", { class: ["http", httpStatusClass(r.status)] }, String(r.status))),
    h("td", { class: "muted" }, r.host),
    h("td", { class: "mono wrap" }, r.path, r.query ? h("span", { class: "muted" }, `?${r.query}`) : null),
    h("td", null, actorLink("user", r.user)),
    h("td", null, actorLink("api_key", r.api_key)),
    h("td", null, actorLink("ip", r.client_ip)),
    h("td", { class: "ua", title: r.user_agent || "" }, r.user_agent || "")));
  fill(byId("actor-timeline").tBodies[0], rows.length ? rows : messageRow(9, "No requests in this window."));
  byId("actor-timeline-note").textContent = rows.length
    ? `(${fmtNum(rows.length)} requests, newest first${truncated ? "; the limit was reached" : ""})` : "";
}

function searchLink(hours) {
  const until = new Date(Date.now() + 60 * 1000);
  const since = new Date(until.getTime() - Math.min(hours, MAX_SPAN_HOURS) * 3600 * 1000);
  byId("actor-search").setAttribute("href", `/search${query({
    since: since.toISOString(), until: until.toISOString(), [kind]: value,
  })}`);
}

async function load() {
  const hours = Number(hoursSelect.value) || 24;
  searchLink(hours);
  try {
    const data = await api(`/api/v1/actors/${encodeURIComponent(kind)}/${encodeURIComponent(value)}${query({ hours, limit: REQUEST_LIMIT })}`);
    clearError(errorBox);
    showSummary(data);
    showStatuses(data.status_mix);
    showActivity(data.requests || [], hours);
    showPaths(data.paths);
    showFindings(data.findings);
    showTimeline(data.requests, data.truncated);
    stamp(byId("actor-updated"));
  } catch (err) {
    showError(errorBox, err);
    for (const id of ["actor-paths", "actor-timeline"]) {
      const table = byId(id);
      fill(table.tBodies[0], messageRow(table.tHead.rows[0].cells.length, "Could not load."));
    }
  }
}

const fromUrl = new URLSearchParams(window.location.search).get("hours");
if (fromUrl && [...hoursSelect.options].some((o) => o.value === fromUrl)) hoursSelect.value = fromUrl;
hoursSelect.addEventListener("change", () => {
  window.history.replaceState(null, "", `${window.location.pathname}${query({ hours: hoursSelect.value })}`);
  load();
});
load();
