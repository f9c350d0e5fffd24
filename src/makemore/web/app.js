// The makemore playground: everything here goes through the JSON API (/docs), nothing else.
"use strict";

import { chartSettings, drawLossChart } from "./chart.js";
import { $, api, colourOf, count, debounce, duration, el, fillRunSelect, fmt, runById, state } from "./core.js";
import { copySamples, downloadScored, downloadText, generate, settings } from "./generate.js";
import { showInside } from "./inside.js";
import { inspect, renderPanes } from "./inspect.js";
import { resettle, startWalk, wireSteps } from "./steps.js";

const POLL_MS = 2000; // how often the page asks for new runs, new checkpoints and longer logs

// --- runs, kept live ------------------------------------------------------------------------------
function setStatus(text) {
  $("#status").textContent = text;
}

async function loadRuns() {
  state.runs = await api("/api/runs");
  setStatus(`${state.runs.length} run${state.runs.length === 1 ? "" : "s"} served`);
  state.runs.filter((run) => !run.members).slice(0, 4).forEach((run) => state.curves.add(run.id));
  fillRunsTable();
  fillSelects();
  const transformer = state.runs.find((run) => run.views.includes("attention"));
  if (transformer) $("#inside select[name=run]").value = transformer.id;
  const other = state.runs.find((run) => run.id !== $("#inspect select[name=run]").value);
  if (other) $("#inspect select[name=other]").value = other.id;
  readUrl();
  await Promise.all([refreshCurves(), generate(null, walkItem), inspect(null, showInside)]);
  for (const run of state.runs) await loadEvaluation(run); // one at a time: each evaluates whole splits
  setTimeout(poll, POLL_MS);
}

function fillSelects() {
  for (const form of ["#generate", "#inspect", "#inside", "#steps"]) fillRunSelect($(`${form} select[name=run]`), state.runs);
  fillRunSelect($("#inspect select[name=other]"), state.runs, true);
}

