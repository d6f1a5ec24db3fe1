// Prediction environments: the list (agent online/offline, last heartbeat, the Use
// Management Agent switch) and registering a new one.
import * as api from "../api.js";
import { errorBox, field, h, options, time } from "../dom.js";
import { OFF_TEXT, agentPresence, managementSwitch } from "../management.js";

const PLATFORMS = ["process", "docker", "kubernetes", "command", "test"];

export async function render(main, { signal }) {
  document.title = "Prediction environments · Pilothouse";
  const problem = h("div", { class: "problem" });
  const body = h("tbody");
  const draw = (environments, counts) => {
    body.replaceChildren(...environments.map((env) => row(env, counts, problem, () => reload())));
    if (!environments.length) body.append(h("tr", {}, h("td", { colspan: "6", class: "empty", text: "No prediction environments yet: register one below." })));
  };
  const reload = async () => {
    const [environments, deployments] = await Promise.all([
      api.all("/prediction-environments", {}, { signal }),
      api.all("/deployments", {}, { signal }),
    ]);
    const counts = new Map();
    for (const d of deployments) counts.set(d.prediction_environment_id, (counts.get(d.prediction_environment_id) || 0) + 1);
    draw(environments, counts);
  };
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Prediction environments" })),
    problem,
    h("div", { class: "table-wrap" }, h("table", { class: "environments" },
      h("caption", { class: "visually-hidden", text: "Prediction environments" }),
      h("thead", {}, h("tr", {}, ["Name", "Platform", "Agent", "Last heartbeat", "Deployments", "Use Management Agent"].map((t) => h("th", { scope: "col", text: t })))),
      body)),
    createForm(reload));
  await reload();
  performance.mark("pilothouse:environments-rendered");
  const timer = setInterval(() => reload().catch(() => {}), 10000);
  signal.addEventListener("abort", () => clearInterval(timer));
}

function row(env, counts, problem, reload) {
  const note = env.use_management_agent ? null : h("span", { class: "hint block", text: OFF_TEXT });
  return h("tr", { "data-id": env.id },
    h("th", { scope: "row" }, h("a", { href: `#/environments/${encodeURIComponent(env.id)}`, text: env.name })),
    h("td", { "data-label": "Platform", text: env.platform }),
    h("td", { "data-label": "Agent" }, agentPresence(env)),
    h("td", { "data-label": "Last heartbeat" }, time(env.agent.last_heartbeat_at)),
    h("td", { "data-label": "Deployments", text: String(counts.get(env.id) || 0) }),
    h("td", { "data-label": "Use Management Agent" }, managementSwitch(env, reload, problem), note));
}

function createForm(reload) {
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}", autocomplete: "off" });
  const platform = options(h("select", { name: "platform" }), PLATFORMS.map((p) => [p, p]), "process");
  const description = h("textarea", { name: "description", rows: "2", maxlength: "2000" });
  const problem = h("div", { class: "problem" });
  const form = h("form", { class: "card stack", "aria-labelledby": "create-pe-title" },
    h("h2", { id: "create-pe-title", text: "Register a prediction environment" }),
    field("Name", name, "Letters, digits, space, dot, dash, underscore"),
    field("Platform", platform, "The plugin its agent runs"),
    field("Description", description),
    problem,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Register" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      const env = await api.post("/prediction-environments", { name: name.value.trim(), platform: platform.value, description: description.value });
      form.reset();
      location.hash = `#/environments/${encodeURIComponent(env.id)}`;
    } catch (error) {
      problem.append(errorBox(error));
    }
    await reload().catch(() => {});
  });
  return form;
}
