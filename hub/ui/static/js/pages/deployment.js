// One deployment: desired vs observed, its actions (each confirmed), and three tabs — Service
// Health (the current status, the rule that decided it, and the live Recent Management Agent
// Activity list with a side panel), Monitoring (charts of its prediction statistics: charts.js)
// and Overview (generation, URL, packages, settings, the last rollback).
import { EventList } from "../activity.js";
import * as api from "../api.js";
import { renderMonitoring } from "../charts.js";
import { confirm } from "../dialogs.js";
import { STATUS, announce, fill, copyButton, errorBox, formatTime, h, json, options, statusIcon, time } from "../dom.js";
import { STATES, byId, packageName, stateOf } from "../words.js";

const RULE = "The worst latest status reported by any source (agent, monitor, hub, user) decides: "
  + "a failing report from the management agent is never hidden by a passing one from elsewhere.";

export async function render(main, { params, signal }) {
  const [id, tabName] = params;
  const tab = ["overview", "monitoring"].includes(tabName) ? tabName : "service-health";
  const path = `/deployments/${encodeURIComponent(id)}`;
  const state = { dep: null, env: null, packages: new Map() };
  const head = h("div", { class: "deployment-head" });
  const status = h("div", { class: "action-status", role: "status" });
  const content = h("div", { class: "tab-panel", role: "tabpanel", id: "deployment-tab", tabindex: "-1" });
  const activity = new EventList({
    filters: { deployment_id: id },
    names: {},
    label: "Recent Management Agent Activity",
    onNew: () => scheduleRefresh(),
  });
  const liveBadge = h("span", { class: "live", "data-state": "connecting", text: "Connecting…" });

  // The stream starts at once, beside the deployment's own request: both make the first render.
  let firstPage;
  const snapshot = new Promise((resolve) => { firstPage = resolve; });
  if (tab === "service-health") {
    api.follow({ deployment_id: id }, {
      backlog: 50,
      signal,
      onSnapshot: (page) => {
        activity.reset(page);
        firstPage();
      },
      onEvent: (event) => activity.add(event),
      onState: (s) => {
        liveBadge.dataset.state = s;
        liveBadge.textContent = s === "live" ? "Live" : "Reconnecting…";
      },
    }).catch((error) => {
      content.prepend(errorBox(error));
      firstPage();
    });
  }

  state.dep = await api.get(path, {}, signal);
  const [env, packages] = await Promise.all([
    api.get(`/prediction-environments/${encodeURIComponent(state.dep.prediction_environment_id)}`, {}, signal),
    api.all("/model-packages", {}, { signal, max: 5000 }),
  ]);
  state.env = env;
  state.packages = byId(packages);
  Object.assign(activity.names, { [id]: state.dep.name, [env.id]: env.name },
    Object.fromEntries(packages.map((p) => [p.id, `${p.name} ${p.version}`])));
  document.title = `${state.dep.name} · Pilothouse`;

  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Deployment views" },
    tabLink("Service Health", `#${path}`, tab === "service-health"),
    tabLink("Monitoring", `#${path}/monitoring`, tab === "monitoring"),
    tabLink("Overview", `#${path}/overview`, tab === "overview"));
  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/deployments", text: "Deployments" }), " › ", h("span", { "aria-current": "page", text: state.dep.name })),
    head, status, tabs, content);

  const drawHead = () => fill(head, ...header(state, (action) => act(action, state, path, status, refresh)).filter(Boolean));
  const refresh = async () => {
    try {
      state.dep = await api.get(path, {}, signal);
      drawHead();
      if (tab === "service-health") drawHealth();
      else if (tab === "overview") drawOverview();
    } catch (error) {
      if (!signal.aborted) status.replaceChildren(errorBox(error));
    }
  };
  let timer = null;
  function scheduleRefresh() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  signal.addEventListener("abort", () => clearTimeout(timer));

  const now = h("section", { class: "health-now card", "aria-labelledby": "health-now-title" });
  function drawHealth() {
    const health = state.dep.service_health;
    const decided = health.event_id
      ? h("button", { type: "button", class: "link", text: "Show the deciding event",
        onclick: (e) => { if (!activity.selectId(health.event_id)) announce("That event is older than the events loaded below."); e.currentTarget.blur(); } })
      : null;
    fill(now, 
      h("h2", { id: "health-now-title", text: "Service health" }),
      h("div", { class: `health-big status-${health.status}`, "data-status": health.status },
        statusIcon(health.status), h("span", { class: "health-word", text: STATUS[health.status]?.label || health.status }),
        h("span", { class: "hint", text: STATUS[health.status]?.hint || "" })),
      h("p", { class: "reason" }, health.reason
        ? [h("span", { class: "muted", text: `Decided by ${health.source ? `the ${health.source}'s` : "the"} latest report: ` }), h("q", { text: health.reason }), " ", decided]
        : h("span", { class: "muted", text: "No status reported yet." })),
      h("p", { class: "hint rule", text: RULE }));
  }

  if (tab === "service-health") {
    drawHead();
    drawHealth();
    content.append(now,
      h("section", { class: "card", "aria-labelledby": "activity-title" },
        h("div", { class: "section-head" }, h("h2", { id: "activity-title", text: "Recent Management Agent Activity" }), liveBadge),
        activity.element));
    await snapshot;
    activity.scrollLoads(signal);
  } else if (tab === "monitoring") {
    drawHead();
    await renderMonitoring(content, id, { signal });
  } else {
    drawHead();
    drawOverview();
  }
  performance.mark("pilothouse:deployment-rendered");

  function drawOverview() {
    const dep = state.dep;
    const pkgLink = (pid) => h("a", { href: `#/packages/${encodeURIComponent(pid)}`, text: packageName(state.packages, pid) });
    const url = dep.observed.prediction_url;
    const rows = [
      ["Prediction environment", h("a", { href: `#/environments/${encodeURIComponent(state.env.id)}`, text: `${state.env.name} (${state.env.platform})` })],
      ["Desired state", `${dep.desired.state} · generation ${dep.desired.generation}`],
      ["Observed state", h("span", {}, STATES[dep.observed.state] || dep.observed.state, ` · generation ${dep.observed.generation}`,
        dep.observed.updated_at ? h("span", { class: "hint" }, " · reported ", time(dep.observed.updated_at)) : null)],
      ["Prediction URL", url ? h("span", { class: "url-row" }, h("code", { text: url }), copyButton(url)) : h("span", { class: "muted", text: "not serving" })],
      ["Champion model package", pkgLink(dep.desired.model_package_id)],
      ["Running model package", dep.observed.model_package_id ? pkgLink(dep.observed.model_package_id) : h("span", { class: "muted", text: "—" })],
      ["Last rollback", dep.desired.rollback
        ? h("span", { class: "rollback" }, `${packageName(state.packages, dep.desired.rollback.from_package_id)} → ${packageName(state.packages, dep.desired.rollback.to_package_id)}: `,
          h("q", { text: dep.desired.rollback.reason }), h("span", { class: "hint" }, " · ", time(dep.desired.rollback.at)))
        : h("span", { class: "muted", text: "none" })],
      ["Challengers", dep.desired.challenger_ids.length ? h("ul", { class: "plain" }, dep.desired.challenger_ids.map((c) => h("li", {}, pkgLink(c)))) : h("span", { class: "muted", text: "none" })],
      ["Created", formatTime(dep.created_at)],
      ["Last changed", formatTime(dep.updated_at)],
      ["Deployment id", h("code", { text: dep.id })],
    ];
    fill(content, 
      h("section", { class: "card", "aria-labelledby": "overview-title" },
        h("h2", { id: "overview-title", text: "Overview" }),
        h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
        h("h3", { text: "Settings" }), json(dep.desired.settings)));
  }
}

function tabLink(text, href, selected) {
  return h("a", { role: "tab", href, "aria-selected": selected ? "true" : "false", "aria-controls": "deployment-tab", class: selected ? "selected" : null, text });
}

function header(state, act) {
  const { dep, env } = state;
  const health = dep.service_health.status;
  const launched = dep.desired.state === "launched";
  const button = (action, label, opts = {}) => h("button", { type: "button", class: opts.danger ? "danger-outline" : "", "data-action": action, disabled: opts.disabled, text: label, onclick: () => act(action) });
  return [
    h("div", { class: "title-row" },
      h("h1", {}, statusIcon(health), " ", dep.name),
      h("div", { class: "actions", role: "group", "aria-label": "Actions" },
        button("launch", "Launch", { disabled: launched }),
        button("replace_model", "Replace model…"),
        button("relaunch", "Relaunch"),
        button("stop", "Stop", { danger: true, disabled: !launched }))),
    h("dl", { class: "summary" },
      h("div", {}, h("dt", { text: "Service health" }), h("dd", {}, statusIcon(health, { withLabel: true }))),
      h("div", {}, h("dt", { text: "Observed" }), h("dd", {}, stateOf(dep))),
      h("div", {}, h("dt", { text: "Desired" }), h("dd", { "data-desired": dep.desired.state, text: `${dep.desired.state} · generation ${dep.desired.generation}` })),
      h("div", {}, h("dt", { text: "Environment" }), h("dd", {}, h("a", { href: `#/environments/${encodeURIComponent(env.id)}`, text: env.name }))),
      h("div", {}, h("dt", { text: "Champion" }), h("dd", { text: packageName(state.packages, dep.desired.model_package_id) }))),
    env.use_management_agent ? null : h("p", { class: "callout warning", "data-paused": "" },
      h("strong", { text: "Use Management Agent is off " }), `for ${env.name}: changes to this deployment are recorded, but its agent receives no desired-state changes until the switch is turned on again. `,
      h("a", { href: `#/environments/${encodeURIComponent(env.id)}`, text: "Environment settings" })),
  ];
}

async function act(action, state, path, status, refresh) {
  const { dep, env } = state;
  const paused = env.use_management_agent ? null
    : h("p", { class: "callout warning", text: `Use Management Agent is off for ${env.name}: this change is recorded, but its agent receives it only once the switch is on again.` });
  const champion = packageName(state.packages, dep.desired.model_package_id);
  let ask;
  if (action === "replace_model") {
    const others = [...state.packages.values()].filter((p) => p.id !== dep.desired.model_package_id);
    if (!others.length) {
      status.replaceChildren(h("p", { class: "callout", text: "There is no other model package to replace it with: upload one first (pilothouse package upload)." }));
      return;
    }
    const picker = options(h("select", { name: "model_package_id", id: "replace-package", required: true }),
      others.map((p) => [p.id, `${p.name} ${p.version} · ${p.format} · ${p.id}`]));
    ask = { title: `Replace the model of “${dep.name}”`, confirmLabel: "Replace model",
      body: [h("p", {}, "The champion is ", h("strong", { text: champion }), ". The agent swaps in the package you choose without dropping requests."),
        h("div", { class: "field" }, h("label", { for: "replace-package", text: "New champion model package" }), picker), paused] };
  } else if (action === "stop") {
    ask = { title: `Stop “${dep.name}”?`, confirmLabel: "Stop deployment", danger: true,
      body: [h("p", { text: `Its agent stops the prediction server: requests to it fail until it is launched again.` }), paused] };
  } else if (action === "relaunch") {
    ask = { title: `Relaunch “${dep.name}”?`, confirmLabel: "Relaunch",
      body: [h("p", { text: `Its agent stops and starts it again with ${champion}.` }), paused] };
  } else {
    ask = { title: `Launch “${dep.name}”?`, confirmLabel: "Launch",
      body: [h("p", { text: `Its agent starts serving it with ${champion}.` }), paused] };
  }
  const answer = await confirm(ask);
  if (!answer) return;
  const body = { action };
  if (action === "replace_model") body.model_package_id = answer.model_package_id;
  try {
    const updated = await api.post(`${path}/actions`, body);
    const said = `${action.replace("_", " ")} requested: generation ${updated.desired.generation}`;
    status.replaceChildren(h("p", { class: "callout ok", text: said.charAt(0).toUpperCase() + said.slice(1) }));
    await refresh();
  } catch (error) {
    status.replaceChildren(errorBox(error));
  }
}
