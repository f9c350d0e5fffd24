// Look inside a model: a transformer's attention over the item last inspected, the character embedding,
// the bigram table, Part 3's tanh layer (trained weights and each initialisation) and Part 4's dlogits.
"use strict";

import { $, INK, api, el, runById, showError, shownChar, spokenChar, svgEl, valuesTable } from "./core.js";
import { inspected } from "./inspect.js";

export function showInside() {
  const form = $("#inside");
  const run = runById(form.elements.run.value);
  const views = $("#views");
  views.replaceChildren();
  showError(form, null);
  if (!run) return;
  if (run.members) {
    el("p", { class: "hint per-model" }, views,
      `Attention, tanh, dlogits, the bigram matrix and the embedding are views of one model's inside: ` +
      `pick one of the runs ${run.id} mixes (${run.members.join(", ")}).`);
    return;
  }
  const failed = (error) => showError(form, error);
  const box = (cls) => el("div", { class: `view ${cls}` }, views);
  if (run.views.includes("attention")) showAttention(run, box("attention")).catch(failed);
  if (run.views.includes("embedding")) showEmbedding(run, box("scatter")).catch(failed);
  if (run.views.includes("bigram")) showBigram(run, box("matrix")).catch(failed);
  if (run.views.includes("tanh")) showTanh(run, box("tanh")).catch(failed);
  if (run.views.includes("dlogits")) showDlogits(run, box("dlogits")).catch(failed);
}

// Attention over the item last inspected (not whatever the item box says now); one this run cannot
// read leaves no maps of an earlier item behind, only why.
async function showAttention(run, box) {
  box.id = "attention";
  el("h3", {}, box, "Attention over the inspected item");
  const item = inspected.item;
  if (item === null) {
    el("p", { class: "hint" }, box, "Inspect an item above to see the attention over it.");
    return;
  }
  let result;
  try {
    result = await api("/api/attention", { run: run.id, text: item });
  } catch (error) {
    el("p", { class: "error" }, box, `${run.id} cannot read "${item}": ${error.message}`);
    return;
  }
  el("p", { class: "hint" }, box, `Over "${item}". Row i: how much position i takes from each earlier position ` +
    "(darker: more). Every row sums to one; nothing looks ahead.");
  const grid = el("div", { class: "heatmaps", style: `grid-template-columns: repeat(${result.layers[0].length}, minmax(0, 150px))` }, box);
  const T = result.tokens.length, shown = result.tokens.map((t, i) => (i ? shownChar(t) : t));
  result.layers.forEach((heads, l) => heads.forEach((map, h) => {
    const fig = el("figure", {}, grid);
    const cell = 16, pad = 14, size = pad + T * cell;
    const svg = svgEl("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": `attention of layer ${l + 1}, head ${h + 1}` }, fig);
    shown.forEach((tok, i) => {
      svgEl("text", { x: pad + (i + 0.5) * cell, y: 10, "text-anchor": "middle" }, svg, tok);
      svgEl("text", { x: 7, y: pad + (i + 0.7) * cell, "text-anchor": "middle" }, svg, tok);
      for (let j = 0; j <= i; j++) {
        const rect = svgEl("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1,
          fill: `rgba(69, 83, 214, ${map[i][j].toFixed(3)})`, stroke: "#eef0f4" }, svg);
        svgEl("title", {}, rect, `${tok} ← ${shown[j]}: ${map[i][j].toFixed(3)}`);
      }
    });
    el("figcaption", {}, fig, `layer ${l + 1}, head ${h + 1}`);
  }));
  // every weight, for keyboard, touch and screen readers (the cells say theirs only on hover)
  const rows = result.layers.flatMap((heads, l) => heads.flatMap((map, h) => map.map((row, i) =>
    [`${l + 1}, ${h + 1}, ${shown[i]}`, ...shown.map((_, j) => (j <= i ? row[j].toFixed(3) : ""))])));
  valuesTable(box, ["layer, head, position", ...shown], rows);
}

async function showEmbedding(run, box) {
  const e = await api(`/api/runs/${encodeURIComponent(run.id)}/embedding`);
  el("h3", {}, box, `Character embedding (${e.dims}-D${e.dims > 2 ? ", first two principal directions" : ""})`);
  const W = 520, H = 420, m = 28;
  const xs = e.points.map((p) => p[0]), ys = e.points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const x = (v) => m + ((v - x0) / (x1 - x0 || 1)) * (W - 2 * m);
  const y = (v) => H - m - ((v - y0) / (y1 - y0 || 1)) * (H - 2 * m);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `character embedding of ${run.id}` }, box);
  svgEl("rect", { x: 0.5, y: 0.5, width: W - 1, height: H - 1, fill: "#fbfbfd", stroke: "#e1e4ea" }, svg);
  e.chars.forEach((ch, i) => {
    const vowel = "aeiou".includes(ch), special = i === 0;
    const fill = special ? "#c62828" : vowel ? "#b5520f" : "#4553d6";
    svgEl("circle", { cx: x(xs[i]), cy: y(ys[i]), r: 11, fill, "fill-opacity": 0.16, stroke: fill }, svg);
    svgEl("text", { x: x(xs[i]), y: y(ys[i]) + 4, "text-anchor": "middle", style: `fill:${fill};font-weight:600` }, svg,
      shownChar(ch, special));
  });
  const share = e.explained.map((v) => `${Math.round(100 * v)}%`).join(" and ");
  el("p", { class: "hint" }, box, `Characters the model treats alike sit together (vowels in orange, the boundary ` +
    `${shownChar("", true)} in red). The two axes hold ${share} of the spread.`);
}

