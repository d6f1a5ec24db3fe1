// The right-side panel: the full record of one selected item (an event, a delivery).
// Escape or the close button closes it and gives focus back to what opened it.
import { STATUS, clear, fill, formatTime, h, json, statusIcon } from "./dom.js";

let opener = null;
let onClose = null;

function panel() {
  return document.getElementById("panel");
}

export function close() {
  const node = panel();
  if (node.hidden) return;
  node.hidden = true;
  document.body.classList.remove("panel-open");
  clear(node);
  if (onClose) onClose();
  onClose = null;
  if (opener && opener.isConnected) opener.focus();
  opener = null;
}

/** Open the panel with `title` and `content`; `from` gets focus back on close. */
export function open({ title, content, from, closed }) {
  const node = panel();
  if (!node.hidden && onClose) onClose();
  opener = from || document.activeElement;
  onClose = closed || null;
  const button = h("button", { type: "button", class: "quiet close", "aria-label": "Close details", text: "×", onclick: close });
  fill(node, 
    h("div", { class: "panel-head" }, h("h2", { id: "panel-title", tabindex: "-1", text: title }), button),
    h("div", { class: "panel-body" }, content),
  );
  node.hidden = false;
  document.body.classList.add("panel-open");
  node.querySelector("#panel-title").focus();
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel().hidden && !document.querySelector("dialog[open]")) close();
});

const RELATED = {
  model_package_id: "Model package",
  previous_model_package_id: "Previous model package",
  challenger_ids: "Challenger",
};
const PACKAGE_KEYS = /(^|_)model_package_id$|^challenger_ids$/;

/** Model package ids an event's data refers to, with the key naming each. */
function packages(data) {
  const found = [];
  for (const [key, value] of Object.entries(data || {})) {
    if (!PACKAGE_KEYS.test(key)) continue;
    for (const id of Array.isArray(value) ? value : [value]) {
      if (typeof id === "string" && id) found.push([key, id]);
    }
  }
  return found;
}

/** The panel's content for one event: every field, the data pretty-printed, links. */
export function eventDetails(event, names = {}) {
  const status = STATUS[event.status] ? event.status : "unknown";
  const related = packages(event.data);
  const rows = [
    ["Status", h("span", {}, statusIcon(status, { withLabel: true }), h("span", { class: "hint", text: ` ${STATUS[status].hint}` }))],
    ["Time", h("span", {}, formatTime(event.time), h("br"), h("code", { class: "small", text: event.time }))],
    ["Message", h("span", { class: "message", text: event.message || "—" })],
    ["Type", h("code", { text: event.type })],
    ["Source", event.source],
    ["Prediction environment", h("a", { href: `#/environments/${encodeURIComponent(event.prediction_environment_id)}`, text: names[event.prediction_environment_id] || event.prediction_environment_id })],
    ["Deployment", event.deployment_id
      ? h("a", { href: `#/deployments/${encodeURIComponent(event.deployment_id)}`, text: names[event.deployment_id] || event.deployment_id })
      : h("span", { class: "muted", text: "none (an event of the environment)" })],
    ...related.map(([key, id]) => [RELATED[key] || key, h("a", { href: `#/packages/${encodeURIComponent(id)}`, text: names[id] || id })]),
    ["Event id", h("code", { text: event.id })],
  ];
  return h("div", { class: "event-details", "data-event-id": event.id },
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
    h("h3", { text: "Data" }),
    Object.keys(event.data || {}).length ? json(event.data) : h("p", { class: "muted", text: "No data." }));
}
