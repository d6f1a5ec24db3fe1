// One prediction environment: its agent (online, last heartbeat, what it reports), the Use
// Management Agent switch, its deployments, and its agent tokens (issued here and shown
// once; listed and revoked through GET/DELETE …/agent-tokens[/{token_id}]).
import * as api from "../api.js";
import { confirm, showSecret } from "../dialogs.js";
import { fill, errorBox, formatTime, h, json, statusIcon, time } from "../dom.js";
import { OFF_TEXT, agentPresence, managementSwitch } from "../management.js";
import { stateOf } from "../words.js";

export async function render(main, { params, signal }) {
  const [id] = params;
  const path = `/prediction-environments/${encodeURIComponent(id)}`;
  const problem = h("div", { class: "problem" });
  const body = h("div");
  const tokens = h("section", { class: "card", "aria-labelledby": "tokens-title" });
  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/environments", text: "Prediction environments" }), " › ", h("span", { id: "crumb-pe", "aria-current": "page" })),
    body, problem, tokens);

  const draw = async () => {
    const [env, deployments] = await Promise.all([
      api.get(path, {}, signal),
      api.all("/deployments", { prediction_environment_id: id }, { signal }),
    ]);
    document.title = `${env.name} · Pilothouse`;
    main.querySelector("#crumb-pe").textContent = env.name;
    const agent = env.agent;
    fill(body, 
      h("div", { class: "page-head" }, h("h1", { text: env.name }), h("span", { class: "tag", text: env.platform })),
      env.description ? h("p", { text: env.description }) : null,
      h("section", { class: "card", "aria-labelledby": "mgmt-title" },
        h("h2", { id: "mgmt-title", text: "Management agent" }),
        h("div", { class: "switch-row" }, h("span", { class: "switch-label", id: "mgmt-label", text: "Use Management Agent" }),
          managementSwitch(env, () => draw(), problem)),
        env.use_management_agent
          ? h("p", { class: "hint", text: "On: its agent receives every change of its deployments as it is made." })
          : h("p", { class: "callout warning", "data-paused": "" }, h("strong", { text: "Off. " }), OFF_TEXT),
        h("dl", { class: "facts" },
          h("dt", { text: "Agent" }), h("dd", {}, agentPresence(env)),
          h("dt", { text: "Last heartbeat" }), h("dd", {}, time(agent.last_heartbeat_at), agent.last_heartbeat_at ? h("span", { class: "hint", text: ` (${formatTime(agent.last_heartbeat_at)})` }) : null),
          h("dt", { text: "Agent version" }), h("dd", { text: agent.info.agent_version || "—" }),
          h("dt", { text: "Environment status" }), h("dd", {}, statusIcon(agent.info.environment_status || "unknown", { withLabel: true }))),
        Object.keys(env.plugin_settings).length ? [h("h3", { text: "Plugin settings" }), json(env.plugin_settings)] : null),
      h("section", { class: "card", "aria-labelledby": "deps-title" },
        h("h2", { id: "deps-title", text: `Deployments (${deployments.length})` }),
        deployments.length
          ? h("ul", { class: "plain deployments-of" }, deployments.map((d) => h("li", {},
            statusIcon(d.service_health.status), " ", h("a", { href: `#/deployments/${encodeURIComponent(d.id)}`, text: d.name }), " · ", stateOf(d))))
          : h("p", { class: "muted", text: "None." })));
  };
  await draw();
  await drawTokens(tokens, path, signal);
  performance.mark("pilothouse:environment-rendered");
  const timer = setInterval(() => draw().catch(() => {}), 10000);
  signal.addEventListener("abort", () => clearInterval(timer));
}

async function drawTokens(section, path, signal) {
  const problem = h("div", { class: "problem" });
  const list = h("div");
  const issue = h("button", { type: "button", class: "primary", text: "Issue an agent token" });
  issue.addEventListener("click", async () => {
    problem.replaceChildren();
    try {
      const token = await api.post(`${path}/agent-tokens`);
      await showSecret({
        title: "New agent token",
        secret: token.token,
        note: "Copy it now: it is shown only this once (the hub keeps only its hash). Give it to this environment's agent as PILOTHOUSE_HUB__TOKEN (or hub.token in its config file).",
      });
      await refresh();
    } catch (error) {
      problem.append(errorBox(error));
    }
  });
  const refresh = async () => {
    let page;
    try {
      page = await api.get(`${path}/agent-tokens`, { limit: 100 }, signal);
    } catch (error) {
      if (error.status === 405 || error.status === 404) {
        fill(list, h("p", { class: "muted", text: "This hub does not list agent tokens (it predates token listing and revocation)." }));
        return;
      }
      throw error;
    }
    const rows = page.items.map((t) => h("tr", { "data-token-id": t.id, "data-revoked": t.revoked_at ? "true" : "false" },
      h("th", { scope: "row" }, h("code", { text: t.id })),
      h("td", { "data-label": "Issued" }, time(t.created_at)),
      h("td", { "data-label": "State" }, t.revoked_at ? h("span", {}, "Revoked ", time(t.revoked_at)) : "Active"),
      h("td", {}, t.revoked_at ? null : h("button", { type: "button", class: "danger-outline small", text: "Revoke", "aria-label": `Revoke token ${t.id}`, onclick: () => revoke(t) }))));
    fill(list, rows.length
      ? h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden", text: "Agent tokens" }),
        h("thead", {}, h("tr", {}, ["Token", "Issued", "State", "Actions"].map((t) => h("th", { scope: "col", text: t })))), h("tbody", {}, rows)))
      : h("p", { class: "muted", text: "No agent tokens yet." }));
  };
  const revoke = async (t) => {
    const ok = await confirm({ title: `Revoke token ${t.id}?`, body: h("p", { text: "An agent using it is refused from now on, and its open streams end." }), confirmLabel: "Revoke", danger: true });
    if (!ok) return;
    try {
      await api.del(`${path}/agent-tokens/${encodeURIComponent(t.id)}`);
      await refresh();
    } catch (error) {
      problem.append(errorBox(error));
    }
  };
  section.append(h("div", { class: "section-head" }, h("h2", { id: "tokens-title", text: "Agent tokens" }), issue), problem, list);
  await refresh();
}
