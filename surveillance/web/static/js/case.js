// One case: its facts, workflow buttons, timeline and comments, evidence with the actions that
// attach more, the signed export and the custody log. Every value is shown as text.

import { api } from "./api.js";
import { clear, el, isolated } from "./dom.js";
import { apiCaseUrl, errorText, sizeText, stateLabel, timeText } from "./case-format.js";
import { isoOf, parseGoto } from "./playback-time.js";

const EXPORT_REFRESH_MS = 1500; // the export's custody entry appears once the download starts

const $ = (id) => document.getElementById(id);

const state = {
  number: decodeURIComponent(location.pathname.replace(/^\/cases\//, "")),
  case: null,
  transitions: {}, // state -> states it may move to (from the API)
  cameras: new Map(),
  tags: new Map(),
  items: new Map(), // id -> rendered card: kept across refreshes so a playing clip keeps playing
  busy: false,
};

function message(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

function cameraName(id) {
  const camera = state.cameras.get(id);
  return camera ? `${camera.name} (${id})` : id;
}

// ---- header and workflow -------------------------------------------------------------------

function renderHeader(data) {
  document.title = `${data.number} ${data.title} · Case`;
  document.body.dataset.state = data.state;
  $("case-number").textContent = data.number;
  $("case-title").textContent = data.title;
  const badge = $("case-state");
  badge.textContent = stateLabel(data.state);
  badge.className = `state state-${data.state}`;
  $("case-assignee").textContent = data.assignee || "nobody";
  $("case-reporter").textContent = data.reporter;
  $("case-created").textContent = timeText(data.created_at);
  $("case-place").textContent = data.place || "—";
  $("case-description").textContent = data.description || "—";
  $("case-cameras").textContent = data.cameras.map((id) => isolated(cameraName(id))).join(", ") || "—";
  const tags = $("case-tags");
  clear(tags);
  for (const id of data.tags) {
    const tag = state.tags.get(id);
    const chip = el("span", { class: "chip", text: tag ? tag.name : id });
    if (tag) chip.style.setProperty("--chip", tag.color);
    tags.append(chip);
  }
  if (!data.tags.length) tags.textContent = "—";

  const buttons = $("transitions");
  clear(buttons);
  const targets = state.transitions[data.state] || [];
  for (const target of targets) {
    buttons.append(el("button", {
      type: "button", "data-to": target, text: stateLabel(target), onclick: () => move(target),
    }));
  }
  if (!targets.length) buttons.append(el("span", { class: "muted", text: "none: the case is final" }));

  // What the state allows: evidence while open, comments until archived.
  const closedReason = data.state === "archived" ? "An archived case is read-only."
    : data.open ? "" : "A closed case takes no new evidence; reopen it to attach more.";
  for (const id of ["attach-snapshot", "attach-clip"]) $(id).disabled = !data.open || state.busy;
  $("attach-closed").hidden = !closedReason;
  $("attach-closed").textContent = closedReason;
  $("comment-submit").disabled = data.state === "archived";
  $("export-link").href = `${apiCaseUrl(data.number)}/export.zip`;
}

async function move(target) {
  const body = { to: target };
  const comment = $("transition-comment").value.trim();
  const assignee = $("transition-assignee").value.trim();
  if (comment) body.comment = comment;
  if (assignee) body.assignee = assignee;
  try {
    const moved = await api.post(`${apiCaseUrl(state.number)}/transitions`, body);
    $("transition-comment").value = "";
    $("transition-assignee").value = "";
    message(`Case ${moved.number} is now ${stateLabel(moved.state)}.`);
  } catch (error) {
    message(`Could not move the case: ${errorText(error)}`, true);
  }
  await refresh();
}

// ---- timeline ------------------------------------------------------------------------------

function renderTimeline(entries) {
  const list = $("timeline");
  clear(list);
  for (const entry of entries) {
    let what = entry.text;
    if (entry.kind === "state" && entry.to_state) {
      const change = `${stateLabel(entry.from_state || "")} → ${stateLabel(entry.to_state)}`;
      what = entry.text ? `${change}: ${entry.text}` : change;
    }
    list.append(el("li", { class: `entry kind-${entry.kind}`, "data-kind": entry.kind },
      el("span", { class: "when", text: timeText(entry.at) }),
      el("span", { class: "actor", text: entry.actor }),
      el("span", { class: "kind", text: entry.kind }),
      el("span", { class: "what", text: what })));
  }
}

async function addComment(event) {
  event.preventDefault();
  const text = $("comment-text").value.trim();
  if (!text) return;
  $("comment-submit").disabled = true;
  try {
    await api.post(`${apiCaseUrl(state.number)}/comments`, { text });
    $("comment-text").value = "";
    message("Comment added.");
  } catch (error) {
    message(`Could not add the comment: ${errorText(error)}`, true);
  }
  await refresh();
}

// ---- evidence ------------------------------------------------------------------------------

function fact(label, value) {
  return [el("dt", { text: label }), el("dd", { text: value })];
}

function itemCard(item) {
  // The content endpoint serves bytes by id: the browser never sees a file path. Loading it
  // is a "view" in the custody log; the download link is logged as a "download".
  let media;
  if (item.kind === "clip") {
    media = el("video", { class: "clip", controls: true, muted: true, preload: "metadata", src: item.content_url });
    media.muted = true;
  } else {
    media = el("a", { href: item.content_url, target: "_blank", rel: "noopener", title: "Full size" },
      el("img", { class: "thumb", src: item.content_url, alt: `Snapshot from ${cameraName(item.camera)}` }));
  }
  const picture = `${item.codec} ${item.width}×${item.height}`;
  const length = item.duration_s !== null ? ` · ${item.duration_s.toFixed(2)} s, ${item.frames} frames` : "";
  const stream = item.stream_time_s !== null ? `${item.stream_time_s.toFixed(3)} s` : "—";
  const offset = item.camera_clock_offset_s;
  // The camera's own clock (a time burnt into its picture) against the server's.
  const clock = offset === null || offset === undefined ? "not known"
    : `${offset >= 0 ? "+" : "−"}${Math.abs(offset).toFixed(2)} s (camera ${offset >= 0 ? "ahead of" : "behind"} the server)`;
  return el("article", { class: `item kind-${item.kind}`, "data-item": item.id, "data-kind": item.kind },
    el("div", { class: "media" }, media),
    el("div", { class: "about" },
      el("h3", { text: `#${item.id} ${item.kind}` }),
      el("dl", { class: "facts" },
        ...fact("Camera", cameraName(item.camera)),
        ...fact("Platform", item.platform || "—"),
        ...fact("Captured", timeText(item.captured_at)),
        ...fact("Stream time", stream),
        ...fact("Camera clock", clock),
        ...fact("Attached", `${timeText(item.attached_at)} by ${item.attached_by}`),
        ...fact("Media", `${picture}${length}`),
        ...fact("Size", `${sizeText(item.size)} (${item.size} bytes)`),
        el("dt", { text: "SHA-256" }), el("dd", {}, el("code", { class: "sha256", text: item.sha256 })),
        ...(item.note ? fact("Note", item.note) : [])),
      el("a", { class: "download", href: `${item.content_url}?download=true`, download: "", text: "Download" })));
}

function renderItems(items) {
  // Evidence is only ever added, so new cards go on top and existing ones stay where they
  // are: a clip being watched is not reloaded or paused by a refresh.
  const box = $("items");
  for (const item of items) {
    if (state.items.has(item.id)) continue;
    const card = itemCard(item);
    state.items.set(item.id, card);
    box.prepend(card);
  }
  $("no-items").hidden = items.length > 0;
  $("item-count").textContent = `(${items.length})`;
}

function renderCameraChoices() {
  const select = $("attach-camera");
  const previous = select.value;
  clear(select);
  const linked = state.case ? state.case.cameras : [];
  const option = (camera) => el("option", {
    value: camera.id, text: `${camera.name} (${camera.id}) · ${camera.state}`,
  });
  const mine = linked.map((id) => state.cameras.get(id)).filter(Boolean);
  const others = [...state.cameras.values()].filter((camera) => !linked.includes(camera.id));
  if (mine.length) select.append(el("optgroup", { label: "This case's cameras" }, ...mine.map(option)));
  if (others.length) select.append(el("optgroup", { label: "Other cameras" }, ...others.map(option)));
  if (previous && state.cameras.has(previous)) select.value = previous;
}

async function attach(kind) {
  const camera = $("attach-camera").value;
  if (!camera) {
    message("Choose a camera first.", true);
    return;
  }
  // The moment: empty is now; anything else must read as one (never guessed), and a past
  // moment is served from the recordings.
  const atText = $("attach-at").value.trim();
  const at = atText ? parseGoto(atText) : null;
  if (atText && at === null) {
    message("Give the moment as YYYY-MM-DD HH:MM:SS (local time, 24 h) or an ISO time with its zone.", true);
    return;
  }
  const url = `${apiCaseUrl(state.number)}/items/${kind}`;
  let body = { camera };
  let waiting = `Taking a snapshot from ${cameraName(camera)}…`;
  if (kind === "clip") {
    const pre = Number($("clip-pre").value) || 0;
    const post = Number($("clip-post").value) || 0;
    body = { camera, pre_s: pre, post_s: post };
    const waits = at === null ? post : at + post - Date.now() / 1000;
    waiting = waits > 0 ? `Cutting the clip; waiting ${Math.ceil(waits)} s for what follows…` : "Cutting the clip…";
  }
  if (at !== null) {
    body.at = isoOf(at);
    if (kind === "snapshot") waiting = `Finding the picture of ${cameraName(camera)} at ${atText}…`;
  }
  setBusy(true, waiting);
  try {
    const item = await api.post(url, body);
    message(`Attached ${item.kind} #${item.id} from ${cameraName(item.camera)}; SHA-256 ${item.sha256}`);
  } catch (error) {
    message(`Nothing attached: ${errorText(error)}`, true);
  } finally {
    setBusy(false, "");
  }
  await refresh();
}

function setBusy(busy, text) {
  state.busy = busy;
  $("attach-status").textContent = text;
  const open = state.case ? state.case.open : false;
  for (const id of ["attach-snapshot", "attach-clip"]) $(id).disabled = busy || !open;
}

// ---- custody -------------------------------------------------------------------------------

// An attach entry also binds the whole item record ("item", format "v"): the item column
// and the evidence list show it, so the log shows the summary keys only.
const BOUND_KEYS = new Set(["item", "v"]);

function detailText(detail) {
  return Object.entries(detail || {})
    .filter(([key]) => !BOUND_KEYS.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
}

function renderCustody(entries) {
  const rows = $("custody-rows");
  clear(rows);
  for (const entry of entries) {
    rows.append(el("tr", { "data-action": entry.action },
      el("td", { text: String(entry.seq) }),
      el("td", { text: timeText(entry.at) }),
      el("td", { text: entry.actor }),
      el("td", { text: entry.action }),
      el("td", { text: entry.item_id === null ? "" : `#${entry.item_id}` }),
      el("td", { class: "detail", text: detailText(entry.detail) }),
      el("td", {}, el("code", { title: entry.entry_hash, text: `${entry.entry_hash.slice(0, 16)}…` }))));
  }
  $("custody-count").textContent = `(${entries.length} entries)`;
}

// ---- loading -------------------------------------------------------------------------------

async function refresh() {
  try {
    const base = apiCaseUrl(state.number);
    const [data, items, custody] = await Promise.all([
      api.get(base), api.get(`${base}/items`), api.get(`${base}/custody`),
    ]);
    const firstLoad = state.case === null;
    state.case = data;
    renderHeader(data);
    renderTimeline(data.timeline);
    renderItems(items);
    renderCustody(custody);
    if (firstLoad) renderCameraChoices();
  } catch (error) {
    message(`Could not load case ${state.number}: ${errorText(error)}`, true);
  }
}

async function main() {
  const [states, tags, cameras, key] = await Promise.all([
    api.get("/api/cases/states"), api.get("/api/tags"), api.get("/api/cameras"),
    api.get("/api/node/key").catch(() => null),
  ]);
  state.transitions = states.transitions;
  state.tags = new Map(tags.map((tag) => [tag.id, tag]));
  state.cameras = new Map(cameras.map((camera) => [camera.id, camera]));
  $("node-key").textContent = key ? key.fingerprint : "unavailable";
  $("node-name").textContent = key ? `node ${key.node}` : "";

  $("transition-form").addEventListener("submit", (event) => event.preventDefault());
  $("attach-form").addEventListener("submit", (event) => event.preventDefault());
  $("attach-snapshot").addEventListener("click", () => attach("snapshot"));
  $("attach-clip").addEventListener("click", () => attach("clip"));
  $("comment-form").addEventListener("submit", addComment);
  $("export-link").addEventListener("click", () => {
    message(`Exporting: the browser saves case-${state.number}.zip when the bundle is signed.`);
    setTimeout(refresh, EXPORT_REFRESH_MS);
  });
  await refresh();
  document.body.dataset.ready = "true"; // for tests: the case is shown
}

main().catch((error) => message(`The case page failed to start: ${errorText(error)}`, true));
