// netspec serve: poll the version, fetch the state when it changes, draw it. Text goes in with textContent; the
// diagram is Graphviz's SVG, parsed as XML and stripped of scripts, event handlers and foreign objects first.
"use strict";
const $ = (id) => document.getElementById(id);
let version = 0, state = null, selected = null, loading = false;

function setStatus(text) { $("status").textContent = text; }

async function poll() {
  try {
    const r = await fetch("/api/version", {cache: "no-store"});
    const v = (await r.json()).version;
    if (v !== version && !loading) await load();
  } catch (e) {
    setStatus("server not reachable");
  }
  setTimeout(poll, 250);
}

async function load() {
  loading = true;
  try {
    const depth = $("depth").value;
    const r = await fetch("/api/state?depth=" + encodeURIComponent(depth), {cache: "no-store"});
    const s = await r.json();
    version = s.version;
    render(s);
  } finally {
    loading = false;
  }
}

function lineClass(line) {
  if (line.startsWith("  hint:")) return "hint";
  if (line.includes(": error:") || line.startsWith("error:")) return "error";
  if (line.includes(": warning:")) return "warning";
  return "other";
}

function render(s) {
  state = s;
  $("file").textContent = s.file || "";
  const errors = $("errors");
  errors.replaceChildren();
  for (const line of (s.warnings || []).concat(s.errors || [])) {     // in the order `netspec check` prints them
    const div = document.createElement("div");
    div.className = lineClass(line);
    div.textContent = line;
    errors.appendChild(div);
  }
  errors.hidden = !(s.errors && s.errors.length) && !(s.warnings && s.warnings.length);
  $("report").textContent = (s.report || []).join("\n");
  $("report").hidden = !(s.report && s.report.length);
  const diagram = $("diagram");
  if (s.svg) {
    const svg = sanitize(s.svg);
    if (svg) diagram.replaceChildren(svg);
    diagram.classList.remove("stale");
  } else if (!s.ok) {
    diagram.classList.add("stale");          // the last good diagram stays, dimmed, until the errors are fixed
  }
  if (s.ok) $("tables").innerHTML = (s.tables || []).join("");   // escaped by the server
  fillDepth(s.max_depth || 0, s.depth);
  $("training").hidden = !s.training;
  if (selected && s.nodes && s.nodes[selected]) showSource(selected);
  else if (selected && s.ok) { selected = null; $("source").hidden = true; }
  setStatus((s.ok ? "OK" : "errors") + " · version " + s.version + (s.seconds ? " · " + s.seconds + " s" : ""));
  document.body.dataset.version = String(s.version);
  document.body.dataset.ok = String(!!s.ok);
}

function sanitize(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (!svg || svg.nodeName !== "svg") return null;
  for (const el of svg.querySelectorAll("script, foreignObject, iframe")) el.remove();
  for (const el of [svg, ...svg.querySelectorAll("*")]) {
    for (const a of [...el.attributes]) {
      const v = a.value.trim().toLowerCase();
      if (a.name.toLowerCase().startsWith("on") || v.startsWith("javascript:")) el.removeAttribute(a.name);
    }
  }
  return document.importNode(svg, true);
}

function fillDepth(maxDepth, depth) {
  const sel = $("depth");
  const want = ["", ...Array.from({length: maxDepth}, (_, k) => String(k))];
  const have = [...sel.options].map((o) => o.value);
  if (want.join(",") !== have.join(",")) {
    const keep = sel.value;
    sel.replaceChildren(...want.map((v) => {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v === "" ? "all" : v;
      return o;
    }));
    sel.value = want.includes(keep) ? keep : "";
    if (sel.value !== keep) setTimeout(load, 0);     // the folding asked for is deeper than the blocks: all of it
  }
}

function keyOf(g) {
  if (state && state.nodes && state.nodes[g.id]) return g.id;
  const t = g.querySelector("title");
  return t ? t.textContent : g.id;
}

function showSource(key) {
  const info = state.nodes[key];
  if (!info) return;
  selected = key;
  $("source").hidden = false;
  $("source-head").textContent = (info.loc ? info.loc + "  " : "") + info.name + " (" + info.op + ")";
  $("source-lines").textContent = info.lines.map((l, i) => String(info.first + i).padStart(4) + "  " + l).join("\n");
  for (const g of $("diagram").querySelectorAll("g.selected")) g.classList.remove("selected");
  for (const g of $("diagram").querySelectorAll("g.node, g.cluster")) if (keyOf(g) === key) g.classList.add("selected");
}

