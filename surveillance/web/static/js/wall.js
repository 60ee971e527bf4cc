// The wall page: a grid of live tiles, a filterable camera list, named layouts and tours.

import { AlarmPanel } from "./alarm-panel.js";
import { AlarmSound } from "./alarm-sound.js";
import { Alarms } from "./alarms.js";
import { api } from "./api.js";
import { clear, el } from "./dom.js";
import { EventFeed } from "./event-feed.js";
import { HealthFeed } from "./health-feed.js";
import { wirePlaybackButton } from "./playback-links.js";
import { browserCaps } from "./player.js";
import { PtzLeaseWatch } from "./ptz-leases.js";
import { PtzPad } from "./ptz-pad.js";
import { whenSignedIn } from "./session.js";
import { TileView } from "./tiles.js";
import { clockOffsetMs, TourPlayer } from "./tour.js";
import { askDisplay, enterWallMode, updateStatusLine, wallModeWanted } from "./wall-mode.js";
import { openReferenceDialog, openZoneEditor } from "./zone-editor.js";

const DEFAULT_DWELL_S = 15;
const PRESET_ORDER = ["1", "2x2", "3x3", "4x4", "5x5", "6x6", "1+5", "1+7", "1+12"];

const $ = (id) => document.getElementById(id);

const state = {
  caps: browserCaps(),
  cameras: new Map(), // id -> camera (with health)
  platforms: new Map(), // id -> platform
  tags: new Map(),
  presets: {},
  layoutName: null,
  layoutDisplay: null, // "desk" or "wall": how the loaded layout opens, kept when it is saved
  alarmTile: null, // the loaded layout's alarm tile (index), null for its last; kept when saved
  grid: null, // {cols, rows, tiles: [{x, y, w, h, camera}]}
  tiles: [], // per tile index: a TileView
  fullscreen: null, // tile index shown full-screen
  tour: null, // a TourPlayer, made in main()
  // While an alarm holds the wall: {returnTo: the grid it showed, resumeTour: whether the
  // alarm paused a running tour, index: the alarm tile, camera: the camera pinned on it}.
  alarm: null,
  badges: new Map(), // camera id -> badge texts of its open events (alarms.js)
  alarmsView: null, // {alarms, sound}, made in main()
  me: null, // the signed-in user (/api/auth/me), for the PTZ pads
  ptz: new PtzLeaseWatch(showLeases), // who steers the PTZ cameras on the wall
};

function message(text) {
  $("message").textContent = text;
}

// ---- camera list and filters -------------------------------------------------------------

function selectedTags() {
  return [...document.querySelectorAll("#filter-tags .chip.on")].map((chip) => chip.dataset.tag);
}

function filteredCameras() {
  const text = $("filter-text").value.trim().toLowerCase();
  const platform = $("filter-platform").value;
  const health = $("filter-state").value;
  const tags = selectedTags();
  const mode = document.querySelector("input[name=tag-mode]:checked").value;
  return [...state.cameras.values()].filter((camera) => {
    if (platform && camera.platform !== platform) return false;
    if (health && camera.state !== health) return false;
    if (text && !camera.name.toLowerCase().includes(text) && !camera.id.includes(text)) return false;
    if (tags.length) {
      const has = (tag) => camera.tags.includes(tag);
      if (mode === "all" ? !tags.every(has) : !tags.some(has)) return false;
    }
    return true;
  });
}

function tagChip(tagId) {
  const tag = state.tags.get(tagId);
  const chip = el("span", { class: "chip", text: tag ? tag.name : tagId });
  if (tag) chip.style.setProperty("--chip", tag.color);
  return chip;
}

function renderCameraList() {
  const list = $("camera-list");
  clear(list);
  for (const camera of filteredCameras()) {
    const item = el("li", {
      class: `camera state-${camera.state}`,
      draggable: "true",
      "data-camera": camera.id,
      title: "Drag onto a tile, or click to fill the next free tile",
      ondragstart: (event) => event.dataTransfer.setData("text/camera", camera.id),
      onclick: () => putOnNextFreeTile(camera.id),
    },
    el("span", { class: "dot" }),
    el("span", { class: "name", text: camera.name }),
    el("span", { class: "chips" }, ...camera.tags.map(tagChip)));
    list.append(item);
  }
}

