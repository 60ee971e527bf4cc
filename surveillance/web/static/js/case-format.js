// Shared by the case list, the case page and the wall's attach panel: how case data reads
// as text. Nothing here builds markup from data; callers put the strings in textContent.

import { ApiError } from "./api.js";

export const STATE_LABELS = {
  reported: "Reported",
  dispatched: "Dispatched",
  in_progress: "In progress",
  feedback: "Feedback",
  closed: "Closed",
  archived: "Archived",
};

export function stateLabel(state) {
  return STATE_LABELS[state] || state;
}

export function timeText(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? String(iso) : moment.toLocaleString();
}

export function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

// An API failure as one line a handler can act on: "409: a closed case takes no new evidence…".
export function errorText(error) {
  if (error instanceof ApiError) {
    const detail = error.body && Array.isArray(error.body.detail)
      ? error.body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
      : error.message;
    return `${error.status}: ${detail}`;
  }
  return error && error.message ? error.message : String(error);
}

export function caseUrl(number) {
  return `/cases/${encodeURIComponent(number)}`;
}

export function apiCaseUrl(number) {
  return `/api/cases/${encodeURIComponent(number)}`;
}
