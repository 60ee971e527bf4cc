// Wall mode: the wall page as an LED wall shows it, for a room that reads it from metres away
// and a screen nobody touches. No controls, no camera list, no drop hints (css/wall-mode.css
// hides them under body.wall-mode); tile names and states sized to the tile; and a thin status
// line with the time, the cameras online out of those expected, and the count of cameras down.
//
// The wall page calls, in this order:
//   wallModeWanted(display)   from the URL's ?mode= (wall or desk), else the saved layout's
//                             display setting ("wall" or "desk");
//   enterWallMode()           once, when it is wanted;
//   updateStatusLine(cameras) with every /api/cameras answer (does nothing at the desk).
//   askDisplay(current)       when saving a layout: how it should open from now on.

const CLOCK_TICK_MS = 1000;
const DISPLAYS = ["desk", "wall"];

const $ = (id) => document.getElementById(id);

// ?mode= in any case; empty or absent leaves it to the layout (api/pages.py refuses others).
export function wallModeWanted(display) {
  const mode = (new URLSearchParams(location.search).get("mode") || "").trim().toLowerCase();
  if (DISPLAYS.includes(mode)) return mode === "wall"; // the URL wins over the saved setting
  return display === "wall";
}

function isWallMode() {
  return document.body.classList.contains("wall-mode");
}

function tickClock() {
  $("status-time").textContent = new Date().toLocaleString();
}

export function enterWallMode() {
  if (isWallMode()) return;
  document.body.classList.add("wall-mode");
  $("status-line").hidden = false;
  tickClock();
  setInterval(tickClock, CLOCK_TICK_MS);
}

// How bad a state is, for the worse of a camera's two streams: down, then connecting.
const SEVERITY = { offline: 3, stalled: 3, connecting: 2, online: 1, idle: 0 };

// The state the status line counts a camera in: the worse of its main stream's and its
// sub-stream's. The line counts cameras, not tiles, and the wall shows a camera on either
// stream (grid tiles play the sub-stream, full screen the main one): a camera is online
// only when whichever the wall shows of it is live, so a stalled sub-stream under an online
// main stream, a not-live tile, counts as down. Disabled and idle (on-demand, on purpose)
// follow the main stream, the camera's own setting.
export function wallState(camera) {
  const main = camera.state;
  const sub = camera.has_sub_stream && camera.sub_health ? camera.sub_health.state : null;
  if (main === "disabled" || main === "idle" || !sub) return main;
  return (SEVERITY[sub] ?? 0) > (SEVERITY[main] ?? 0) ? sub : main;
}

// The counts the status line shows. "Expected" leaves out what is off on purpose (disabled,
// and on-demand cameras idle until someone asks), as the platform rollup in /api/platforms
// counts its online ratio; "down" is what should deliver and does not.
function cameraCounts(cameras) {
  const counts = { online: 0, expected: 0, down: 0, connecting: 0 };
  for (const camera of cameras) {
    const state = wallState(camera);
    if (state === "disabled" || state === "idle") continue;
    counts.expected += 1;
    if (state === "online") counts.online += 1;
    else if (state === "offline" || state === "stalled") counts.down += 1;
    else if (state === "connecting") counts.connecting += 1;
  }
  return counts;
}

export function updateStatusLine(cameras) {
  if (!isWallMode()) return;
  const counts = cameraCounts(cameras);
  const line = $("status-line");
  $("status-online").textContent = `${counts.online}/${counts.expected} online`;
  $("status-down").textContent = `${counts.down} down`;
  $("status-connecting").textContent = counts.connecting ? `${counts.connecting} connecting` : "";
  line.classList.toggle("has-down", counts.down > 0);
  line.dataset.online = String(counts.online);
  line.dataset.expected = String(counts.expected);
  line.dataset.down = String(counts.down);
}

// A prompt, like the rest of the save dialogue: OK with the field unchanged keeps the setting,
// Cancel keeps it too; anything but "wall" or "desk" asks again.
export function askDisplay(current) {
  const now = DISPLAYS.includes(current) ? current : "desk";
  for (;;) {
    const answer = prompt(
      "Open this layout as: desk (the operator's controls) or wall (tiles and a status line only, for an LED wall)",
      now);
    if (answer === null) return now;
    const display = answer.trim().toLowerCase();
    if (DISPLAYS.includes(display)) return display;
  }
}