function renderFilters(platforms) {
  const select = $("filter-platform");
  for (const platform of platforms) select.append(el("option", { value: platform.id, text: platform.name }));
  const chips = $("filter-tags");
  for (const tag of state.tags.values()) {
    const chip = tagChip(tag.id);
    chip.dataset.tag = tag.id;
    chip.setAttribute("role", "button");
    chip.addEventListener("click", () => { chip.classList.toggle("on"); renderCameraList(); });
    chips.append(chip);
  }
  for (const id of ["filter-text", "filter-platform", "filter-state"]) {
    $(id).addEventListener("input", renderCameraList);
  }
  for (const radio of document.querySelectorAll("input[name=tag-mode]")) {
    radio.addEventListener("change", renderCameraList);
  }
}

// ---- tiles ---------------------------------------------------------------------------------

function streamFor(camera, fullscreen) {
  return camera.has_sub_stream && !fullscreen ? "sub" : "main";
}

function renderWall() {
  const wall = $("wall");
  for (const view of state.tiles) view.close();
  clear(wall);
  state.fullscreen = null;
  wall.classList.remove("has-fullscreen");
  wall.style.gridTemplateColumns = `repeat(${state.grid.cols}, 1fr)`;
  wall.style.gridTemplateRows = `repeat(${state.grid.rows}, 1fr)`;
  state.tiles = state.grid.tiles.map((tile, index) => {
    const view = new TileView(tile, index, state.caps, {
      onDrop: (camera) => assignCamera(index, camera),
      onOpen: () => toggleFullscreen(index),
      menu: tileMenu(index),
      onPtz: () => openPtz(index),
    });
    wall.append(view.root);
    return view;
  });
  state.grid.tiles.forEach((tile, index) => updateTile(index));
}

function updateTile(index) {
  const view = state.tiles[index];
  const cameraId = state.grid.tiles[index].camera;
  const camera = cameraId ? state.cameras.get(cameraId) : null;
  view.root.classList.toggle("alarm-pinned", !!state.alarm && state.alarm.index === index);
  view.root.classList.toggle("alarm-tile", alarmTileIndex() === index);
  view.setEventBadges((cameraId && state.badges.get(cameraId)) || []);
  if (!cameraId) view.showEmpty();
  else if (!camera) view.showMissing(cameraId);
  else {
    // One picture on its own (full screen, or a one-tile layout) gets the lowest latency;
    // a tile among many the cheapest path per viewer.
    const single = state.fullscreen === index || state.grid.tiles.length === 1;
    const stream = streamFor(camera, state.fullscreen === index);
    view.show(camera, stream, camera.tags.map(tagChip), single ? "single" : "grid");
  }
  view.setSteeredBy(steeredBy(cameraId));
  state.ptz.want(state.grid.tiles.some((tile) => isPtz(tile.camera)));
}

function assignCamera(index, cameraId) {
  // During an alarm, the operator's change stays when the wall goes back (but for the alarm
  // tile's, which the alarm holds).
  if (state.alarm && index !== state.alarm.index) state.alarm.returnTo.tiles[index].camera = cameraId;
  state.grid.tiles[index].camera = cameraId;
  updateTile(index);
}

function putOnNextFreeTile(cameraId) {
  const free = state.grid.tiles.findIndex((tile) => !tile.camera);
  if (free === -1) {
    message("No free tile: drag the camera onto a tile to replace it.");
    return;
  }
  assignCamera(free, cameraId);
}

