// One alert: its facts, findings, notifications and triage trail from
// /api/v1/alerts/{id}; analysts triage it here (acknowledge, resolve, reopen, assign,
// comment, false positive) and the page updates without a reload.

import {
  ACTOR_KINDS, actorLink, api, byId, clearError, every, fill, fmtNum, h, localizeTimes, messageRow,
  query, sevBadge, showError, stamp, timeEl, toMs,
} from "./lib.js";

const HOUR = 3600 * 1000;
const MAX_SPAN = 31 * 24 * HOUR - 60 * 1000; // the search API's longest window
const REFRESH_MS = 30_000;

const root = byId("alert");
const alertId = root.dataset.alertId;
const errorBox = byId("alert-error");
const controls = document.getElementById("triage-controls"); // analysts only
const triageError = document.getElementById("triage-error");

const ACTION_LABELS = {
  acknowledge: "acknowledged",
  assign: "assigned",
  comment: "commented",
  resolve: "resolved",
  false_positive: "marked a false positive",
  reopen: "reopened",
};

let shownFindings = "";

// --- rendering ----------------------------------------------------------------------

function setStatus(status) {
  const node = byId("alert-status");
  node.textContent = status;
  node.className = `status status-${["new", "acknowledged", "resolved", "false_positive"].includes(status) ? status : "unknown"}`;
}

function enableControls(status) {
  if (!controls) return;
  const allowed = {
    acknowledge: status === "new",
    resolve: status === "new" || status === "acknowledged",
    reopen: status !== "new",
  };
  for (const button of controls.querySelectorAll("button.triage")) {
    button.disabled = !allowed[button.dataset.action];
  }
}

function trailItem(entry) {
  return h("li", { dataset: { action: entry.action } },
    timeEl(entry.ts), " ",
    h("b", null, entry.analyst), " ",
    h("span", { class: "trail-action" }, ACTION_LABELS[entry.action] || entry.action),
    entry.assignee ? [" → ", h("b", null, entry.assignee)] : null,
    entry.comment ? h("q", { class: "trail-comment" }, entry.comment) : null,
    entry.suppression_id ? h("span", { class: "muted" }, ` suppression ${entry.suppression_id}`) : null);
}

function deliveryRow(d) {
  return h("tr", { class: d.ok ? "ok" : "failed" },
    h("td", null, timeEl(d.ts)),
    h("td", null, d.channel),
    h("td", { class: "num" }, fmtNum(d.version)),
    h("td", { class: "num" }, fmtNum(d.attempt)),
    h("td", null, d.ok ? h("span", { class: "ok-text" }, "delivered")
      : h("span", { class: "error-text", title: d.error || "" }, `failed${d.error ? `: ${d.error}` : ""}`)),
    h("td", { class: "num" }, fmtNum(d.latency_ms)),
    h("td", null, d.digest ? "yes" : "no"));
}

function searchLink(alert) {
  if (!ACTOR_KINDS.includes(alert.actor_type)) return null;
  const until = toMs(alert.last_seen) + 5 * 60 * 1000;
  const since = Math.max(toMs(alert.first_seen) - 5 * 60 * 1000, until - MAX_SPAN);
  if (!Number.isFinite(since) || !Number.isFinite(until)) return null;
  const params = {
    since: new Date(since).toISOString(), until: new Date(until).toISOString(), [alert.actor_type]: alert.actor,
  };
  return h("a", { class: "button", href: `/search${query(params)}` }, "Search the actor's requests in this alert's time");
}

function render(alert) {
  document.title = `${alert.title} · Gatewatch`;
  byId("alert-title").textContent = alert.title;
  const severity = byId("alert-severity");
  severity.replaceWith(Object.assign(sevBadge(alert.severity), { id: "alert-severity" }));
  setStatus(alert.status);
  byId("alert-assignee").textContent = alert.assignee || "unassigned";
  byId("alert-state").textContent = alert.state;
  fill(byId("alert-actor"), actorLink(alert.actor_type, alert.actor), " ",
    h("span", { class: "muted" }, alert.actor_type));
  byId("alert-risk").textContent = fmtNum(alert.risk);
  byId("alert-count").textContent = fmtNum(alert.finding_count);
  for (const [id, value] of [["alert-opened", alert.opened], ["alert-updated-ts", alert.updated],
    ["alert-first", alert.first_seen], ["alert-last", alert.last_seen]]) {
    const node = byId(id);
    node.setAttribute("datetime", value);
  }
  localizeTimes(root);
  fill(byId("alert-kinds"), Object.entries(alert.kinds || {}).map(([kind, n]) =>
    [h("span", { class: "chip" }, `${kind} `, h("b", null, fmtNum(n))), " "]));
  byId("alert-summary").textContent = alert.summary || "";
  fill(byId("alert-links"), searchLink(alert));
  const trail = alert.triage || [];
  fill(byId("triage-trail"), trail.length ? trail.map(trailItem) : h("li", { class: "empty muted" }, "No triage yet."));
  const deliveries = alert.deliveries || [];
  fill(byId("alert-deliveries").tBodies[0],
    deliveries.length ? deliveries.map(deliveryRow) : messageRow(7, "No notifications sent for this alert."));
  enableControls(alert.status);
  stamp(byId("alert-updated"));
}

