// The loss chart: each ticked run's training loss (thin) and dev NLL (thick, a dot per evaluation), with
// the run's name at the end of its curve, the values under the pointer, smoothing, a log scale and a
// wall-time axis (TensorBoard's scalars view does these; so does this).
"use strict";

import { $, colourOf, el, state, svgEl, ticks } from "./core.js";

export const chartSettings = { smooth: 0, log: false, axis: "step" };

// Training loss of batches is noisy: an exponential moving average (TensorBoard's, debiased at the start).
function smoothed(points, weight) {
  if (!weight) return points;
  let last = 0;
  return points.map(([x, y], i) => {
    last = last * weight + (1 - weight) * y;
    return [x, last / (1 - Math.pow(weight, i + 1))];
  });
}

// Training rows carry no time: each step's wall time is read off the dev rows' train_seconds, linearly
// between two evaluations (and from 0 s at step 0).
function timeOf(devRows) {
  const known = [[0, 0], ...devRows.filter((r) => typeof r.train_seconds === "number").map((r) => [r.step, r.train_seconds])];
  return (step) => {
    let k = 1;
    while (k < known.length - 1 && known[k][0] < step) k++;
    const [s0, t0] = known[k - 1], [s1, t1] = known[Math.min(k, known.length - 1)];
    return s1 === s0 ? t1 : t0 + ((step - s0) / (s1 - s0)) * (t1 - t0);
  };
}

function seriesOf(run) {
  const rows = state.metrics[run.id] || [];
  const devRows = rows.filter((r) => typeof r.dev === "number" && isFinite(r.dev));
  const at = chartSettings.axis === "time" ? timeOf(devRows) : (step) => step;
  const train = rows.filter((r) => typeof r.loss === "number" && isFinite(r.loss)).map((r) => [at(r.step), r.loss, r.step]);
  const dev = devRows.map((r) => [at(r.step), r.dev, r.step]);
  return { run, train: smoothed(train, chartSettings.smooth).map((p, i) => [p[0], p[1], train[i][2]]), dev };
}

export function drawLossChart() {
  const box = $("#loss-chart");
  box.replaceChildren();
  const series = state.runs.filter((r) => state.curves.has(r.id)).map(seriesOf);
  const points = series.flatMap((s) => [...s.train, ...s.dev]);
  if (!points.length) {
    el("p", { class: "hint" }, box, "No training curves to draw (a counted bigram has none; tick a trained run).");
    return;
  }
  const W = Math.max(320, Math.round(box.clientWidth || 900)), H = W < 600 ? 260 : 320;
  const m = { l: 52, r: W < 600 ? 70 : 110, t: 12, b: 36 };
  const maxX = Math.max(...points.map((p) => p[0]), 1e-9);
  // the first steps' losses are far above the rest (an untrained model): cap the axis so the part
  // worth reading fills the chart
  const devs = series.flatMap((s) => s.dev.map((p) => p[1]));
  const late = series.flatMap((s) => s.train.filter((p) => p[0] >= 0.05 * maxX).map((p) => p[1]));
  const yLo = Math.min(...points.map((p) => p[1]));
  const yHi = Math.max(...devs, ...late, yLo + 0.1) * 1.02;
  const log = chartSettings.log, f = (v) => (log ? Math.log10(Math.max(v, 1e-6)) : v);
  const x = (v) => m.l + (v / maxX) * (W - m.l - m.r);
  const y = (v) => m.t + (1 - (f(Math.min(v, yHi)) - f(yLo)) / (f(yHi) - f(yLo) || 1)) * (H - m.t - m.b);
  const label = `Loss curves of ${series.map((s) => s.run.id).join(", ")} by ${chartSettings.axis === "time" ? "training time" : "step"}`;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label }, box);
  const grid = svgEl("g", { class: "grid" }, svg);
  for (const t of log ? logTicks(yLo, yHi) : ticks(yLo, yHi, 6)) {
    svgEl("line", { x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }, grid);
    svgEl("text", { x: m.l - 6, y: y(t) + 4, "text-anchor": "end" }, svg, t.toFixed(2));
  }
  for (const t of ticks(0, maxX, W < 600 ? 4 : 8)) {
    svgEl("line", { x1: x(t), x2: x(t), y1: m.t, y2: H - m.b }, grid);
    svgEl("text", { x: x(t), y: H - m.b + 16, "text-anchor": "middle" }, svg, t.toLocaleString("en-US"));
  }
  svgEl("text", { x: (W + m.l - m.r) / 2, y: H - 4, "text-anchor": "middle" }, svg,
    chartSettings.axis === "time" ? "training time (s)" : "step");
  svgEl("text", { x: 12, y: (H - m.b) / 2, transform: `rotate(-90 12 ${(H - m.b) / 2})`, "text-anchor": "middle" },
    svg, `NLL (nats / char${log ? ", log scale" : ""})`);
  const path = (pts) => pts.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
  const ends = [];
  for (const s of series) {
    const colour = colourOf(s.run);
    const g = svgEl("g", { class: "series", "data-run": s.run.id }, svg);
    if (s.train.length) svgEl("path", { d: path(s.train), fill: "none", stroke: colour, "stroke-opacity": 0.45, "stroke-width": 1.2 }, g);
    if (s.dev.length) {
      svgEl("path", { d: path(s.dev), fill: "none", stroke: colour, "stroke-width": 2.4 }, g);
      for (const p of s.dev) svgEl("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: colour }, g);
    }
    const last = (s.dev.length ? s.dev : s.train).at(-1);
    if (last) ends.push({ run: s.run, colour, at: y(last[1]), x: x(last[0]) });
  }
  nameTheCurves(svg, ends, W - m.r + 6, m.t + 6, H - m.b);
  hoverReadout(svg, box, series, { x, y, m, W, H, maxX });
  const legend = el("p", { class: "hint" }, box);
  legend.textContent = "thin: training loss (batches, every 100 steps" +
    (chartSettings.smooth ? `, smoothed ${chartSettings.smooth}` : "") + ") · thick with dots: dev NLL at each evaluation";
}

