// Notifications (channels, policies, test sends, the delivery log) and event retention.
import * as api from "../api.js";
import { confirm, showSecret } from "../dialogs.js";
import { STATUS, fill, errorBox, field, formatTime, h, json, options, statusIcon, time } from "../dom.js";
import * as panel from "../panel.js";

export async function render(main, { signal }) {
  document.title = "Notifications & retention · Pilothouse";
  const channels = h("section", { class: "card", "aria-labelledby": "channels-title" });
  const policies = h("section", { class: "card", "aria-labelledby": "policies-title" });
  const deliveries = h("section", { class: "card", "aria-labelledby": "deliveries-title" });
  const retention = h("section", { class: "card", "aria-labelledby": "retention-title" });
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Notifications & retention" })), channels, policies, deliveries, retention);
  const ctx = { signal, channels: [], redraw: null, redrawDeliveries: null };
  ctx.redrawDeliveries = () => drawDeliveries(deliveries, ctx);
  ctx.redraw = async () => {
    ctx.channels = await api.all("/notification-channels", {}, { signal });
    await Promise.all([
      drawChannels(channels, ctx),
      drawPolicies(policies, ctx),
      drawDeliveries(deliveries, ctx),
    ]);
  };
  await Promise.all([ctx.redraw(), drawRetention(retention, signal)]);
  performance.mark("pilothouse:settings-rendered");
}

function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted", text: empty });
  return h("div", { class: "table-wrap" }, h("table", {},
    h("caption", { class: "visually-hidden", text: caption }),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows)));
}

async function drawChannels(section, ctx) {
  const problem = h("div", { class: "problem" });
  const rows = ctx.channels.map((c) => h("tr", { "data-channel-id": c.id },
    h("th", { scope: "row", text: c.name }),
    h("td", { "data-label": "Type", text: c.type }),
    h("td", { "data-label": "URL" }, h("code", { class: "wrap", text: c.url })),
    h("td", { "data-label": "Signed", text: c.has_secret ? "yes" : "no" }),
    h("td", { class: "row-actions" },
      h("button", { type: "button", class: "small", text: "Send test", "aria-label": `Send a test message to ${c.name}`, onclick: async (e) => {
        const button = e.currentTarget;
        button.disabled = true;
        problem.replaceChildren();
        try {
          const delivery = await api.post(`/notification-channels/${encodeURIComponent(c.id)}/test`);
          problem.append(h("p", { class: `callout ${delivery.state === "delivered" ? "ok" : "warning"}`, role: "status", "data-test-result": delivery.state },
            `Test message to ${c.name}: ${delivery.state}`, delivery.last_error ? ` (${delivery.last_error})` : ""));
          await ctx.redrawDeliveries();
        } catch (error) {
          problem.append(errorBox(error));
        } finally {
          button.disabled = false;
        }
      } }),
      h("button", { type: "button", class: "small danger-outline", text: "Delete", "aria-label": `Delete channel ${c.name}`, onclick: async () => {
        if (!await confirm({ title: `Delete channel “${c.name}”?`, body: h("p", { text: "Messages stop going there. A channel a policy still sends to cannot be deleted." }), confirmLabel: "Delete", danger: true })) return;
        try {
          await api.del(`/notification-channels/${encodeURIComponent(c.id)}`);
          await ctx.redraw();
        } catch (error) {
          problem.append(errorBox(error));
        }
      } }))));

  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const type = options(h("select", { name: "type" }), [["webhook", "Webhook (signed JSON)"], ["slack", "Slack incoming webhook"]]);
  const url = h("input", { name: "url", type: "url", required: true, autocomplete: "off", placeholder: "https://" });
  const secret = h("input", { name: "secret", type: "password", autocomplete: "new-password", minlength: "16" });
  const formProblem = h("div", { class: "problem" });
  const form = h("form", { class: "stack inline-form", "aria-labelledby": "add-channel-title" },
    h("h3", { id: "add-channel-title", text: "Add a channel" }),
    h("div", { class: "grid" }, field("Name", name), field("Type", type), field("URL", url, "Kept encrypted; shown masked"),
      field("Signing secret (webhook)", secret, "Optional: generated and shown once when left empty")),
    formProblem,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Add channel" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formProblem.replaceChildren();
    const body = { name: name.value.trim(), type: type.value, url: url.value.trim() };
    if (secret.value) body.secret = secret.value;
    try {
      const created = await api.post("/notification-channels", body);
      if (created.secret) {
        await showSecret({ title: `Signing secret of ${created.name}`, secret: created.secret, note: "Copy it now: it is shown only this once. The receiver checks X-Pilothouse-Signature with it." });
      }
      await ctx.redraw();
    } catch (error) {
      formProblem.append(errorBox(error));
    }
  });
  fill(section, h("h2", { id: "channels-title", text: "Notification channels" }), problem,
    table("Notification channels", ["Name", "Type", "URL", "Signed", "Actions"], rows, "No channels yet."), form);
}

