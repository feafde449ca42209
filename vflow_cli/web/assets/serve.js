// vflow serve: the newest packet's fields and the stream's status, from /events.
// The picture itself is an <img> on /stream.mjpg and needs no script; this only brings
// it back when the connection drops, shows the pixel under the cursor (in the frame's
// own coordinates, whatever size the picture is shown at), and turns clicks into the
// argument of `vflow line` or `vflow zone`, to copy.
"use strict";

const table = document.querySelector("#meta tbody");
const statusLine = document.getElementById("status");
const picture = document.getElementById("live");

function text(value) {
  if (value === null) return "null";
  if (typeof value === "object") {
    if (Array.isArray(value.shape) && value.dtype) {
      return value.shape.join("×") + " " + value.dtype + " " + (value.format || "");
    }
    const json = JSON.stringify(value);
    return json.length > 400 ? json.slice(0, 397) + "…" : json;
  }
  return String(value);
}

function showPacket(packet) {
  const rows = [];
  for (const [field, value] of Object.entries(packet)) {
    const row = document.createElement("tr");
    row.dataset.field = field;
    const name = document.createElement("th");
    name.textContent = field;
    const cell = document.createElement("td");
    cell.textContent = text(value);
    row.append(name, cell);
    rows.push(row);
  }
  table.replaceChildren(...rows);
}

function showStatus(s) {
  const parts = [s.ended ? "input ended" : "live", s.fps.toFixed(1) + " frames/s",
    s.frames + " frames", s.viewers + (s.viewers === 1 ? " viewer" : " viewers")];
  statusLine.textContent = parts.join(" · ");
  statusLine.dataset.state = s.ended ? "ended" : "live";
  document.title = s.name + " · vflow serve";
}

const events = new EventSource("events");
events.addEventListener("meta", (e) => showPacket(JSON.parse(e.data)));
events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
events.addEventListener("error", () => {
  statusLine.textContent = "disconnected; trying again…";
  statusLine.dataset.state = "down";
});

picture.addEventListener("error", () => {
  setTimeout(() => { picture.src = "stream.mjpg?" + Date.now(); }, 2000);
});

// -- the pixel under the cursor; clicks make a line or a zone --------------------------

const cursor = document.getElementById("cursor");
const marks = document.getElementById("marks");
const command = document.getElementById("command");
const SVG = "http://www.w3.org/2000/svg";
let mode = "line";
let points = [];

function framePoint(event) {
  const box = picture.getBoundingClientRect();
  const width = picture.naturalWidth, height = picture.naturalHeight;
  if (!width || !height || !box.width || !box.height) return null;
  const x = Math.floor((event.clientX - box.left) * width / box.width);
  const y = Math.floor((event.clientY - box.top) * height / box.height);
  return [Math.min(width - 1, Math.max(0, x)), Math.min(height - 1, Math.max(0, y))];
}

function showMarks() {
  marks.setAttribute("viewBox", "0 0 " + picture.naturalWidth + " " + picture.naturalHeight);
  const shapes = [];
  if (points.length > 1) {
    const outline = document.createElementNS(SVG, mode === "zone" ? "polygon" : "polyline");
    outline.setAttribute("points", points.map((p) => p.join(",")).join(" "));
    shapes.push(outline);
  }
  for (const [x, y] of points) {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x);
    dot.setAttribute("cy", y);
    dot.setAttribute("r", Math.max(2, picture.naturalWidth / 200));
    shapes.push(dot);
  }
  marks.replaceChildren(...shapes);
  const words = points.map((p) => p.join(","));
  if (mode === "line") {
    command.value = points.length === 2 ? "vflow line line1 " + words.join(",") : "";
  } else {
    command.value = points.length >= 3 ? "vflow zone zone1 " + words.join(" ") : "";
  }
}

picture.addEventListener("mousemove", (event) => {
  const point = framePoint(event);
  if (point) cursor.textContent = point.join(", ");
});
picture.addEventListener("click", (event) => {
  const point = framePoint(event);
  if (!point) return;
  if (mode === "line" && points.length === 2) points = [];
  points.push(point);
  showMarks();
});
for (const which of ["line", "zone"]) {
  document.getElementById("mode-" + which).addEventListener("click", () => {
    mode = which;
    points = [];
    for (const other of ["line", "zone"]) {
      document.getElementById("mode-" + other).setAttribute("aria-pressed", other === which);
    }
    showMarks();
  });
}
document.getElementById("clear").addEventListener("click", () => {
  points = [];
  showMarks();
});
command.addEventListener("focus", () => command.select());