function logTicks(lo, hi) {
  const out = [];
  for (const t of ticks(lo, hi, 12)) if (!out.length || Math.log10(t / out.at(-1)) > 0.04) out.push(t);
  return out;
}

// The run's name at the right of its last point, nudged apart so no two overlap.
function nameTheCurves(svg, ends, x0, top, bottom) {
  ends.sort((a, b) => a.at - b.at);
  let previous = top - 14;
  for (const end of ends) {
    end.at = Math.min(Math.max(end.at, previous + 14), bottom);
    previous = end.at;
    svgEl("text", { x: x0, y: end.at + 4, class: "run-name", style: `fill:${end.colour}` }, svg, end.run.id);
  }
}

// Under the pointer (or a finger): a vertical line at the nearest logged step and each curve's value there.
function hoverReadout(svg, box, series, { x, m, W, H, maxX }) {
  const line = svgEl("line", { class: "cursor", y1: m.t, y2: H - m.b, visibility: "hidden" }, svg);
  const out = el("p", { class: "readout", "aria-live": "polite" }, box, "\u00a0");
  const show = (event) => {
    const rect = svg.getBoundingClientRect();
    const at = ((event.clientX - rect.left) / rect.width) * W;
    const wanted = ((at - m.l) / (W - m.l - m.r)) * maxX;
    const parts = [];
    let lineX = null;
    for (const s of series) {
      for (const [kind, pts] of [["train", s.train], ["dev", s.dev]]) {
        if (!pts.length) continue;
        const p = pts.reduce((best, q) => (Math.abs(q[0] - wanted) < Math.abs(best[0] - wanted) ? q : best));
        parts.push(`${s.run.id} ${kind} ${p[1].toFixed(4)} at step ${p[2].toLocaleString("en-US")}`);
        if (lineX === null) lineX = x(p[0]);
      }
    }
    line.setAttribute("x1", lineX);
    line.setAttribute("x2", lineX);
    line.setAttribute("visibility", "visible");
    out.textContent = parts.join(" · ");
  };
  svg.addEventListener("pointermove", show);
  svg.addEventListener("pointerdown", show);
}
