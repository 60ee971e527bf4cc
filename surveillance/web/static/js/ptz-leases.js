// Who steers which PTZ camera, as the wall sees it: GET /api/ptz/leases every POLL_MS while
// the wall shows a PTZ camera, and not at all otherwise (a wall of fixed cameras asks
// nothing). Any node answers it from the lease table, so a wall on any node sees who steers.
// Tiles say "steered by NAME" from it (tiles.js); the PTZ pad (ptz-pad.js) locks its buttons.

import { api } from "./api.js";

const POLL_MS = 2000;
const LEASES_URL = "/api/ptz/leases";
// The API's ranks (a lease is taken over only by a strictly higher role).
const ROLE_RANK = { viewer: 0, operator: 1, handler: 2, admin: 3 };

// Whether `role` may take a lease held by `holderRole` over. An unknown role outranks nobody
// and is outranked by nobody: the server decides, the page only hides a button.
export function outranks(role, holderRole) {
  const mine = ROLE_RANK[role];
  const theirs = ROLE_RANK[holderRole];
  return mine !== undefined && theirs !== undefined && mine > theirs;
}

// "name (role)" of a lease: the same words the server's 409 uses.
export function holderText(lease) {
  return lease.role ? `${lease.holder} (${lease.role})` : lease.holder;
}

function signature(leases) {
  return JSON.stringify([...leases].map(([camera, lease]) => [camera, lease.holder, lease.role]));
}

export class PtzLeaseWatch {
  // onLeases(Map camera id -> {camera_id, holder, role, expires_in_s}) after each change.
  constructor(onLeases) {
    this.onLeases = onLeases;
    this.leases = new Map();
    this._timer = null;
    this._asking = false;
    this._again = false;
  }

  // on: whether the wall shows a PTZ camera now. Idempotent: the wall calls it at every tile
  // update.
  want(on) {
    if (on && this._timer === null) {
      this._timer = setInterval(() => this.poll(), POLL_MS);
      this.poll();
    } else if (!on && this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
      this._set(new Map());
    }
  }

  // Ask now (after a command of this page's own, so the other tiles catch up at once); one
  // request at a time, and one more after it if asked meanwhile.
  async poll() {
    if (this._asking) {
      this._again = true;
      return;
    }
    this._asking = true;
    try {
      const list = await api.get(LEASES_URL);
      if (this._timer !== null && Array.isArray(list)) {
        this._set(new Map(list.filter((lease) => lease && typeof lease.camera_id === "string")
          .map((lease) => [lease.camera_id, lease])));
      }
    } catch {
      // Kept as last known: the next poll tells again; the server refuses what is not allowed.
    } finally {
      this._asking = false;
      if (this._again) {
        this._again = false;
        this.poll();
      }
    }
  }

  _set(leases) {
    const changed = signature(leases) !== signature(this.leases);
    this.leases = leases;
    if (changed) this.onLeases(leases);
  }
}
