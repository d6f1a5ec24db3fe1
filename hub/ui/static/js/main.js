// The UI's shell: hash routes (#/deployments/…) to pages, the login gate, navigation.
// Each page renders into <main> and stops its streams when its AbortSignal fires.
import * as api from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import * as panel from "./panel.js";

const ROUTES = [
  [/^\/deployments$/, "deployments", () => import("./pages/inventory.js")],
  [/^\/deployments\/([^/]+)(?:\/(overview|service-health|monitoring))?$/, "deployments", () => import("./pages/deployment.js")],
  [/^\/events$/, "events", () => import("./pages/events.js")],
  [/^\/environments$/, "environments", () => import("./pages/environments.js")],
  [/^\/environments\/([^/]+)$/, "environments", () => import("./pages/environment.js")],
  [/^\/packages$/, "packages", () => import("./pages/packages.js")],
  [/^\/packages\/([^/]+)$/, "packages", () => import("./pages/packages.js")],
  [/^\/settings$/, "settings", () => import("./pages/settings.js")],
];

let current = null;

function parse() {
  const raw = location.hash.replace(/^#/, "") || "/deployments";
  const [path, search] = raw.split("?");
  return { path: path === "/" ? "/deployments" : path, query: new URLSearchParams(search || "") };
}

async function show() {
  const main = document.getElementById("main");
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  panel.close();
  if (!api.token()) {
    chrome(false);
    const login = await import("./pages/login.js");
    clear(main);
    login.render(main, { signal: controller.signal, done: show });
    return;
  }
  chrome(true);
  const { path, query } = parse();
  const match = ROUTES.map(([re, section, load]) => [path.match(re), section, load]).find(([m]) => m);
  clear(main);
  if (!match) {
    document.title = "Not found · Pilothouse";
    main.append(h("h1", { text: "Not found" }), h("p", {}, "Nothing lives at this address. ", h("a", { href: "#/deployments", text: "Go to the deployments." })));
    return;
  }
  const [found, section, load] = match;
  for (const link of document.querySelectorAll(".main-nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    const page = await load();
    if (controller.signal.aborted) return;
    const params = found.slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p)));
    await page.render(main, { params, query, signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) return;
    main.append(errorBox(error));
  }
}

function chrome(loggedIn) {
  document.querySelector(".main-nav").hidden = !loggedIn;
  document.getElementById("logout").hidden = !loggedIn;
}

document.getElementById("logout").addEventListener("click", () => {
  api.forget();
  show();
});

api.whenUnauthorized(() => {
  api.forget();
  sessionStorage.setItem("pilothouse.notice", "The hub no longer accepts your token: log in again.");
  show();
});

window.addEventListener("hashchange", () => {
  show();
  document.getElementById("main").focus({ preventScroll: true });
});
show();
