// The makemore playground: everything here goes through the JSON API (/docs), nothing else.
"use strict";

const COLOURS = ["#4553d6", "#e0702b", "#1f9d55", "#c2417e", "#7a5af5", "#0f8ea8", "#9a7b00", "#5b6472"];
const SVG = "http://www.w3.org/2000/svg";
const state = { runs: [], evaluations: {}, metrics: {}, curves: new Set(), samples: [], scored: [] };
const $ = (selector, root = document) => root.querySelector(selector);

// --- small helpers ------------------------------------------------------------------------------
async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw Object.assign(new Error(data.error || response.statusText), { field: data.field });
  return data;
}

function el(tag, attrs = {}, parent = null, text = null) {
  const node = attrs.svg ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key !== "svg" && value !== undefined && value !== null) node.setAttribute(key, value);
  }
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}
const svgEl = (tag, attrs, parent, text = null) => el(tag, { ...attrs, svg: true }, parent, text);

function showError(form, error) {
  form.querySelectorAll(".invalid").forEach((node) => node.classList.remove("invalid"));
  $(".error", form).textContent = error ? error.message : "";
  if (error && error.field) {
    const input = form.elements[error.field.split(".")[0]];
    if (input && input.classList) input.classList.add("invalid");
  }
}

const fmt = (x, digits = 4) => (x === null || x === undefined ? "–" : x.toFixed(digits));
const colourOf = (run) => COLOURS[state.runs.indexOf(run) % COLOURS.length];
const runById = (id) => state.runs.find((run) => run.id === id);

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// probability -> colour: red (surprised) through amber to green (expected)
const probColour = (p) => `hsl(${Math.round(120 * Math.sqrt(p))}, 70%, ${88 - 18 * p}%)`;

function ticks(lo, hi, count) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / count)));
  const nice = [1, 2, 5, 10].map((k) => k * step).find((s) => (hi - lo) / s <= count) || 10 * step;
  const out = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + 1e-9; t += nice) out.push(+t.toFixed(10));
  return out;
}

// --- runs and their loss curves -----------------------------------------------------------------
async function loadRuns() {
  state.runs = await api("/api/runs");
  $("#status").textContent = `${state.runs.length} run${state.runs.length === 1 ? "" : "s"} served`;
  state.runs.slice(0, 4).forEach((run) => state.curves.add(run.id));
  fillRunsTable();
  for (const form of ["#generate", "#inspect", "#inside"]) fillRunSelect($(`${form} select[name=run]`));
  fillRunSelect($("#inspect select[name=other]"), true);
  const transformer = state.runs.find((run) => run.views.includes("attention"));
  if (transformer) $("#inside select[name=run]").value = transformer.id;
  const other = state.runs.find((run) => run.id !== $("#inspect select[name=run]").value);
  if (other) $("#inspect select[name=other]").value = other.id;
  await Promise.all([refreshCurves(), generate(), inspect()]);
  showInside();
  for (const run of state.runs) await loadEvaluation(run); // one at a time: each evaluates whole splits
  setInterval(refreshCurves, 5000);
}

function fillRunSelect(select, optional = false) {
  select.replaceChildren();
  if (optional) el("option", { value: "" }, select, "none");
  for (const run of state.runs) el("option", { value: run.id }, select, `${run.id} (${run.type})`);
}

function fillRunsTable() {
  const body = $("#runs tbody");
  body.replaceChildren();
  for (const run of state.runs) {
    const row = el("tr", { "data-run": run.id }, body);
    const pick = el("input", { type: "checkbox", "aria-label": `curve of ${run.id}` }, el("td", {}, row));
    pick.checked = state.curves.has(run.id);
    pick.addEventListener("change", () => {
      pick.checked ? state.curves.add(run.id) : state.curves.delete(run.id);
      refreshCurves();
    });
    const name = el("td", {}, row);
    el("span", { class: "swatch", style: `background:${colourOf(run)}` }, name);
    name.append(run.id);
    el("td", {}, row, run.type);
    el("td", { class: "num" }, row, run.params.toLocaleString("en-US"));
    el("td", { class: "num" }, row, run.step.toLocaleString("en-US"));
    for (const split of ["train", "dev", "test"]) el("td", { class: "num pending", "data-split": split }, row, "…");
    el("td", { class: "num" }, row, duration(run.train_seconds));
  }
}