// --- findings -----------------------------------------------------------------------

function findingItem(f) {
  return h("li", { class: `sev-row-${f.severity}` },
    sevBadge(f.severity), " ",
    h("span", { class: "feed-kind" }, f.subkind ? `${f.kind} · ${f.subkind}` : f.kind), " ",
    actorLink(f.entity_type, f.entity), " ",
    h("span", { class: "finding-summary" }, f.summary), " ",
    h("span", { class: "muted" }, timeEl(f.detected),
      f.owasp ? ` · ${f.owasp}` : "", f.mitre ? ` · ${f.mitre}` : "",
      ` · ${fmtNum(f.evidence)} requests`));
}

/** The alert's findings (the latest version of each), as the alert API returns them. */
function loadFindings(alert) {
  const findings = alert.findings || [];
  const wanted = alert.finding_ids || [];
  const list = byId("alert-findings");
  const note = byId("alert-findings-note");
  if (wanted.length === 0) {
    fill(list, h("li", { class: "empty muted" }, "No findings recorded."));
    return;
  }
  const found = new Set(findings.map((f) => f.id));
  const items = findings.map(findingItem);
  for (const id of wanted) {
    if (!found.has(id)) items.push(h("li", { class: "muted" }, h("span", { class: "mono" }, id), " (no longer stored)"));
  }
  fill(list, items);
  note.textContent = found.size === wanted.length
    ? `(${fmtNum(wanted.length)})` : `(${fmtNum(found.size)} of ${fmtNum(wanted.length)} found)`;
}

// --- loading and triage ---------------------------------------------------------------

async function load() {
  try {
    const alert = await api(`/api/v1/alerts/${encodeURIComponent(alertId)}`);
    render(alert);
    clearError(errorBox);
    const ids = (alert.finding_ids || []).join(",");
    if (ids !== shownFindings) {
      shownFindings = ids;
      loadFindings(alert);
    }
  } catch (err) {
    showError(errorBox, err);
  }
}

async function triage(body, form) {
  const fields = controls.querySelectorAll("button, input, textarea");
  for (const field of fields) field.disabled = true;
  clearError(triageError);
  let done = false;
  try {
    await api(`/api/v1/alerts/${encodeURIComponent(alertId)}/triage`, { method: "POST", body });
    done = true;
  } catch (err) {
    showError(triageError, err);
  } finally {
    for (const field of fields) field.disabled = false;
  }
  if (done && form) form.reset();
  await load();
  if (!done) enableControls(byId("alert-status").textContent);
}

if (controls) {
  for (const button of controls.querySelectorAll("button.triage")) {
    button.addEventListener("click", () => triage({ action: button.dataset.action }));
  }
  const assign = byId("assign-form");
  assign.addEventListener("submit", (event) => {
    event.preventDefault();
    const assignee = assign.elements.namedItem("assignee").value.trim();
    triage({ action: "assign", assignee }, null);
  });
  const comment = byId("comment-form");
  comment.addEventListener("submit", (event) => {
    event.preventDefault();
    triage({ action: "comment", comment: comment.elements.namedItem("comment").value }, comment);
  });
  const falsePositive = byId("fp-form");
  falsePositive.addEventListener("submit", (event) => {
    event.preventDefault();
    const hours = Number(falsePositive.elements.namedItem("hours").value);
    triage({
      action: "false_positive",
      comment: falsePositive.elements.namedItem("comment").value,
      suppress_hours: hours,
    }, falsePositive);
  });
}

localizeTimes(root);
enableControls(byId("alert-status").textContent.trim());
every(REFRESH_MS, load);