// Up to 30 characters, each cell says its pair and value; past that (a 61-character vocabulary) the cells
// are too small to print in, so the matrix is a heat map and the cell under the pointer, or a row picked
// from the list, is read out below it in full.
async function showBigram(run, box) {
  const b = await api(`/api/runs/${encodeURIComponent(run.id)}/bigram`);
  const counted = b.counts !== null;
  el("h3", {}, box, counted ? "Bigram counts: row = this character, column = the next one" :
    "Bigram probabilities P(next | previous) learned by the network");
  const V = b.chars.length, printed = V <= 30, cell = printed ? 34 : 14, pad = 18;
  const name = (i) => shownChar(b.chars[i], i === 0);
  const size = pad + V * cell;
  const svg = svgEl("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": `bigram table of ${run.id}, ${V} characters` }, box);
  const values = counted ? b.counts : b.probs;
  const top = Math.max(...values.flat());
  const readout = el("p", { class: "readout", "aria-live": "polite" }, box, "Point at a cell, or pick a row below.");
  const about = (i, j) => `${spokenChar(b.chars[i], i === 0)} → ${spokenChar(b.chars[j], j === 0)}: ` +
    `P = ${b.probs[i][j].toFixed(4)}${counted ? `, ${values[i][j]} times` : ""}`;
  for (let i = 0; i < V; i++) {
    svgEl("text", { x: pad + (i + 0.5) * cell, y: 12, "text-anchor": "middle", style: printed ? null : "font-size:9px" }, svg, name(i));
    svgEl("text", { x: 8, y: pad + (i + 0.7) * cell, "text-anchor": "middle", style: printed ? null : "font-size:9px" }, svg, name(i));
    for (let j = 0; j < V; j++) {
      const v = values[i][j], shade = Math.sqrt(v / top);
      const g = svgEl("g", { "data-i": i, "data-j": j }, svg);
      svgEl("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1,
        fill: `rgba(69, 83, 214, ${shade.toFixed(3)})` }, g);
      if (printed) {
        const ink = shade > 0.5 ? "#fff" : INK;
        svgEl("text", { x: pad + (j + 0.5) * cell, y: pad + i * cell + 13, "text-anchor": "middle", style: `font-size:9px;fill:${ink}` }, g, name(i) + name(j));
        svgEl("text", { x: pad + (j + 0.5) * cell, y: pad + i * cell + 26, "text-anchor": "middle", style: `font-size:8px;fill:${ink}` },
          g, counted ? String(v) : v.toFixed(2));
      }
      svgEl("title", {}, g, about(i, j));
    }
  }
  svg.addEventListener("pointermove", (event) => {
    const g = event.target.closest("g[data-i]");
    if (g) readout.textContent = about(Number(g.dataset.i), Number(g.dataset.j));
  });
  bigramRow(box, b, V, name, about);
}

// One row of the table, most likely next characters first (those it ever gives): every value, readable at any size.
function bigramRow(box, b, V, name, about) {
  const label = el("label", { class: "inline" }, box, "row: after ");
  const select = el("select", { name: "bigram_row", "aria-label": "bigram row" }, label);
  for (let i = 0; i < V; i++) el("option", { value: i }, select, name(i));
  const list = el("ol", { class: "bigram-row" }, box);
  const fill = () => {
    const i = Number(select.value);
    const order = [...Array(V).keys()].sort((a, c) => b.probs[i][c] - b.probs[i][a]).filter((j) => b.probs[i][j] > 0);
    list.replaceChildren(...order.map((j) => el("li", {}, null, about(i, j))));
  };
  select.addEventListener("change", fill);
  fill();
}

