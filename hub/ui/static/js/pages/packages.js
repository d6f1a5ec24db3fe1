// Model packages: the list, and one package's manifest (linked from deployments and events).
import * as api from "../api.js";
import { bytes, formatTime, h, json, time } from "../dom.js";

export async function render(main, { params, signal }) {
  const [id] = params;
  if (id) return one(main, id, signal);
  document.title = "Model packages · Pilothouse";
  const packages = await api.all("/model-packages", {}, { signal });
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Model packages" }), h("p", { class: "count", text: `${packages.length} packages` })),
    h("p", { class: "hint" }, "Upload with ", h("code", { text: "pilothouse package upload DIR" }), "; packages are immutable and content-addressed."),
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden", text: "Model packages" }),
      h("thead", {}, h("tr", {}, ["Package", "Version", "Format", "Size", "sha256", "Uploaded"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, packages.map((p) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/packages/${encodeURIComponent(p.id)}`, text: p.name })),
        h("td", { "data-label": "Version", text: p.version }),
        h("td", { "data-label": "Format", text: p.format }),
        h("td", { "data-label": "Size", text: bytes(p.size) }),
        h("td", { "data-label": "sha256" }, h("code", { title: p.sha256, text: `${p.sha256.slice(0, 12)}…` })),
        h("td", { "data-label": "Uploaded" }, time(p.created_at))))))));
  return undefined;
}

async function one(main, id, signal) {
  const p = await api.get(`/model-packages/${encodeURIComponent(id)}`, {}, signal);
  document.title = `${p.name} ${p.version} · Pilothouse`;
  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/packages", text: "Model packages" }), " › ", h("span", { "aria-current": "page", text: `${p.name} ${p.version}` })),
    h("h1", { text: `${p.name} ${p.version}` }),
    h("section", { class: "card" },
      h("dl", { class: "facts" },
        h("dt", { text: "Package id" }), h("dd", {}, h("code", { text: p.id })),
        h("dt", { text: "Format" }), h("dd", { text: p.format }),
        h("dt", { text: "Size" }), h("dd", { text: bytes(p.size) }),
        h("dt", { text: "sha256" }), h("dd", {}, h("code", { class: "wrap", text: p.sha256 })),
        h("dt", { text: "Uploaded" }), h("dd", { text: formatTime(p.created_at) })),
      h("h2", { text: "Manifest" }), json(p.manifest)));
}
