// The admin page: users (role, camera scope, disabled, password), API tokens, GB/T 28181
// platforms (gb-admin.js), a cluster's nodes (nodes-admin.js), finding ONVIF cameras
// (discovery-admin.js) and the audit log. Each section shows only if the session's
// permissions allow it (session.js); the server decides anyway. Every value from the
// server is put in the page as text.

import { api } from "./api.js";
import { clear, el } from "./dom.js";
import { errorText } from "./case-format.js";
import { GbSection } from "./gb-admin.js";
import { NodesSection } from "./nodes-admin.js";
import { DiscoverySection } from "./discovery-admin.js";
import { can, whenSignedIn } from "./session.js";

const ROLES = ["viewer", "operator", "handler", "admin"];
const AUDIT_PAGE = 100;
const OK_OUTCOMES = new Set(["ok"]);

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  users: [],
  auditParams: null, // the filters the shown audit entries were asked with
  auditBefore: null, // next_before_id: where "Older" continues
  auditShown: 0,
  auditGeneration: 0, // drops answers to filters that have since changed
};

function message(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

// The API answers times as ISO 8601 in UTC; shown in the browser's time zone.
function timeText(iso) {
  if (iso === null || iso === undefined) return "";
  return new Date(iso).toLocaleString();
}

// "a, b,,c " -> ["a", "b", "c"]
function listOf(text) {
  return [...new Set(text.split(",").map((part) => part.trim()).filter(Boolean))];
}

function scopeText(user) {
  if (!user.platforms.length && !user.cameras.length) return "all cameras";
  const parts = [];
  if (user.platforms.length) parts.push(`platforms: ${user.platforms.join(", ")}`);
  if (user.cameras.length) parts.push(`cameras: ${user.cameras.join(", ")}`);
  return parts.join(" · ");
}

function roleOptions(selected) {
  return ROLES.map((role) => el("option", { value: role, text: role, selected: role === selected }));
}

const userUrl = (name) => `/api/users/${encodeURIComponent(name)}`;

// ---- users ---------------------------------------------------------------------------------

async function loadUsers() {
  state.users = await api.get("/api/users");
  renderUsers();
  renderTokenUsers();
}

function renderUsers() {
  const rows = $("users-table").tBodies[0];
  clear(rows);
  for (const user of state.users) {
    const you = state.me && user.name === state.me.name;
    const row = el("tr", { "data-user": user.name, class: user.disabled ? "disabled" : null },
      el("td", { class: "name" }, user.name, you ? el("span", { class: "muted", text: " (you)" }) : null),
      el("td", { class: "role", text: user.role }),
      el("td", { class: "scope", text: scopeText(user) }),
      el("td", { class: "status", text: user.disabled ? "disabled" : "active" }),
      el("td", { text: timeText(user.created_at) }),
      el("td", { text: timeText(user.password_changed_at) }));
    const actions = el("td", { class: "actions" },
      el("button", { type: "button", class: "edit", text: "Edit", onclick: () => openEditor(row, user) }),
      el("button", {
        type: "button", class: "toggle", text: user.disabled ? "Enable" : "Disable",
        onclick: () => setDisabled(user, !user.disabled),
      }),
      el("button", { type: "button", class: "password", text: "Reset password", onclick: () => openPasswordReset(row, user) }),
      el("button", { type: "button", class: "delete", text: "Delete", onclick: () => deleteUser(user) }));
    row.append(actions);
    rows.append(row);
  }
  if (!state.users.length) rows.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No users." })));
  $("users-count").textContent = `(${state.users.length})`;
}

// One inline editor at a time, in a row under the user's row.
function openInlineForm(row, user, kind, fields, onSave) {
  const table = $("users-table");
  for (const open of table.querySelectorAll("tr.editor")) open.remove();
  const save = el("button", { type: "submit", text: "Save" });
  const cancel = el("button", { type: "button", text: "Cancel" });
  const form = el("form", { class: "inline-form" }, ...fields, save, cancel);
  const editor = el("tr", { class: `editor editor-${kind}`, "data-editor-for": user.name },
    el("td", { colspan: 7 }, form));
  cancel.addEventListener("click", () => editor.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      await onSave();
      editor.remove();
    } catch (error) {
      message(`${user.name}: ${errorText(error)}`, true);
    } finally {
      save.disabled = false;
    }
  });
  row.after(editor);
  const first = form.querySelector("input, select");
  if (first) first.focus();
}

