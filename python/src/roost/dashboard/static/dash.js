// Roost fleet dashboard: draws /events (server-sent events) into the page. Plain DOM, no
// framework; every string from the fleet goes through textContent, never innerHTML.
"use strict";

const state = { pis: new Map(), order: [], brokers: [], counts: {}, skew: 0, drawn: new Map() };
const $ = (id) => document.getElementById(id);
const key = (site, id) => site + "/" + id;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function ago(ts) {
  if (ts === null || ts === undefined) return "never";
  const secs = Math.max(0, Math.round(Date.now() / 1000 - state.skew - ts));
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (secs >= size) return Math.floor(secs / size) + unit + " ago";
  }
  return secs + "s ago";
}

function sparkline(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 120 26");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  if (!points.length) return svg;
  const end = Date.now() / 1000 - state.skew, start = end - 3600;
  const values = points.map((p) => p[1]);
  const low = Math.min(...values), high = Math.max(...values), span = high - low || 1;
  const xy = points.map(([t, v]) => [120 * (t - start) / 3600, 23 - 20 * (v - low) / span]);
  if (xy.length === 1) xy.unshift([xy[0][0] - 2, xy[0][1]]); // one sample: a short dash
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", xy.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" "));
  svg.append(line);
  return svg;
}

function metric(data, unit, digits) {
  if (!data) return [el("span", { class: "value" }, "-")];
  if (data.unreadable) return [el("span", { class: "value unreadable" }, "unreadable")];
  const text = data.latest === null ? "-" : data.latest.toFixed(digits) + unit;
  return [el("span", { class: "value" }, text), sparkline(data.points)];
}

function piCard(pi) {
  const label = pi.state + (pi.reason ? " (" + pi.reason + ")" : "");
  const badge = el("span", { class: "badge " + pi.state.replace(" ", "-") }, label);
  const queue = pi.queue_depth === null ? "-" :
    pi.queue_depth + (pi.dropped ? " (" + pi.dropped + " dropped)" : "");
  const m = pi.metrics || {};
  const rows = [
    ["Last seen", [el("span", { class: "ago", "data-ts": pi.last_seen ?? "" }, ago(pi.last_seen))]],
    ["Temp", metric(m.cpu_temp, " °C", 1)],
    ["Load", metric(m.load, "", 2)],
    ["Queue", [queue]],
  ];
  const others = (pi.unreadable || []).filter((name) => !(name in m));
  if (others.length) rows.push(["Unreadable", [el("span", { class: "unreadable" }, others.join(", "))]]);
  const list = el("dl");
  for (const [name, content] of rows) list.append(el("dt", {}, name), el("dd", {}, ...content));
  return el("article", { class: "card pi", "data-pi": pi.client_id, "data-site": pi.site,
                         "data-state": pi.state },
    el("div", { class: "top" }, el("span", { class: "name" }, pi.client_id), badge),
    el("p", { class: "meta" }, [pi.site || "no site", pi.version ? "agent " + pi.version : ""]
      .filter(Boolean).join(" · ")),
    list);
}

function brokerCard(node) {
  const link = node.link.startsWith("up") ? "up" : node.link === "connecting" ? "connecting" : "down";
  const rate = (v) => (v === null ? "-" : v.toFixed(1) + "/s");
  const list = el("dl");
  for (const [name, value] of [["Link", node.link],
    ["Connections", node.connections === null ? "-" : String(node.connections)],
    ["Messages in", rate(node.received_per_s)], ["Messages out", rate(node.sent_per_s)],
    ["Version", node.version || "-"]]) {
    list.append(el("dt", {}, name), el("dd", {}, value));
  }
  return el("article", { class: "card broker", "data-node": node.node, "data-link": link },
    el("div", { class: "top" }, el("span", { class: "name" }, node.node)), list);
}

function drawPis() {
  const box = $("pis");
  if (!state.order.length) {
    box.replaceChildren(el("p", { class: "empty" }, "No Pis yet."));
    state.drawn.clear();
    return;
  }
  const cards = state.order.map((k) => {
    const pi = state.pis.get(k), old = state.drawn.get(k);
    if (old && old.pi === pi) return old.card;
    const card = piCard(pi);
    state.drawn.set(k, { pi, card });
    return card;
  });
  for (const k of [...state.drawn.keys()]) if (!state.pis.has(k)) state.drawn.delete(k);
  box.replaceChildren(...cards);
  filter();
}

function filter() {
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of $("pis").querySelectorAll(".pi")) {
    const text = (card.dataset.pi + " " + card.dataset.site + " " + card.dataset.state).toLowerCase();
    card.classList.toggle("hidden", !words.every((w) => text.includes(w)));
  }
}

function draw() {
  $("n-online").textContent = state.counts.online || 0;
  $("n-offline").textContent = state.counts.offline || 0;
  $("n-never").textContent = state.counts["never seen"] || 0;
  $("brokers").replaceChildren(...(state.brokers.length ? state.brokers.map(brokerCard) :
    [el("p", { class: "empty" }, "No broker data yet.")]));
  drawPis();
}

function apply(update) {
  state.skew = Date.now() / 1000 - update.now;
  if (update.full) state.pis.clear();
  for (const pi of update.pis) state.pis.set(key(pi.site, pi.client_id), pi);
  state.order = update.keys.map(([site, id]) => key(site, id));
  const keep = new Set(state.order);
  for (const k of [...state.pis.keys()]) if (!keep.has(k)) state.pis.delete(k);
  state.brokers = update.brokers;
  state.counts = update.counts;
  draw();
}

function connect() {
  const live = $("live");
  const events = new EventSource("/events");
  events.onopen = () => { live.dataset.live = "up"; live.textContent = "live"; };
  events.onerror = () => { live.dataset.live = "down"; live.textContent = "reconnecting…"; };
  events.onmessage = (message) => {
    try {
      apply(JSON.parse(message.data));
    } catch (err) {
      console.error("bad update", err);
    }
  };
}

$("filter").addEventListener("input", filter);
setInterval(() => {
  for (const span of document.querySelectorAll(".ago")) {
    span.textContent = ago(span.dataset.ts === "" ? null : Number(span.dataset.ts));
  }
}, 1000);
connect();
