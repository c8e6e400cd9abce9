// Renders a Grafana dashboard JSON from real Prometheus data: every target's `expr` runs
// through /api/v1/query_range, and each panel is drawn with uPlot at its gridPos.
// Not Grafana: only what the PAR dashboard uses (rows, timeseries panels, units, the
// $agent variable, {{label}} legends) is understood.
"use strict";

const params = new URLSearchParams(location.search);
const PROMETHEUS = params.get("prometheus") || "http://127.0.0.1:9090";
const RANGE = Number(params.get("range") || 900);
const AGENT = params.get("agent") || ".*"; // the variable's "All" value
const CELL = 30; // Grafana's grid: 24 columns, rows of 30 px with 8 px gaps
const GAP = 8;
const COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2",
  "#b877d9", "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17"];

const UNITS = {
  reqps: (v) => `${num(v)} req/s`,
  ops: (v) => `${num(v)} ops/s`,
  percentunit: (v) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`,
  s: (v) => (v === 0 ? "0" : v < 1 ? `${num(v * 1000)} ms` : `${num(v)} s`),
  bytes: (v) => {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${num(v)} ${units[i]}`;
  },
  short: (v) => num(v),
};

function num(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(a >= 10 ? 0 : a >= 1 ? 1 : 3)}`;
}

function interpolate(expr) {
  return expr.replace(/\$\{agent\}|\$agent\b/g, AGENT);
}

function legend(format, labels) {
  if (!format) return JSON.stringify(labels);
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => labels[name] ?? "");
}

async function queryRange(expr, start, end, step) {
  const url = new URL("/api/v1/query_range", PROMETHEUS);
  url.search = new URLSearchParams({ query: interpolate(expr), start, end, step });
  const res = await fetch(url);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`${body.errorType}: ${body.error}`);
  return body.data.result;
}

// All targets of a panel on one time grid: [xs, ys...] and one label per series.
async function panelData(panel, start, end, step) {
  const xs = [];
  for (let t = start; t <= end; t += step) xs.push(t);
  const series = [];
  for (const target of panel.targets || []) {
    for (const r of await queryRange(target.expr, start, end, step)) {
      const ys = new Array(xs.length).fill(null);
      for (const [t, v] of r.values) {
        const i = Math.round((t - start) / step);
        const n = Number(v);
        if (i >= 0 && i < ys.length && Number.isFinite(n)) ys[i] = n;
      }
      series.push({ label: legend(target.legendFormat, r.metric), ys });
    }
  }
  return { xs, series };
}

function box(el, gridPos, colWidth) {
  el.style.left = `${gridPos.x * colWidth}px`;
  el.style.top = `${gridPos.y * (CELL + GAP)}px`;
  el.style.width = `${gridPos.w * colWidth - GAP}px`;
  el.style.height = `${gridPos.h * (CELL + GAP) - GAP}px`;
}

async function drawPanel(grid, panel, colWidth, range) {
  const el = document.createElement("div");
  el.className = "panel";
  box(el, panel.gridPos, colWidth);
  const title = document.createElement("h2");
  title.textContent = panel.title;
  el.appendChild(title);
  grid.appendChild(el);
  let data;
  try {
    data = await panelData(panel, ...range);
  } catch (e) {
    el.insertAdjacentHTML("beforeend", '<div class="empty"></div>');
    el.lastChild.textContent = `Query failed: ${e.message}`;
    el.dataset.state = "error";
    return;
  }
  const { xs, series } = data;
  if (series.length === 0) {
    el.insertAdjacentHTML("beforeend", '<div class="empty">No data</div>');
    el.dataset.state = "empty";
    return;
  }
  el.dataset.state = "data";
  const defaults = (panel.fieldConfig || {}).defaults || {};
  const format = UNITS[defaults.unit] || UNITS.short;
  const color = (i) => COLORS[i % COLORS.length];
  const plotBox = document.createElement("div");
  const legendBox = document.createElement("div");
  legendBox.className = "legend";
  series.forEach((s, i) => {
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${color(i)}"></i>`;
    item.append(s.label);
    legendBox.appendChild(item);
  });
  el.append(plotBox, legendBox);
  const axis = { stroke: "#8e8e8e", grid: { stroke: "#2c3235", width: 1 }, ticks: { show: false },
    font: "11px sans-serif" };
  new uPlot({
    width: el.clientWidth - 8,
    height: el.clientHeight - title.offsetHeight - legendBox.offsetHeight - 6,
    legend: { show: false },
    cursor: { show: false },
    scales: { y: { range: (u, min, max) => [defaults.min ?? min, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { ...axis, space: 70, values: (u, ticks) => ticks.map(hhmm) },
      { ...axis, size: 72, values: (u, ticks) => ticks.map(format) },
    ],
    series: [{}].concat(series.map((s, i) => ({
      label: s.label, stroke: color(i), fill: `${color(i)}1a`, width: 1.5,
    }))),
  }, [xs, ...series.map((s) => s.ys)], plotBox);
}

function hhmm(t) {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

async function main() {
  const dashboard = await (await fetch(params.get("dashboard") || "par-overview.json")).json();
  document.getElementById("title").textContent = dashboard.title;
  document.getElementById("vars").textContent =
    `Data source: Prometheus · agent: ${AGENT === ".*" ? "All" : AGENT} · last ${RANGE / 60} minutes`;
  document.getElementById("note").textContent =
    "Preview renderer (deploy/grafana/preview, uPlot) running the dashboard's own queries on real Prometheus data — not Grafana";
  const grid = document.getElementById("grid");
  const colWidth = (grid.clientWidth + GAP) / 24;
  const end = Math.floor(Date.now() / 1000);
  const step = Math.max(5, Math.round(RANGE / 240));
  const range = [end - RANGE, end, step];
  let bottom = 0;
  const draws = [];
  for (const panel of dashboard.panels) {
    bottom = Math.max(bottom, (panel.gridPos.y + panel.gridPos.h) * (CELL + GAP));
    if (panel.type === "row") {
      const row = document.createElement("div");
      row.className = "row";
      row.textContent = panel.title;
      box(row, panel.gridPos, colWidth);
      grid.appendChild(row);
    } else {
      draws.push(drawPanel(grid, panel, colWidth, range));
    }
  }
  grid.style.height = `${bottom}px`;
  await Promise.all(draws);
  document.body.dataset.ready = "1";
}

main();
