// flowml compare page: the "only differences" switch, and a scatter plot of one param or
// metric against another across the compared runs (a mark per run, in the run's colour,
// linking to its page). Values come from #compare-data; text only goes in through textContent.
"use strict";

(function () {
  const { COLOURS, el, text, html, placeTip, toNumber, formatValue, formatTick, linearTicks, onResize } = window.FlowmlPlot;
  const HEIGHT = 360;
  const MARGIN = { top: 16, right: 24, bottom: 52, left: 72 };
  const LABELLED = 12; // up to this many runs, each mark carries its run's name
  const shorten = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

  // "params.lr" -> the run's lr param (a string), "metrics.loss" -> its latest loss (a number).
  function valueOf(run, choice) {
    const dot = choice.indexOf(".");
    const found = run[choice.slice(0, dot)][choice.slice(dot + 1)];
    return found === undefined ? null : found;
  }

  // An axis over the values the runs have: numeric when every value reads as a finite number
  // (a metric always is: NaN and the infinities are left off it), else a category per value.
  function axisFor(choice, values, lo, hi) {
    const metric = choice.startsWith("metrics.");
    const numbers = values.map((v) => (metric ? toNumber(v) : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN));
    if (metric || numbers.every(Number.isFinite)) {
      const finite = numbers.filter(Number.isFinite);
      let min = Math.min(...finite), max = Math.max(...finite);
      if (min === max) { min -= Math.abs(min) * 0.1 || 1; max += Math.abs(max) * 0.1 || 1; }
      const pad = (max - min) * 0.08;
      min -= pad; max += pad;
      return {
        numeric: true, ticks: linearTicks(min, max, 5), label: formatTick, plottable: (i) => Number.isFinite(numbers[i]),
        at: (i) => numbers[i], position: (v) => lo + ((v - min) / (max - min)) * (hi - lo),
      };
    }
    const categories = [...new Set(values)].sort((a, b) => String(a).localeCompare(String(b), undefined, { numeric: true }));
    const band = (hi - lo) / categories.length;
    return {
      numeric: false, ticks: categories, label: (c) => shorten(String(c), 22), plottable: () => true,
      at: (i) => values[i], position: (c) => lo + (categories.indexOf(c) + 0.5) * band,
    };
  }

  function drawScatter(box, note, runs, xChoice, yChoice) {
    box.replaceChildren();
    note.textContent = "";
    if (!xChoice || !yChoice) {
      box.appendChild(html("p", "empty", "These runs have no metrics to plot."));
      return;
    }
    const keyOf = (choice) => choice.slice(choice.indexOf(".") + 1);
    const having = runs.map((run, index) => ({ run, index, x: valueOf(run, xChoice), y: valueOf(run, yChoice) }))
      .filter((p) => p.x !== null && p.y !== null);
    const width = Math.max(box.clientWidth, 320);
    const inner = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: HEIGHT - MARGIN.bottom };
    const xAxis = axisFor(xChoice, having.map((p) => p.x), inner.left, inner.right);
    const yAxis = axisFor(yChoice, having.map((p) => p.y), inner.bottom, inner.top);
    const shown = having.filter((_, i) => xAxis.plottable(i) && yAxis.plottable(i));
    const left = runs.filter((run) => !shown.some((p) => p.run === run));
    if (left.length) {
      note.textContent = `Not plotted (no ${keyOf(xChoice)} or ${keyOf(yChoice)} to place them by): ${left.map((r) => r.name).join(", ")}`;
    }
    if (!shown.length) {
      box.appendChild(html("p", "empty", `No run has both ${keyOf(xChoice)} and ${keyOf(yChoice)}.`));
      return;
    }
    const svg = el("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: "chart-svg scatter-svg" });
    drawAxes(svg, inner, xAxis, yAxis, keyOf(xChoice), keyOf(yChoice));
    const tip = html("div", "chart-tip");
    tip.hidden = true;
    const marks = el("g", { class: "marks" }, svg);
    for (const p of shown) {
      const i = having.indexOf(p);
      const cx = xAxis.position(xAxis.at(i)), cy = yAxis.position(yAxis.at(i));
      const link = el("a", { href: `/runs/${encodeURIComponent(p.run.id)}`, class: `mark-link s${p.index % COLOURS}` }, marks);
      el("circle", { cx, cy, r: 6.5, class: "mark", "data-run": p.run.id }, link);
      if (shown.length <= LABELLED) { // right of the mark, or left of it near the right edge
        const leftwards = cx > inner.right - 110;
        text("text", { x: leftwards ? cx - 10 : cx + 10, y: cy + 4, "text-anchor": leftwards ? "end" : "start", class: "mark-label" },
          shorten(p.run.name, 28), link);
      }
      const show = () => {
        tip.replaceChildren(html("div", "tip-head", p.run.name));
        for (const [choice, value] of [[xChoice, p.x], [yChoice, p.y]]) {
          const row = tip.appendChild(html("div", "tip-kv"));
          row.append(html("span", "tip-name", keyOf(choice)),
            html("span", "tip-value", typeof value === "number" ? formatValue(value) : String(value)));
        }
        placeTip(tip, box, cx, Math.max(0, cy - 30));
      };
      link.addEventListener("mouseenter", show);
      link.addEventListener("focus", show);
      link.addEventListener("mouseleave", () => { tip.hidden = true; });
      link.addEventListener("blur", () => { tip.hidden = true; });
    }
    box.append(svg, tip);
  }

  function drawAxes(svg, inner, xAxis, yAxis, xTitle, yTitle) {
    const grid = el("g", { class: "grid" }, svg);
    const labels = el("g", { class: "ticks" }, svg);
    for (const t of xAxis.ticks) {
      const x = xAxis.position(t);
      el("line", { x1: x, x2: x, y1: inner.top, y2: inner.bottom }, grid);
      const label = text("text", { x, y: inner.bottom + 18, "text-anchor": "middle" }, xAxis.label(t), labels);
      if (!xAxis.numeric) text("title", {}, String(t), label);
    }
    for (const t of yAxis.ticks) {
      const y = yAxis.position(t);
      el("line", { x1: inner.left, x2: inner.right, y1: y, y2: y }, grid);
      const label = text("text", { x: inner.left - 8, y: y + 4, "text-anchor": "end" }, yAxis.label(t), labels);
      if (!yAxis.numeric) text("title", {}, String(t), label);
    }
    el("rect", { x: inner.left, y: inner.top, width: inner.right - inner.left, height: inner.bottom - inner.top, class: "frame" }, svg);
    text("text", { x: (inner.left + inner.right) / 2, y: HEIGHT - 10, "text-anchor": "middle", class: "axis-title" }, xTitle, svg);
    const middle = (inner.top + inner.bottom) / 2;
    text("text", { x: 14, y: middle, "text-anchor": "middle", class: "axis-title", transform: `rotate(-90 14 ${middle})` }, yTitle, svg);
  }

  function setupOnlyDifferences() {
    const toggle = document.getElementById("only-diff");
    const table = document.getElementById("compare");
    if (!toggle || !table) return;
    toggle.addEventListener("change", () => {
      table.classList.toggle("only-diff", toggle.checked);
      const query = new URLSearchParams(location.search);
      if (toggle.checked) query.set("diff", "1"); else query.delete("diff");
      history.replaceState(null, "", `${location.pathname}?${query}`);
    });
  }

  function setupScatter() {
    const data = document.getElementById("compare-data");
    const form = document.getElementById("scatter-form");
    if (!data || !form) return;
    const { runs } = JSON.parse(data.textContent);
    const box = document.getElementById("scatter");
    const note = document.getElementById("scatter-note");
    const draw = () => drawScatter(box, note, runs, form.elements.x.value, form.elements.y.value);
    form.addEventListener("change", draw);
    onResize(draw);
    draw();
  }

  function setup() {
    setupOnlyDifferences();
    setupScatter();
  }

  if (document.readyState !== "loading") setup(); else document.addEventListener("DOMContentLoaded", setup);
})();
