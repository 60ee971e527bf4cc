// Drawing one zone's polygon on a camera's picture: click to add a point, click the first
// point to close the polygon, drag any point to move it. Points are kept as fractions of the
// picture (0..1 each way, what the zones API stores), so they do not depend on the size the
// picture is drawn at; the SVG above the picture is redrawn in its pixels.

const SVG = "http://www.w3.org/2000/svg";
const HIT_PX = 9; // a press this close to a point takes the point
const MOVE_PX = 3; // a press that moves less than this is a click

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function clamp01(value) {
  return Math.min(1, Math.max(0, value));
}

export class ZoneDrawing {
  // stage: a positioned element holding the <img>; onChange(points, closed) after each edit.
  constructor(stage, image, onChange) {
    this.stage = stage;
    this.image = image;
    this.onChange = onChange;
    this.points = []; // [[x, y], ...] in 0..1
    this.closed = false;
    this.others = []; // the camera's other zones, drawn faintly: [[[x, y], ...], ...]
    this.layer = svg("svg", { class: "zone-layer" });
    stage.append(this.layer);
    this._drag = null;
    this.layer.addEventListener("pointerdown", (event) => this._down(event));
    this.layer.addEventListener("pointermove", (event) => this._move(event));
    this.layer.addEventListener("pointerup", (event) => this._up(event));
    image.addEventListener("load", () => this.draw());
    new ResizeObserver(() => this.draw()).observe(image);
  }

  set(points, closed, others = []) {
    this.points = points.map(([x, y]) => [x, y]);
    this.closed = closed;
    this.others = others;
    this.draw();
  }

  _size() {
    return { width: this.image.clientWidth, height: this.image.clientHeight };
  }

  _at(event) {
    const box = this.image.getBoundingClientRect();
    return {
      px: event.clientX - box.left,
      py: event.clientY - box.top,
      point: [clamp01((event.clientX - box.left) / box.width), clamp01((event.clientY - box.top) / box.height)],
    };
  }

  _hit(px, py) {
    const { width, height } = this._size();
    return this.points.findIndex(([x, y]) => Math.hypot(x * width - px, y * height - py) <= HIT_PX);
  }

  _down(event) {
    if (event.button !== 0) return;
    const { px, py } = this._at(event);
    this._drag = { index: this._hit(px, py), startX: px, startY: py, moved: false };
    this.layer.setPointerCapture(event.pointerId);
    event.preventDefault();
  }

  _move(event) {
    const drag = this._drag;
    if (!drag || drag.index === -1) return;
    const { px, py, point } = this._at(event);
    if (!drag.moved && Math.hypot(px - drag.startX, py - drag.startY) < MOVE_PX) return;
    drag.moved = true;
    this.points[drag.index] = point;
    this.draw();
  }

  _up(event) {
    const drag = this._drag;
    this._drag = null;
    if (!drag) return;
    if (drag.moved) {
      this.onChange(this.points, this.closed);
      return;
    }
    if (drag.index === 0 && !this.closed && this.points.length >= 3) {
      this.closed = true; // a click on the first point closes the polygon
    } else if (drag.index === -1 && !this.closed) {
      this.points.push(this._at(event).point);
    } else {
      return;
    }
    this.draw();
    this.onChange(this.points, this.closed);
  }

  draw() {
    const { width, height } = this._size();
    this.layer.setAttribute("width", width);
    this.layer.setAttribute("height", height);
    this.layer.replaceChildren();
    const pixels = (points) => points.map(([x, y]) => `${x * width},${y * height}`).join(" ");
    for (const other of this.others) {
      this.layer.append(svg("polygon", { class: "zone-other", points: pixels(other) }));
    }
    const shape = this.closed || this.points.length < 2 ? "polygon" : "polyline";
    this.layer.append(svg(shape, { class: `zone-shape${this.closed ? " closed" : ""}`, points: pixels(this.points) }));
    this.points.forEach(([x, y], index) => {
      this.layer.append(svg("circle", {
        class: `zone-point${index === 0 ? " first" : ""}`, cx: x * width, cy: y * height, r: 5,
        "data-index": index,
      }));
    });
  }
}
