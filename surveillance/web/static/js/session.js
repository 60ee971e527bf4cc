// Who is signed in, for every page but the sign-in page: fills the header's #session with the
// user's name and role, "Change password" and "Sign out", and shows only the controls the
// user's role allows. The server checks every request anyway; hiding a control just spares
// the user a button that can only answer "403".
//
// Hooks for the pages:
//   - an element with data-requires="PERMISSION" (and `hidden`, so it never flashes) is shown
//     once the session says the user has that permission;
//   - requirePermission(element, permission) does the same for elements built later;
//   - whenSignedIn() resolves to the /api/auth/me answer (rejects, and the browser goes to
//     the sign-in page, when nobody is signed in).

import { api, rememberCsrfToken } from "./api.js";
import { el } from "./dom.js";
import { errorText } from "./case-format.js";

let signedIn = null;

export function whenSignedIn() {
  if (!signedIn) {
    signedIn = api.get("/api/auth/me").then((me) => {
      rememberCsrfToken(me.csrf_token);
      return me;
    });
  }
  return signedIn;
}

export function can(me, permission) {
  return !!me && Array.isArray(me.permissions) && me.permissions.includes(permission);
}

// Hidden until the session is known, then shown only if the user may use it: a failure to
// ask leaves it hidden rather than offering what may be forbidden.
export function requirePermission(element, permission) {
  element.dataset.requires = permission;
  element.hidden = true;
  whenSignedIn().then((me) => { element.hidden = !can(me, permission); }, () => {});
  return element;
}

// ---- change password -----------------------------------------------------------------------

let dialog = null;

function passwordDialog() {
  if (dialog) return dialog;
  const current = el("input", {
    id: "password-current", type: "password", autocomplete: "current-password", required: true,
  });
  const fresh = el("input", {
    id: "password-new", type: "password", autocomplete: "new-password", required: true,
  });
  const again = el("input", {
    id: "password-again", type: "password", autocomplete: "new-password", required: true,
  });
  const status = el("p", { id: "password-status", class: "session-status", role: "status" });
  const submit = el("button", { id: "password-submit", type: "submit", text: "Change password" });
  const cancel = el("button", { type: "button", text: "Close" });
  const form = el("form", { id: "password-form", class: "session-form", method: "dialog" },
    el("h2", { text: "Change your password" }),
    el("label", {}, "Current password", current),
    el("label", {}, "New password", fresh),
    el("label", {}, "New password again", again),
    el("p", { class: "session-note", text: "Changing it signs you out everywhere else." }),
    el("div", { class: "session-buttons" }, submit, cancel),
    status);
  const root = el("dialog", { id: "password-dialog", class: "session-dialog" }, form);
  document.body.append(root);

  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle("error", isError);
  };
  cancel.addEventListener("click", () => root.close());
  root.addEventListener("close", () => {
    form.reset(); // no password stays in the page after the dialog closes
    say("");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (fresh.value !== again.value) {
      say("The new passwords differ.", true);
      return;
    }
    submit.disabled = true;
    say("Changing…");
    try {
      // A 401 here is "wrong current password", not "signed out": answer it in the dialog.
      await api.post("/api/auth/password",
        { current_password: current.value, new_password: fresh.value }, { signInOn401: false });
      form.reset();
      say("Password changed. Your other sessions are signed out.");
    } catch (error) {
      say(`Not changed: ${errorText(error)}`, true);
    } finally {
      submit.disabled = false;
    }
  });
  dialog = { root, current };
  return dialog;
}

function openPasswordDialog() {
  const view = passwordDialog();
  if (!view.root.open) view.root.showModal();
  view.current.focus();
}

// ---- sign out ------------------------------------------------------------------------------

async function signOut(button) {
  button.disabled = true;
  try {
    await api.post("/api/auth/logout", undefined, { signInOn401: false });
  } catch {
    // Already signed out (401) or the server is gone: the sign-in page is right either way.
  }
  location.assign("/login");
}

// ---- the header ----------------------------------------------------------------------------

function renderSession(box, me) {
  // The server serves /admin to users.manage only, so nobody else is offered the link.
  const admin = can(me, "users.manage") ? el("a", { id: "session-admin", href: "/admin", text: "Admin" }) : null;
  const change = el("button", {
    id: "session-password", type: "button", text: "Change password", onclick: openPasswordDialog,
  });
  const out = el("button", { id: "session-signout", type: "button", text: "Sign out" });
  out.addEventListener("click", () => signOut(out));
  box.replaceChildren(
    el("span", { class: "session-who", text: `signed in as ${me.name} (${me.role})` }),
    ...(admin ? [admin] : []), change, out);
  box.dataset.user = me.name;
  box.dataset.role = me.role;
}

function start() {
  for (const element of document.querySelectorAll("[data-requires]")) {
    requirePermission(element, element.dataset.requires);
  }
  const box = document.getElementById("session");
  whenSignedIn().then((me) => {
    if (box) renderSession(box, me);
    document.body.dataset.session = "ready"; // for tests: the session is known
  }, (error) => {
    if (box) box.replaceChildren(el("span", { class: "session-who error", text: `Session: ${errorText(error)}` }));
  });
}

start();
