// The admin page's Nodes section (cluster mode): every node sharing this database, live or
// not, how long since its heartbeat, the cameras it holds and the load it reported. The
// section stays hidden on a single node. Every value from the server is put in the page as
// text.

import { api } from "./api.js";
import { clear, el } from "./dom.js";

const $ = (id) => document.getElementById(id);

function stateText(node) {
  if (node.live) return "live";
  return node.stopped ? "stopped" : "silent";
}

function loadText(load) {
  const cpu = typeof load.cpu === "number" ? `cpu ${Math.round(load.cpu * 100)}%` : null;
  const viewers = typeof load.viewers === "number" ? `${load.viewers} viewers` : null;
  const streams = typeof load.streams === "number" ? `${load.streams} streams` : null;
  return [cpu, viewers, streams].filter(Boolean).join(", ") || "-";
}

export class NodesSection {
  async start() {
    $("nodes-refresh").addEventListener("click", () => this.load());
    await this.load();
  }

  async load() {
    const cluster = await api.get("/api/cluster/nodes");
    $("nodes").hidden = !cluster.enabled;
    if (!cluster.enabled) return;
    const live = cluster.nodes.filter((node) => node.live).length;
    $("nodes-count").textContent = `(${live} of ${cluster.nodes.length} live)`;
    const rows = $("nodes-table").tBodies[0];
    clear(rows);
    for (const node of cluster.nodes) {
      rows.append(el("tr", { "data-node": node.id, class: node.live ? null : "disabled" },
        el("td", { class: "name", text: node.this ? `${node.id} (this node)` : node.id }),
        el("td", { class: "status", text: stateText(node) }),
        el("td", { class: "when", text: `${node.age_s.toFixed(1)} s ago` }),
        el("td", { class: "number cameras", text: String(node.cameras) }),
        el("td", { class: "number", text: String(node.capacity) }),
        el("td", { text: loadText(node.load) }),
        el("td", { class: "when", text: new Date(node.started_at).toLocaleString() }),
        el("td", { text: node.url })));
    }
  }
}
