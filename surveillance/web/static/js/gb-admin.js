// The admin page's GB/T 28181 section: platforms registered to this service (address, last
// keepalive, channels, streams being played) and, per platform, its channels with the
// name and tags an administrator set (kept when the platform's catalog is read again).
// Every value from the server is put in the page as text.

import { api } from "./api.js";
import { clear, el } from "./dom.js";
import { errorText } from "./case-format.js";

const CHANNEL_PAGE = 100;
const $ = (id) => document.getElementById(id);

function timeText(iso) {
  return iso ? new Date(iso).toLocaleString() : "-";
}

function listOf(text) {
  return [...new Set(text.split(",").map((part) => part.trim()).filter(Boolean))];
}

export class GbSection {
  constructor(message, canEdit) {
    this.message = message; // (text, isError) for the page's status line
    this.canEdit = canEdit; // users.manage: overrides may be set
    this.platform = null; // whose channels are shown
    this.offset = 0;
  }

  async start() {
    $("gb-refresh").addEventListener("click", () => this.load());
    $("gb-channels-more").addEventListener("click", () => this.loadChannels(this.offset));
    await this.load();
  }

  async load() {
    const platforms = await api.get("/api/gb/platforms");
    $("gb-count").textContent = `(${platforms.length})`;
    const rows = $("gb-table").tBodies[0];
    clear(rows);
    for (const p of platforms) {
      const state = p.online ? "online" : (p.reason || "offline");
      rows.append(el("tr", { "data-platform": p.platform_id, class: p.online ? null : "disabled" },
        el("td", { class: "name", text: `${p.name} (${p.platform_id})` }),
        el("td", { text: p.device_id }),
        el("td", { class: "status", text: state }),
        el("td", { text: p.host ? `${p.host}:${p.port}/${p.transport}` : "-" }),
        el("td", { class: "when", text: timeText(p.last_keepalive_at) }),
        el("td", { class: "when", text: timeText(p.expires_at) }),
        el("td", { class: "number channels", text: `${p.channels_online}/${p.channels}` }),
        el("td", { class: "number streams", text: String(p.streams) }),
        el("td", { class: "actions" }, el("button", {
          type: "button", class: "show-channels", text: "Channels",
          onclick: () => { this.platform = p.platform_id; this.loadChannels(0); },
        }))));
    }
    if (this.platform) await this.loadChannels(0);
  }

  async loadChannels(offset) {
    const platform = this.platform;
    const page = await api.get(`/api/gb/platforms/${encodeURIComponent(platform)}/channels`
      + `?offset=${offset}&limit=${CHANNEL_PAGE}`);
    $("gb-channels").hidden = false;
    $("gb-channels-title").textContent = `Channels of ${platform} (${page.total})`;
    const rows = $("gb-channels-table").tBodies[0];
    if (offset === 0) clear(rows);
    for (const channel of page.channels) rows.append(this.channelRow(channel));
    this.offset = offset + page.channels.length;
    $("gb-channels-more").hidden = this.offset >= page.total;
  }

  channelRow(channel) {
    const row = el("tr", { "data-camera": channel.camera_id },
      el("td", { class: "name", text: channel.name }),
      el("td", { text: channel.channel_id }),
      el("td", { class: "status", text: channel.status || "-" }),
      el("td", { class: "tags", text: channel.tags.join(", ") }),
      el("td", { text: channel.civil_code || "-" }),
      el("td", { text: channel.latitude === null ? "-" : `${channel.latitude.toFixed(5)}, ${channel.longitude.toFixed(5)}` }),
      el("td", { class: "detail", text: channel.override ? `set by ${channel.override.updated_by}` : "" }));
    const actions = el("td", { class: "actions" });
    if (this.canEdit) {
      actions.append(el("button", { type: "button", class: "edit", text: "Edit",
        onclick: () => this.openEditor(row, channel) }));
      if (channel.override) {
        actions.append(el("button", { type: "button", class: "reset", text: "Reset",
          onclick: () => this.save(channel, null) }));
      }
    }
    row.append(actions);
    return row;
  }

  openEditor(row, channel) {
    for (const open of $("gb-channels-table").querySelectorAll("tr.editor")) open.remove();
    const name = el("input", { class: "edit-name", value: channel.override?.name || "",
      placeholder: channel.channel_name, autocomplete: "off" });
    const tags = el("input", { class: "edit-tags", autocomplete: "off",
      value: channel.override?.tags ? channel.override.tags.join(", ") : "",
      placeholder: "comma-separated; empty: by rule" });
    const form = el("form", { class: "inline-form" },
      el("label", { class: "grow" }, "Name ", name), el("label", { class: "grow" }, "Tags ", tags),
      el("button", { type: "submit", text: "Save" }),
      el("button", { type: "button", text: "Cancel", onclick: () => editor.remove() }));
    const editor = el("tr", { class: "editor" }, el("td", { colspan: 8 }, form));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim() || null, tags: tags.value.trim() ? listOf(tags.value) : null };
      if (await this.save(channel, body)) editor.remove();
    });
    row.after(editor);
    name.focus();
  }

  async save(channel, body) {
    const url = `/api/cameras/${encodeURIComponent(channel.camera_id)}/override`;
    try {
      if (body === null) await api.del(url);
      else await api.put(url, body);
      this.message(`${channel.camera_id}: ${body === null ? "own name and tags again" : "saved"}.`);
      await this.loadChannels(0);
      return true;
    } catch (error) {
      this.message(`${channel.camera_id}: ${errorText(error)}`, true);
      return false;
    }
  }
}