function openEditor(row, user) {
  const role = el("select", { class: "edit-role" }, ...roleOptions(user.role));
  const platforms = el("input", { class: "edit-platforms", value: user.platforms.join(", "), autocomplete: "off" });
  const cameras = el("input", { class: "edit-cameras", value: user.cameras.join(", "), autocomplete: "off" });
  openInlineForm(row, user, "scope", [
    el("label", {}, "Role ", role),
    el("label", { class: "grow" }, "Platforms ", platforms),
    el("label", { class: "grow" }, "Cameras ", cameras),
  ], async () => {
    const body = { role: role.value, platforms: listOf(platforms.value), cameras: listOf(cameras.value) };
    await api.patch(userUrl(user.name), body);
    message(`Updated ${user.name}: ${body.role}, ${scopeText(body)}.`);
    await loadUsers();
  });
}

function openPasswordReset(row, user) {
  const password = el("input", { class: "edit-password", type: "password", autocomplete: "new-password", required: true });
  openInlineForm(row, user, "password", [el("label", {}, `New password for ${user.name} `, password)], async () => {
    await api.patch(userUrl(user.name), { password: password.value });
    password.value = "";
    message(`Set a new password for ${user.name}.`);
    await loadUsers();
  });
}

async function setDisabled(user, disabled) {
  try {
    await api.patch(userUrl(user.name), { disabled });
    message(`${user.name} is ${disabled ? "disabled" : "enabled"}.`);
    await loadUsers();
  } catch (error) {
    message(`${user.name}: ${errorText(error)}`, true);
  }
}

async function deleteUser(user) {
  if (!confirm(`Delete user ${user.name}? Their sessions and tokens stop working.`)) return;
  try {
    await api.del(userUrl(user.name));
    message(`Deleted ${user.name}.`);
    await Promise.all([loadUsers(), loadTokens()]);
  } catch (error) {
    message(`${user.name}: ${errorText(error)}`, true);
  }
}

async function addUser(event) {
  event.preventDefault();
  const body = {
    name: $("user-add-name").value.trim(),
    role: $("user-add-role").value,
    password: $("user-add-password").value,
    platforms: listOf($("user-add-platforms").value),
    cameras: listOf($("user-add-cameras").value),
  };
  $("user-add-submit").disabled = true;
  try {
    const created = await api.post("/api/users", body);
    $("user-add-form").reset();
    message(`Added ${created.name} (${created.role}).`);
    await loadUsers();
  } catch (error) {
    $("user-add-password").value = "";
    message(`Could not add ${body.name}: ${errorText(error)}`, true);
  } finally {
    $("user-add-submit").disabled = false;
  }
}

// ---- API tokens ----------------------------------------------------------------------------

function renderTokenUsers() {
  const select = $("token-user");
  const previous = select.value;
  select.replaceChildren(...state.users.map((user) => el("option", { value: user.name, text: user.name })));
  if (state.users.some((user) => user.name === previous)) select.value = previous;
}

async function loadTokens() {
  const tokens = await api.get("/api/tokens");
  const rows = $("tokens-table").tBodies[0];
  clear(rows);
  for (const token of tokens) {
    const revoke = token.revoked ? null : el("button", {
      type: "button", class: "revoke", text: "Revoke", onclick: () => revokeToken(token),
    });
    rows.append(el("tr", { "data-token": token.id, class: token.revoked ? "revoked" : null },
      el("td", {}, el("code", { text: String(token.id) })),
      el("td", { text: token.user }),
      el("td", { text: token.label }),
      el("td", { text: timeText(token.created_at) }),
      el("td", { text: token.last_used_at === null ? "never" : timeText(token.last_used_at) }),
      el("td", { class: "status", text: token.revoked ? "revoked" : "active" }),
      el("td", { class: "actions" }, revoke)));
  }
  if (!tokens.length) rows.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No tokens." })));
  $("tokens-count").textContent = `(${tokens.length})`;
}

function hideNewToken() {
  $("token-new").value = ""; // shown once: gone from the page once dismissed
  $("token-new-box").hidden = true;
}

async function createToken(event) {
  event.preventDefault();
  hideNewToken();
  const body = { user: $("token-user").value, label: $("token-label").value.trim() };
  $("token-create-submit").disabled = true;
  try {
    const created = await api.post("/api/tokens", body);
    $("token-label").value = "";
    $("token-new").value = created.token;
    $("token-new-box").hidden = false;
    $("token-new").focus();
    $("token-new").select();
    message(`Created token ${created.id} for ${created.user}.`);
    await loadTokens();
  } catch (error) {
    message(`Could not create the token: ${errorText(error)}`, true);
  } finally {
    $("token-create-submit").disabled = false;
  }
}

async function copyNewToken() {
  const field = $("token-new");
  try {
    await navigator.clipboard.writeText(field.value);
    message("Token copied.");
  } catch {
    field.focus();
    field.select(); // no clipboard access (not a secure context): leave it selected for Ctrl+C
    message("Copy it with Ctrl+C: the browser does not allow this page to copy.", true);
  }
}