async function drawPolicies(section, ctx) {
  const items = await api.all("/notification-policies", {}, { signal: ctx.signal });
  const [environments] = await Promise.all([api.all("/prediction-environments", {}, { signal: ctx.signal })]);
  const channelName = new Map(ctx.channels.map((c) => [c.id, c.name]));
  const problem = h("div", { class: "problem" });
  const rows = items.map((p) => h("tr", { "data-policy-id": p.id },
    h("th", { scope: "row", text: p.name }),
    h("td", { "data-label": "Channel", text: channelName.get(p.channel_id) || p.channel_id }),
    h("td", { "data-label": "Statuses" }, p.statuses.length ? p.statuses.map((s) => statusIcon(s)) : "any"),
    h("td", { "data-label": "Event types", text: p.event_types.join(", ") || "any" }),
    h("td", { "data-label": "Grouping", text: `${p.group_window_s} s window, repeat every ${p.repeat_interval_s} s${p.send_resolved ? ", resolved sent" : ""}` }),
    h("td", { "data-label": "Enabled" }, h("label", { class: "check" },
      h("input", { type: "checkbox", checked: p.enabled, "aria-label": `Policy ${p.name} enabled`, onchange: async (e) => {
        try {
          await api.patch(`/notification-policies/${encodeURIComponent(p.id)}`, { enabled: e.currentTarget.checked });
        } catch (error) {
          problem.append(errorBox(error));
        }
      } }), "enabled")),
    h("td", { class: "row-actions" }, h("button", { type: "button", class: "small danger-outline", text: "Delete", "aria-label": `Delete policy ${p.name}`, onclick: async () => {
      if (!await confirm({ title: `Delete policy “${p.name}”?`, body: h("p", { text: "Its past deliveries stay in the log." }), confirmLabel: "Delete", danger: true })) return;
      try {
        await api.del(`/notification-policies/${encodeURIComponent(p.id)}`);
        await ctx.redraw();
      } catch (error) {
        problem.append(errorBox(error));
      }
    } }))));

  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const channel = options(h("select", { name: "channel_id", required: true }), ctx.channels.map((c) => [c.id, c.name]));
  const statuses = h("fieldset", { class: "checks" }, h("legend", { text: "Statuses (none: any)" }),
    ["failing", "at_risk", "passing", "unknown", "informational"].map((s) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "statuses", value: s, checked: s === "failing" || s === "at_risk" }), STATUS[s].label)));
  const types = h("input", { name: "event_types", autocomplete: "off", placeholder: "action.*.failed, deployment.errored" });
  const pes = options(h("select", { name: "prediction_environment_ids", multiple: true, size: String(Math.min(4, Math.max(2, environments.length))) }),
    environments.map((e) => [e.id, e.name]));
  const windowS = h("input", { name: "group_window_s", type: "number", min: "0", max: "86400", step: "any", value: "30" });
  const repeatS = h("input", { name: "repeat_interval_s", type: "number", min: "1", max: "2592000", step: "any", value: "14400" });
  const resolved = h("input", { type: "checkbox", name: "send_resolved", checked: true });
  const formProblem = h("div", { class: "problem" });
  const form = h("form", { class: "stack inline-form", "aria-labelledby": "add-policy-title" },
    h("h3", { id: "add-policy-title", text: "Add a policy" }),
    ctx.channels.length ? null : h("p", { class: "callout", text: "Add a channel first: a policy sends to one." }),
    h("div", { class: "grid" }, field("Name", name), field("Channel", channel),
      field("Event types", types, "Comma-separated; * is a wildcard; empty: any"),
      field("Prediction environments", pes, "None selected: any"),
      field("Group window (s)", windowS, "Events of a deployment within it make one message"),
      field("Repeat interval (s)", repeatS, "While still failing or at risk")),
    statuses,
    h("label", { class: "check" }, resolved, "Send a message when passing again"),
    formProblem,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Add policy", disabled: !ctx.channels.length })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formProblem.replaceChildren();
    const body = {
      name: name.value.trim(),
      channel_id: channel.value,
      statuses: [...form.querySelectorAll("input[name=statuses]:checked")].map((i) => i.value),
      event_types: types.value.split(",").map((t) => t.trim()).filter(Boolean),
      prediction_environment_ids: [...pes.selectedOptions].map((o) => o.value),
      group_window_s: Number(windowS.value),
      repeat_interval_s: Number(repeatS.value),
      send_resolved: resolved.checked,
    };
    try {
      await api.post("/notification-policies", body);
      await ctx.redraw();
    } catch (error) {
      formProblem.append(errorBox(error));
    }
  });
  fill(section, h("h2", { id: "policies-title", text: "Notification policies" }), problem,
    table("Notification policies", ["Name", "Channel", "Statuses", "Event types", "Grouping", "Enabled", "Actions"], rows, "No policies yet."), form);
}

