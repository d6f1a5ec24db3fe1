// Small DOM helpers: element building, status icons, times, announcements, copying.

const SVG = "http://www.w3.org/2000/svg";

/** An element: h("a", {href, class, onclick, "aria-label"}, ...children). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Replace a node's children (null, false and nested arrays allowed, as in h()). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const STATUS = {
  passing: { label: "Passing", hint: "No action needed" },
  at_risk: { label: "At risk", hint: "Concerns found; no immediate action needed, keep watching" },
  failing: { label: "Failing", hint: "Immediate action needed" },
  unknown: { label: "Unknown", hint: "Nothing known yet" },
  informational: { label: "Informational", hint: "Reports an action" },
};

const SHAPES = {
  passing: [["circle", { cx: 8, cy: 8, r: 7 }], ["path", { d: "M4.5 8.2l2.3 2.3 4.7-4.8", class: "mark" }]],
  at_risk: [["path", { d: "M8 1.2l7 12.6H1z" }], ["path", { d: "M8 5.6v4M8 11.6v.4", class: "mark" }]],
  failing: [["circle", { cx: 8, cy: 8, r: 7 }], ["path", { d: "M5.3 5.3l5.4 5.4M10.7 5.3l-5.4 5.4", class: "mark" }]],
  unknown: [["circle", { cx: 8, cy: 8, r: 7 }], ["path", { d: "M6.2 6.2a1.9 1.9 0 1 1 2.6 1.7c-.6.3-.8.7-.8 1.3M8 11.4v.4", class: "mark" }]],
  informational: [["circle", { cx: 8, cy: 8, r: 7 }], ["path", { d: "M8 7.2v4.4M8 4.6v.4", class: "mark" }]],
};

/** The status icon: a shape and colour per status, named for screen readers. */
export function statusIcon(status, { withLabel = false } = {}) {
  const known = STATUS[status] ? status : "unknown";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const [tag, attrs] of SHAPES[known]) {
    const shape = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, v);
    svg.append(shape);
  }
  const label = STATUS[known].label;
  const icon = h("span", {
    class: `status-icon status-${known}`,
    role: withLabel ? null : "img",
    "aria-label": withLabel ? null : label,
    title: `${label}: ${STATUS[known].hint}`,
    "data-status": known,
  }, svg);
  if (!withLabel) return icon;
  return h("span", { class: `status status-${known}`, "data-status": known }, icon, h("span", { text: label }));
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const absolute = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" });

export function formatTime(iso) {
  return iso ? absolute.format(new Date(iso)) : "—";
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return relative.format(seconds, "second");
  if (abs < 2700) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 64800) return relative.format(Math.round(seconds / 3600), "hour");
  if (abs < 30 * 86400) return relative.format(Math.round(seconds / 86400), "day");
  return absolute.format(new Date(iso));
}

/** A <time> showing when, relative when recent, the exact time on hover. */
export function time(iso, { exact = false } = {}) {
  if (!iso) return h("span", { class: "muted", text: "—" });
  return h("time", { datetime: iso, title: `${formatTime(iso)} (${iso})`, "data-relative": exact ? null : "", text: exact ? formatTime(iso) : ago(iso) });
}

// Relative times ("2 minutes ago") are kept true while a page stays open.
setInterval(() => {
  const now = Date.now();
  for (const node of document.querySelectorAll("time[data-relative]")) node.textContent = ago(node.dateTime, now);
}, 15000);

export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 30);
}

/** A message for a failed call, in a role=alert box. */
export function errorBox(error) {
  const fields = (error.fields || []).map((f) => h("li", {}, h("code", { text: f.field }), `: ${f.message}`));
  return h("div", { class: "callout error", role: "alert" },
    h("strong", { text: error.status ? `Error ${error.status}: ` : "Error: " }), error.message,
    fields.length ? h("ul", {}, fields) : null);
}

export function shortId(id) {
  return id && id.length > 18 ? `${id.slice(0, 16)}…` : id;
}

export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "visually-hidden", readonly: true }, text);
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

/** A button that copies `text` and says so. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "small", text: label });
  button.addEventListener("click", async () => {
    const ok = await copy(text);
    button.textContent = ok ? "Copied" : "Select and copy";
    announce(ok ? "Copied to the clipboard" : "Copying failed: select the text and copy it");
    setTimeout(() => { button.textContent = label; }, 2000);
  });
  return button;
}

/** Pretty JSON in a <pre>. */
export function json(value) {
  return h("pre", { class: "json", tabindex: "0", text: JSON.stringify(value, null, 2) });
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintNode = hint ? h("span", { class: "hint", id: `${id}-hint`, text: hint }) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return h("div", { class: "field" }, h("label", { for: id, text: label }), control, hintNode);
}

export function options(select, items, selected) {
  for (const [value, label] of items) {
    select.append(h("option", { value, text: label, selected: value === selected }));
  }
  return select;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
