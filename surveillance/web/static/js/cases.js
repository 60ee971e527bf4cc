// The case list: open cases first, filters, pagination, and the form to report a new case.

import { api } from "./api.js";
import { clear, el } from "./dom.js";
import { caseUrl, errorText, stateLabel, timeText } from "./case-format.js";

const PAGE_SIZE = 25;
const FILTER_DELAY_MS = 250; // typing in a text filter waits this long before asking

const $ = (id) => document.getElementById(id);

const state = {
  tags: new Map(), // id -> tag
  cameras: new Map(), // id -> camera
  offset: 0,
  total: 0,
  generation: 0, // drops answers to filters that have since changed
};

function message(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

// ---- querying ------------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  const fields = { tag: "filter-tag", camera: "filter-camera", assignee: "filter-assignee", q: "filter-text" };
  for (const [name, id] of Object.entries(fields)) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function fetchPage(params, open, offset, limit) {
  const query = new URLSearchParams(params);
  query.set("open", open ? "true" : "false");
  query.set("offset", String(offset));
  query.set("limit", String(limit));
  return api.get(`/api/cases?${query}`);
}

// One page of the list. "Any" shows every open case before any closed or archived one: the
// page is cut from the open list, then continued from the finished list, so paging through
// the whole list meets each case once.
async function fetchCases(offset) {
  const params = filterParams();
  const which = $("filter-state").value;
  if (which === "open" || which === "finished") {
    const page = await fetchPage(params, which === "open", offset, PAGE_SIZE);
    return { total: page.total, cases: page.cases };
  }
  const open = await fetchPage(params, true, offset, PAGE_SIZE);
  const cases = [...open.cases];
  const finishedOffset = Math.max(0, offset - open.total);
  const room = PAGE_SIZE - cases.length;
  // Ask even when the page is full of open cases: the total is needed for the pager.
  const finished = await fetchPage(params, false, finishedOffset, Math.max(1, room));
  if (room > 0) cases.push(...finished.cases);
  return { total: open.total + finished.total, cases };
}

async function refresh() {
  const generation = ++state.generation;
  try {
    const page = await fetchCases(state.offset);
    if (generation !== state.generation) return;
    if (!page.cases.length && state.offset > 0 && page.total > 0) {
      // The list shrank under the current page (a filter, a closed case): go to the last page.
      state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      await refresh();
      return;
    }
    state.total = page.total;
    renderRows(page.cases);
    renderPager(page.cases.length);
  } catch (error) {
    if (generation === state.generation) message(`Could not load cases: ${errorText(error)}`, true);
  }
}

// ---- rendering -----------------------------------------------------------------------------

function tagChip(tagId) {
  const tag = state.tags.get(tagId);
  const chip = el("span", { class: "chip", text: tag ? tag.name : tagId });
  if (tag) chip.style.setProperty("--chip", tag.color);
  return chip;
}

function cameraName(id) {
  const camera = state.cameras.get(id);
  return camera ? camera.name : id;
}

function renderRows(cases) {
  const rows = $("case-rows");
  clear(rows);
  if (!cases.length) {
    rows.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No cases match." })));
    return;
  }
  for (const item of cases) {
    const link = (text) => el("a", { href: caseUrl(item.number), text });
    rows.append(el("tr", { class: item.open ? "open" : "finished", "data-number": item.number, "data-state": item.state },
      el("td", { class: "number" }, link(item.number)),
      el("td", { class: "title" }, link(item.title)),
      el("td", {}, el("span", { class: `state state-${item.state}`, text: stateLabel(item.state) })),
      el("td", { text: item.assignee || "—" }),
      el("td", {}, el("span", { class: "chips" }, ...item.tags.map(tagChip))),
      el("td", { text: item.cameras.map(cameraName).join(", ") }),
      el("td", { text: item.place || "" }),
      el("td", { text: timeText(item.created_at) }),
      el("td", { text: timeText(item.updated_at) })));
  }
}

function renderPager(shown) {
  const first = shown ? state.offset + 1 : 0;
  $("page-info").textContent = `${first}–${state.offset + shown} of ${state.total}`;
  $("list-count").textContent = `(${state.total})`;
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + PAGE_SIZE >= state.total;
}

function renderChoices(tags, cameras) {
  for (const tag of tags) {
    $("filter-tag").append(el("option", { value: tag.id, text: tag.name }));
    const box = el("input", { type: "checkbox", name: "tags", value: tag.id });
    $("new-tags").append(el("label", { class: "check" }, box, tagChip(tag.id)));
  }
  for (const camera of cameras) {
    $("filter-camera").append(el("option", { value: camera.id, text: camera.name }));
    $("new-cameras").append(el("option", { value: camera.id, text: `${camera.name} (${camera.id})` }));
  }
}

// ---- the new-case form ---------------------------------------------------------------------

async function reportCase(event) {
  event.preventDefault();
  const form = $("new-case");
  const optional = (id) => $(id).value.trim() || null;
  const body = {
    title: $("new-title-input").value.trim(),
    description: $("new-description").value,
    place: optional("new-place"),
    assignee: optional("new-assignee"),
    tags: [...form.querySelectorAll("input[name=tags]:checked")].map((box) => box.value),
    cameras: [...$("new-cameras").selectedOptions].map((option) => option.value),
  };
  if (!body.title) {
    message("A case needs a title.", true);
    return;
  }
  $("new-submit").disabled = true;
  try {
    const created = await api.post("/api/cases", body);
    form.reset();
    message(`Reported case ${created.number}: ${created.title}`);
    state.offset = 0;
    await refresh();
  } catch (error) {
    message(`Could not report the case: ${errorText(error)}`, true);
  } finally {
    $("new-submit").disabled = false;
  }
}

// ---- start ---------------------------------------------------------------------------------

function restartFromFirstPage() {
  state.offset = 0;
  refresh();
}

async function main() {
  const [tags, cameras] = await Promise.all([api.get("/api/tags"), api.get("/api/cameras")]);
  state.tags = new Map(tags.map((tag) => [tag.id, tag]));
  state.cameras = new Map(cameras.map((camera) => [camera.id, camera]));
  renderChoices(tags, cameras);

  let timer = null;
  $("filters").addEventListener("input", (event) => {
    clearTimeout(timer);
    const typing = event.target.tagName === "INPUT";
    timer = setTimeout(restartFromFirstPage, typing ? FILTER_DELAY_MS : 0);
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("page-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    refresh();
  });
  $("page-next").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    refresh();
  });
  $("new-case").addEventListener("submit", reportCase);
  await refresh();
  document.body.dataset.ready = "true"; // for tests: the first page is shown
}

main().catch((error) => message(`The case list failed to start: ${errorText(error)}`, true));
