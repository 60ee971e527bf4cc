// The admin page's "Find cameras (ONVIF)" section: start a discovery run (targets, multicast,
// the user name and password to ask the devices with), follow it, read each device's outcome
// and how it stands against the catalog (new, same, changed, gone), pick devices and download
// them as camera rows (CSV or YAML) to add to the configuration. Only new and changed
// devices can be picked, and "select all" picks the new ones: rows for a device already in
// the catalog would be a second camera for one device (a second PTZ lease, streams pulled
// twice). Addresses of a range where nothing answered are only counted.
// Device names, models and reasons come from the devices: every one is put in the page as
// text. The password field is cleared once the run has started: the page keeps no copy.

import { api, csrfToken } from "./api.js";
import { clear, el } from "./dom.js";
import { errorText } from "./case-format.js";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

function listOf(text) {
  return [...new Set(text.split(/[\s,]+/).map((part) => part.trim()).filter(Boolean))];
}

function offsetText(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  return `${seconds >= 0 ? "+" : ""}${seconds.toFixed(1)} s`;
}

export class DiscoverySection {
  constructor(message) {
    this.message = message; // (text, isError) for the page's status line
    this.run = null; // the run shown
    this.timer = null;
  }

  start() {
    $("discovery-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.begin();
    });
    $("discovery-download").addEventListener("click", () => this.download());
    $("discovery-all").setAttribute("aria-label", "select all new devices");
    $("discovery-all").title = "Select all new devices";
    $("discovery-all").addEventListener("change", (event) => {
      for (const box of this.boxes()) box.checked = event.target.checked && box.dataset.status === "new";
      this.updateDownload();
    });
  }

  async begin() {
    const password = $("discovery-password");
    const limit = $("discovery-limit").value.trim();
    const body = {
      targets: listOf($("discovery-targets").value),
      multicast: $("discovery-multicast").checked,
      username: $("discovery-username").value.trim() || null,
      password: password.value || null,
      time_limit_s: limit ? Number(limit) : null,
    };
    $("discovery-start").disabled = true;
    try {
      this.show(await api.post("/api/onvif/discovery", body));
      password.value = "";
    } catch (error) {
      this.message(`Discovery not started: ${errorText(error)}`, true);
      $("discovery-start").disabled = false;
    }
  }

  async poll() {
    try {
      this.show(await api.get(`/api/onvif/discovery/${encodeURIComponent(this.run.id)}`));
    } catch (error) {
      this.message(`Discovery: ${errorText(error)}`, true);
      $("discovery-start").disabled = false;
    }
  }

  show(run) {
    this.run = run;
    clearTimeout(this.timer);
    const done = run.state === "done";
    const phase = done ? "done" : run.phase === "probing" ? "probing the network" : `inspecting ${run.to_inspect} devices`;
    $("discovery-progress").textContent = `Run ${run.id} by ${run.by}: ${phase}, `
      + `${run.elapsed_s.toFixed(1)} s of ${run.time_limit_s} s, ${run.probes_sent} probes sent, `
      + `${run.devices.length} devices`
      + (run.silent ? `, ${run.silent} address${run.silent === 1 ? "" : "es"} did not answer` : "")
      + (run.not_probed ? `, time ran out before ${run.not_probed} were probed` : "");
    const rows = $("discovery-table").tBodies[0];
    clear(rows);
    for (const device of run.devices) rows.append(this.row(device));
    const extra = $("discovery-extra");
    clear(extra);
    for (const cameraId of run.gone) {
      extra.append(el("li", { class: "gone", text: `gone: camera ${cameraId} (in reach, did not answer)` }));
    }
    for (const dropped of run.dropped) {
      extra.append(el("li", { class: "dropped", text: `dropped: ${dropped.address}: ${dropped.reason}` }));
    }
    $("discovery-results").hidden = false;
    $("discovery-start").disabled = !done;
    this.updateDownload();
    if (!done) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  row(device) {
    const ok = device.outcome === "ok";
    const pickable = ok && Boolean(device.main_uri) && ["new", "changed"].includes(device.catalog_status);
    const box = el("input", { type: "checkbox", class: "pick", "aria-label": `select ${device.device_url}`,
      disabled: !pickable, onchange: () => this.updateDownload() });
    box.dataset.url = device.device_url;
    box.dataset.status = device.catalog_status;
    const status = device.camera_id ? `${device.catalog_status} (${device.camera_id})` : device.catalog_status;
    return el("tr", { "data-device": device.device_url, class: ok ? null : "disabled" },
      el("td", {}, box),
      el("td", { class: "name", text: device.name || "-" }),
      el("td", { text: device.device_url }),
      el("td", { class: `outcome${ok ? "" : " bad"}`, text: ok ? "ok" : `${device.outcome}: ${device.reason}` }),
      el("td", { text: [device.manufacturer, device.model].filter(Boolean).join(" ") || "-" }),
      el("td", { text: device.firmware || "-" }),
      el("td", { text: ok ? (device.ptz ? "yes" : "no") : "-" }),
      el("td", { class: "number", text: offsetText(device.clock_offset_s) }),
      el("td", { class: "detail", text: [device.main_uri, device.sub_uri].filter(Boolean).join("\n") || "-" }),
      el("td", { class: "status", text: status },
        ...device.changes.map((change) => el("div", { class: "detail", text: change }))));
  }

  boxes() {
    return [...$("discovery-table").querySelectorAll("input.pick:not(:disabled)")];
  }

  updateDownload() {
    $("discovery-download").disabled = !this.boxes().some((box) => box.checked);
  }

  async download() {
    const devices = this.boxes().filter((box) => box.checked).map((box) => box.dataset.url);
    const format = $("discovery-format").value;
    const body = {
      devices,
      format,
      platform: $("discovery-platform").value.trim(),
      tags: listOf($("discovery-tags").value),
      id_prefix: $("discovery-prefix").value.trim(),
    };
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() || "" };
    const response = await fetch(`/api/onvif/discovery/${encodeURIComponent(this.run.id)}/catalog`, {
      method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin",
    });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
      this.message(`No rows: ${detail}`, true);
      return;
    }
    const text = await response.text();
    const link = $("discovery-file");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type: format === "csv" ? "text/csv" : "application/yaml" }));
    link.download = `onvif-cameras-${this.run.id}.${format}`;
    link.textContent = `${link.download} (${devices.length} cameras)`;
    link.hidden = false;
    link.click();
    this.message(`${devices.length} cameras written as ${format.toUpperCase()}: add them to the configuration.`);
  }
}
