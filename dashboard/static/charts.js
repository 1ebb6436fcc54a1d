// Small SVG charts, drawn without a library: a line chart with a shaded area for a
// time series, and a horizontal bar chart for counts by label. Colours come from
// app.css classes (the CSP allows no inline style); a chart redraws itself when the
// window is resized.

import { fmtClock, fmtCompact, fmtNum, fmtTime, svg, toMs } from "./lib.js";

const drawn = new Map(); // container -> redraw(), for resizes
let resizeTimer = 0;
window.addEventListener("resize", () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    for (const [container, redraw] of drawn) {
      if (container.isConnected) redraw();
      else drawn.delete(container);
    }
  }, 150);
});

function widthOf(container) {
  return Math.max(280, Math.floor(container.clientWidth || container.getBoundingClientRect().width || 600));
}

/** A step for about ``count`` ticks over ``span``: 1, 2 or 5 times a power of ten. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const factor = residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1;
  return factor * magnitude;
}

function empty(width, height, text) {
  return svg("svg", {
    class: "chart-svg", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": text,
  }, svg("text", { class: "chart-empty-text", x: width / 2, y: height / 2, "text-anchor": "middle" }, text));
}

/**
 * Points {t, value} (t: ISO time or epoch seconds), oldest first, as numbers; with
 * ``step`` known, missing buckets are zeros (the API lists only buckets with data).
 */
function series(points, fillGaps) {
  const data = (Array.isArray(points) ? points : [])
    .map((p) => ({ x: toMs(p && p.t), y: Number(p && p.value) }))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .sort((a, b) => a.x - b.x);
  if (!fillGaps || data.length < 3) return data;
  let step = Infinity;
  for (let i = 1; i < data.length; i += 1) {
    const gap = data[i].x - data[i - 1].x;
    if (gap > 0) step = Math.min(step, gap);
  }
  if (!Number.isFinite(step) || (data[data.length - 1].x - data[0].x) / step > 5000) return data;
  const filled = [data[0]];
  for (let i = 1; i < data.length; i += 1) {
    for (let x = filled[filled.length - 1].x + step; x < data[i].x - step / 2; x += step) {
      filled.push({ x, y: 0 });
    }
    filled.push(data[i]);
  }
  return filled;
}

/**
 * Draw a time series into ``container``: points [{t, value}], ``label`` for screen
 * readers, ``className`` for the colour (series-*), ``unit`` after values in the
 * tooltip, ``fillGaps`` to read missing buckets as zero.
 */
