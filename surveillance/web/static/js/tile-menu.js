// A tile's menu ("⋯" in its top overlay): the less frequent things done with the camera a
// tile shows (its zones, its reference picture, making the tile the layout's alarm tile).
// Self-contained like attach.js: the wall hands the items once per tile; each item reads
// the camera from the tile's data-camera when chosen, and is offered only to roles that may
// use it (the server checks again).

import { el } from "./dom.js";
import { can, whenSignedIn } from "./session.js";

let open = null; // the menu shown, one at a time for the whole page

function closeMenu() {
  if (open) open.remove();
  open = null;
}

document.addEventListener("click", closeMenu);
document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeMenu(); });

// items: [{label, permissions: [..], needsCamera, onSelect(cameraId, tile)}, and optionally
// offered(cameraId): whether the item applies to that camera (greyed out when not)].
export function addTileMenu(tile, items) {
  const button = el("button", { type: "button", class: "tile-menu-button", text: "⋯", title: "More", hidden: true });
  whenSignedIn().then((me) => {
    button.hidden = !items.some((item) => item.permissions.every((p) => can(me, p)));
  }, () => {});
  button.addEventListener("dblclick", (event) => event.stopPropagation());
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    const wasOpen = open && open.dataset.tile === tile.dataset.index;
    closeMenu();
    if (wasOpen) return;
    const me = await whenSignedIn();
    const camera = tile.dataset.camera || "";
    const menu = el("div", { class: "tile-menu", role: "menu", "data-tile": tile.dataset.index });
    for (const item of items) {
      if (!item.permissions.every((p) => can(me, p))) continue;
      menu.append(el("button", {
        type: "button", role: "menuitem", class: "tile-menu-item", text: item.label,
        disabled: (item.needsCamera && !camera) || (item.offered && !item.offered(camera)),
        onclick: (click) => { click.stopPropagation(); closeMenu(); item.onSelect(camera, tile); },
      }));
    }
    const box = button.getBoundingClientRect();
    document.body.append(menu);
    menu.style.left = `${Math.max(4, Math.min(box.right - menu.offsetWidth, window.innerWidth - menu.offsetWidth - 4))}px`;
    menu.style.top = `${Math.min(box.bottom + 2, window.innerHeight - menu.offsetHeight - 4)}px`;
    open = menu;
  });
  (tile.querySelector(".overlay.top") || tile).append(button);
  return button;
}
