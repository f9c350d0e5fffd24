// A distribution over the next character as bars, every character of the vocabulary (a 61-character
// model gets 61 bars: the chart scrolls sideways rather than cut any), most likely first.
"use strict";

import { INK, el, shownChar, spokenChar, svgEl, valuesTable } from "./core.js";

const BAR = 12; // px per bar at least: a label of 10 px each never touches the next one

// entries: [[char, p, isEnd], …]; highlight: the index of the character drawn or read next (drawn in INK,
// which no run colour is); onPick(index): a bar chosen by click, tap or keyboard (Enter on a focused bar).
export function drawDistribution(box, { entries, highlight = -1, colour, title, onPick = null }) {
  box.replaceChildren();
  const V = entries.length;
  const W = Math.max(300, 20 + V * BAR), H = 150, m = { l: 10, r: 10, t: 8, b: 18 };
  const top = Math.max(...entries.map((e) => e[1]), 1e-9);
  const bw = (W - m.l - m.r) / V;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title,
    style: V > 27 ? `min-width:${W}px` : null }, el("div", { class: "dist-scroll" }, box));
  entries.forEach(([ch, p, isEnd], k) => {
    const h = (p / top) * (H - m.t - m.b);
    const picked = k === highlight;
    const bar = svgEl("rect", { x: m.l + k * bw + 1, y: H - m.b - h, width: Math.max(bw - 2, 1), height: Math.max(h, 0.5),
      fill: picked ? INK : colour, "fill-opacity": picked ? 1 : 0.6, class: picked ? "bar actual" : "bar",
      "data-char": ch, ...(onPick ? { tabindex: 0, role: "button", "aria-label": `${spokenChar(ch, isEnd)}: ${p.toFixed(4)}` } : {}) }, svg);
    svgEl("title", {}, bar, `${spokenChar(ch, isEnd)}: ${p.toFixed(4)}`);
    if (onPick) {
      bar.addEventListener("click", () => onPick(k));
      bar.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onPick(k); } });
    }
    svgEl("text", { x: m.l + (k + 0.5) * bw, y: H - 5, "text-anchor": "middle", class: picked ? "label actual" : "label" },
      svg, shownChar(ch, isEnd));
  });
  valuesTable(box, ["character", "probability"],
    entries.filter((e) => e[1] > 0).map(([ch, p, isEnd]) => [shownChar(ch, isEnd), p.toFixed(4)]));
  return svg;
}

// /api/next's answer as entries: [char, p, isEnd] most likely first, and the sampled probabilities.
export const entriesOf = (next) => next.next.map(([ch, p], k) => [ch, p, k === next.end]);
export const sampledEntriesOf = (next) => next.next.map(([ch], k) => [ch, next.sampled[k], k === next.end]);