$("diagram").addEventListener("click", (e) => {
  const g = e.target.closest("g.node, g.cluster");
  if (g && state && state.nodes) showSource(keyOf(g));
});
$("depth").addEventListener("change", () => load());

// -- training: curves of metrics.jsonl and the newest per-layer gradient norms ---------------------------------
const SKIP = new Set(["step", "epoch", "split", "time", "lr", "samples_per_s"]);
const COLOURS = {train: "#1f77b4", val: "#ff7f0e", test: "#d62728"};

async function pollMetrics() {
  if (state && state.training) {
    try {
      const r = await fetch("/api/metrics", {cache: "no-store"});
      drawMetrics(await r.json());
    } catch (e) { /* the next poll tries again */ }
  }
  setTimeout(pollMetrics, 1000);
}

function drawMetrics(m) {
  const series = {};
  for (const r of m.records) {
    for (const [k, v] of Object.entries(r)) {
      if (SKIP.has(k) || typeof v !== "number" || !isFinite(v)) continue;
      ((series[k] ||= {})[r.split || "train"] ||= []).push([r.step, v]);
    }
  }
  const names = Object.keys(series).sort((a, b) => (a !== "loss") - (b !== "loss") || a.localeCompare(b));
  $("curves").replaceChildren(...names.slice(0, 6).map((k) => chart(k, series[k])));
  const last = m.grads.length ? m.grads[m.grads.length - 1] : null;
  $("grads-step").textContent = last ? "(step " + last.step + ")" : "(none logged yet)";
  const rows = [];
  if (last) {
    const entries = Object.entries(last.norms).filter(([, v]) => typeof v === "number" && isFinite(v));
    const logs = entries.map(([, v]) => Math.log10(Math.max(v, 1e-12)));
    const lo = Math.min(...logs), hi = Math.max(...logs);
    entries.forEach(([name, v], i) => {
      const row = document.createElement("div");
      row.className = "bar";
      const n = document.createElement("span"); n.className = "name"; n.textContent = name; n.title = name;
      const f = document.createElement("span"); f.className = "fill";
      f.style.width = (4 + 150 * (hi > lo ? (logs[i] - lo) / (hi - lo) : 1)).toFixed(0) + "px";
      const t = document.createElement("span"); t.textContent = v.toExponential(2);
      row.append(n, f, t);
      rows.push(row);
    });
  }
  $("grads").replaceChildren(...rows);
}

function chart(name, bySplit) {
  const W = 300, H = 140, P = 30, NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("class", "chart");
  svg.dataset.name = name;
  const pts = Object.values(bySplit).flat();
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => P + (W - P - 8) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
  const sy = (y) => H - 18 - (H - 36) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
  const text = (x, y, s, anchor) => {
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor || "start");
    t.textContent = s; svg.appendChild(t);
  };
  text(P, 12, name);
  let lx = P + 8 * name.length + 10;
  for (const split of Object.keys(bySplit)) {          // the legend: each split in its colour
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", lx); t.setAttribute("y", 12); t.setAttribute("fill", COLOURS[split] || "#555");
    t.textContent = split;
    svg.appendChild(t);
    lx += 6 * split.length + 10;
  }
  text(P - 2, sy(y1) + 3, y1.toPrecision(3), "end");
  text(P - 2, sy(y0) + 3, y0.toPrecision(3), "end");
  text(W - 8, H - 4, "step " + x1, "end");
  for (const [split, p] of Object.entries(bySplit)) {
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", p.map(([x, y]) => sx(x).toFixed(1) + "," + sy(y).toFixed(1)).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLOURS[split] || "#555");
    line.setAttribute("stroke-width", "1.5");
    svg.appendChild(line);
    if (split !== "train") {                           // evaluations are few: mark each one
      for (const [x, y] of p) {
        const c = document.createElementNS(NS, "circle");
        c.setAttribute("cx", sx(x).toFixed(1)); c.setAttribute("cy", sy(y).toFixed(1)); c.setAttribute("r", "2.5");
        c.setAttribute("fill", COLOURS[split] || "#555");
        svg.appendChild(c);
      }
    }
  }
  return svg;
}

// ?depth=K in the address (netspec serve --depth K prints it so) chooses the first folding
const firstDepth = new URLSearchParams(location.search).get("depth");
if (firstDepth !== null && /^\d{1,3}$/.test(firstDepth)) {
  const o = document.createElement("option");
  o.value = firstDepth;
  o.textContent = firstDepth;
  $("depth").appendChild(o);
  $("depth").value = firstDepth;
}
poll();
pollMetrics();
