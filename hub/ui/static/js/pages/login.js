// Log in with a token. It is kept in this tab's sessionStorage only: never in the URL,
// never in a cookie, gone when the tab closes.
import * as api from "../api.js";
import { errorBox, field, h } from "../dom.js";

export function render(main, { done }) {
  document.title = "Log in · Pilothouse";
  const input = h("input", { type: "password", name: "token", autocomplete: "off", spellcheck: "false", required: true });
  const problem = h("div", { class: "problem" });
  const notice = sessionStorage.getItem("pilothouse.notice");
  sessionStorage.removeItem("pilothouse.notice");
  const submit = h("button", { type: "submit", class: "primary", text: "Log in" });
  const form = h("form", { class: "login card", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title", text: "Log in to the hub" }),
    notice ? h("p", { class: "callout warning", role: "status", text: notice }) : null,
    field("Admin token", input,
      "The hub's admin token: PILOTHOUSE_HUB_ADMIN_TOKEN, or the file admin-token in its state directory (make run: .pilothouse/admin-token)."),
    problem,
    h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    submit.disabled = true;
    try {
      await api.login(input.value.trim());
      done();
    } catch (error) {
      problem.append(errorBox(error));
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  input.focus();
}