export function lineChart(container, points, options = {}) {
  const { label = "chart", className = "series-default", unit = "", fillGaps = true, height = 180 } = options;
  const data = series(points, fillGaps);
  const draw = () => {
    const width = widthOf(container);
    if (data.length === 0) {
      container.replaceChildren(empty(width, height, "No data in this window"));
      return;
    }
    const pad = { top: 14, right: 14, bottom: 24, left: 46 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    let x0 = data[0].x;
    let x1 = data[data.length - 1].x;
    if (x1 === x0) {
      x0 -= 30_000;
      x1 += 30_000;
    }
    const top = Math.max(...data.map((p) => p.y));
    const yStep = niceStep(top > 0 ? top : 1, 4);
    const yMax = Math.max(yStep, Math.ceil(top / yStep) * yStep);
    const px = (x) => pad.left + ((x - x0) / (x1 - x0)) * plotW;
    const py = (y) => pad.top + plotH - (y / yMax) * plotH;

    const chart = svg("svg", {
      class: `chart-svg ${className}`, viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": label,
    });
    const grid = svg("g", { class: "chart-grid" });
    for (let y = 0; y <= yMax + yStep / 2; y += yStep) {
      grid.append(
        svg("line", { x1: pad.left, x2: width - pad.right, y1: py(y), y2: py(y) }),
        svg("text", { class: "chart-axis", x: pad.left - 6, y: py(y) + 4, "text-anchor": "end" }, fmtCompact(y)),
      );
    }
    const withDate = x1 - x0 > 20 * 3600 * 1000;
    const ticks = Math.max(2, Math.min(6, Math.floor(plotW / 110)));
    for (let i = 0; i <= ticks; i += 1) {
      const x = x0 + ((x1 - x0) * i) / ticks;
      const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
      grid.append(svg("text", { class: "chart-axis", x: px(x), y: height - 6, "text-anchor": anchor }, fmtClock(x, withDate)));
    }
    chart.append(grid);

    const line = data.map((p, i) => `${i ? "L" : "M"}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join("");
    const base = py(0).toFixed(1);
    if (data.length > 1) {
      chart.append(
        svg("path", { class: "chart-area", d: `${line}L${px(data[data.length - 1].x).toFixed(1)},${base}L${px(data[0].x).toFixed(1)},${base}Z` }),
        svg("path", { class: "chart-line", d: line }),
      );
    } else {
      chart.append(svg("circle", { class: "chart-dot", cx: px(data[0].x), cy: py(data[0].y), r: 3 }));
    }

    // Hover: the nearest point, its time and value.
    const marker = svg("circle", { class: "chart-marker", r: 4, cx: 0, cy: 0, visibility: "hidden" });
    const tipText = svg("text", { class: "chart-tip-text", x: 0, y: 0 });
    const tipBox = svg("rect", { class: "chart-tip", rx: 3, width: 0, height: 20 });
    const tip = svg("g", { class: "chart-tip-group", visibility: "hidden" }, tipBox, tipText);
    const overlay = svg("rect", {
      class: "chart-overlay", x: pad.left, y: pad.top, width: plotW, height: plotH,
      on: {
        pointermove: (event) => {
          const box = chart.getBoundingClientRect();
          const scale = box.width ? width / box.width : 1;
          const mx = (event.clientX - box.left) * scale;
          const target = x0 + ((mx - pad.left) / plotW) * (x1 - x0);
          let best = data[0];
          for (const p of data) if (Math.abs(p.x - target) < Math.abs(best.x - target)) best = p;
          const cx = px(best.x);
          const cy = py(best.y);
          marker.setAttribute("cx", cx);
          marker.setAttribute("cy", cy);
          tipText.textContent = `${fmtTime(best.x)}  ${fmtNum(best.y)}${unit}`;
          const textW = tipText.getComputedTextLength ? tipText.getComputedTextLength() : 150;
          const boxX = Math.min(Math.max(cx - textW / 2 - 6, 2), width - textW - 14);
          const boxY = Math.max(cy - 30, 0);
          tipBox.setAttribute("x", boxX);
          tipBox.setAttribute("y", boxY);
          tipBox.setAttribute("width", textW + 12);
          tipText.setAttribute("x", boxX + 6);
          tipText.setAttribute("y", boxY + 14);
          tip.setAttribute("visibility", "visible");
          marker.setAttribute("visibility", "visible");
        },
        pointerleave: () => {
          tip.setAttribute("visibility", "hidden");
          marker.setAttribute("visibility", "hidden");
        },
      },
    });
    chart.append(marker, tip, overlay);
    container.replaceChildren(chart);
  };
  draw();
  drawn.set(container, draw);
}

/**
 * Draw counts as horizontal bars: items [{label, value, className?, title?}], largest
 * first as given. ``className`` colours a bar (e.g. sev-high, http-4xx).
 */
export function barChart(container, items, options = {}) {
  const { label = "chart", className = "series-default", max = 12 } = options;
  const rows = (Array.isArray(items) ? items : [])
    .filter((item) => Number.isFinite(Number(item.value)))
    .slice(0, max);
  const draw = () => {
    const width = widthOf(container);
    const rowH = 24;
    const height = Math.max(60, rows.length * rowH + 8);
    if (rows.length === 0) {
      container.replaceChildren(empty(width, 80, "Nothing in this window"));
      return;
    }
    const labelW = Math.min(190, Math.floor(width * 0.4));
    const valueW = 64;
    const barW = width - labelW - valueW - 12;
    const top = Math.max(...rows.map((r) => Number(r.value)), 1);
    const maxChars = Math.floor(labelW / 7.2);
    const chart = svg("svg", {
      class: `chart-svg bars ${className}`, viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": label,
    });
    rows.forEach((row, i) => {
      const y = 4 + i * rowH;
      const value = Number(row.value);
      const text = String(row.label);
      const shown = text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
      chart.append(svg("g", { class: ["chart-bar-row", row.className] },
        svg("title", null, `${text}: ${fmtNum(value)}`),
        svg("text", { class: "chart-label", x: labelW - 8, y: y + 15, "text-anchor": "end" }, shown),
        svg("rect", { class: "chart-track", x: labelW, y: y + 3, width: barW, height: rowH - 8, rx: 2 }),
        svg("rect", { class: "chart-bar", x: labelW, y: y + 3, width: Math.max(2, (value / top) * barW), height: rowH - 8, rx: 2 }),
        svg("text", { class: "chart-value", x: labelW + barW + 8, y: y + 15 }, fmtNum(value)),
      ));
    });
    container.replaceChildren(chart);
  };
  draw();
  drawn.set(container, draw);
}
