// The wall's ways into playback: "Playback" on a tile (that camera) and in the toolbar (all
// the cameras on the wall, at one moment). Self-contained like attach.js:
// the link reads what to play at click time. It opens a new tab, so the wall runs on; the
// playback page starts a minute ago and can go to any other time from there.

import { el } from "./dom.js";
import { requirePermission } from "./session.js";

const BACK_S = 60; // "what just happened": a minute before the click

// /playback for a camera, several (ids), or a saved layout, at `atS` (epoch s).
export function playbackUrl({ camera = null, cameras = [], layout = null }, atS = Date.now() / 1000 - BACK_S) {
  const query = new URLSearchParams();
  if (layout) query.set("layout", layout);
  else if (camera) query.set("camera", camera);
  else query.set("cameras", cameras.join(","));
  query.set("at", new Date(Math.round(atS * 1000)).toISOString());
  return `/playback?${query}`;
}

function open(url) {
  window.open(url, "_blank", "noopener");
}

// On a tile: plays the camera the tile shows (its data-camera) from a minute ago.
export function addPlaybackLink(tile) {
  const button = el("button", {
    type: "button", class: "playback-link", text: "Playback", title: "Watch this camera's recording from a minute ago",
  });
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    if (tile.dataset.camera) open(playbackUrl({ camera: tile.dataset.camera }));
  });
  button.addEventListener("dblclick", (event) => event.stopPropagation());
  requirePermission(button, "recordings.view"); // hidden for roles that may not watch
  (tile.querySelector(".overlay.top") || tile).append(button);
  return button;
}

// The toolbar's button: every camera on the wall, in step; cameras() answers their ids at
// click time.
export function wirePlaybackButton(button, cameras) {
  button.addEventListener("click", () => {
    const ids = [...new Set(cameras())];
    if (ids.length) open(playbackUrl({ cameras: ids }));
  });
}