// New runs, new best checkpoints (a run still training), longer logs: asked for every POLL_MS. A
// request that fails only shows the banner; the next one that succeeds clears it and the status line.
async function poll() {
  try {
    const runs = await api("/api/runs");
    setStatus(`${runs.length} run${runs.length === 1 ? "" : "s"} served`);
    const changed = [];
    for (const run of runs) {
      const known = runById(run.id);
      if (!known) state.runs.push(run);
      else if (known.step !== run.step || known.best_dev !== run.best_dev) Object.assign(known, run);
      else continue;
      changed.push(runById(run.id));
    }
    if (changed.some((run) => !$(`#runs tr[data-run="${CSS.escape(run.id)}"]`))) {
      fillRunsTable();
      fillSelects();
    } else {
      changed.forEach(fillRunRow);
    }
    await refreshCurves();
    for (const run of changed) await loadEvaluation(run);
  } catch {
    // unreachable: the banner says so; anything else shows where it happened
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function fillRunsTable() {
  const body = $("#runs tbody");
  body.replaceChildren();
  for (const run of state.runs) {
    const row = el("tr", { "data-run": run.id }, body);
    if (run.members) {
      // an ensemble was never trained as one: it has no curve to tick, nor a step of its own
      el("td", { class: "no-curve", title: "an ensemble was never trained as one: no training curve" }, row, "–");
    } else {
      const pick = el("input", { type: "checkbox", "aria-label": `curve of ${run.id}` }, el("td", {}, row));
      pick.checked = state.curves.has(run.id);
      pick.addEventListener("change", () => {
        pick.checked ? state.curves.add(run.id) : state.curves.delete(run.id);
        drawLossChart(); // at once: the curve goes (or comes) with the tick
        refreshCurves();
      });
    }
    const name = el("td", {}, row);
    el("span", { class: "swatch", style: `background:${colourOf(run)}` }, name);
    name.append(run.id);
    el("td", {}, row, run.type);
    el("td", { class: "num" }, row, count(run.params));
    el("td", { class: "num", "data-col": "step" }, row);
    for (const split of ["train", "dev", "test"]) el("td", { class: "num", "data-split": split }, row);
    el("td", { class: "num", "data-col": "time" }, row);
    fillRunRow(run);
    if (state.evaluations[run.id] && state.evaluations[run.id].step === run.step) showEvaluation(run);
  }
}

// The checkpoint served now: its step, and its NLLs once evaluated ("…" until then).
function fillRunRow(run) {
  const row = $(`#runs tr[data-run="${CSS.escape(run.id)}"]`);
  if (!row) return;
  $("[data-col=step]", row).textContent = run.members ? "each its own" : count(run.step);
  $("[data-col=time]", row).textContent = duration(run.train_seconds);
  for (const split of ["train", "dev", "test"]) {
    const cell = $(`td[data-split=${split}]`, row);
    cell.textContent = "…";
    cell.classList.add("pending");
  }
}

async function loadEvaluation(run) {
  const step = run.step;
  try {
    state.evaluations[run.id] = await api(`/api/runs/${encodeURIComponent(run.id)}/evaluation`);
  } catch (error) {
    setStatus(`${run.id}: ${error.message}`);
    return;
  }
  if (step === run.step) showEvaluation(run);
  renderPanes(); // percentiles among the dev items can be shown now
}

// Numbers an export recorded (it came without its data) are marked so; an ensemble of runs that trained
// on other data has none, and the note under the table says why.
function showEvaluation(run) {
  const row = $(`#runs tr[data-run="${CSS.escape(run.id)}"]`);
  if (!row) return;
  const report = state.evaluations[run.id];
  for (const split of ["train", "dev", "test"]) {
    const cell = $(`td[data-split=${split}]`, row);
    cell.textContent = report.unavailable ? "n/a" : fmt(report[split]) + (report.recorded ? " *" : "");
    cell.classList.remove("pending");
  }
  showRunNotes();
}

function showRunNotes() {
  const notes = [];
  for (const run of state.runs) {
    const report = state.evaluations[run.id];
    if (run.members) notes.push(`${run.id} mixes ${run.members.join(", ")}: the average of their next-character distributions.`);
    if (report && report.recorded) notes.push(`${run.id}: * recorded at export (it was exported without its data).`);
    if (report && report.unavailable) notes.push(`${run.id}: evaluation unavailable: ${report.unavailable}.`);
  }
  $("#run-notes").textContent = notes.join(" ");
}

async function refreshCurves() {
  let changed = false;
  for (const id of [...state.curves]) {
    try {
      const rows = await api(`/api/runs/${encodeURIComponent(id)}/metrics`);
      // a long log comes thinned, so its length can stay the same as it grows: compare the last row too
      const before = state.metrics[id];
      if (!before || rows.length !== before.length || JSON.stringify(rows.at(-1)) !== JSON.stringify(before.at(-1))) {
        changed = true;
      }
      state.metrics[id] = rows;
    } catch (error) {
      setStatus(`${id}: ${error.message}`);
    }
  }
  if (changed || !$("#loss-chart svg")) drawLossChart();
}

// --- the page's state in its address, so a view can be shared ----------------------------------
const URL_FIELDS = [ // [parameter, form, field]
  ["run", "#generate", "run"], ["n", "#generate", "n"], ["t", "#generate", "temperature"],
  ["top_k", "#generate", "top_k"], ["top_p", "#generate", "top_p"], ["prefix", "#generate", "prefix"],
  ["seed", "#generate", "seed"], ["new", "#generate", "new_only"], ["unique", "#generate", "unique"],
  ["item", "#inspect", "text"], ["a", "#inspect", "run"], ["b", "#inspect", "other"], ["inside", "#inside", "run"],
];

function readUrl() {
  const query = new URLSearchParams(location.search);
  for (const [key, form, name] of URL_FIELDS) {
    if (!query.has(key)) continue;
    const input = $(form).elements[name];
    if (input.type === "checkbox") input.checked = query.get(key) === "1";
    else if (input.tagName !== "SELECT" || [...input.options].some((o) => o.value === query.get(key))) input.value = query.get(key);
  }
  $("#generate").elements.temperature_slider.value = $("#generate").elements.temperature.value;
  if (query.has("smooth")) chartSettings.smooth = Number(query.get("smooth")) || 0;
  chartSettings.log = query.get("log") === "1";
  chartSettings.axis = query.get("x") === "time" ? "time" : "step";
  const f = $("#chart-settings").elements;
  f.smooth.value = chartSettings.smooth;
  f.log.checked = chartSettings.log;
  f.axis.value = chartSettings.axis;
}

function writeUrl() {
  const query = new URLSearchParams();
  for (const [key, form, name] of URL_FIELDS) {
    const input = $(form).elements[name];
    const value = input.type === "checkbox" ? (input.checked ? "1" : "") : input.value;
    if (value !== "" && value !== input.defaultValue) query.set(key, value);
  }
  if (chartSettings.smooth) query.set("smooth", chartSettings.smooth);
  if (chartSettings.log) query.set("log", "1");
  if (chartSettings.axis === "time") query.set("x", "time");
  history.replaceState(null, "", query.size ? `?${query}` : location.pathname);
}

// --- wiring ---------------------------------------------------------------------------------------
function walkItem(item, request) {
  return startWalk(request.run, item, request, true);
}

function wireGenerate() {
  const f = $("#generate").elements;
  const again = () => { writeUrl(); generate(null, walkItem); resettle(settings()); };
  $("#generate").addEventListener("submit", (event) => { event.preventDefault(); again(); });
  const regenerate = debounce(again, 150);
  f.temperature_slider.addEventListener("input", () => { f.temperature.value = f.temperature_slider.value; regenerate(); });
  f.temperature.addEventListener("change", () => { f.temperature_slider.value = f.temperature.value; });
  $("#copy").addEventListener("click", copySamples);
  $("#download-txt").addEventListener("click", downloadText);
  $("#download-csv").addEventListener("click", () => downloadScored("csv"));
  $("#download-json").addEventListener("click", () => downloadScored("json"));
}

function wireChart() {
  const f = $("#chart-settings").elements;
  const changed = () => {
    Object.assign(chartSettings, { smooth: Number(f.smooth.value), log: f.log.checked, axis: f.axis.value });
    $("#smooth-value").textContent = chartSettings.smooth.toFixed(2);
    drawLossChart();
    writeUrl();
  };
  for (const name of ["smooth", "log", "axis"]) f[name].addEventListener(name === "smooth" ? "input" : "change", changed);
  window.addEventListener("resize", debounce(drawLossChart, 200));
}

document.addEventListener("DOMContentLoaded", () => {
  wireGenerate();
  wireChart();
  wireSteps();
  $("#inspect").addEventListener("submit", (event) => { writeUrl(); inspect(event, showInside); });
  $("#inside").elements.run.addEventListener("change", () => { writeUrl(); showInside(); });
  $("#steps").addEventListener("submit", (event) => {
    event.preventDefault();
    const f = $("#steps").elements;
    startWalk(f.run.value, f.text.value, settings(), false);
  });
  loadRuns().catch((error) => setStatus(`cannot load the runs: ${error.message}`));
});
