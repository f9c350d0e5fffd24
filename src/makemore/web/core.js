// What every part of the playground shares: the API client, DOM helpers, the runs, how a character is shown.
"use strict";

// Run colours: each readable as text on white (contrast over 4.5:1), none of them the highlight (INK),
// so a highlighted bar stays apart from any run's bars.
export const COLOURS = ["#4553d6", "#b3530f", "#0b7489", "#b7407a", "#6b4fe0", "#7d6400", "#2b7f3f", "#a3472e"];
export const INK = "#1d2330";
export const SVG = "http://www.w3.org/2000/svg";
export const state = { runs: [], evaluations: {}, metrics: {}, curves: new Set() };
export const $ = (selector, root = document) => root.querySelector(selector);

// A request that never reached the server (it is stopped, or the network is down): not the user's
// input's fault, so no field is blamed; the banner says so until a request gets through again.
export class Unreachable extends Error {}

export async function api(path, body, signal) {
  const options = body === undefined ? { signal } : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    setReachable(false);
    throw new Unreachable("the server is not answering");
  }
  setReachable(true);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw Object.assign(new Error(data.error || response.statusText), { field: data.field });
  return data;
}

function setReachable(reachable) {
  const banner = $("#offline");
  if (banner) banner.hidden = reachable;
}

export function el(tag, attrs = {}, parent = null, text = null) {
  const node = attrs.svg ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key !== "svg" && value !== undefined && value !== null) node.setAttribute(key, value);
  }
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}
export const svgEl = (tag, attrs, parent, text = null) => el(tag, { ...attrs, svg: true }, parent, text);

// A form's error line and the field to blame; an unreachable server blames none (the banner says it).
export function showError(form, error) {
  form.querySelectorAll(".invalid").forEach((node) => node.classList.remove("invalid"));
  const unreachable = error instanceof Unreachable;
  $(".error", form).textContent = error && !unreachable ? error.message : "";
  if (error && error.field && !unreachable) {
    const input = form.elements[error.field.split(".")[0]];
    if (input && input.classList) input.classList.add("invalid");
  }
}

// A form's button busy while its request runs: disabled, saying what it does. A request superseded by a
// newer one (a slider dragged on) ends first; the form stays busy until the newest one ends.
const newest = new WeakMap(); // form -> the work it is busy with now
export async function busy(form, label, work) {
  const button = $("button[type=submit]", form);
  const idle = button.dataset.idle || (button.dataset.idle = button.textContent);
  const mine = {};
  newest.set(form, mine);
  button.disabled = true;
  button.textContent = label;
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    if (newest.get(form) === mine) {
      button.disabled = false;
      button.textContent = idle;
      form.removeAttribute("aria-busy");
    }
  }
}

export const fmt = (x, digits = 4) => (x === null || x === undefined ? "–" : x.toFixed(digits));
export const colourOf = (run) => COLOURS[Math.max(0, state.runs.indexOf(run)) % COLOURS.length];
export const runById = (id) => state.runs.find((run) => run.id === id);
export const count = (n) => n.toLocaleString("en-US");

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds), m = Math.floor(whole / 60); // rounded first: 119.6 s is 2 min 0 s, not 1 min 60 s
  return m < 60 ? `${m} min ${whole % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// A character as the page shows it: the end of an item is END, a space a visible ␣, so neither is a
// blank box and a literal '.' in the data is never mistaken for the end.
export const END = "⏎";
export const SPACE = "␣";
export const shownChar = (ch, isEnd = false) => (isEnd ? END : ch === " " ? SPACE : ch);
export const afterText = (text) => (text ? `after "${text}"` : "at the start");
export const spokenChar = (ch, isEnd = false) => (isEnd ? "the end" : ch === " " ? "space" : `'${ch}'`);

// probability -> colour: red (surprised) through amber to green (expected)
export const probColour = (p) => `hsl(${Math.round(120 * Math.sqrt(p))}, 70%, ${88 - 18 * p}%)`;

export function ticks(lo, hi, n) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
  const nice = [1, 2, 5, 10].map((k) => k * step).find((s) => (hi - lo) / s <= n) || 10 * step;
  const out = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + 1e-9; t += nice) out.push(+t.toFixed(10));
  return out;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// After the browser has drawn what was just put in the page: a time measured to here includes drawing.
export const painted = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

export function fillRunSelect(select, runs, optional = false) {
  const keep = select.value;
  select.replaceChildren();
  if (optional) el("option", { value: "" }, select, "none");
  for (const run of runs) el("option", { value: run.id }, select, `${run.id} (${run.type})`);
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

// A distribution as a table: the values a chart shows on hover, for keyboard, touch and screen readers.
export function valuesTable(parent, heads, rows) {
  const details = el("details", { class: "values" }, parent);
  el("summary", {}, details, "values");
  const table = el("table", {}, details);
  const head = el("tr", {}, el("thead", {}, table));
  for (const h of heads) el("th", {}, head, h);
  const body = el("tbody", {}, table);
  for (const row of rows) {
    const tr = el("tr", {}, body);
    row.forEach((cell, i) => el("td", { class: i ? "num" : "" }, tr, cell));
  }
  return details;
}
