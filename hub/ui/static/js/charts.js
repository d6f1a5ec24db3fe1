// The deployment's Monitoring tab: its prediction statistics as charts drawn by uPlot (vendored
// from npm, MIT: ../vendor/uplot/), each with its figures in a table beside it for screen
// readers and for anyone who wants the numbers. One step of the series can hold several
// packages (a replacement inside it); the charts follow the package that served most requests.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import * as api from "./api.js";
import { STATUS, errorBox, fill, h, statusIcon } from "./dom.js";

const SPANS = [["1h", 3600], ["6h", 6 * 3600], ["24h", 86400], ["7d", 7 * 86400]];
const COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a", "#1b7c83"];

/** Per step: the busiest package's point, with the step's requests and errors added up. */
export function steps(points) {
  const byStart = new Map();
  for (const p of points) {
    const step = byStart.get(p.start) || { start: p.start, requests: 0, server_errors: 0, main: null };
    step.requests += p.requests;
    step.server_errors += p.server_errors;
    if (!step.main || p.requests > step.main.requests) step.main = p;
    byStart.set(p.start, step);
  }
  return [...byStart.values()].sort((a, b) => a.start.localeCompare(b.start));
}

function charts(series) {
  const rows = steps(series.points);
  const x = rows.map((r) => Date.parse(r.start) / 1000);
  const features = [...new Set(rows.flatMap((r) => Object.keys(r.main.drift)))].sort();
  const challengers = [...new Set(rows.flatMap((r) => r.main.challengers.map((c) => c.package_id)))].sort();
  const challenger = (r, id) => r.main.challengers.find((c) => c.package_id === id);
  const ms = (v) => (v === null || v === undefined ? null : v * 1000);
  return [
    { id: "requests", title: "Requests", unit: "requests per step",
      lines: [["requests", rows.map((r) => r.requests)]] },
    { id: "error-rate", title: "Error rate", unit: "% of requests",
      lines: [["server errors", rows.map((r) => (r.requests ? (100 * r.server_errors) / r.requests : null))]] },
    { id: "latency", title: "Latency", unit: "ms",
      lines: [["p50", rows.map((r) => ms(r.main.latency_p50_s))], ["p95", rows.map((r) => ms(r.main.latency_p95_s))],
        ["p99", rows.map((r) => ms(r.main.latency_p99_s))]] },
    { id: "drift", title: "Drift (PSI per feature)", unit: "PSI",
      lines: [...features.map((f) => [f, rows.map((r) => r.main.drift[f] ?? null)]),
        ["prediction", rows.map((r) => r.main.prediction_drift)]] },
    { id: "challengers", title: "Challengers vs champion", unit: "% agreement · p99 ms",
      lines: [["champion p99 ms", rows.map((r) => ms(r.main.latency_p99_s))],
        ...challengers.flatMap((id) => [
          [`${id} agreement %`, rows.map((r) => { const c = challenger(r, id); return c && c.agreement !== null ? 100 * c.agreement : null; })],
          [`${id} p99 ms`, rows.map((r) => ms(challenger(r, id)?.latency_p99_s))],
        ])] },
  ].map((c) => ({ ...c, x, labels: rows.map((r) => r.start) }));
}

function draw(spec, width) {
  const holder = h("div", { class: "chart-plot" });
  const series = [{}, ...spec.lines.map(([label], i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: false }))];
  const plot = new uPlot({ width, height: 180, series, axes: [{}, { label: spec.unit, size: 60 }],
    legend: { show: true }, cursor: { drag: { x: false, y: false } } },
  [spec.x, ...spec.lines.map(([, values]) => values)], holder);
  const fmt = (v) => (v === null || v === undefined ? "–" : Number(v.toFixed(4)).toString());
  const table = h("table", { class: "chart-figures" },
    h("caption", { text: `${spec.title} (${spec.unit})` }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Step" }), spec.lines.map(([label]) => h("th", { scope: "col", text: label })))),
    h("tbody", {}, spec.labels.map((label, i) => h("tr", {}, h("th", { scope: "row", text: label }),
      spec.lines.map(([, values]) => h("td", { text: fmt(values[i]) }))))));
  const section = h("section", { class: "card chart", "data-chart": spec.id, "data-points": String(spec.x.length), "aria-labelledby": `chart-${spec.id}` },
    h("h3", { id: `chart-${spec.id}`, text: spec.title }), holder,
    h("details", {}, h("summary", { text: "Figures" }), table));
  return { section, plot };
}

/** Render the Monitoring tab into ``content``; refreshes every 30 s while the page is shown. */
export async function renderMonitoring(content, id, { signal, span = 3600 }) {
  const picker = h("div", { class: "span-picker", role: "group", "aria-label": "Time span" },
    SPANS.map(([label, seconds]) => h("button", { type: "button", class: seconds === span ? "selected" : "", "aria-pressed": seconds === span ? "true" : "false",
      "data-span": String(seconds), text: label, onclick: () => { span = seconds; load(); } })));
  const driftCard = h("section", { class: "card drift-now", "aria-labelledby": "drift-title" });
  const area = h("div", { class: "charts" });
  fill(content, driftCard, h("div", { class: "section-head" }, h("h2", { text: "Prediction statistics" }), picker), area);
  let plots = [];
  async function load() {
    for (const b of picker.querySelectorAll("button")) {
      const on = Number(b.dataset.span) === span;
      b.classList.toggle("selected", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
    try {
      const to = new Date();
      const from = new Date(to.getTime() - span * 1000);
      const series = await api.get(`/deployments/${encodeURIComponent(id)}/monitoring`, { from: from.toISOString(), to: to.toISOString() }, signal);
      const drift = series.drift;
      const named = Object.entries(drift.features).map(([f, psi]) => `${f} (PSI ${psi.toFixed(3)})`).join(", ");
      fill(driftCard, h("h2", { id: "drift-title", text: "Drift" }),
        h("p", { class: `drift-status status-${drift.status}`, "data-status": drift.status }, statusIcon(drift.status), " ",
          h("strong", { text: STATUS[drift.status]?.label || drift.status }), " ",
          h("span", { class: "drift-features", text: named ? `features responsible: ${named}` : drift.status === "unknown" ? "not judged yet (too few rows)" : "no feature past the at-risk threshold" })));
      for (const p of plots) p.destroy();
      plots = [];
      if (!series.points.length) {
        fill(area, h("p", { class: "muted empty-charts", text: "No prediction statistics in this span yet: the agent sends them once the deployment serves requests." }));
        return;
      }
      const width = Math.max(280, Math.min(area.clientWidth || 900, 1100) - 40);
      const drawn = charts(series).map((spec) => draw(spec, width));
      plots = drawn.map((d) => d.plot);
      fill(area, drawn.map((d) => d.section));
      Object.assign(area.dataset, { from: from.toISOString(), to: to.toISOString() });
    } catch (error) {
      if (!signal.aborted) fill(area, errorBox(error));
    }
  }
  await load();
  const timer = setInterval(load, 30000);
  signal.addEventListener("abort", () => { clearInterval(timer); for (const p of plots) p.destroy(); });
}
