// Shared by the dashboard's pages: calls to the JSON API, building the DOM, and
// formatting. Every value from the API reaches the page as text (textContent or an
// attribute), never as markup: attackers choose paths, user agents and user names.

export const SEVERITIES = Object.freeze(["low", "medium", "high", "critical"]);
export const ACTOR_KINDS = Object.freeze(["ip", "user", "api_key"]);
const TRIAGE_STATUSES = Object.freeze(["new", "acknowledged", "resolved", "false_positive"]);

/** An API call that failed: ``status`` 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The session's CSRF token, from the page's ``csrf-token`` meta tag. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

/** Send the browser to the login page (the session expired or was revoked). */
export function toLogin() {
  window.location.assign("/login");
}

/**
 * Call the API and return its JSON (null for an empty answer). Changes carry the
 * CSRF header; a 401 sends the browser to the login page; any other failure throws an
 * ApiError with the API's own message ({"error": ...}).
 */
export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = csrfToken();
  }
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: payload, signal, credentials: "same-origin", cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "The dashboard cannot be reached: check the connection.");
  }
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, "Your session has ended: log in again.");
  }
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = data && typeof data.error === "string"
      ? data.error : `The server answered ${response.status} ${response.statusText}.`;
    throw new ApiError(response.status, message);
  }
  return data;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") out.set(key, String(value));
  }
  const text = out.toString();
  return text ? `?${text}` : "";
}

// --- DOM ------------------------------------------------------------------------

/** The element with this id; a missing hook is a bug in the template. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

function applyProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") {
      node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "on") {
      for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
    } else if (key.startsWith("on")) {
      throw new Error(`use {on: {...}} for ${key}`);
    } else if (key === "href" && !/^(\/(?![/\\])|[#?])/.test(String(value))) {
      throw new Error("links stay on the dashboard");
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function appendAll(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) appendAll(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: ``h("a", {href: "/x", class: "y"}, "text", otherNode)``. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  appendAll(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element, like ``h``. */
export function svg(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  applyProps(node, props);
  appendAll(node, children);
  return node;
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  appendAll(node, children);
  return node;
}

/** A table row spanning ``columns`` with a message (no data, loading). */
export function messageRow(columns, text) {
  return h("tr", { class: "empty" }, h("td", { colspan: columns }, text));
}

export function showError(node, err) {
  node.textContent = err instanceof Error ? err.message : String(err);
  node.hidden = false;
}

export function clearError(node) {
  node.textContent = "";
  node.hidden = true;
}

// --- values -----------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");

/** Milliseconds since the epoch from an ISO string, epoch seconds or milliseconds. */
export function toMs(value) {
  if (typeof value === "number") return value < 1e11 ? value * 1000 : value;
  if (typeof value === "string" && value !== "") {
    // The store's naive times are UTC.
    const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(" ", "T")}Z`;
    return Date.parse(text);
  }
  return Number.NaN;
}

/** A time as the reader's local "YYYY-MM-DD HH:MM:SS". */
export function fmtTime(value) {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return value === null || value === undefined ? "–" : String(value);
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "HH:MM" or, over a day, "MM-DD HH:MM", local time. */
export function fmtClock(ms, withDate = false) {
  const d = new Date(ms);
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withDate ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}` : clock;
}

/** How long ago, roughly: "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function fmtAgo(value) {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return "";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A <time> element: local time shown, UTC ISO in the tooltip. */
export function timeEl(value, { ago = false } = {}) {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return h("span", { class: "muted" }, "–");
  const iso = new Date(ms).toISOString();
  return h("time", { datetime: iso, title: `${iso} (UTC)` }, ago ? fmtAgo(ms) : fmtTime(ms));
}

/** Show every server-rendered <time datetime> in local time. */
export function localizeTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    const ms = toMs(node.getAttribute("datetime"));
    if (Number.isFinite(ms)) {
      node.textContent = fmtTime(ms);
      node.title = `${new Date(ms).toISOString()} (UTC)`;
    }
  }
}

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** A count or measure for reading: integers grouped, others to two decimals. */
export function fmtNum(value) {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n)) return "–";
  return Number.isInteger(n) ? integer.format(n) : decimal.format(n);
}

/** A number for an axis label: 1.2K, 3M. */
export function fmtCompact(value) {
  return compact.format(value);
}

/** A share (0..1) as a percentage. */
export function fmtPct(value) {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n)) return "–";
  if (n === 0) return "0%";
  return n < 0.001 ? "<0.1%" : `${(n * 100).toFixed(1)}%`;
}

/** A severity as a coloured label. */
export function sevBadge(severity) {
  const known = SEVERITIES.includes(severity) ? severity : "unknown";
  return h("span", { class: `sev sev-${known}` }, severity || "–");
}

/** A triage status as a label. */
export function statusBadge(status) {
  const known = TRIAGE_STATUSES.includes(status) ? status : "unknown";
  return h("span", { class: `status status-${known}` }, String(status || "–").replace("_", " "));
}

/** The class of an HTTP status ("status-4xx") for colouring it. */
export function httpStatusClass(status) {
  const n = Number(status);
  return n >= 100 && n < 600 ? `http-${Math.floor(n / 100)}xx` : "http-unknown";
}

/** The page of an actor: an IP, a user or an API key. */
export function actorHref(kind, value) {
  return `/actors/${encodeURIComponent(kind)}/${encodeURIComponent(value)}`;
}

/** An actor as a link to its page (plain text for a route or "global"). */
export function actorLink(kind, value) {
  if (!value) return h("span", { class: "muted" }, "–");
  if (!ACTOR_KINDS.includes(kind)) return h("span", { class: "mono" }, value);
  return h("a", { class: "actor mono", href: actorHref(kind, value), title: `${kind} ${value}` }, value);
}

/** An alert's page. */
export function alertHref(id) {
  return `/alerts/${encodeURIComponent(id)}`;
}

/**
 * Run ``task`` now and then every ``ms`` after it finishes; skip while the tab is
 * hidden and catch up when it shows again. Returns ``refresh()`` to run it at once.
 */
export function every(ms, task) {
  let timer = 0;
  let running = false;
  const run = async () => {
    window.clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      await task();
    } finally {
      running = false;
      timer = window.setTimeout(tick, ms);
    }
  };
  const tick = () => {
    if (!document.hidden) run();
    else timer = window.setTimeout(tick, ms);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) run();
  });
  run();
  return run;
}

/** "Updated 12:00:03" for a page's freshness line. */
export function stamp(node) {
  const now = new Date();
  node.textContent = `Updated ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}
