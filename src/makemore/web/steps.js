// Step through a name: at each character, the model's distribution, the one temperature, top-k and top-p
// make of it (what is drawn from), the character drawn, and the NLL so far. Forward draws (or follows the
// name), back undoes, "draw again" draws a different character from the same point.
"use strict";

import { $, afterText, api, colourOf, el, runById, showError, shownChar, spokenChar } from "./core.js";
import { drawDistribution, entriesOf, sampledEntriesOf } from "./distribution.js";

// chars: the name so far (drawn or given); at: the position shown (the character at `at` is drawn next);
// ended: the end was drawn at `ended`. Answers of /api/next are kept per prefix and settings.
const walk = { run: null, how: null, chars: [], at: 0, ended: null, answers: new Map() };

// A whole item (a generated name: its end is part of it) or a prefix to go on from.
export function startWalk(run, text, how, whole) {
  Object.assign(walk, { run, how, chars: [...text], at: 0, ended: whole ? [...text].length : null, answers: new Map() });
  const f = $("#steps").elements;
  f.run.value = run;
  f.text.value = text;
  return showStep();
}

// The settings changed in Generate: the same name, seen under them.
export function resettle(how) {
  if (!walk.run) return null;
  walk.how = how;
  return showStep();
}

async function answerAt(i) {
  const text = walk.chars.slice(0, i).join("");
  const { temperature, top_k, top_p } = walk.how;
  const key = JSON.stringify([walk.run, text, temperature, top_k, top_p]);
  if (!walk.answers.has(key)) walk.answers.set(key, await api("/api/next", { run: walk.run, text, temperature, top_k, top_p }));
  return walk.answers.get(key);
}

// The index (in an answer's order) of the character at position i: the end when the walk ended there.
function indexAt(answer, i) {
  if (walk.ended === i) return answer.end;
  return i < walk.chars.length ? answer.next.findIndex(([ch], k) => k !== answer.end && ch === walk.chars[i]) : -1;
}

async function nllUpTo(i) {
  let total = 0;
  for (let k = 0; k < i; k++) {
    const answer = await answerAt(k);
    total -= Math.log(answer.next[indexAt(answer, k)][1]);
  }
  return total;
}

// Draw one character from what sampling draws from (the page's own draw: Math.random, not the server's seed).
function draw(answer) {
  let u = Math.random(), k = 0;
  while (k < answer.sampled.length - 1 && (u -= answer.sampled[k]) > 0) k++;
  while (answer.sampled[k] === 0 && k > 0) k--; // rounding past the last kept character
  return k;
}

function choose(answer, k) {
  walk.chars = walk.chars.slice(0, walk.at);
  walk.ended = k === answer.end ? walk.at : null;
  if (k !== answer.end) walk.chars.push(answer.next[k][0]);
}

export async function forward() {
  const answer = await answerAt(walk.at);
  if (indexAt(answer, walk.at) < 0) choose(answer, draw(answer));
  if (walk.ended !== walk.at) walk.at += 1;
  return showStep();
}

export function back() {
  walk.at = Math.max(0, walk.at - 1);
  return showStep();
}

export async function drawAgain() {
  choose(await answerAt(walk.at), draw(await answerAt(walk.at)));
  return showStep();
}

async function pick(k) {
  choose(await answerAt(walk.at), k);
  return showStep();
}

async function showStep() {
  const form = $("#steps");
  const run = runById(walk.run);
  let answer, nll;
  try {
    answer = await answerAt(walk.at);
    nll = await nllUpTo(walk.at);
    showError(form, null);
  } catch (error) {
    showError(form, error);
    return;
  }
  const k = indexAt(answer, walk.at);
  renderName(walk.at);
  const { temperature, top_k, top_p } = walk.how;
  const drawn = k < 0 ? "not drawn yet: forward draws it" : `${spokenChar(answer.next[k][0], k === answer.end)} ` +
    `(p = ${answer.next[k][1].toFixed(4)} by the model, ${answer.sampled[k].toFixed(4)} to draw from)`;
  $("#step-facts").textContent = `${run.id}, step ${walk.at + 1}: ${afterText(walk.chars.slice(0, walk.at).join(""))}, ` +
    `${drawn}. NLL so far ${nll.toFixed(3)} nats over ${walk.at} character${walk.at === 1 ? "" : "s"}.`;
  drawDistribution($("#step-model"), { entries: entriesOf(answer), highlight: k, colour: colourOf(run),
    title: `the model's distribution ${afterText(walk.chars.slice(0, walk.at).join(""))}`, onPick: pick });
  drawDistribution($("#step-sampled"), { entries: sampledEntriesOf(answer), highlight: k, colour: colourOf(run),
    title: `what is drawn from at temperature ${temperature}`, onPick: pick });
  $("#step-sampled-title").textContent = `what is drawn from: temperature ${temperature}, top-k ${top_k ?? "all"}, ` +
    `top-p ${top_p ?? 1} (${answer.sampled.filter((p) => p > 0).length} characters kept)`;
  $("#step-back").disabled = walk.at === 0;
  $("#step-forward").disabled = walk.ended !== null && walk.at >= walk.ended;
  $("#step-again").disabled = false;
  await showStepAttention(run);
}

function renderName(at) {
  const box = $("#step-name");
  box.replaceChildren();
  const shown = walk.ended === null ? walk.chars : [...walk.chars, ""];
  shown.forEach((ch, i) => {
    const isEnd = i === walk.ended;
    const b = el("button", { type: "button", class: i === at ? "selected" : "", "aria-label": `go to ${spokenChar(ch, isEnd)}` },
      box, shownChar(ch, isEnd));
    b.addEventListener("click", () => { walk.at = i; showStep(); });
  });
}

// A transformer's attention at this step: how much the position being predicted from takes from each
// earlier one, for every layer and head.
async function showStepAttention(run) {
  const box = $("#step-attention");
  box.replaceChildren();
  if (!run.views.includes("attention")) return;
  const text = walk.chars.slice(0, walk.at).join("");
  let result;
  try {
    result = await api("/api/attention", { run: run.id, text });
  } catch (error) {
    el("p", { class: "error" }, box, `${run.id}: ${error.message}`);
    return;
  }
  el("h3", {}, box, `Attention of the last position (${shownChar(result.tokens.at(-1))}) over what came before`);
  const table = el("table", { class: "attention-row" }, box);
  const head = el("tr", {}, el("thead", {}, table));
  el("th", {}, head, "layer, head");
  for (const tok of result.tokens) el("th", { class: "num" }, head, shownChar(tok));
  const body = el("tbody", {}, table);
  result.layers.forEach((heads, l) => heads.forEach((map, h) => {
    const tr = el("tr", {}, body);
    el("td", {}, tr, `${l + 1}, ${h + 1}`);
    for (const w of map.at(-1)) {
      const ink = w > 0.55 ? "#fff" : "inherit"; // dark cells: white figures, for contrast
      el("td", { class: "num", style: `background:rgba(69, 83, 214, ${(0.8 * w).toFixed(3)});color:${ink}` }, tr, w.toFixed(2));
    }
  }));
}

export function wireSteps() {
  $("#step-back").addEventListener("click", back);
  $("#step-forward").addEventListener("click", forward);
  $("#step-again").addEventListener("click", drawAgain);
  $("#steps-card").addEventListener("keydown", (event) => {
    if (event.target.matches("input, select")) return;
    if (event.key === "ArrowLeft") { event.preventDefault(); back(); }
    if (event.key === "ArrowRight") { event.preventDefault(); forward(); }
  });
}
