// Small fetch helpers. Every response is JSON or an error with the server's reason.
//
// Signing in is the server's business: the session lives in an HttpOnly cookie the browser
// sends by itself. Two things are ours: every state-changing request carries the CSRF token
// (the server compares it with its readable cookie, which another site cannot read), and a
// 401 sends the browser to the sign-in page, which brings it back here afterwards.

import { cleanStrings, withoutBidiControls } from "./dom.js";

export class ApiError extends Error {
  constructor(status, detail, body, headers = null) {
    super(detail);
    this.status = status;
    this.body = body;
    this.headers = headers; // the response's, e.g. Retry-After on a 429
  }
}

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const CSRF_COOKIE = "surveillance_csrf";
const CSRF_HEADER = "X-CSRF-Token";
const LOGIN_URL = "/api/auth/login"; // its 401 means "wrong name or password", not "sign in"
const SIGN_IN_PAGE = "/login";

let rememberedCsrf = null; // from the login or /api/auth/me answer, if the cookie is missing
let leaving = false; // one redirect to the sign-in page, however many calls fail at once

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const at = part.indexOf("=");
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return null;
}

// The cookie is the truth (a password change or a new sign-in replaces it); the remembered
// value only covers a browser that hides the cookie from scripts.
export function csrfToken() {
  return cookie(CSRF_COOKIE) || rememberedCsrf;
}

export function rememberCsrfToken(token) {
  if (typeof token === "string" && token) rememberedCsrf = token;
}

// Where to sign in so that the sign-in page brings the browser back to this page.
export function signInUrl() {
  const here = `${location.pathname}${location.search}`;
  return `${SIGN_IN_PAGE}?next=${encodeURIComponent(here)}`;
}

export function goToSignIn() {
  if (leaving || location.pathname === SIGN_IN_PAGE) return;
  leaving = true;
  location.replace(signInUrl()); // replace: "back" should not return to a page that cannot load
}

// options.signInOn401 = false: the caller handles a 401 itself (a wrong current password).
// options.keepalive = true: the request outlives the page (sent while it is being closed).
async function request(method, url, body, options = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", keepalive: !!options.keepalive };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (UNSAFE_METHODS.has(method)) {
    const token = csrfToken();
    if (token) headers[CSRF_HEADER] = token;
  }
  const response = await fetch(url, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = errorText(data) || response.statusText;
    const signInOn401 = options.signInOn401 !== false && url !== LOGIN_URL;
    if (response.status === 401 && signInOn401) goToSignIn();
    throw new ApiError(response.status, withoutBidiControls(detail), data, response.headers);
  }
  return cleanStrings(data);
}

// The error's words: FastAPI's own `detail` string, or the messages of a refused request's
// fields (a list), so a page says "String should match pattern ..." rather than
// "Unprocessable Entity".
function errorText(data) {
  if (!data) return "";
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) {
    return data.detail.map((item) => (item && typeof item.msg === "string" ? item.msg : "")).filter(Boolean).join("; ");
  }
  return "";
}

export const api = {
  get: (url, options) => request("GET", url, undefined, options),
  post: (url, body, options) => request("POST", url, body, options),
  put: (url, body, options) => request("PUT", url, body, options),
  patch: (url, body, options) => request("PATCH", url, body, options),
  del: (url, options) => request("DELETE", url, undefined, options),
};