// Part 3: the first tanh layer's outputs on 32 training examples, as a histogram and as the saturation map
// (one row per example, one column per neuron, white where |h| > threshold: no gradient flows there). A
// layer that reads several positions (a WaveNet's first level) still has a column per neuron: grey is the
// share of the example's positions where that neuron saturates.
async function showTanh(run, box) {
  const t = await api(`/api/runs/${encodeURIComponent(run.id)}/tanh`);
  const positions = t.variants[0].positions;
  el("h3", {}, box, `The tanh layer on ${t.examples} training examples: trained weights and fresh initialisations`);
  el("p", { class: "hint" }, box, `White in a map: |h| > ${t.threshold}, where tanh is flat and passes back almost no ` +
    `gradient; one row per example, one column per neuron (${t.variants[0].saturated[0].length}). ` +
    (positions > 1 ? `The layer reads ${positions} positions of each example: grey where a neuron saturates at ` +
      "some of them, white at all. " : "") + "A column white in every row is a dead neuron.");
  const grid = el("div", { class: "tanh-grid" }, box);
  for (const v of t.variants) {
    const fig = el("figure", {}, grid);
    const cells = v.saturated.flat(), saturated = cells.reduce((a, b) => a + b, 0) / cells.length;
    el("figcaption", {}, fig, `${v.label}: ${(100 * saturated).toFixed(1)}% saturated`);
    histogram(fig, v.h, `histogram of tanh outputs, ${v.label}`);
    saturationMap(fig, v.saturated, `saturation map, ${v.label}: ${(100 * saturated).toFixed(1)}% saturated`);
  }
}

function histogram(parent, values, label) {
  const bins = new Array(40).fill(0);
  for (const h of values) bins[Math.min(39, Math.floor(((h + 1) / 2) * 40))]++;
  const W = 240, H = 90, top = Math.max(...bins, 1), bw = W / 40;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H + 14}`, role: "img", "aria-label": label }, parent);
  bins.forEach((c, k) => svgEl("rect", { x: k * bw, y: H - (c / top) * H, width: bw - 1, height: (c / top) * H, fill: "#4553d6" }, svg));
  for (const [x, text] of [[0, "-1"], [W / 2, "0"], [W, "1"]]) {
    svgEl("text", { x, y: H + 12, "text-anchor": x === 0 ? "start" : x === W ? "end" : "middle" }, svg, text);
  }
}

function saturationMap(parent, rows, label) {
  const canvas = el("canvas", { width: rows[0].length, height: rows.length, role: "img", "aria-label": label, class: "pixels" }, parent);
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  rows.forEach((row, i) => row.forEach((sat, j) => {
    const k = 4 * (i * canvas.width + j), v = Math.round(255 * sat);
    image.data.set([v, v, v, 255], k);
  }));
  ctx.putImageData(image, 0, 0);
}

// Part 4: dlogits = (softmax - one-hot) / n for every target of the items typed here: each row sums to 0,
// the right character pulled down (blue), the others pushed up by what the model gave them (red).
async function showDlogits(run, box) {
  el("h3", {}, box, "dlogits: the gradient of the loss on the logits, for a batch of your items");
  const form = el("form", { class: "dlogits-form", autocomplete: "off" }, box);
  const label = el("label", {}, form, "items, separated by commas");
  const input = el("input", { name: "items", type: "text", value: inspected.item || "emma, olivia, ava" }, label);
  el("button", { type: "submit" }, el("div", { class: "actions" }, form), "Show");
  el("p", { class: "error", "aria-live": "polite" }, form);
  const out = el("div", {}, box);
  const draw = async (event) => {
    if (event) event.preventDefault();
    const items = input.value.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      const d = await api("/api/dlogits", { run: run.id, items });
      showError(form, null);
      dlogitsImage(out, d);
    } catch (error) {
      showError(form, error);
      out.replaceChildren();
    }
  };
  form.addEventListener("submit", draw);
  await draw();
}

function dlogitsImage(box, d) {
  box.replaceChildren();
  const R = d.targets.length, C = d.chars.length, cell = 12, pad = 16;
  const top = Math.max(...d.dlogits.flat().map(Math.abs), 1e-12);
  const svg = svgEl("svg", { viewBox: `0 0 ${pad + C * cell} ${pad + R * cell}`, role: "img", class: "dlogits-image",
    "aria-label": `dlogits of ${R} targets over ${C} characters`, style: `max-width:${(pad + C * cell) * 1.6}px` }, box);
  d.chars.forEach((ch, j) => svgEl("text", { x: pad + (j + 0.5) * cell, y: 11, "text-anchor": "middle", style: "font-size:9px" }, svg, shownChar(ch, j === 0)));
  d.targets.forEach((target, i) => {
    const isEnd = d.ends.includes(i);
    svgEl("text", { x: 7, y: pad + (i + 0.75) * cell, "text-anchor": "middle", style: "font-size:9px" }, svg, shownChar(target, isEnd));
    d.dlogits[i].forEach((g, j) => {
      const a = Math.min(1, Math.abs(g) / top);
      const rect = svgEl("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1,
        fill: g < 0 ? `rgba(40, 70, 200, ${a.toFixed(3)})` : `rgba(200, 50, 40, ${a.toFixed(3)})` }, svg);
      svgEl("title", {}, rect, `target ${spokenChar(target, isEnd)}, logit of ${spokenChar(d.chars[j], j === 0)}: ${g.toExponential(2)}`);
    });
  });
  el("p", { class: "hint" }, box, `${R} targets (a row each: the characters of your items, then each one's end ` +
    `${shownChar("", true)}); blue: the target, pulled down by 1 − p; red: every other character, pushed up by its p. Each row sums to 0.`);
}
