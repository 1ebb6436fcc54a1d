// Forensic search over stored events: /api/v1/events, newest first, a page at a time
// (keyset cursor), with export links for the same query. The form's times are the
// reader's local time, sent as UTC. The query is kept in the address, so a search can
// be shared or linked from other pages (actor, alert, routes).

import {
  actorLink, api, byId, clearError, fill, fmtNum, h, httpStatusClass, query, showError, timeEl,
  toMs,
} from "./lib.js";

const PAGE = 100;
const FILTERS = ["ip", "user", "api_key", "route", "status", "method", "kind"];

const form = byId("search-form");
const results = byId("search-results").tBodies[0];
const next = byId("search-next");
const errorBox = byId("search-error");
const summary = byId("search-summary");
const exportCsv = byId("export-csv");
const exportJsonl = byId("export-jsonl");
const field = (name) => form.elements.namedItem(name);

let search = null; // the query shown: {params, cursor, rows}
let inFlight = null;

const pad = (n) => String(n).padStart(2, "0");

/** A time for a datetime-local input (local, to the second). */
function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T`
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function setDefaultWindow() {
  const until = Math.ceil((Date.now() + 1000) / 60000) * 60000; // the next whole minute
  field("until").value = localInput(until);
  field("since").value = localInput(until - 3600 * 1000);
}

/** The form as API parameters; throws when a time is missing or invalid. */
function paramsOf() {
  const params = {};
  for (const name of ["since", "until"]) {
    const ms = Date.parse(field(name).value); // datetime-local text: local time
    if (!Number.isFinite(ms)) throw new Error(`${name}: enter a date and time`);
    params[name] = new Date(ms).toISOString();
  }
  for (const name of FILTERS) {
    const value = field(name).value.trim();
    if (value) params[name] = value;
  }
  return params;
}

function setExports(params) {
  exportCsv.setAttribute("href", `/api/v1/events/export.csv${query(params)}`);
  exportJsonl.setAttribute("href", `/api/v1/events/export.jsonl${query(params)}`);
}

function resultRow(r) {
  return h("tr", { class: "result" },
    h("td", null, timeEl(r.ts)),
    h("td", null, actorLink("ip", r.client_ip)),
    h("td", null, r.method),
    h("td", null, h("span", { class: ["http", httpStatusClass(r.status)] }, String(r.status))),
    h("td", { class: "muted" }, r.host),
    h("td", { class: "mono wrap" }, r.path, r.query ? h("span", { class: "muted" }, `?${r.query}`) : null),
    h("td", { class: "mono muted" }, r.route),
    h("td", null, actorLink("user", r.user)),
    h("td", null, actorLink("api_key", r.api_key)),
    h("td", { class: "num" }, fmtNum(r.latency_ms)),
    h("td", { class: "num" }, fmtNum(r.response_bytes)),
    h("td", { class: "ua", title: r.user_agent || "" }, r.user_agent || ""));
}

async function fetchPage() {
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  next.disabled = true;
  summary.textContent = "Searching…";
  try {
    const page = await api(`/api/v1/events${query({ ...search.params, limit: PAGE, cursor: search.cursor })}`,
      { signal: controller.signal });
    if (controller !== inFlight) return;
    results.append(...page.rows.map(resultRow));
    search.rows += page.rows.length;
    search.cursor = page.next_cursor;
    next.hidden = !page.next_cursor;
    clearError(errorBox);
    summary.textContent = search.rows === 0 ? "No events match."
      : `${fmtNum(search.rows)} event${search.rows === 1 ? "" : "s"}${page.next_cursor ? ", more to load" : ""}`;
  } catch (err) {
    if (err.name === "AbortError") return;
    showError(errorBox, err);
    summary.textContent = "";
  } finally {
    if (controller === inFlight) {
      inFlight = null;
      next.disabled = false;
    }
  }
}

function run() {
  let params;
  try {
    params = paramsOf();
  } catch (err) {
    showError(errorBox, err);
    return;
  }
  search = { params, cursor: null, rows: 0 };
  fill(results);
  next.hidden = true;
  setExports(params);
  window.history.replaceState(null, "", `/search${query(params)}`);
  fetchPage();
}

/** Fill the form from the address (links from other pages); true when it held a query. */
function fromAddress() {
  const params = new URLSearchParams(window.location.search);
  let any = false;
  for (const name of ["since", "until"]) {
    const ms = toMs(params.get(name) || "");
    if (Number.isFinite(ms)) {
      field(name).value = localInput(ms);
      any = true;
    }
  }
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value === null) continue;
    const input = field(name);
    if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === value)) continue;
    input.value = value;
    any = true;
  }
  return any;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
form.addEventListener("reset", () => {
  // The reset event comes before the fields are cleared.
  window.setTimeout(() => {
    setDefaultWindow();
    clearError(errorBox);
  }, 0);
});
next.addEventListener("click", () => {
  if (search && search.cursor) fetchPage();
});

setDefaultWindow();
if (fromAddress()) run();
else setExports(paramsOf());