async function loadEvaluation(run) {
  try {
    state.evaluations[run.id] = await api(`/api/runs/${encodeURIComponent(run.id)}/evaluation`);
  } catch (error) {
    $("#status").textContent = `${run.id}: ${error.message}`;
    return;
  }
  const row = $(`#runs tr[data-run="${CSS.escape(run.id)}"]`);
  for (const split of ["train", "dev", "test"]) {
    const cell = $(`td[data-split=${split}]`, row);
    cell.textContent = fmt(state.evaluations[run.id][split]);
    cell.classList.remove("pending");
  }
  renderPanes(); // percentiles among the dev items can be shown now
}

async function refreshCurves() {
  let changed = false;
  for (const id of state.curves) {
    try {
      const rows = await api(`/api/runs/${encodeURIComponent(id)}/metrics`);
      // a long log comes thinned, so its length can stay the same as it grows: compare the last row too
      const before = state.metrics[id];
      if (!before || rows.length !== before.length || JSON.stringify(rows.at(-1)) !== JSON.stringify(before.at(-1))) {
        changed = true;
      }
      state.metrics[id] = rows;
    } catch (error) {
      $("#status").textContent = `${id}: ${error.message}`;
    }
  }
  if (changed || !$("#loss-chart svg")) drawLossChart();
}

function drawLossChart() {
  const box = $("#loss-chart");
  box.replaceChildren();
  const series = [];
  for (const run of state.runs.filter((r) => state.curves.has(r.id))) {
    const rows = state.metrics[run.id] || [];
    const train = rows.filter((r) => typeof r.loss === "number" && isFinite(r.loss)).map((r) => [r.step, r.loss]);
    const dev = rows.filter((r) => typeof r.dev === "number" && isFinite(r.dev)).map((r) => [r.step, r.dev]);
    series.push({ run, train, dev });
  }
  const points = series.flatMap((s) => [...s.train, ...s.dev]);
  if (!points.length) {
    el("p", { class: "hint" }, box, "No training curves to draw (a counted bigram has none; tick a trained run).");
    return;
  }
  const W = Math.max(320, Math.round(box.clientWidth || 900)), H = W < 600 ? 240 : 300;
  const m = { l: 52, r: 16, t: 12, b: 36 };
  const maxStep = Math.max(...points.map((p) => p[0]), 1);
  // the first steps' losses are far above the rest (an untrained model): cap the axis so the part
  // worth reading fills the chart
  const devs = series.flatMap((s) => s.dev.map((p) => p[1]));
  const late = series.flatMap((s) => s.train.filter((p) => p[0] >= 0.05 * maxStep).map((p) => p[1]));
  const yLo = Math.min(...points.map((p) => p[1]));
  const yHi = Math.max(...devs, ...late, yLo + 0.1) * 1.02;
  const x = (step) => m.l + (step / maxStep) * (W - m.l - m.r);
  const y = (loss) => m.t + (1 - (Math.min(loss, yHi) - yLo) / (yHi - yLo)) * (H - m.t - m.b);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, box);
  const grid = svgEl("g", { class: "grid" }, svg);
  for (const t of ticks(yLo, yHi, 6)) {
    svgEl("line", { x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }, grid);
    svgEl("text", { x: m.l - 6, y: y(t) + 4, "text-anchor": "end" }, svg, t.toFixed(2));
  }
  for (const t of ticks(0, maxStep, W < 600 ? 4 : 8)) {
    svgEl("line", { x1: x(t), x2: x(t), y1: m.t, y2: H - m.b }, grid);
    svgEl("text", { x: x(t), y: H - m.b + 16, "text-anchor": "middle" }, svg, t.toLocaleString("en-US"));
  }
  svgEl("text", { x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle" }, svg, "step");
  svgEl("text", { x: 12, y: (H - m.b) / 2, transform: `rotate(-90 12 ${(H - m.b) / 2})`, "text-anchor": "middle" },
    svg, "NLL (nats / char)");
  const path = (pts) => pts.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
  for (const s of series) {
    const colour = colourOf(s.run);
    if (s.train.length) svgEl("path", { d: path(s.train), fill: "none", stroke: colour, "stroke-opacity": 0.45, "stroke-width": 1.2 }, svg);
    if (s.dev.length) {
      svgEl("path", { d: path(s.dev), fill: "none", stroke: colour, "stroke-width": 2.4 }, svg);
      for (const p of s.dev) svgEl("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: colour }, svg);
    }
  }
  const legend = el("p", { class: "hint" }, box);
  legend.textContent = "thin: training loss (batches, every 100 steps) · thick with dots: dev NLL at each evaluation";
}

// --- generate -------------------------------------------------------------------------------------
function numberOrNull(value) {
  return value === "" ? null : Number(value);
}

async function generate(event) {
  if (event) event.preventDefault();
  const form = $("#generate");
  const f = form.elements;
  const request = {
    run: f.run.value, n: Number(f.n.value), temperature: Number(f.temperature.value),
    top_k: numberOrNull(f.top_k.value), top_p: numberOrNull(f.top_p.value), prefix: f.prefix.value,
    seed: Number(f.seed.value), new_only: f.new_only.checked,
  };
  const started = performance.now();
  try {
    const result = await api("/api/sample", request);
    showError(form, null);
    state.samples = result.items;
    renderSamples(result.items, performance.now() - started, result.note);
  } catch (error) {
    showError(form, error);
  }
}

function renderSamples(items, ms, note) {
  const list = $("#samples");
  list.replaceChildren();
  const counts = {};
  for (const { item, split } of items) {
    counts[split] = (counts[split] || 0) + 1;
    const li = el("li", {}, list, item);
    el("span", { class: `tag ${split}` }, li, split);
  }
  const parts = Object.entries(counts).map(([split, n]) => `${n} ${split}`);
  $("#sample-summary").textContent = `${items.length} items in ${Math.round(ms)} ms: ${parts.join(", ")}` +
    (note ? ` (${note})` : "");
  $("#copy").disabled = $("#download").disabled = items.length === 0;
}

async function copySamples() {
  const text = state.samples.map((s) => s.item).join("\n") + "\n";
  try {
    await navigator.clipboard.writeText(text);
    $("#sample-summary").textContent = `copied ${state.samples.length} items`;
  } catch {
    $("#sample-summary").textContent = "the browser refused the clipboard; use Download instead";
  }
}

function downloadSamples() {
  const text = state.samples.map((s) => s.item).join("\n") + "\n";
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })),
    download: `${$("#generate").elements.run.value}-samples.txt` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// --- inspect an item ------------------------------------------------------------------------------
