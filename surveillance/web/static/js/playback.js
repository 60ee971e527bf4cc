// The playback page: recorded video of one camera, several, or a whole layout at one moment.
//
//   /playback?camera=ID&at=ISO           one camera
//   /playback?cameras=a,b,c&at=ISO       several, side by side
//   /playback?layout=NAME&at=ISO         a saved layout's tiles, as it is laid out
//
// One clock (PlaybackClock) drives every player, so all tiles show the same moment: it runs
// at the chosen speed, follows the leading picture's own time, and is held while any camera
// is still loading the footage it needs. A camera with nothing recorded at the clock's time
// says why and rejoins when its footage resumes. Watching recordings needs recordings.view;
// the API's refusal is shown as such, on a page that otherwise still works.

import { api, ApiError } from "./api.js";
import { el, isolated } from "./dom.js";
import {
  clockText, dayAround, DEFAULT_FRAME_S, frameMiddle, gotoText, hourAround, isoOf, parseGoto,
  parseIso, PlaybackClock, zoneText,
} from "./playback-time.js";
import { RecordedPlayer, State } from "./recorded-player.js";
import { Timeline } from "./timeline.js";

const TICK_MS = 100; // how often the players are brought in line with the clock
const FOOTAGE_REFRESH_MS = 30000; // a day that includes now gains footage as it is recorded
const SPEEDS = [1, 2, 4, 8];
const DEFAULT_BACK_S = 60; // no ?at=: a minute ago
const LIVE_EDGE_S = 3; // the clock never runs closer to now than this (not recorded yet)
const FORBIDDEN = 403;
const PICTURE_NEAR_S = 0.5; // a picture this close to the clock (x speed) is of its moment
const GOTO_FORMAT = "YYYY-MM-DD HH:MM:SS"; // the clock's own format (playback-time.js gotoText)

const $ = (id) => document.getElementById(id);

const page = {
  clock: null,
  tiles: [], // {camera, root, video, notice, player, state}
  timelines: new Map(), // camera id -> Timeline
  day: null, // [from, to) epoch s: the day the timelines cover
  zoomed: false,
  refused: null, // the API's words when the user may not watch recordings
};

function message(text) {
  $("message").textContent = text;
}

// ---- what to show --------------------------------------------------------------------------

// {cameras, grid, layout, at}: from the page's own URL. A grid is {cols, rows, tiles}.
async function wanted() {
  const query = new URLSearchParams(location.search);
  const asked = query.get("at");
  let at = asked === null ? null : parseIso(asked);
  if (asked !== null && at === null) message(`"at" must be a time with its zone (e.g. 2026-01-31T14:32:00Z); showing a minute ago.`);
  if (at === null) at = Date.now() / 1000 - DEFAULT_BACK_S;
  const layout = query.get("layout");
  if (layout) {
    const saved = await api.get(`/api/layouts/${encodeURIComponent(layout)}`);
    const tiles = saved.tiles.filter((tile) => tile.camera);
    return { cameras: [...new Set(tiles.map((tile) => tile.camera))], grid: saved, layout, title: saved.title, at };
  }
  const list = query.get("cameras") || query.get("camera") || "";
  const cameras = [...new Set(list.split(",").map((id) => id.trim()).filter(Boolean))];
  const cols = Math.ceil(Math.sqrt(cameras.length)) || 1;
  const rows = Math.ceil(cameras.length / cols) || 1;
  const tiles = cameras.map((camera, index) => ({ x: index % cols, y: Math.floor(index / cols), w: 1, h: 1, camera }));
  return { cameras, grid: { cols, rows, tiles }, layout: null, title: null, at };
}

function buildTile(tile, name) {
  const video = el("video", { muted: true, playsinline: true });
  video.muted = true;
  const notice = el("div", { class: "notice" });
  const picture = el("span", { class: "badge picture-time" });
  const root = el("div", { class: "tile", "data-camera": tile.camera || "" }, video,
    el("div", { class: "overlay top" }, el("span", { class: "tile-name", text: name || "" })),
    el("div", { class: "overlay bottom" }, picture), notice);
  root.style.gridColumn = `${tile.x + 1} / span ${tile.w || 1}`;
  root.style.gridRow = `${tile.y + 1} / span ${tile.h || 1}`;
  return { camera: tile.camera, root, video, notice, picture, player: null, state: null };
}

// ---- footage -------------------------------------------------------------------------------

function toEpoch(items) {
  return items.map((item) => ({
    ...item, start: parseIso(item.start), end: item.end === null ? null : parseIso(item.end),
  }));
}

function refuse(detail) {
  page.refused = detail;
  document.body.dataset.refused = "yes";
  message(`You may not watch recordings: ${detail}. Watching recordings needs the recordings.view permission (operators, case handlers and administrators have it).`);
  for (const tile of page.tiles) {
    tile.notice.textContent = "Recordings are not available to you";
    tile.root.dataset.state = State.ERROR;
  }
}