async function revokeToken(token) {
  if (!confirm(`Revoke token ${token.id} (${token.label}) of ${token.user}? Whatever uses it stops working.`)) return;
  try {
    await api.del(`/api/tokens/${encodeURIComponent(token.id)}`);
    message(`Revoked token ${token.id}.`);
    await loadTokens();
  } catch (error) {
    message(`Token ${token.id}: ${errorText(error)}`, true);
  }
}

// ---- audit log -----------------------------------------------------------------------------

// A datetime-local value is the browser's local time, which is what Date parses it as.
// A datetime-local input's value (local time, no zone) as ISO 8601 in UTC.
function isoFromLocal(value) {
  if (!value) return null;
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? null : moment.toISOString();
}

function auditFilterParams() {
  const params = new URLSearchParams();
  for (const [name, id] of [["user", "audit-user"], ["camera", "audit-camera"], ["action", "audit-action"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  const since = isoFromLocal($("audit-since").value);
  const until = isoFromLocal($("audit-until").value);
  if (since !== null) params.set("since", since);
  if (until !== null) params.set("until", until);
  params.set("limit", String(AUDIT_PAGE));
  return params;
}

function detailText(detail) {
  return Object.entries(detail || {})
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
}

function auditRow(entry) {
  const good = OK_OUTCOMES.has(entry.outcome);
  return el("tr", { "data-id": entry.id, "data-action": entry.action, "data-outcome": entry.outcome },
    el("td", { class: "number", text: String(entry.id) }),
    el("td", { class: "when", text: timeText(entry.at) }),
    el("td", { text: entry.user }),
    el("td", { text: entry.action }),
    el("td", { text: entry.camera_id || "" }),
    el("td", { text: entry.client }),
    el("td", { class: good ? "outcome" : "outcome bad", text: entry.outcome }),
    el("td", { class: "detail", text: detailText(entry.detail) }));
}

// fresh: the filters changed, start from the newest entry; otherwise append older ones.
async function loadAudit(fresh) {
  const generation = ++state.auditGeneration;
  if (fresh) {
    state.auditParams = auditFilterParams();
    state.auditBefore = null;
  }
  const params = new URLSearchParams(state.auditParams);
  if (!fresh && state.auditBefore !== null) params.set("before_id", String(state.auditBefore));
  $("audit-older").disabled = true;
  try {
    const page = await api.get(`/api/audit?${params}`);
    if (generation !== state.auditGeneration) return;
    const rows = $("audit-table").tBodies[0];
    if (fresh) {
      clear(rows);
      state.auditShown = 0;
    }
    rows.append(...page.entries.map(auditRow));
    state.auditShown += page.entries.length;
    state.auditBefore = page.next_before_id;
    if (fresh && !page.entries.length) {
      rows.append(el("tr", { class: "none" }, el("td", { colspan: 8, class: "muted", text: "No entries match." })));
    }
    $("audit-count").textContent = `(${state.auditShown} shown${state.auditBefore === null ? "" : ", more older"})`;
    $("audit-older").disabled = state.auditBefore === null;
  } catch (error) {
    if (generation !== state.auditGeneration) return;
    message(`Could not load the audit log: ${errorText(error)}`, true);
    $("audit-older").disabled = state.auditBefore === null;
  }
}

// ---- start ---------------------------------------------------------------------------------

async function main() {
  state.me = await whenSignedIn();
  const manage = can(state.me, "users.manage");
  const audit = can(state.me, "audit.read");
  const system = can(state.me, "system.read");
  const discover = can(state.me, "devices.discover");
  $("admin-nothing").hidden = manage || audit || system || discover;
  const tasks = [];
  if (discover) new DiscoverySection(message).start();
  if (system) tasks.push(new GbSection(message, manage).start(), new NodesSection().start());
  if (manage) {
    $("user-add-role").replaceChildren(...roleOptions("viewer")); // least power by default
    $("user-add-form").addEventListener("submit", addUser);
    $("token-create-form").addEventListener("submit", createToken);
    $("token-copy").addEventListener("click", copyNewToken);
    $("token-done").addEventListener("click", hideNewToken);
    tasks.push(loadUsers(), loadTokens());
  }
  if (audit) {
    // Unscoped admins read everyone's entries; everyone else, their own (the server decides).
    const unscoped = !(state.me.platforms || []).length && !(state.me.cameras || []).length;
    $("audit-scope").hidden = manage && unscoped;
    $("audit-filter-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadAudit(true);
    });
    $("audit-older").addEventListener("click", () => loadAudit(false));
    tasks.push(loadAudit(true));
  }
  const results = await Promise.allSettled(tasks);
  const failed = results.find((result) => result.status === "rejected");
  if (failed) message(`Could not load: ${errorText(failed.reason)}`, true);
  if (location.hash === "#audit" && audit) $("audit").scrollIntoView();
  document.body.dataset.ready = "true"; // for tests: the sections are loaded
}

main().catch((error) => message(`The admin page failed to start: ${errorText(error)}`, true));