async function inspect(event) {
  if (event) event.preventDefault();
  const form = $("#inspect");
  const item = form.elements.text.value;
  const ids = [form.elements.run.value, form.elements.other.value].filter((id, i, all) => id && all.indexOf(id) === i);
  try {
    const results = await Promise.all(ids.map((run) => api("/api/score", { run, items: [item] })));
    showError(form, null);
    state.scored = results.map((r, i) => ({ run: runById(ids[i]), score: r.items[0], selected: 0, next: null }));
  } catch (error) {
    showError(form, { message: error.message, field: "text" });
    return;
  }
  renderPanes();
  await Promise.all(state.scored.map((pane) => selectPosition(pane, 0)));
  showAttention();
}

function percentileOf(run, perChar) {
  const q = state.evaluations[run.id] && state.evaluations[run.id].dev_percentiles;
  if (!q || !q.length || perChar === null) return null;
  let k = 0;
  while (k < q.length && q[k] < perChar) k++;
  return Math.min(100, Math.max(0, k === 0 ? 0 : k - 1 + (perChar - q[k - 1]) / ((q[k] ?? perChar) - q[k - 1] || 1)));
}

function renderPanes() {
  const box = $("#panes");
  box.replaceChildren();
  for (const pane of state.scored) {
    const { run, score } = pane;
    const div = el("div", { class: "pane", "data-run": run.id }, box);
    el("h3", { style: `color:${colourOf(run)}` }, div, `${run.id} (${run.type})`);
    const strip = el("div", { class: "strip", role: "list" }, div);
    score.chars.forEach(([ch, nll], i) => {
      const p = nll === null ? 0 : Math.exp(-nll);
      const b = el("button", { type: "button", class: i === pane.selected ? "selected" : "",
        style: `background:${probColour(p)}`, title: `${ch}: p = ${p.toFixed(4)}, NLL ${fmt(nll, 3)}` }, strip);
      el("span", { class: "ch" }, b, ch);
      el("span", { class: "p" }, b, p >= 0.995 ? "1.00" : p.toFixed(2));
      b.addEventListener("click", () => selectPosition(pane, i));
    });
    const numbers = el("p", { class: "numbers" }, div);
    numbers.append("NLL ");
    el("b", {}, numbers, fmt(score.nll, 3));
    numbers.append(` in total, `);
    el("b", {}, numbers, fmt(score.nll_per_char, 3));
    numbers.append(" per character");
    const pct = percentileOf(run, score.nll_per_char);
    numbers.append(pct === null ? " (dev percentile: evaluating…)" : `: more surprising than ${Math.round(pct)}% of dev items`);
    el("div", { class: "chart next" }, div);
    if (pane.next) drawNext(pane);
  }
}

