// The deployment inventory: every deployment with its PE, champion package, state, service
// health and last event; filtered by PE and status and searched by name in the browser
// (the whole inventory is loaded once, 1,000 a request), updated live from the event stream.
import * as api from "../api.js";
import { STATUS, clear, h, options, statusIcon, time } from "../dom.js";
import { byId, packageName, stateOf } from "../words.js";

export async function render(main, { query, signal }) {
  document.title = "Deployments · Pilothouse";
  const count = h("p", { class: "count", role: "status" });
  const search = h("input", { type: "search", name: "q", value: query.get("q") || "", autocomplete: "off" });
  const pe = h("select", { name: "pe" });
  const status = options(h("select", { name: "status" }),
    [["", "Any status"], ...Object.entries(STATUS).filter(([k]) => k !== "informational").map(([k, v]) => [k, v.label])],
    query.get("status") || "");
  const body = h("tbody");
  const table = h("table", { class: "inventory" },
    h("caption", { class: "visually-hidden", text: "Deployments" }),
    h("thead", {}, h("tr", {}, ["Deployment", "Prediction environment", "Champion model package", "State", "Service health", "Last event"]
      .map((t) => h("th", { scope: "col", text: t })))),
    body);
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Deployments" }), count),
    h("form", { class: "filters", role: "search", "aria-label": "Filter deployments", onsubmit: (e) => e.preventDefault() },
      labelled("Search by name", search), labelled("Prediction environment", pe), labelled("Service health", status)),
    h("div", { class: "table-wrap" }, table));

  const [deployments, environments, packages] = await Promise.all([
    api.all("/deployments", {}, { signal }),
    api.all("/prediction-environments", {}, { signal }),
    api.all("/model-packages", {}, { signal, max: 5000 }),
  ]);
  const envs = byId(environments);
  const pkgs = byId(packages);
  options(pe, [["", "All environments"], ...environments.map((e) => [e.id, e.name])], query.get("pe") || "");
  const rows = new Map();
  const fragment = document.createDocumentFragment();
  for (const dep of deployments) {
    const row = renderRow(dep, envs, pkgs);
    rows.set(dep.id, row);
    fragment.append(row);
  }
  body.append(fragment);
  if (!deployments.length) {
    body.append(h("tr", {}, h("td", { colspan: "6", class: "empty" },
      "No deployments yet. Create one with ", h("code", { text: "pilothouse deployment create" }), " (see the README).")));
  }

  const apply = () => {
    const words = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows.values()) {
      const visible = (!words || row.dataset.name.includes(words))
        && (!pe.value || row.dataset.pe === pe.value)
        && (!status.value || row.dataset.status === status.value);
      row.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = shown === rows.size ? `${rows.size} deployments` : `${shown} of ${rows.size} deployments`;
    const params = new URLSearchParams();
    if (words) params.set("q", search.value.trim());
    if (pe.value) params.set("pe", pe.value);
    if (status.value) params.set("status", status.value);
    const hash = `#/deployments${params.size ? `?${params}` : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  };
  search.addEventListener("input", apply);
  pe.addEventListener("change", apply);
  status.addEventListener("change", apply);
  apply();
  performance.mark("pilothouse:inventory-rendered");

  live(rows, body, envs, pkgs, apply, signal);
}

function labelled(text, control) {
  const id = `inv-${control.name}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text }), control);
}

function renderRow(dep, envs, pkgs) {
  const env = envs.get(dep.prediction_environment_id);
  const health = dep.service_health.status;
  return h("tr", { "data-id": dep.id, "data-name": dep.name.toLowerCase(), "data-pe": dep.prediction_environment_id, "data-status": health },
    h("th", { scope: "row" }, h("a", { href: `#/deployments/${encodeURIComponent(dep.id)}`, text: dep.name })),
    h("td", { "data-label": "Environment" }, env ? env.name : dep.prediction_environment_id,
      env && !env.use_management_agent ? h("span", { class: "tag warning", title: "Use Management Agent is off", text: "agent off" }) : null),
    h("td", { "data-label": "Champion" }, packageName(pkgs, dep.desired.model_package_id),
      dep.desired.challenger_ids.length ? h("span", { class: "hint", text: ` +${dep.desired.challenger_ids.length} challenger(s)` }) : null),
    h("td", { "data-label": "State" }, stateOf(dep)),
    h("td", { "data-label": "Health", title: dep.service_health.reason || null }, statusIcon(health, { withLabel: true })),
    h("td", { "data-label": "Last event" }, time(dep.last_event_at)));
}

/** Refresh a deployment's row when its events arrive (at most every half second each). */
function live(rows, body, envs, pkgs, apply, signal) {
  const pending = new Map();
  const refresh = async (id) => {
    pending.delete(id);
    try {
      const dep = await api.get(`/deployments/${encodeURIComponent(id)}`, {}, signal);
      const row = renderRow(dep, envs, pkgs);
      const old = rows.get(id);
      if (old) old.replaceWith(row);
      else body.prepend(row);
      rows.set(id, row);
      apply();
    } catch (error) {
      if (error.status === 404 && rows.has(id)) {
        rows.get(id).remove();
        rows.delete(id);
        apply();
      }
    }
  };
  api.follow({}, {
    backlog: 0,
    signal,
    onSnapshot: () => {},
    onState: () => {},
    onEvent: (event) => {
      const id = event.deployment_id;
      if (!id || pending.has(id)) return;
      pending.set(id, setTimeout(() => refresh(id), 500));
    },
  }).catch(() => {});
  signal.addEventListener("abort", () => {
    for (const timer of pending.values()) clearTimeout(timer);
    clear(body);
  });
}
