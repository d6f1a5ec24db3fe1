// An event list kept newest first (by time, then id) that live events are inserted into,
// with a side panel for the selected row and more pages loaded as it scrolls.
import * as api from "./api.js";
import { STATUS, announce, h, statusIcon, time } from "./dom.js";
import * as panel from "./panel.js";

const newerFirst = (a, b) => (a.time === b.time ? (a.id < b.id ? 1 : -1) : (a.time < b.time ? 1 : -1));

export class EventList {
  /**
   * `filters`: of GET /events (for more pages). `layout`: "list" (activity) or "table".
   * `names`: ids to names, for links in the side panel.
   */
  constructor({ filters, layout = "list", names = {}, pageSize = 50, label, onNew }) {
    this.filters = filters;
    this.layout = layout;
    this.names = names;
    this.pageSize = pageSize;
    this.onNew = onNew || (() => {});
    this.items = [];
    this.ids = new Set();
    this.cursor = null;
    this.loading = false;
    this.body = layout === "table" ? h("tbody") : h("ol", { class: "activity", "aria-label": label });
    this.root = layout === "table"
      ? h("div", { class: "table-wrap" }, h("table", { class: "events" },
        h("caption", { class: "visually-hidden", text: label }),
        h("thead", {}, h("tr", {}, ["Status", "Time", "Message", "Type", "Source", "Deployment"].map((t) => h("th", { scope: "col", text: t })))),
        this.body))
      : this.body;
    this.empty = h("p", { class: "empty", text: "No events yet." });
    this.more = h("button", { type: "button", class: "quiet load-more", text: "Load older events", hidden: true, onclick: () => this.loadMore() });
    this.sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
    this.element = h("div", { class: "event-list" }, this.root, this.empty, this.more, this.sentinel);
  }

  /** Replace everything with a first page ({items, next_cursor}). */
  reset(page) {
    this.items = [];
    this.ids.clear();
    this.body.replaceChildren();
    for (const event of page.items) this.add(event, { quiet: true });
    this.cursor = page.next_cursor;
    this.update();
  }

  /** Watch the sentinel: near the end of the list, load the next page. */
  scrollLoads(signal) {
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, { rootMargin: "400px" });
    observer.observe(this.sentinel);
    signal.addEventListener("abort", () => observer.disconnect());
  }

  async loadMore() {
    if (this.loading || !this.cursor) return;
    this.loading = true;
    this.more.disabled = true;
    try {
      const page = await api.get("/events", { ...this.filters, limit: this.pageSize, cursor: this.cursor });
      for (const event of page.items) this.add(event, { quiet: true });
      this.cursor = page.next_cursor;
    } finally {
      this.loading = false;
      this.more.disabled = false;
      this.update();
    }
  }

  update() {
    this.empty.hidden = this.items.length > 0;
    this.more.hidden = !this.cursor;
    this.element.dataset.count = String(this.items.length);
    this.element.dataset.complete = this.cursor ? "false" : "true";
  }

  /** Insert an event where it sorts; a live one is highlighted and announced. */
  add(event, { quiet = false } = {}) {
    if (this.ids.has(event.id)) return;
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (newerFirst(this.items[mid], event) < 0) low = mid + 1;
      else high = mid;
    }
    // A live event older than everything loaded belongs to a page not loaded yet.
    if (!quiet && low === this.items.length && this.cursor) return;
    this.items.splice(low, 0, event);
    this.ids.add(event.id);
    const row = this.layout === "table" ? this.tableRow(event) : this.listRow(event);
    this.body.insertBefore(row, this.body.children[low] || null);
    if (!quiet) {
      row.classList.add("new");
      setTimeout(() => row.classList.remove("new"), 4000);
      if (event.status !== "informational") announce(`${STATUS[event.status]?.label || event.status}: ${event.message}`);
      this.onNew(event);
      this.update();
    }
  }

  listRow(event) {
    const button = h("button", { type: "button", class: "event-row-button" },
      statusIcon(event.status),
      h("span", { class: "ev-time" }, time(event.time)),
      h("span", { class: "ev-message", text: event.message || event.type }),
      h("span", { class: "ev-meta" }, h("code", { text: event.type }), ` · ${event.source}`));
    button.addEventListener("click", () => this.select(event, button));
    return h("li", { class: "event-row", "data-event-id": event.id, "data-status": event.status, "data-type": event.type }, button);
  }

  tableRow(event) {
    const open = h("button", { type: "button", class: "link", text: event.message || event.type });
    open.addEventListener("click", () => this.select(event, open));
    const dep = event.deployment_id;
    return h("tr", { class: "event-row", "data-event-id": event.id, "data-status": event.status, "data-type": event.type },
      h("td", { "data-label": "Status" }, statusIcon(event.status, { withLabel: true })),
      h("td", { "data-label": "Time" }, time(event.time, { exact: true })),
      h("td", { "data-label": "Message", class: "ev-message" }, open),
      h("td", { "data-label": "Type" }, h("code", { text: event.type })),
      h("td", { "data-label": "Source", text: event.source }),
      h("td", { "data-label": "Deployment" }, dep ? h("a", { href: `#/deployments/${encodeURIComponent(dep)}`, text: this.names[dep] || dep }) : h("span", { class: "muted", text: "—" })));
  }

  select(event, from) {
    for (const node of this.body.querySelectorAll(".selected")) {
      node.classList.remove("selected");
      node.removeAttribute("aria-current");
    }
    const row = from.closest(".event-row");
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
    panel.open({
      title: event.type,
      content: panel.eventDetails(event, this.names),
      from,
      closed: () => {
        row.classList.remove("selected");
        row.removeAttribute("aria-current");
      },
    });
  }

  /** Open the panel for an event by id, if loaded. */
  selectId(id) {
    const event = this.items.find((e) => e.id === id);
    const row = this.body.querySelector(`[data-event-id="${CSS.escape(id)}"] button`);
    if (event && row) this.select(event, row);
    return Boolean(event);
  }
}
