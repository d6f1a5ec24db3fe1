// How deployments, packages and states are named on every page.
import { h } from "./dom.js";

export const STATES = {
  launching: "Launching",
  ready: "Ready",
  replacing_model: "Replacing model",
  shutting_down: "Shutting down",
  stopped: "Stopped",
  errored: "Errored",
  unknown: "Unknown",
};

/** "name version", or the id when the package is not known to the page. */
export function packageName(packages, id) {
  const found = packages.get(id);
  return found ? `${found.name} ${found.version}` : id;
}

/** The observed state, and what the agent is still asked to do when it differs. */
export function stateOf(dep) {
  const observed = dep.observed;
  const word = STATES[observed.state] || observed.state;
  const behind = observed.generation < dep.desired.generation;
  return h("span", { class: `state state-${observed.state}`, "data-state": observed.state },
    word,
    behind ? h("span", { class: "hint", text: ` · generation ${dep.desired.generation} pending` }) : null,
    !behind && dep.desired.state === "stopped" && observed.state !== "stopped"
      ? h("span", { class: "hint", text: " · stop asked" }) : null);
}

export function byId(items) {
  return new Map(items.map((item) => [item.id, item]));
}