function toggleFullscreen(index) {
  const wall = $("wall");
  const previous = state.fullscreen;
  if (previous !== null) state.tiles[previous].root.classList.remove("fullscreen");
  state.fullscreen = previous === index ? null : index;
  wall.classList.toggle("has-fullscreen", state.fullscreen !== null);
  if (state.fullscreen !== null) {
    state.tiles[index].root.classList.add("fullscreen");
    history.pushState({ fullscreen: index }, "");
  }
  if (previous !== null) updateTile(previous); // back to the sub-stream
  if (state.fullscreen !== null) updateTile(state.fullscreen); // up to the main stream
}

// A page being closed or reloaded lets go of its live viewers at once (tiles' players tell
// the server, see LivePlayer.close): the next page, often this one reloaded, may need the
// same transcode slots. pagehide, not beforeunload: it also fires on mobile and for pages
// going into the back/forward cache.
window.addEventListener("pagehide", () => {
  for (const view of state.tiles) view.stopPlayer();
});

window.addEventListener("pageshow", (event) => {
  if (event.persisted) state.tiles.forEach((view, index) => updateTile(index)); // back from the cache
});

window.addEventListener("popstate", () => {
  if (state.fullscreen !== null) toggleFullscreen(state.fullscreen);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.fullscreen !== null) toggleFullscreen(state.fullscreen);
});

// ---- PTZ (ptz-pad.js steers, ptz-leases.js says who does) ------------------------------------

function isPtz(cameraId) {
  const camera = cameraId ? state.cameras.get(cameraId) : null;
  return !!(camera && camera.ptz);
}

// Who steers the camera, when it is someone else than this page's user.
function steeredBy(cameraId) {
  const lease = cameraId ? state.ptz.leases.get(cameraId) : null;
  return lease && (!state.me || lease.holder !== state.me.name) ? lease.holder : null;
}

function showLeases(leases) {
  state.tiles.forEach((view, index) => {
    const cameraId = state.grid.tiles[index].camera;
    view.setSteeredBy(steeredBy(cameraId));
    const pad = view.panel;
    if (pad && !pad.closed && pad.camera === cameraId) pad.showLease(leases.get(cameraId) || null);
  });
}

// The tile's PTZ pad: opened over it, or closed if it is open.
function openPtz(index) {
  const view = state.tiles[index];
  const cameraId = state.grid.tiles[index].camera;
  if (view.panel && !view.panel.closed) {
    view.setPanel(null);
    return;
  }
  if (!isPtz(cameraId) || !state.me) return;
  view.setPanel(new PtzPad(view.root, { id: cameraId, name: cameraName(cameraId) }, state.me, state.ptz));
}

// ---- layouts -------------------------------------------------------------------------------

function useGrid(grid, keepCameras = true) {
  const cameras = keepCameras && state.grid
    ? state.grid.tiles.map((tile) => tile.camera).filter(Boolean) : [];
  const tiles = grid.tiles.map((tile, index) => ({ ...tile, camera: tile.camera || cameras[index] || null }));
  state.grid = { cols: grid.cols, rows: grid.rows, tiles };
  if (state.alarm) {
    // Another grid while an alarm holds the wall: the wall goes back to this one after it,
    // and the alarm camera keeps its tile in it.
    state.alarm.returnTo = copyGrid(state.grid);
    state.alarm.index = alarmTileIndex();
    state.grid.tiles[state.alarm.index].camera = state.alarm.camera;
  }
  renderWall();
}

async function loadLayout(name) {
  try {
    const layout = await api.get(`/api/layouts/${encodeURIComponent(name)}`);
    state.layoutName = layout.name;
    state.layoutDisplay = layout.display;
    state.alarmTile = layout.alarm_tile ?? null;
    useGrid(layout, false);
    document.title = `${layout.title} · Wall`;
  } catch (error) {
    message(`Layout ${name}: ${error.message}`);
    useGrid(state.presets["2x2"], false);
  }
}

