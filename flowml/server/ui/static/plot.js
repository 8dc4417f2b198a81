// flowml plots: what the metric charts (charts.js) and the compare page's scatter plot
// (compare.js) share: SVG elements, number formats, axis ticks, searching sorted values.
// Loaded before them; exposes window.FlowmlPlot. Text only ever goes in through textContent.
"use strict";

window.FlowmlPlot = (function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = 10; // series colours s0..s9 in charts.css

  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(tag, attrs, content, parent) {
    const node = el(tag, attrs, parent);
    node.textContent = content;
    return node;
  }

  // An HTML element with a class and, optionally, text.
  function html(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  // A tooltip's line: the run's colour, a name and a value.
  function tipRow(colour, name, value) {
    const row = html("div", `tip-row s${colour % COLOURS}`);
    row.append(html("span", "swatch"), html("span", "tip-name", name), html("span", "tip-value", value));
    return row;
  }

  // Show ``tip`` (absolutely placed in ``box``) right of x, or left of it where the right has no room.
  function placeTip(tip, box, x, y) {
    tip.hidden = false;
    const room = box.clientWidth - tip.offsetWidth - 4;
    tip.style.left = `${Math.max(0, x + 14 <= room ? x + 14 : x - tip.offsetWidth - 14)}px`;
    tip.style.top = `${y}px`;
  }

  // numbers ------------------------------------------------------------------------------

  // A value from the API: a number, or "NaN" / "Infinity" / "-Infinity" (MLflow's strings).
  const toNumber = (v) => (typeof v === "number" ? v : Number(v));

  function formatValue(v) {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-4)) return v.toExponential(3);
    return String(Number(v.toPrecision(6)));
  }

  // A tick's label: round numbers stay round (1e-5, 0.25, 2000), however they were computed.
  function formatTick(t) {
    const a = Math.abs(t);
    if (a !== 0 && (a >= 1e12 || a < 1e-3)) return Number(t.toPrecision(6)).toExponential().replace("e+", "e");
    for (const [size, unit] of [[1e9, "G"], [1e6, "M"], [1e4, "k"]]) {
      if (a >= size) return `${Number((t / (size === 1e4 ? 1e3 : size)).toPrecision(6))}${unit}`;
    }
    return String(Number(t.toPrecision(10)));
  }

  function niceStep(span, count) {
    const raw = span / Math.max(count, 1);
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const r = raw / magnitude;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * magnitude;
  }

  function linearTicks(lo, hi, count) {
    const step = niceStep(hi - lo, count);
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return ticks;
  }

  // Ticks for a log axis over [10^lo, 10^hi]: the decades, with 2x and 5x when there are few.
  function logTicks(lo, hi) {
    const decades = [];
    for (let e = Math.ceil(lo - 1e-9); e <= hi + 1e-9; e++) decades.push(10 ** e);
    if (decades.length >= 3) {
      const every = Math.ceil(decades.length / 6);
      return decades.filter((_, i) => i % every === 0);
    }
    const ticks = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of [1, 2, 5]) {
        const t = m * 10 ** e;
        if (Math.log10(t) >= lo - 1e-9 && Math.log10(t) <= hi + 1e-9) ticks.push(t);
      }
    }
    return ticks.length >= 3 ? ticks : linearTicks(10 ** lo, 10 ** hi, 5).filter((t) => t > 0);
  }

  // [lowest, highest] of a long array (spreading 100,000 values into Math.min overflows the stack).
  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    return [lo, hi];
  }

  // Index of the value in the sorted array xs nearest to x.
  function nearest(xs, x) {
    let lo = 0, hi = xs.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid; else hi = mid;
    }
    return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
  }

  // Call draw again when the window is resized, at most once per frame.
  function onResize(draw) {
    let pending = false;
    window.addEventListener("resize", () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; draw(); });
    });
  }

  return { COLOURS, el, text, html, tipRow, placeTip, toNumber, formatValue, formatTick, niceStep, linearTicks,
    logTicks, extent, nearest, onResize };
})();