async function selectPosition(pane, i) {
  pane.selected = i;
  const text = pane.score.item.slice(0, i);
  try {
    pane.next = { at: i, ...(await api("/api/next", { run: pane.run.id, text })) };
  } catch (error) {
    showError($("#inspect"), error);
    return;
  }
  const div = $(`.pane[data-run="${CSS.escape(pane.run.id)}"]`);
  if (!div) return;
  div.querySelectorAll(".strip button").forEach((b, k) => b.classList.toggle("selected", k === i));
  drawNext(pane);
}

function drawNext(pane) {
  const box = $(`.pane[data-run="${CSS.escape(pane.run.id)}"] .next`);
  box.replaceChildren();
  const { at, next } = pane.next;
  const actual = pane.score.chars[at][0];
  const bars = next.slice(0, 27);
  const W = 300, H = 160, m = { l: 10, r: 10, t: 30, b: 18 };
  const top = Math.max(...bars.map((b) => b[1]));
  const bw = (W - m.l - m.r) / bars.length;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, box);
  const shown = pane.score.item.slice(0, at);
  svgEl("text", { x: m.l, y: 12 }, svg, `after "${shown}", the next character (${actual} in green)`);
  bars.forEach(([ch, p], k) => {
    const h = (p / top) * (H - m.t - m.b);
    const colour = ch === actual ? "#1f9d55" : colourOf(pane.run);
    svgEl("rect", { x: m.l + k * bw + 1, y: H - m.b - h, width: Math.max(bw - 2, 1), height: h, fill: colour,
      "fill-opacity": ch === actual ? 1 : 0.55 }, svg);
    svgEl("title", {}, svg.lastChild, `${ch}: ${p.toFixed(4)}`);
    svgEl("text", { x: m.l + (k + 0.5) * bw, y: H - 5, "text-anchor": "middle" }, svg, ch);
    if (p >= 0.1) svgEl("text", { x: m.l + (k + 0.5) * bw, y: H - m.b - h - 3, "text-anchor": "middle" }, svg, p.toFixed(2));
  });
}

// --- look inside ----------------------------------------------------------------------------------
function showInside() {
  const run = runById($("#inside").elements.run.value);
  const views = $("#views");
  views.replaceChildren();
  if (!run) return;
  if (!run.views.length) el("p", { class: "hint" }, views, `A ${run.type} model has none of the views below.`);
  if (run.views.includes("attention")) {
    const div = el("div", { id: "attention" }, views);
    el("h3", {}, div, "Attention over the inspected item");
    showAttention();
  }
  const failed = (error) => showError($("#inside"), error);
  if (run.views.includes("embedding")) showEmbedding(run, el("div", { class: "scatter" }, views)).catch(failed);
  if (run.views.includes("bigram")) showBigram(run, el("div", { class: "matrix" }, views)).catch(failed);
}

async function showAttention() {
  const box = $("#attention");
  const run = runById($("#inside").elements.run.value);
  if (!box || !run) return;
  const text = $("#inspect").elements.text.value.trim();
  let result;
  try {
    result = await api("/api/attention", { run: run.id, text });
    showError($("#inside"), null);
  } catch (error) {
    showError($("#inside"), error);
    return;
  }
  box.querySelectorAll(".heatmaps, .hint").forEach((n) => n.remove());
  el("p", { class: "hint" }, box, "Row i: how much position i takes from each earlier position (darker: more). " +
    "Every row sums to one; nothing looks ahead.");
  const grid = el("div", { class: "heatmaps", style: `grid-template-columns: repeat(${result.layers[0].length}, minmax(0, 150px))` }, box);
  const T = result.tokens.length;
  result.layers.forEach((heads, l) => heads.forEach((map, h) => {
    const fig = el("figure", {}, grid);
    const cell = 16, pad = 14, size = pad + T * cell;
    const svg = svgEl("svg", { viewBox: `0 0 ${size} ${size}`, role: "img" }, fig);
    result.tokens.forEach((tok, i) => {
      svgEl("text", { x: pad + (i + 0.5) * cell, y: 10, "text-anchor": "middle" }, svg, tok);
      svgEl("text", { x: 7, y: pad + (i + 0.7) * cell, "text-anchor": "middle" }, svg, tok);
      for (let j = 0; j <= i; j++) {
        const rect = svgEl("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1,
          fill: `rgba(69, 83, 214, ${map[i][j].toFixed(3)})`, stroke: "#eef0f4" }, svg);
        svgEl("title", {}, rect, `${tok} ← ${result.tokens[j]}: ${map[i][j].toFixed(3)}`);
      }
    });
    el("figcaption", {}, fig, `layer ${l + 1}, head ${h + 1}`);
  }));
}