async function saveLayout() {
  const name = prompt("Layout name (lower-case letters, digits, - . _)", state.layoutName || "");
  if (!name) return;
  const title = prompt("Title shown on the wall", name) || name;
  const display = askDisplay(state.layoutDisplay);
  // The tiles as the layout shows them: not the camera an alarm pinned for the moment.
  const grid = state.alarm ? state.alarm.returnTo : state.grid;
  const alarmTile = state.alarmTile !== null && state.alarmTile < grid.tiles.length ? state.alarmTile : null;
  const body = {
    name, title, display, cols: grid.cols, rows: grid.rows, tiles: grid.tiles, alarm_tile: alarmTile,
  };
  try {
    await api.put(`/api/layouts/${encodeURIComponent(name)}`, body);
    state.layoutName = name;
    state.layoutDisplay = display;
    history.replaceState(null, "", `/wall/${encodeURIComponent(name)}`);
    await refreshLayoutList();
    message(`Saved layout ${name}. Open /wall/${name} on a wall screen to show it.`);
  } catch (error) {
    message(`Could not save: ${error.message}`);
  }
}

async function refreshLayoutList() {
  const select = $("layout-select");
  clear(select);
  select.append(el("option", { value: "", text: "(unsaved)" }));
  for (const layout of await api.get("/api/layouts")) {
    select.append(el("option", { value: layout.name, text: layout.title, selected: layout.name === state.layoutName }));
  }
}

// ---- tours ---------------------------------------------------------------------------------

function showTourStatus(text, index) {
  $("tour-status").textContent = text;
  if (index === null) delete $("tour-status").dataset.page;
  else $("tour-status").dataset.page = String(index);
  $("tour-pause").disabled = index === null;
  $("tour-next").disabled = index === null;
  $("tour-pause").textContent = state.tour.paused ? "Resume" : "Pause";
}

function stopTour() {
  state.tour.stop();
}

// pages: [{grid, dwell_s}]; epochMs and offsetMs: see TourPlayer.start.
function startTour(title, pages, epochMs = Date.now(), offsetMs = 0) {
  if (!pages.length) {
    stopTour();
    message("The tour has no pages.");
    return;
  }
  state.tour.start({ title, pages, epochMs, offsetMs });
}

async function startNamedTour(name) {
  if (!name) {
    stopTour();
    return;
  }
  const sentAt = Date.now();
  const schedule = await api.get(`/api/tours/${encodeURIComponent(name)}/schedule`);
  const offsetMs = clockOffsetMs(schedule.server_time, sentAt, Date.now());
  startTour(schedule.title, schedule.pages, Date.parse(schedule.epoch), offsetMs);
}

function groupToWall() {
  const cameras = filteredCameras().map((camera) => camera.id);
  const perPage = state.grid.tiles.length;
  if (cameras.length <= perPage) {
    stopTour();
    state.grid.tiles.forEach((tile, index) => { tile.camera = cameras[index] || null; });
    renderWall();
    return;
  }
  // More cameras than tiles: page through them with the current grid.
  const pages = [];
  for (let i = 0; i < cameras.length; i += perPage) {
    const grid = {
      cols: state.grid.cols, rows: state.grid.rows,
      tiles: state.grid.tiles.map((tile, index) => ({ ...tile, camera: cameras[i + index] || null })),
    };
    pages.push({ grid, dwell_s: DEFAULT_DWELL_S });
  }
  startTour("Group", pages); // this screen's own: it starts now, on its own clock
}

// ---- alarms (alarms.js decides, this carries out) --------------------------------------------

// The tile an alarm takes: the layout's alarm tile (its last by default); with no layout
// loaded (a preset, a group, a tour's page), the first.
function alarmTileIndex() {
  if (!state.grid) return null;
  const count = state.grid.tiles.length;
  if (!state.layoutName) return 0;
  const wanted = state.alarmTile ?? count - 1;
  return Math.min(Math.max(0, wanted), count - 1);
}

function copyGrid(grid) {
  return { cols: grid.cols, rows: grid.rows, tiles: grid.tiles.map((tile) => ({ ...tile })) };
}

