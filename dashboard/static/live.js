// The live feed: findings and alert versions pushed by /api/v1/live (Server-Sent
// Events), newest first, at most 500 kept. The browser's EventSource reconnects by
// itself after a dropped connection; when the server refuses the stream (a lost
// session, too many streams) this page checks the session and tries again.

import {
  actorLink, alertHref, api, byId, fmtNum, h, sevBadge, timeEl,
} from "./lib.js";

const MAX_ITEMS = 500;
const RETRY_MS = 3000;

const status = byId("live-status");
const feed = byId("live-feed");
const emptyNote = byId("live-empty");
const counts = byId("live-counts");
const pausedNote = byId("live-paused");
const pauseButton = byId("live-pause");
const showFindings = byId("live-findings");
const showAlerts = byId("live-alerts");

const seen = { finding: 0, alert: 0 };
let held = [];
let paused = false;
let source = null;
let retryTimer = 0;

function setStatus(connected) {
  status.textContent = connected ? "connected" : "reconnecting";
  status.parentElement.classList.toggle("is-connected", connected);
}

function findingItem(data) {
  return h("li", { class: ["feed-item", `sev-row-${data.severity}`], dataset: { kind: "finding" } },
    timeEl(data.detected || data.stored),
    sevBadge(data.severity),
    h("span", { class: "feed-kind" }, data.subkind ? `${data.kind} · ${data.subkind}` : data.kind),
    h("span", { class: "feed-entity" }, actorLink(data.entity_type, data.entity),
      h("span", { class: "muted" }, ` ${data.entity_type || ""}`)),
    h("span", { class: "feed-summary" }, data.summary || ""));
}

function alertItem(data) {
  const change = data.version > 1 ? `updated (v${data.version})` : "opened";
  return h("li", { class: ["feed-item", "feed-alert", `sev-row-${data.severity}`], dataset: { kind: "alert" } },
    timeEl(data.updated || data.stored),
    sevBadge(data.severity),
    h("span", { class: "feed-kind" }, h("a", { class: "alert-link", href: alertHref(data.id) }, data.title)),
    h("span", { class: "feed-entity muted" }, data.state === "closed" ? "alert closed" : `alert ${change}`),
    h("span", { class: "feed-summary" }, `${fmtNum(data.findings)} finding${data.findings === 1 ? "" : "s"}`));
}

function applyFilters(item) {
  const hidden = (item.dataset.kind === "finding" && !showFindings.checked)
    || (item.dataset.kind === "alert" && !showAlerts.checked);
  item.hidden = hidden;
}

function show(items) {
  // Newest first: the latest message goes on top.
  for (const item of items) {
    applyFilters(item);
    feed.prepend(item);
  }
  while (feed.childElementCount > MAX_ITEMS) feed.lastElementChild.remove();
  emptyNote.hidden = feed.childElementCount > 0;
}

function receive(kind, event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return; // not ours to show
  }
  if (!data || typeof data !== "object") return;
  seen[kind] += 1;
  counts.textContent = `${fmtNum(seen.finding)} findings and ${fmtNum(seen.alert)} alert changes since you opened this page.`;
  const item = kind === "finding" ? findingItem(data) : alertItem(data);
  if (paused) {
    held.push(item);
    if (held.length > MAX_ITEMS) held = held.slice(-MAX_ITEMS);
    pauseButton.textContent = `Resume (${held.length})`;
  } else {
    show([item]);
  }
}

async function retry() {
  window.clearTimeout(retryTimer);
  try {
    // A lost session answers 401 here, and api() sends the browser to the login page.
    await api("/api/v1/alerts?limit=1");
  } catch {
    // The server is away or busy: try the stream again in a while.
  }
  retryTimer = window.setTimeout(connect, RETRY_MS);
}

function connect() {
  if (source) source.close();
  source = new EventSource("/api/v1/live");
  source.addEventListener("open", () => setStatus(true));
  source.addEventListener("error", () => {
    setStatus(false);
    if (source.readyState === EventSource.CLOSED) retry();
  });
  source.addEventListener("finding", (event) => receive("finding", event));
  source.addEventListener("alert", (event) => receive("alert", event));
}

pauseButton.addEventListener("click", () => {
  paused = !paused;
  pauseButton.setAttribute("aria-pressed", String(paused));
  pausedNote.hidden = !paused;
  if (!paused) {
    show(held);
    held = [];
  }
  pauseButton.textContent = paused ? "Resume (0)" : "Pause";
});

byId("live-clear").addEventListener("click", () => {
  feed.replaceChildren();
  held = [];
  emptyNote.hidden = false;
  if (paused) pauseButton.textContent = "Resume (0)";
});

for (const box of [showFindings, showAlerts]) {
  box.addEventListener("change", () => {
    for (const item of feed.children) applyFilters(item);
  });
}

window.addEventListener("pagehide", () => {
  if (source) source.close();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) connect(); // back from the history cache, where it was closed
});

setStatus(false);
connect();
