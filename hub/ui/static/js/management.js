// The Use Management Agent switch, shared by the environment list and an environment's page.
import * as api from "./api.js";
import { confirm } from "./dialogs.js";
import { announce, errorBox, h } from "./dom.js";

export const OFF_TEXT = "Its agent receives no desired-state changes: it keeps running what it runs now; "
  + "changes to its deployments are recorded and reach it once the switch is on again.";

/** A role=switch button for `env`; `changed(env)` gets the PE as the hub answers. */
export function managementSwitch(env, changed, problem) {
  const on = env.use_management_agent;
  const button = h("button", {
    type: "button",
    class: `switch ${on ? "on" : "off"}`,
    role: "switch",
    "aria-checked": on ? "true" : "false",
    "aria-label": `Use Management Agent for ${env.name}`,
    "data-pe": env.id,
  }, h("span", { class: "switch-track", "aria-hidden": "true" }, h("span", { class: "switch-thumb" })),
  h("span", { class: "switch-word", text: on ? "On" : "Off" }));
  button.addEventListener("click", async () => {
    const wanted = !env.use_management_agent;
    if (!wanted) {
      const ok = await confirm({
        title: `Turn off Use Management Agent for “${env.name}”?`,
        body: h("p", { text: OFF_TEXT }),
        confirmLabel: "Turn off",
        danger: true,
      });
      if (!ok) return;
    }
    button.disabled = true;
    try {
      const updated = await api.patch(`/prediction-environments/${encodeURIComponent(env.id)}`, { use_management_agent: wanted });
      announce(`Use Management Agent ${updated.use_management_agent ? "on" : "off"} for ${env.name}`);
      changed(updated);
    } catch (error) {
      button.disabled = false;
      if (problem) problem.replaceChildren(errorBox(error));
    }
  });
  return button;
}

export function agentPresence(env) {
  const online = env.agent.online;
  return h("span", { class: `presence ${online ? "online" : "offline"}`, "data-online": online ? "true" : "false" },
    h("span", { class: "dot", "aria-hidden": "true" }), online ? "Online" : "Offline");
}