// The first alarm remembers what the wall showed and pauses a running tour; every alarm
// puts its camera on the alarm tile and flashes it from the start.
function pinAlarm(cameraId) {
  if (!state.grid || !state.grid.tiles.length) return; // a layout without tiles has no room
  if (!state.alarm) {
    state.alarm = { returnTo: copyGrid(state.grid), resumeTour: state.tour.pause(), index: null, camera: null };
  }
  if (state.fullscreen !== null) toggleFullscreen(state.fullscreen);
  const index = alarmTileIndex();
  const previous = state.alarm.index;
  state.alarm.index = index;
  state.alarm.camera = cameraId;
  if (previous !== null && previous !== index) {
    state.grid.tiles[previous].camera = state.alarm.returnTo.tiles[previous].camera;
    updateTile(previous);
  }
  state.grid.tiles[index].camera = cameraId;
  const root = state.tiles[index].root;
  root.classList.remove("alarm-pinned");
  void root.offsetWidth; // restarts the flash's animation for a new alarm
  updateTile(index);
}

// No alarm left to acknowledge: back to what the wall showed, and on with the tour.
function unpinAlarm() {
  const alarm = state.alarm;
  if (!alarm) return;
  state.alarm = null;
  state.grid = alarm.returnTo;
  renderWall();
  if (alarm.resumeTour) state.tour.resume();
}

function showBadges(badges) {
  const before = state.badges;
  state.badges = badges;
  state.grid.tiles.forEach((tile, index) => {
    if (!tile.camera) return;
    const was = (before.get(tile.camera) || []).join();
    if (was !== (badges.get(tile.camera) || []).join()) updateTile(index);
  });
}

function cameraName(id) {
  const camera = state.cameras.get(id);
  return camera ? camera.name : id;
}

function platformName(id) {
  const platform = state.platforms.get(id);
  return platform ? platform.name : id;
}

function startAlarms() {
  const sound = new AlarmSound($("alarm-mute"), $("alarm-sound-note"));
  let alarms = null;
  const panel = new AlarmPanel({
    root: $("alarm-panel"),
    list: $("alarm-list"),
    count: $("alarm-count"),
    status: $("alarm-status"),
    cameraName,
    platformName,
    onAnswer: (event) => alarms.update(event),
  });
  alarms = new Alarms({ wall: { pin: pinAlarm, unpin: unpinAlarm, badges: showBadges }, panel, sound });
  const feed = new EventFeed({
    onEvents: (events) => alarms.replaceAll(events),
    onEvent: (event) => alarms.update(event),
    onMode: (mode) => { document.body.dataset.events = mode; },
  });
  feed.start();
  return { alarms, sound };
}

// The tile menu's items (tile-menu.js): each reads the tile's camera when chosen.
function tileMenu(index) {
  return [
    { label: "Zones…", permissions: ["zones.edit", "snapshot.take"], needsCamera: true,
      onSelect: (camera) => openZoneEditor(camera, cameraName(camera)) },
    { label: "Set reference picture", permissions: ["snapshot.take", "events.ack"], needsCamera: true,
      onSelect: (camera) => openReferenceDialog(camera, cameraName(camera)) },
    { label: "PTZ…", permissions: ["ptz.control"], needsCamera: true, offered: isPtz,
      onSelect: () => openPtz(index) },
    { label: "Use as the alarm tile", permissions: ["wall.edit"], needsCamera: false,
      onSelect: () => {
        state.alarmTile = index;
        state.tiles.forEach((_, i) => updateTile(i));
        message("Alarms will take this tile; save the layout to keep it.");
      } },
  ];
}

// ---- health ----------------------------------------------------------------------------------

function camerasChanged(cameras) {
  state.cameras = new Map(cameras.map((camera) => [camera.id, camera]));
  updateStatusLine(cameras);
  renderCameraList();
  state.tiles.forEach((view, index) => updateTile(index));
}

function cameraChanged(camera) {
  state.cameras.set(camera.id, camera);
  updateStatusLine([...state.cameras.values()]);
  renderCameraList();
  state.grid.tiles.forEach((tile, index) => { if (tile.camera === camera.id) updateTile(index); });
}

