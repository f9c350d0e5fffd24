// Generate: items drawn from a run, each tagged with the split it appears in (or new), exportable.
"use strict";

import { $, api, busy, count, el, painted, showError, state } from "./core.js";

// What the list on screen is: the run and settings that drew it (exports are named after these, not
// after whatever the form says now).
export const samples = { request: null, step: null, items: [] };
let inFlight = null; // the request a newer one supersedes: cancelled, so a drag queues no work

export function settings() {
  const f = $("#generate").elements;
  const number = (value) => (value === "" ? null : Number(value));
  return {
    run: f.run.value, n: Number(f.n.value), temperature: Number(f.temperature.value),
    top_k: number(f.top_k.value), top_p: number(f.top_p.value), prefix: f.prefix.value,
    seed: Number(f.seed.value), new_only: f.new_only.checked, unique: f.unique.checked,
  };
}

export async function generate(event, onItem) {
  if (event) event.preventDefault();
  const form = $("#generate");
  const request = settings();
  if (inFlight) inFlight.abort();
  const controller = (inFlight = new AbortController());
  const started = performance.now();
  try {
    await busy(form, `generating ${count(request.n)}…`, async () => {
      const result = await api("/api/sample", request, controller.signal);
      showError(form, null);
      Object.assign(samples, { request, step: result.step, items: result.items });
      renderSamples(onItem);
      await painted();
      summarise(performance.now() - started, result.note);
    });
  } catch (error) {
    if (error.name !== "AbortError") showError(form, error);
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

function renderSamples(onItem) {
  const list = $("#samples");
  const fragment = document.createDocumentFragment();
  samples.items.forEach(({ item, split }, i) => {
    const li = el("li", {}, fragment);
    el("button", { type: "button", class: "item", "data-i": i, title: "step through how this item was drawn" }, li, item);
    el("span", { class: `tag ${split}` }, li, split);
  });
  list.replaceChildren(fragment);
  list.onclick = (event) => {
    const button = event.target.closest("button.item");
    if (button) onItem(samples.items[Number(button.dataset.i)].item, samples.request);
  };
  for (const id of ["#copy", "#download-txt", "#download-csv", "#download-json"]) $(id).disabled = !samples.items.length;
}

function summarise(ms, note) {
  const { items, request, step } = samples;
  const run = state.runs.find((r) => r.id === request.run);
  const counts = {};
  for (const { split } of items) counts[split] = (counts[split] || 0) + 1;
  const parts = Object.entries(counts).map(([split, n]) => `${count(n)} ${split}`);
  const distinct = new Set(items.map((s) => s.item)).size;
  $("#sample-summary").textContent = `${count(items.length)} item${items.length === 1 ? "" : "s"} ` +
    `(${count(distinct)} distinct) from ${request.run} ` +
    `${run && run.members ? "" : `at step ${count(step)}, `}drawn and shown in ${Math.round(ms)} ms: ${parts.join(", ") || "none"}` +
    (note ? `. ${note}` : "");
}

export async function copySamples() {
  try {
    await navigator.clipboard.writeText(samples.items.map((s) => s.item).join("\n") + "\n");
    $("#sample-summary").textContent = `copied ${count(samples.items.length)} items`;
  } catch {
    $("#sample-summary").textContent = "the browser refused the clipboard; use Download instead";
  }
}

function save(text, type, extension) {
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type })),
    download: `${samples.request.run}-samples.${extension}` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export function downloadText() {
  save(samples.items.map((s) => s.item).join("\n") + "\n", "text/plain", "txt");
}

// CSV and JSON carry each item's split and its scores (NLL in total and per character) under the run
// that drew it; the scores are asked for when the export is.
async function scored() {
  const { request, items } = samples;
  const result = await api("/api/score", { run: request.run, items: items.map((s) => s.item) });
  return items.map((s, i) => ({ ...s, nll: result.items[i].nll, nll_per_char: result.items[i].nll_per_char }));
}

const csvField = (s) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

export async function downloadScored(kind) {
  let rows;
  try {
    rows = await scored();
  } catch (error) {
    showError($("#generate"), error);
    return;
  }
  if (kind === "csv") {
    const lines = ["item,split,nll,nll_per_char", ...rows.map((r) => [csvField(r.item), r.split, r.nll, r.nll_per_char].join(","))];
    save(lines.join("\n") + "\n", "text/csv", "csv");
  } else {
    const { request, step } = samples;
    save(JSON.stringify({ ...request, step, items: rows }, null, 1) + "\n", "application/json", "json");
  }
}
