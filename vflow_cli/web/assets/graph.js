// vflow graph page: colours each node of Graphviz's drawing by its state, writes its rates
// and how busy it is under it, marks the bottleneck, and fills the tables, from the
// `status` events of /events.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const drawn = new Map();   // node name -> <g class="node"> of the drawing
const edgesDrawn = new Map();  // "from->to" -> <g class="edge">
for (const g of document.querySelectorAll("#drawing g.node")) {
  const title = g.querySelector("title");
  if (title) drawn.set(title.textContent, g);
}
for (const g of document.querySelectorAll("#drawing g.edge")) {
  const title = g.querySelector("title");
  if (title) edgesDrawn.set(title.textContent, g);
}

// room under the lowest nodes for the rate written under each
const svg = document.querySelector("#drawing svg");
if (svg && svg.viewBox && svg.viewBox.baseVal) {
  const box = svg.viewBox.baseVal;
  svg.setAttribute("viewBox", [box.x, box.y, box.width, box.height + 14].join(" "));
  const height = parseFloat(svg.getAttribute("height"));
  if (height) svg.setAttribute("height", (height + 14) + "pt");
}

function rate(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1);
}
function count(value) {
  return value === null || value === undefined ? "–" : String(value);
}
function cell(row, value, name) {
  const td = document.createElement("td");
  td.textContent = value;
  if (name) td.className = name;
  row.append(td);
  return td;
}

function label(g, text) {
  let t = g.querySelector("text.vf-rate");
  if (!t) {
    const box = g.getBBox();
    t = document.createElementNS(SVG, "text");
    t.setAttribute("class", "vf-rate");
    t.setAttribute("x", String(box.x + box.width / 2));
    t.setAttribute("y", String(box.y + box.height + 11));
    t.setAttribute("text-anchor", "middle");
    g.append(t);
  }
  t.textContent = text;
}

function percent(share) {
  return Math.round(100 * share) + "%";
}
// "detect 78% · waits for input 10%": what a node's stages were busy with, as shares of its
// run (a group lists each of its stages)
function busyText(busy) {
  if (!busy) return "–";
  const parts = busy.stages.map(([stage, share]) => stage + " " + percent(share));
  if (busy.input >= 0.05) parts.push("waits for input " + percent(busy.input));
  if (busy.output >= 0.05) parts.push("for output " + percent(busy.output));
  return parts.join(" · ");
}

function showNodes(nodes, bottleneck) {
  const rows = [];
  const failed = [];
  for (const node of nodes) {
    const row = document.createElement("tr");
    row.dataset.node = node.name;
    row.dataset.state = node.state;
    cell(row, node.name, "name");
    cell(row, node.kind);
    cell(row, node.state, "state");
    cell(row, rate(node.rate_in), "rate-in");
    cell(row, rate(node.rate_out), "rate-out");
    cell(row, count(node.packets_in));
    cell(row, count(node.packets_out));
    cell(row, String(node.workers));
    cell(row, busyText(node.busy), "busy");
    cell(row, node.status || "");
    rows.push(row);
    const g = drawn.get(node.name);
    if (g) {
      g.dataset.state = node.state;
      g.dataset.bottleneck = node.name === bottleneck ? "yes" : "no";
      const parts = [];
      if (node.rate_in !== null && node.rate_in !== undefined) parts.push("in " + rate(node.rate_in) + "/s");
      if (node.rate_out !== null && node.rate_out !== undefined) parts.push("out " + rate(node.rate_out) + "/s");
      if (node.busy) parts.push("busy " + percent(Math.max(0, ...node.busy.stages.map((s) => s[1]))));
      label(g, node.state === "running" ? parts.join(" · ") : node.state);
    }
    if (node.state === "failed") failed.push(node);
  }
  document.querySelector("#nodes tbody").replaceChildren(...rows);
  const list = document.getElementById("failure-list");
  list.replaceChildren(...failed.map((node) => {
    const box = document.createElement("article");
    box.dataset.node = node.name;
    const h = document.createElement("h3");
    h.textContent = node.name + ": " + (node.status || "failed");
    const pre = document.createElement("pre");
    pre.textContent = (node.stderr || []).join("\n") || "(nothing on stderr)";
    box.append(h, pre);
    return box;
  }));
  document.getElementById("failures").hidden = failed.length === 0;
}

function showEdges(edges) {
  const rows = [];
  for (const edge of edges) {
    const row = document.createElement("tr");
    const name = edge.from + "->" + edge.to;
    row.dataset.edge = name;
    cell(row, edge.from + " → " + edge.to);
    const leaky = edge.leaky && edge.leaky !== "no" ? ", leaky " + edge.leaky : "";
    cell(row, edge.transport + leaky);
    cell(row, edge.size === null ? "–" : count(edge.fill) + " / " + edge.size);
    cell(row, rate(edge.rate_received));
    cell(row, rate(edge.rate_delivered));
    cell(row, count(edge.dropped), "dropped");
    rows.push(row);
    const g = edgesDrawn.get(name);
    if (g) g.dataset.dropping = edge.rate_dropped > 0 ? "yes" : "no";
  }
  document.querySelector("#edges tbody").replaceChildren(...rows);
}

function show(view) {
  const g = view.graph;
  const state = document.getElementById("state");
  let text = g.state;
  if (g.exit !== null && g.exit !== undefined) text += " (exit " + g.exit + ")";
  text += " · up " + Math.round(view.uptime) + " s";
  state.textContent = text;
  state.dataset.state = g.state;
  showNodes(view.nodes, g.bottleneck_node);
  const line = document.getElementById("bottleneck");
  line.textContent = g.bottleneck || "";
  line.hidden = !g.bottleneck;
  showEdges(view.edges);
}

const events = new EventSource("events");
events.addEventListener("status", (e) => show(JSON.parse(e.data)));
events.addEventListener("error", () => {
  const state = document.getElementById("state");
  state.textContent = "disconnected; trying again…";
  state.dataset.state = "down";
});