async function showEmbedding(run, box) {
  const e = await api(`/api/runs/${encodeURIComponent(run.id)}/embedding`);
  el("h3", {}, box, `Character embedding (${e.dims}-D${e.dims > 2 ? ", first two principal directions" : ""})`);
  const W = 520, H = 420, m = 28;
  const xs = e.points.map((p) => p[0]), ys = e.points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const x = (v) => m + ((v - x0) / (x1 - x0 || 1)) * (W - 2 * m);
  const y = (v) => H - m - ((v - y0) / (y1 - y0 || 1)) * (H - 2 * m);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, box);
  svgEl("rect", { x: 0.5, y: 0.5, width: W - 1, height: H - 1, fill: "#fbfbfd", stroke: "#e1e4ea" }, svg);
  e.chars.forEach((ch, i) => {
    const vowel = "aeiou".includes(ch), special = ch === ".";
    const fill = special ? "#c62828" : vowel ? "#e0702b" : "#4553d6";
    svgEl("circle", { cx: x(xs[i]), cy: y(ys[i]), r: 11, fill, "fill-opacity": 0.16, stroke: fill }, svg);
    svgEl("text", { x: x(xs[i]), y: y(ys[i]) + 4, "text-anchor": "middle", style: `fill:${fill};font-weight:600` }, svg, ch);
  });
  const share = e.explained.map((v) => `${Math.round(100 * v)}%`).join(" and ");
  el("p", { class: "hint" }, box, `Characters the model treats alike sit together (vowels in orange, the boundary ` +
    `'.' in red). The two axes hold ${share} of the spread.`);
}

async function showBigram(run, box) {
  const b = await api(`/api/runs/${encodeURIComponent(run.id)}/bigram`);
  const counted = b.counts !== null;
  el("h3", {}, box, counted ? "Bigram counts: row = this character, column = the next one" :
    "Bigram probabilities P(next | previous) learned by the network");
  const V = b.chars.length, cell = 34, pad = 18;
  const size = pad + V * cell;
  const svg = svgEl("svg", { viewBox: `0 0 ${size} ${size}`, role: "img" }, box);
  const values = counted ? b.counts : b.probs;
  const top = Math.max(...values.flat());
  for (let i = 0; i < V; i++) {
    svgEl("text", { x: pad + (i + 0.5) * cell, y: 12, "text-anchor": "middle" }, svg, b.chars[i]);
    svgEl("text", { x: 8, y: pad + (i + 0.6) * cell, "text-anchor": "middle" }, svg, b.chars[i]);
    for (let j = 0; j < V; j++) {
      const v = values[i][j];
      const shade = Math.sqrt(v / top);
      const g = svgEl("g", {}, svg);
      svgEl("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1,
        fill: `rgba(69, 83, 214, ${shade.toFixed(3)})` }, g);
      const ink = shade > 0.5 ? "#fff" : "#4a5060";
      svgEl("text", { x: pad + (j + 0.5) * cell, y: pad + i * cell + 13, "text-anchor": "middle",
        style: `font-size:9px;fill:${ink}` }, g, b.chars[i] + b.chars[j]);
      svgEl("text", { x: pad + (j + 0.5) * cell, y: pad + i * cell + 26, "text-anchor": "middle",
        style: `font-size:8px;fill:${ink}` }, g, counted ? String(v) : v.toFixed(2));
      svgEl("title", {}, g, `${b.chars[i]} → ${b.chars[j]}: P = ${b.probs[i][j].toFixed(4)}${counted ? `, ${v} times` : ""}`);
    }
  }
}

// --- wiring ---------------------------------------------------------------------------------------
function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

document.addEventListener("DOMContentLoaded", () => {
  const f = $("#generate").elements;
  $("#generate").addEventListener("submit", generate);
  const regenerate = debounce(() => generate(), 150);
  f.temperature_slider.addEventListener("input", () => { f.temperature.value = f.temperature_slider.value; regenerate(); });
  f.temperature.addEventListener("change", () => { f.temperature_slider.value = f.temperature.value; });
  $("#copy").addEventListener("click", copySamples);
  $("#download").addEventListener("click", downloadSamples);
  $("#inspect").addEventListener("submit", inspect);
  $("#inside").elements.run.addEventListener("change", showInside);
  window.addEventListener("resize", debounce(drawLossChart, 200));
  loadRuns().catch((error) => { $("#status").textContent = `cannot load the runs: ${error.message}`; });
});
