// Every event, with the API's filters (PE, deployment, status, type, source, time range,
// text search) kept in the address, live at the top, more pages as it scrolls, and an
// export of exactly the current filter as CSV or JSON lines.
import { EventList } from "../activity.js";
import * as api from "../api.js";
import { STATUS, errorBox, field, h, options } from "../dom.js";

const FILTERS = ["prediction_environment_id", "deployment_id", "status", "type", "source", "since", "until", "q"];

export async function render(main, { query, signal }) {
  document.title = "Events · Pilothouse";
  const filters = Object.fromEntries(FILTERS.filter((k) => query.get(k)).map((k) => [k, query.get(k)]));
  const [environments, deployments] = await Promise.all([
    api.all("/prediction-environments", {}, { signal }),
    api.all("/deployments", {}, { signal }),
  ]);
  const names = Object.fromEntries([...environments, ...deployments].map((x) => [x.id, x.name]));

  const control = {
    prediction_environment_id: options(h("select", { name: "prediction_environment_id" }),
      [["", "Any environment"], ...environments.map((e) => [e.id, e.name])], filters.prediction_environment_id || ""),
    deployment_id: options(h("select", { name: "deployment_id" }),
      [["", "Any deployment"], ...deployments.map((d) => [d.id, d.name])], filters.deployment_id || ""),
    status: options(h("select", { name: "status" }),
      [["", "Any status"], ...Object.entries(STATUS).map(([k, v]) => [k, v.label])], filters.status || ""),
    source: options(h("select", { name: "source" }),
      [["", "Any source"], ["agent", "agent"], ["hub", "hub"], ["user", "user"], ["monitor", "monitor"]], filters.source || ""),
    type: h("input", { name: "type", value: filters.type || "", placeholder: "deployment.ready", autocomplete: "off", spellcheck: "false" }),
    since: h("input", { name: "since", type: "datetime-local", step: "1", value: toLocal(filters.since) }),
    until: h("input", { name: "until", type: "datetime-local", step: "1", value: toLocal(filters.until) }),
    q: h("input", { name: "q", type: "search", value: filters.q || "", autocomplete: "off" }),
  };
  const format = options(h("select", { name: "format", id: "export-format" }), [["csv", "CSV"], ["jsonl", "JSON lines"]]);
  const exportButton = h("button", { type: "button", class: "primary", text: "Export" });
  const problem = h("div", { class: "problem" });
  const form = h("form", { class: "filters events-filters", role: "search", "aria-label": "Filter events" },
    field("Prediction environment", control.prediction_environment_id),
    field("Deployment", control.deployment_id),
    field("Status", control.status),
    field("Source", control.source),
    field("Type", control.type, "Exact, e.g. deployment.ready"),
    field("From", control.since),
    field("Until", control.until),
    field("Search", control.q, "Every word must occur; word* matches a prefix"),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", text: "Apply filters" }),
      h("a", { class: "button quiet", href: "#/events", text: "Clear" })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, input] of Object.entries(control)) {
      const value = key === "since" || key === "until" ? fromLocal(input.value) : input.value.trim();
      if (value) params.set(key, value);
    }
    location.hash = `#/events${params.size ? `?${params}` : ""}`;
  });

  const list = new EventList({ filters, layout: "table", names, pageSize: 100, label: "Events" });
  const live = h("span", { class: "live", "data-state": "connecting", text: "Connecting…" });
  exportButton.addEventListener("click", () => download(filters, format.value, exportButton, problem));
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Events" }), live),
    form,
    h("div", { class: "export-row" }, field("Export format", format), exportButton,
      h("span", { class: "hint", text: "Exports every event matching the filters above, newest first." })),
    problem,
    list.element);

  await new Promise((resolve) => {
    api.follow(filters, {
      backlog: 100,
      signal,
      onSnapshot: (page) => {
        list.reset(page);
        resolve();
      },
      onEvent: (event) => list.add(event),
      onState: (s) => {
        live.dataset.state = s;
        live.textContent = s === "live" ? "Live" : "Reconnecting…";
      },
    }).catch((error) => {
      problem.replaceChildren(errorBox(error));
      resolve();
    });
  });
  list.scrollLoads(signal); // once the first page is in: its end is where scrolling loads more
  performance.mark("pilothouse:events-rendered");
}

/** Fetch the export with the token in a header, then hand the file to the browser. */
async function download(filters, format, button, problem) {
  button.disabled = true;
  button.textContent = "Exporting…";
  problem.replaceChildren();
  try {
    const resp = await api.request("GET", "/events/export", { query: { ...filters, format }, raw: true });
    const blob = await resp.blob();
    const disposition = resp.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || `events.${format}`;
    const href = URL.createObjectURL(blob);
    const link = h("a", { href, download: name, class: "visually-hidden", text: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
  } catch (error) {
    problem.replaceChildren(errorBox(error));
  } finally {
    button.disabled = false;
    button.textContent = "Export";
  }
}

function toLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fromLocal(value) {
  return value ? new Date(value).toISOString() : "";
}