async function loadFootage(camera) {
  const [from, dayEnd] = page.day;
  const to = Math.min(dayEnd, Date.now() / 1000);
  if (to <= from) return;
  const query = new URLSearchParams({ from: isoOf(from), to: isoOf(to) });
  try {
    const answer = await api.get(`/api/cameras/${encodeURIComponent(camera)}/recordings?${query}`);
    const spans = toEpoch(answer.spans);
    const gaps = toEpoch(answer.gaps);
    for (const tile of page.tiles) if (tile.camera === camera && tile.player) tile.player.setFootage(spans, gaps);
    const timeline = page.timelines.get(camera);
    timeline.setFootage(spans, gaps, answer.recording ? answer.recording.state : null);
    renderTimelines();
  } catch (error) {
    if (error instanceof ApiError && error.status === FORBIDDEN) refuse(error.message);
    else message(`Recordings of ${isolated(camera)}: ${error.message}`);
  }
}

function loadAllFootage() {
  return Promise.all([...page.timelines.keys()].map(loadFootage));
}

// The timelines cover the day of the clock's time: another day, another load.
function followDay(at) {
  const day = dayAround(at);
  if (page.day && page.day[0] === day[0]) return;
  page.day = day;
  loadAllFootage();
}

function renderTimelines() {
  const at = page.clock.now();
  const [from, to] = page.zoomed ? hourAround(at) : page.day;
  for (const timeline of page.timelines.values()) {
    timeline.render(from, to, Date.now() / 1000);
    timeline.moveCursor(at);
  }
}

// ---- following the clock ---------------------------------------------------------------------

function tick() {
  const clock = page.clock;
  const nowS = Date.now() / 1000;
  if (clock.now() > nowS - LIVE_EDGE_S) {
    clock.set(nowS - LIVE_EDGE_S); // caught up with the present: go on at the recorder's pace
    if (clock.rate !== 1) setRate(1);
  }
  const at = clock.now();
  const players = page.tiles.filter((tile) => tile.player && !page.refused);
  for (const tile of players) tile.state = tile.player.state(at, clock.rate, nowS);
  const loading = players.some((tile) => tile.state === State.LOADING);
  clock.hold(loading);
  const playing = clock.playing && !loading;
  for (const tile of players) {
    if (tile.state === State.READY) tile.player.sync(at, clock.rate, playing);
    else tile.player.rest();
  }
  const lead = players.find((tile) => tile.state === State.READY);
  if (playing && lead && lead.player.wallNow !== null) clock.set(lead.player.wallNow);
  followDay(clock.now());
  showState(lead);
}

function noticeOf(tile) {
  if (tile.state === State.GAP) return `no recording: ${tile.player.reason}`;
  if (tile.state === State.ERROR) return tile.player.error;
  if (tile.state === State.LOADING) return "loading…";
  return "";
}

function showState(lead) {
  const clock = page.clock;
  // The picture's own time (a paused clock sits in the middle of the frame shown); the
  // clock's while no picture of about this moment is shown (a gap, loading).
  const picture = lead && lead.player.picture;
  const near = picture && Math.abs(picture.wall - clock.now()) < PICTURE_NEAR_S * clock.rate;
  const shown = near ? picture.wall : clock.now();
  $("clock").textContent = clockText(shown);
  // The zone the clock and the "Go to" field are in (it changes with daylight saving).
  const zone = zoneText(shown);
  if ($("zone").textContent !== zone) {
    $("zone").textContent = zone;
    $("goto").title = `Local time (${zone}), 24 h: ${GOTO_FORMAT}`;
  }
  $("clock").dataset.at = String(shown);
  $("clock").setAttribute("datetime", isoOf(shown));
  for (const tile of page.tiles) {
    if (!tile.player || page.refused) continue;
    const notice = noticeOf(tile);
    if (tile.notice.textContent !== notice) tile.notice.textContent = notice;
    tile.root.dataset.state = tile.state;
    const own = tile.player.picture;
    tile.picture.textContent = own && tile.state === State.READY ? clockText(own.wall).slice(11) : "";
  }
  for (const timeline of page.timelines.values()) timeline.moveCursor(clock.now());
}

// ---- controls ------------------------------------------------------------------------------

function seek(atS) {
  page.clock.set(Math.min(atS, Date.now() / 1000 - LIVE_EDGE_S));
  followDay(page.clock.now());
  renderTimelines();
  tick();
}

function setPlaying(playing) {
  page.clock.setPlaying(playing);
  $("play").textContent = playing ? "Pause" : "Play";
  $("play").setAttribute("aria-pressed", String(playing));
}

function setRate(rate) {
  page.clock.setRate(rate);
  for (const button of $("speeds").children) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.rate) === rate));
  }
}

