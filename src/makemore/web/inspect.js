// Inspect an item: under one run, or two side by side, each character coloured by the probability the
// model gave it, and at any character everything the model considered there.
"use strict";

import { $, afterText, api, busy, colourOf, el, fmt, probColour, runById, showError, shownChar, spokenChar, state } from "./core.js";
import { drawDistribution, entriesOf } from "./distribution.js";

// The item last inspected (what "Look inside" shows), and a pane per run: its scores, or why it has none.
export const inspected = { item: null, panes: [] };

export async function inspect(event, then) {
  if (event) event.preventDefault();
  const form = $("#inspect");
  const item = form.elements.text.value;
  const ids = [form.elements.run.value, form.elements.other.value].filter((id, i, all) => id && all.indexOf(id) === i);
  await busy(form, "inspecting…", async () => {
    const answers = await Promise.allSettled(ids.map((run) => api("/api/score", { run, items: [item] })));
    const panes = answers.map((a, i) => ({ run: runById(ids[i]), score: a.value && a.value.items[0],
      error: a.reason, selected: 0, next: null }));
    const refused = panes.filter((p) => p.error);
    if (refused.length === panes.length) { // no run could score it: the item is to blame (or the server)
      const first = refused[0].error;
      showError(form, Object.assign(new first.constructor(panes.map(whyNot).join("; ")), { field: first.field && "text" }));
      inspected.item = null;
    } else {
      showError(form, null);
      inspected.item = item.trim();
    }
    inspected.panes = panes;
    renderPanes();
    await Promise.all(panes.filter((p) => p.score).map((p) => selectPosition(p, 0)));
  });
  if (then) await then();
}

const whyNot = (pane) => `${pane.run.id}: ${pane.error.message}`;

function percentileOf(run, perChar) {
  const q = state.evaluations[run.id] && state.evaluations[run.id].dev_percentiles;
  if (!q || !q.length || perChar === null) return null;
  let k = 0;
  while (k < q.length && q[k] < perChar) k++;
  return Math.min(100, Math.max(0, k === 0 ? 0 : k - 1 + (perChar - q[k - 1]) / ((q[k] ?? perChar) - q[k - 1] || 1)));
}

export function renderPanes() {
  const box = $("#panes");
  box.replaceChildren();
  for (const pane of inspected.panes) {
    const div = el("div", { class: "pane", "data-run": pane.run.id }, box);
    el("h3", { style: `color:${colourOf(pane.run)}` }, div, `${pane.run.id} (${pane.run.type})`);
    if (pane.error) {
      el("p", { class: "error pane-error" }, div, whyNot(pane));
      continue;
    }
    renderStrip(pane, div);
    renderNumbers(pane, div);
    el("p", { class: "picked" }, div, "\u00a0");
    el("div", { class: "chart next" }, div);
    if (pane.next) drawNext(pane);
  }
}

function renderStrip(pane, div) {
  const strip = el("div", { class: "strip", role: "group", "aria-label": `characters of the item under ${pane.run.id}` }, div);
  const last = pane.score.chars.length - 1;
  pane.score.chars.forEach(([ch, nll], i) => {
    const p = nll === null ? 0 : Math.exp(-nll);
    const isEnd = i === last;
    const b = el("button", { type: "button", class: `${i === pane.selected ? "selected" : ""}${isEnd ? " end" : ""}`,
      style: `background:${probColour(p)}`, "aria-label": `${spokenChar(ch, isEnd)}: p = ${p.toFixed(4)}, NLL ${fmt(nll, 3)}`,
      title: `${spokenChar(ch, isEnd)}: p = ${p.toFixed(4)}, NLL ${fmt(nll, 3)}` }, strip);
    el("span", { class: "ch" }, b, shownChar(ch, isEnd));
    el("span", { class: "p" }, b, p >= 0.995 ? "1.00" : p.toFixed(2));
    b.addEventListener("click", () => selectPosition(pane, i));
  });
}

function renderNumbers(pane, div) {
  const { score, run } = pane;
  const numbers = el("p", { class: "numbers" }, div);
  numbers.append("NLL ");
  el("b", {}, numbers, fmt(score.nll, 3));
  numbers.append(" in total, ");
  el("b", {}, numbers, fmt(score.nll_per_char, 3));
  numbers.append(" per character");
  const pct = percentileOf(run, score.nll_per_char);
  numbers.append(pct === null ? " (dev percentile: evaluating…)" : `: more surprising than ${Math.round(pct)}% of dev items`);
}

async function selectPosition(pane, i) {
  pane.selected = i;
  try {
    pane.next = { at: i, ...(await api("/api/next", { run: pane.run.id, text: pane.score.item.slice(0, i) })) };
  } catch (error) {
    showError($("#inspect"), error);
    return;
  }
  const div = $(`.pane[data-run="${CSS.escape(pane.run.id)}"]`);
  if (!div || !inspected.panes.includes(pane)) return;
  div.querySelectorAll(".strip button").forEach((b, k) => b.classList.toggle("selected", k === i));
  drawNext(pane);
}

function drawNext(pane) {
  const div = $(`.pane[data-run="${CSS.escape(pane.run.id)}"]`);
  const { at } = pane.next;
  const [actual, nll] = pane.score.chars[at];
  const isEnd = at === pane.score.chars.length - 1;
  const entries = entriesOf(pane.next);
  const highlight = entries.findIndex(([ch, , end]) => end === isEnd && (isEnd || ch === actual));
  const before = pane.score.item.slice(0, at);
  $(".picked", div).textContent = `${afterText(before)}: ${spokenChar(actual, isEnd)} had p = ${Math.exp(-nll).toFixed(4)} ` +
    `(NLL ${fmt(nll, 3)}), rank ${highlight + 1} of ${entries.length}`;
  const box = $(".next", div);
  drawDistribution(box, { entries, highlight, colour: colourOf(pane.run),
    title: `${pane.run.id}: the next character ${afterText(before)}` });
  el("p", { class: "hint caption" }, box, `${afterText(before)}, every character the model could put next; ` +
    `${shownChar(actual, isEnd)} (the item's) in black${entries.some((e) => e[2]) ? `; ${shownChar("", true)}: the end of the item` : ""}`);
}
