// The sign-in page: posts name and password, shows the server's reason when it says no, and
// on success goes back to the page that sent the browser here (js/api.js adds ?next=).

import { api, ApiError } from "./api.js";

const DEFAULT_PAGE = "/wall";

const $ = (id) => document.getElementById(id);

let retryTimer = null;

function showError(text) {
  $("login-error").textContent = text;
}

// Only a path on this site: "next" comes from the URL, which anyone can craft, so "//evil",
// "/\evil" or an absolute URL would make this page an open redirect. Browsers drop tabs and
// newlines inside URLs ("/\t/evil" is "//evil"), so any control character is refused too.
export function safeNext(raw) {
  if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//")) return DEFAULT_PAGE;
  if (raw.includes("\\") || /[\u0000-\u001f\u007f]/.test(raw)) return DEFAULT_PAGE;
  let target;
  try {
    target = new URL(raw, location.origin);
  } catch {
    return DEFAULT_PAGE;
  }
  if (target.origin !== location.origin || target.pathname === "/login") return DEFAULT_PAGE;
  return `${target.pathname}${target.search}${target.hash}`;
}

// Retry-After is either seconds or an HTTP date.
function retryAfterSeconds(headers) {
  const value = headers ? headers.get("Retry-After") : null;
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

// Too many failures: say how long to wait and keep the button off until then.
function waitBeforeRetry(detail, seconds) {
  clearInterval(retryTimer);
  const until = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(retryTimer);
      $("login-submit").disabled = false;
      showError(`${detail} You may try again now.`);
      return;
    }
    showError(`${detail} Try again in ${left} s.`);
  };
  $("login-submit").disabled = true;
  tick();
  retryTimer = setInterval(tick, 1000);
}

async function signIn(event) {
  event.preventDefault();
  const name = $("login-name").value.trim();
  const password = $("login-password").value;
  if (!name || !password) {
    showError("Enter your name and password.");
    return;
  }
  $("login-submit").disabled = true;
  showError("");
  let waiting = false;
  try {
    await api.post("/api/auth/login", { name, password });
    location.replace(safeNext(new URLSearchParams(location.search).get("next")));
    return;
  } catch (error) {
    $("login-password").value = "";
    if (error instanceof ApiError && error.status === 429) {
      const seconds = retryAfterSeconds(error.headers);
      if (seconds) {
        waitBeforeRetry(error.message, seconds);
        waiting = true;
      } else {
        showError(error.message);
      }
    } else if (error instanceof ApiError) {
      showError(error.status === 401 ? error.message : `${error.status}: ${error.message}`);
    } else {
      showError(`Could not reach the server: ${error && error.message ? error.message : error}`);
    }
    $("login-password").focus();
  } finally {
    if (!waiting) $("login-submit").disabled = false;
  }
}

$("login-form").addEventListener("submit", signIn);
$("login-name").focus();
document.body.dataset.ready = "true"; // for tests: the form is wired