async function drawDeliveries(section, ctx) {
  const channelName = new Map(ctx.channels.map((c) => [c.id, c.name]));
  const body = h("tbody");
  let cursor = null;
  const more = h("button", { type: "button", class: "quiet", text: "Load older deliveries", hidden: true });
  const add = (items) => {
    for (const d of items) {
      const open = h("button", { type: "button", class: "link", text: d.kind });
      open.addEventListener("click", () => panel.open({ title: `Delivery ${d.id}`, from: open, content: h("div", {},
        h("dl", { class: "facts" },
          h("dt", { text: "Channel" }), h("dd", { text: channelName.get(d.channel_id) || d.channel_id }),
          h("dt", { text: "State" }), h("dd", { text: d.state }),
          h("dt", { text: "Created" }), h("dd", { text: formatTime(d.created_at) }),
          h("dt", { text: "Deployment" }), h("dd", {}, d.deployment_id ? h("a", { href: `#/deployments/${encodeURIComponent(d.deployment_id)}`, text: d.deployment_id }) : "—")),
        h("h3", { text: "Attempts" }), json(d.attempt_log),
        h("h3", { text: "Events" }), json(d.event_ids)) }));
      body.append(h("tr", { "data-delivery-id": d.id, "data-state": d.state },
        h("td", { "data-label": "When" }, time(d.created_at)),
        h("td", { "data-label": "Kind" }, open),
        h("td", { "data-label": "Status" }, statusIcon(d.status, { withLabel: true })),
        h("td", { "data-label": "Channel", text: channelName.get(d.channel_id) || d.channel_id }),
        h("td", { "data-label": "State", text: d.state }),
        h("td", { "data-label": "Attempts", text: String(d.attempts) }),
        h("td", { "data-label": "Last error", class: "wrap", text: d.last_error || "—" })));
    }
  };
  const load = async () => {
    const page = await api.get("/notification-deliveries", { limit: 50, cursor }, ctx.signal);
    add(page.items);
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener("click", () => load());
  await load();
  fill(section, h("h2", { id: "deliveries-title", text: "Delivery log" }),
    body.children.length
      ? h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden", text: "Delivery log" }),
        h("thead", {}, h("tr", {}, ["When", "Kind", "Status", "Channel", "State", "Attempts", "Last error"].map((t) => h("th", { scope: "col", text: t })))), body))
      : h("p", { class: "muted", text: "Nothing sent yet." }),
    more);
}

async function drawRetention(section, signal) {
  const current = await api.get("/settings/retention", {}, signal);
  const days = h("input", { name: "days", type: "number", min: "1", max: "36500", required: true, value: String(current.days) });
  const problem = h("div", { class: "problem" });
  const form = h("form", { class: "stack inline-form" },
    field("Keep events for (days)", days, "Events younger than this are never purged; older ones may be."),
    problem,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Save retention" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      await api.put("/settings/retention", { days: Number(days.value) });
      await drawRetention(section, signal);
      section.querySelector("[role=status]")?.append(" Saved.");
    } catch (error) {
      problem.append(errorBox(error));
    }
  });
  fill(section, h("h2", { id: "retention-title", text: "Event retention" }),
    h("p", { role: "status", "data-retention-days": String(current.days) },
      `Events are kept for ${current.days} days (${current.source === "api" ? "set here" : "the hub's default"}). `,
      current.last_purge_at ? `The last purge, ${formatTime(current.last_purge_at)}, removed ${current.last_purge_removed} events.` : "No purge has run yet.",
      ` Purges run every ${Math.round(current.purge_interval_s / 60)} minutes.`),
    form);
}
