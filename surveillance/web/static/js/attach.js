// "Attach" on a wall tile: puts the tile camera's snapshot, or its last N seconds, into a
// chosen open case. Self-contained: the wall calls addAttachButton(tile root) once per tile;
// at click time the button reads which camera the tile shows from the tile's data-camera.

import { api } from "./api.js";
import { el, isolated } from "./dom.js";
import { caseUrl, errorText } from "./case-format.js";
import { requirePermission } from "./session.js";

const DEFAULT_LAST_S = 10;
const MAX_LAST_S = 600; // the API's limit; what the ring holds may be less, and it says so
const MAX_CASES_LISTED = 200;
// Clips are cut without re-encoding, so they must start on a keyframe (media/clip.py): the
// one at or before the asked start, up to a keyframe interval earlier.
const CLIP_START_NOTE = "A clip starts at the keyframe at or before the asked start, so it may begin a few seconds earlier than asked.";

let panel = null; // one panel for the whole wall, built on first use

function buildPanel() {
  const title = el("strong", { class: "attach-title" });
  const cases = el("select", { class: "attach-case", "aria-label": "Open case" });
  const seconds = el("input", {
    class: "attach-seconds", type: "number", min: 1, max: MAX_LAST_S, step: 1,
    value: DEFAULT_LAST_S, "aria-label": "Seconds",
  });
  const snapshot = el("button", { type: "button", class: "attach-snapshot", text: "Snapshot" });
  const clip = el("button", { type: "button", class: "attach-clip", text: "Last N s" });
  const note = el("p", { class: "attach-note", text: CLIP_START_NOTE });
  const status = el("p", { class: "attach-status", role: "status" });
  const close = el("button", { type: "button", class: "attach-close", text: "×", title: "Close" });
  const root = el("div", { id: "attach-panel", class: "attach-panel", hidden: true, role: "dialog" },
    el("div", { class: "attach-row" }, title, close),
    el("label", { class: "attach-row" }, "Case ", cases),
    el("div", { class: "attach-row" }, snapshot,
      el("label", {}, "Last ", seconds, " s "), clip),
    note, status);
  document.body.append(root);
  const view = { root, title, cases, seconds, snapshot, clip, status, camera: null };
  close.addEventListener("click", hidePanel);
  snapshot.addEventListener("click", () => attach(view, "snapshot"));
  clip.addEventListener("click", () => attach(view, "clip"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !root.hidden) {
      event.stopImmediatePropagation(); // Escape closes the panel, not the full-screen tile
      hidePanel();
    }
  }, true);
  return view;
}

function hidePanel() {
  if (panel) panel.root.hidden = true;
}

function setStatus(view, text, isError = false, link = null) {
  view.status.replaceChildren(text);
  if (link) view.status.append(" ", el("a", { href: link.href, target: "_blank", rel: "noopener", text: link.text }));
  view.status.classList.toggle("error", isError);
}

async function loadOpenCases(view) {
  const previous = view.cases.value;
  view.cases.replaceChildren();
  const page = await api.get(`/api/cases?open=true&limit=${MAX_CASES_LISTED}`);
  for (const item of page.cases) {
    view.cases.append(el("option", { value: item.number, text: `${item.number} · ${item.title}` }));
  }
  if (previous && page.cases.some((item) => item.number === previous)) view.cases.value = previous;
  return page.cases.length;
}

async function openPanel(tile, button) {
  const camera = tile.dataset.camera;
  if (!camera) return;
  if (!panel) panel = buildPanel();
  const view = panel;
  view.camera = camera;
  const name = tile.querySelector(".tile-name");
  view.title.textContent = `Attach from ${isolated(name && name.textContent ? name.textContent : camera)}`;
  // Beside the button, kept inside the window.
  const box = button.getBoundingClientRect();
  view.root.hidden = false;
  const width = view.root.offsetWidth;
  view.root.style.left = `${Math.max(4, Math.min(box.right - width, window.innerWidth - width - 4))}px`;
  view.root.style.top = `${Math.min(box.bottom + 4, window.innerHeight - view.root.offsetHeight - 4)}px`;
  setStatus(view, "Loading open cases…");
  try {
    const count = await loadOpenCases(view);
    if (count) setStatus(view, "");
    else setStatus(view, "No open case.", true, { href: "/cases", text: "Report one" });
    view.snapshot.disabled = view.clip.disabled = count === 0;
  } catch (error) {
    setStatus(view, `Could not list cases: ${errorText(error)}`, true);
  }
}

async function attach(view, kind) {
  const number = view.cases.value;
  const camera = view.camera;
  if (!number || !camera) return;
  const url = `/api/cases/${encodeURIComponent(number)}/items/${kind}`;
  let body = { camera };
  let seconds = 0;
  if (kind === "clip") {
    seconds = Math.min(MAX_LAST_S, Math.max(1, Number(view.seconds.value) || DEFAULT_LAST_S));
    body = { camera, pre_s: seconds, post_s: 0 };
  }
  view.snapshot.disabled = view.clip.disabled = true;
  setStatus(view, kind === "clip" ? "Cutting the clip…" : "Taking the snapshot…");
  try {
    const item = await api.post(url, body);
    const said = `Attached ${item.kind} #${item.id} to case ${number}.`;
    setStatus(view, kind === "clip" ? `${said} ${clipStartText(item, seconds)}` : said, false,
      { href: caseUrl(number), text: "Open the case" });
  } catch (error) {
    setStatus(view, `Nothing attached: ${errorText(error)}`, true);
  } finally {
    view.snapshot.disabled = view.clip.disabled = false;
  }
}

// Where the clip really starts, as the server cut it: its first packet's arrival time (the
// keyframe at or before the asked start) and its length beside the seconds asked.
function clipStartText(item, askedSeconds) {
  const parts = [];
  if (item.captured_at) {
    parts.push(`It starts at ${new Date(item.captured_at).toLocaleTimeString()}, on the keyframe at or before the asked start`);
  }
  if (typeof item.duration_s === "number") {
    parts.push(`${item.duration_s.toFixed(1)} s long for ${askedSeconds} s asked`);
  }
  const text = parts.length ? `${parts.join(", ")}.` : "";
  return item.note ? `${text} The server notes: ${item.note}.`.trim() : text;
}

// Adds the button to the tile's top overlay. The overlay ignores the pointer so that drops and
// double-clicks reach the tile; the button takes clicks for itself (see attach.css).
export function addAttachButton(tile) {
  const button = el("button", {
    type: "button", class: "attach-button", text: "Attach", title: "Attach to an open case",
  });
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    openPanel(tile, button);
  });
  button.addEventListener("dblclick", (event) => event.stopPropagation());
  requirePermission(button, "evidence.attach"); // hidden for roles that may not attach
  (tile.querySelector(".overlay.top") || tile).append(button);
  return button;
}