// One frame on (direction 1) or back (-1), paused: the clock lands in the middle of the
// frame, so every tile shows the frame that covers that moment.
function step(direction) {
  setPlaying(false);
  const lead = page.tiles.find((tile) => tile.player && tile.state === State.READY);
  const frameS = lead ? lead.player.frameS : DEFAULT_FRAME_S;
  const now = page.clock.now();
  const picture = lead && lead.player.picture;
  const shown = picture ? frameMiddle(picture.wall, frameS) : now;
  const base = Math.abs(shown - now) < frameS ? shown : now;
  seek(base + direction * frameS);
}

function gotoInput() {
  const at = parseGoto($("goto").value);
  if (at !== null) seek(at);
  else message(`Type a date and time as ${GOTO_FORMAT}, local time (${zoneText(page.clock.now())}), 24 h.`);
}

function wireControls(shown) {
  for (const rate of SPEEDS) {
    $("speeds").append(el("button", {
      type: "button", text: `${rate}x`, "data-rate": rate, "aria-pressed": String(rate === 1),
      onclick: () => setRate(rate),
    }));
  }
  $("play").addEventListener("click", () => setPlaying(!page.clock.playing));
  $("step-back").addEventListener("click", () => step(-1));
  $("step-forward").addEventListener("click", () => step(1));
  $("goto-button").addEventListener("click", gotoInput);
  $("goto").addEventListener("keydown", (event) => { if (event.key === "Enter") gotoInput(); });
  $("goto").value = gotoText(shown.at);
  $("zoom").addEventListener("click", () => {
    page.zoomed = !page.zoomed;
    $("zoom").textContent = page.zoomed ? "Whole day" : "Zoom to the hour";
    $("zoom").setAttribute("aria-pressed", String(page.zoomed));
    renderTimelines();
  });
  if (shown.layout) $("live").href = `/wall/${encodeURIComponent(shown.layout)}`;
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement) return;
    if (event.key === " ") { event.preventDefault(); setPlaying(!page.clock.playing); }
    else if (event.key === "ArrowRight") step(1);
    else if (event.key === "ArrowLeft") step(-1);
  });
}

// ---- start ---------------------------------------------------------------------------------

async function main() {
  const shown = await wanted();
  if (!shown.cameras.length) {
    message("No camera to play: open this page as /playback?camera=ID, ?cameras=a,b or ?layout=NAME, with &at=TIME.");
    return;
  }
  const names = new Map((await api.get("/api/cameras")).map((camera) => [camera.id, camera.name]));
  document.title = `${shown.title || shown.cameras.map((id) => names.get(id) || id).join(", ")} · Playback`;
  page.clock = new PlaybackClock(shown.at);
  const grid = $("tiles");
  grid.style.gridTemplateColumns = `repeat(${shown.grid.cols}, 1fr)`;
  grid.style.gridTemplateRows = `repeat(${shown.grid.rows}, 1fr)`;
  for (const spec of shown.grid.tiles) {
    const tile = buildTile(spec, spec.camera ? names.get(spec.camera) || spec.camera : "");
    if (spec.camera) {
      tile.player = new RecordedPlayer(tile.video, spec.camera, { onFootage: tick });
      if (!names.has(spec.camera)) tile.notice.textContent = "Camera not in the catalog";
    }
    page.tiles.push(tile);
    grid.append(tile.root);
  }
  for (const camera of shown.cameras) {
    const timeline = new Timeline(camera, names.get(camera) || camera, { onSeek: seek });
    page.timelines.set(camera, timeline);
    $("timelines").append(timeline.root);
  }
  wireControls(shown);
  page.day = dayAround(shown.at);
  await loadAllFootage();
  page.clock.set(shown.at); // from the moment asked, however long the footage took to list
  setInterval(tick, TICK_MS);
  setInterval(() => {
    if (page.day[1] > Date.now() / 1000 - FOOTAGE_REFRESH_MS / 1000 && !page.refused) loadAllFootage();
  }, FOOTAGE_REFRESH_MS);
  document.body.dataset.ready = "yes"; // for tests: tiles, timelines and footage are in place
  tick();
}

// For tests, benchmarks and anything steering the page: what each tile shows, and seeking.
window.playback = {
  status() {
    const clock = page.clock;
    return {
      at: clock ? clock.now() : null,
      playing: clock ? clock.playing : null,
      rate: clock ? clock.rate : null,
      refused: page.refused,
      tiles: page.tiles.map((tile) => ({
        camera: tile.camera,
        state: tile.state,
        notice: tile.notice.textContent,
        picture: tile.player && tile.player.picture ? tile.player.picture.wall : null,
        presented: tile.player ? tile.player.frames.presented : 0,
        frameS: tile.player ? tile.player.frameS : null,
        codec: tile.player ? tile.player.codec : null,
      })),
    };
  },
  seek: (iso) => seek(parseIso(iso)),
  setPlaying,
  setRate,
  step,
};

main().catch((error) => {
  if (error instanceof ApiError && error.status === FORBIDDEN) refuse(error.message);
  else message(`Playback failed to start: ${error.message}`);
});
