// Analysts' read-only SQL: POST /api/v1/sql, the result as a table. Ctrl+Enter (or
// Cmd+Enter) runs the query; a table's name in the side list starts a query on it.

import { api, byId, clearError, fill, fmtNum, h, showError } from "./lib.js";

const text = byId("sql-text");
const runButton = byId("sql-run");
const results = byId("sql-results");
const errorBox = byId("sql-error");
const meta = byId("sql-meta");
// Each table's time column, to list its newest rows first.
const NEWEST = {
  events: "ts", findings: "detected_ts", alerts: "updated_ts", alert_triage: "ts",
  alert_deliveries: "ts", dead_letters: "received_ts", suppressions: "created_ts",
};

function cell(value) {
  if (value === null || value === undefined) return h("td", { class: "muted" }, "NULL");
  if (typeof value === "number") return h("td", { class: "num" }, String(value));
  if (typeof value === "object") return h("td", { class: "mono wrap" }, JSON.stringify(value));
  return h("td", { class: "wrap" }, String(value));
}

function show(result) {
  fill(results.tHead, h("tr", null, result.columns.map((name) => h("th", null, name))));
  fill(results.tBodies[0], result.rows.map((row) => h("tr", null, row.map(cell))));
  meta.textContent = `${fmtNum(result.rows.length)} row${result.rows.length === 1 ? "" : "s"} · `
    + `${fmtNum(result.elapsed_ms)} ms${result.truncated ? " · truncated: only the first rows are shown" : ""}`;
  meta.classList.toggle("warn", Boolean(result.truncated));
}

async function run() {
  const sql = text.value.trim();
  if (!sql) {
    showError(errorBox, "Write a SELECT first.");
    return;
  }
  runButton.disabled = true;
  meta.textContent = "Running…";
  try {
    show(await api("/api/v1/sql", { method: "POST", body: { sql } }));
    clearError(errorBox);
  } catch (err) {
    showError(errorBox, err);
    meta.textContent = "";
  } finally {
    runButton.disabled = false;
  }
}

runButton.addEventListener("click", run);
text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    run();
  }
});
for (const button of document.querySelectorAll("button.sql-table")) {
  button.addEventListener("click", () => {
    const table = button.dataset.table;
    const order = NEWEST[table] || "";
    text.value = `SELECT *\nFROM ${table}\n${order ? `ORDER BY ${order} DESC\n` : ""}LIMIT 100`;
    text.focus();
  });
}
