// Modal dialogs built on <dialog>: confirmations, pickers, and secrets shown once.
import { copyButton, h } from "./dom.js";

/**
 * Ask before doing something. Resolves to the form's values (an object) when confirmed,
 * null when cancelled. `body` may hold form controls (named), read on confirm.
 */
export function confirm({ title, body, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2, 8)}`;
    const cancel = h("button", { type: "button", class: "quiet", value: "cancel", text: "Cancel" });
    const form = h("form", { method: "dialog" },
      h("h2", { id: titleId, text: title }),
      h("div", { class: "dialog-body" }, body),
      h("div", { class: "dialog-actions" },
        cancel,
        h("button", { type: "submit", value: "ok", class: danger ? "danger" : "primary", text: confirmLabel })));
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    cancel.addEventListener("click", () => dialog.close("cancel"));
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "ok";
      const values = Object.fromEntries(new FormData(form).entries());
      dialog.remove();
      resolve(confirmed ? values : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    (form.querySelector("select, input") || cancel).focus();
  });
}

/** Show a secret once, with a copy button; resolves when closed. */
export function showSecret({ title, secret, note }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2, 8)}`;
    const close = h("button", { type: "submit", class: "primary", text: "Done" });
    const value = h("code", { class: "secret", "data-secret": "", text: secret });
    const dialog = h("dialog", { "aria-labelledby": titleId },
      h("form", { method: "dialog" },
        h("h2", { id: titleId, text: title }),
        h("p", { class: "callout warning", text: note }),
        h("div", { class: "secret-row" }, value, copyButton(secret)),
        h("div", { class: "dialog-actions" }, close)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve();
    });
    document.body.append(dialog);
    dialog.showModal();
    close.focus();
  });
}