function tickClock() {
  $("clock").textContent = new Date().toLocaleString();
  setTimeout(tickClock, 1000);
}

// ---- start ---------------------------------------------------------------------------------

async function main() {
  // The cameras on the wall at the click (a tour or an edit may have changed the layout's).
  state.me = await whenSignedIn().catch(() => null);
  wirePlaybackButton($("playback-wall"),
    () => (state.grid ? state.grid.tiles : []).map((tile) => tile.camera).filter(Boolean));
  const [tags, platforms, presets] = await Promise.all([
    api.get("/api/tags"), api.get("/api/platforms"), api.get("/api/layouts/presets"),
  ]);
  state.tags = new Map(tags.map((tag) => [tag.id, tag]));
  state.platforms = new Map(platforms.map((platform) => [platform.id, platform]));
  state.presets = presets;
  state.tour = new TourPlayer({ showPage: (grid) => useGrid(grid, false), showStatus: showTourStatus });
  const health = new HealthFeed({
    onCameras: camerasChanged,
    onCamera: cameraChanged,
    onError: (error) => message(`Health update failed: ${error.message}`),
    onMode: (mode) => { document.body.dataset.health = mode; },
  });
  const cameras = await health.load();
  state.cameras = new Map(cameras.map((camera) => [camera.id, camera]));
  renderFilters(platforms);
  renderCameraList();
  const buttons = $("preset-buttons");
  for (const name of PRESET_ORDER) {
    buttons.append(el("button", { type: "button", text: name, "data-preset": name, onclick: () => { stopTour(); useGrid(presets[name]); } }));
  }
  const match = location.pathname.match(/^\/wall\/([^/]+)$/);
  if (match) await loadLayout(decodeURIComponent(match[1]));
  else useGrid(presets["2x2"], false);
  if (wallModeWanted(state.layoutDisplay)) {
    enterWallMode();
    updateStatusLine(cameras);
  }
  await refreshLayoutList();
  const tourSelect = $("tour-select");
  for (const tour of await api.get("/api/tours")) tourSelect.append(el("option", { value: tour.name, text: tour.title }));
  tourSelect.addEventListener("change", () => startNamedTour(tourSelect.value));
  // ?tour=NAME: a screen nobody touches runs a tour from its URL, in step with every other
  // screen showing it (at the desk, as if picked in the selector).
  const tourName = new URLSearchParams(location.search).get("tour");
  if (tourName) {
    tourSelect.value = tourName;
    await startNamedTour(tourName).catch((error) => message(`Tour ${tourName}: ${error.message}`));
  }
  $("layout-select").addEventListener("change", (event) => {
    const name = event.target.value;
    if (!name) return;
    stopTour();
    history.replaceState(null, "", `/wall/${encodeURIComponent(name)}`);
    loadLayout(name);
  });
  $("save-layout").addEventListener("click", saveLayout);
  $("tour-pause").addEventListener("click", () => state.tour.togglePause());
  $("tour-next").addEventListener("click", () => state.tour.next());
  $("group-to-wall").addEventListener("click", groupToWall);
  $("toggle-list").addEventListener("click", () => document.body.classList.toggle("list-hidden"));
  tickClock();
  health.start();
  state.alarmsView = startAlarms();
}

// For tests and wall controllers: what each tile shows and how its video is doing.
window.wall = {
  async tiles() {
    return Promise.all(state.tiles.map(async (view, index) => ({
      index,
      camera: state.grid.tiles[index].camera,
      state: view.root.dataset.state,
      stream: view.stream,
      stats: await view.stats(),
    })));
  },
  startTour,
  // What the alarms hold on this screen: listed and waiting event ids, the pinned camera,
  // the alarm tile, the beeps asked for.
  alarms() {
    const view = state.alarmsView;
    return view ? { ...view.alarms.summary(), tile: state.alarm ? state.alarm.index : null,
      beeps: view.sound.beeps } : null;
  },
};

main().catch((error) => message(`Wall failed to start: ${error.message}`));
