// vflow serve: the newest packet's fields and the stream's status, from /events.
// The picture itself is an <img> on /stream.mjpg and needs no script; this only brings
// it back when the connection drops.
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
