// flowml metric charts: one SVG line chart per metric, every chosen run overlaid.
// The page gives the runs, the metrics and the settings (#charts-data); each chart fetches its
// metric's points from /ui-api/metric-history (thinned on the server to about two points per
// pixel column). No library: scales, ticks, paths and the hover tooltip are drawn here.
// Text from the store (run names, keys) only ever goes in through textContent.
"use strict";

(function () {
  const { COLOURS, el, text, html, toNumber, formatValue, formatTick, niceStep, linearTicks, logTicks, extent,
    nearest, tipRow, placeTip, onResize } = window.FlowmlPlot;
  const HEIGHT = 300;
  const MARGIN = { top: 14, right: 18, bottom: 36, left: 60 };

  // time axes ------------------------------------------------------------------------------

  const SECOND = 1000, MINUTE = 60 * SECOND, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
  const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND,
    30 * SECOND, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR,
    6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 30 * DAY];

  function timeTicks(lo, hi, count) {
    const step = TIME_STEPS.find((s) => (hi - lo) / s <= count) || niceStep(hi - lo, count);
    const offset = step >= DAY ? new Date(lo).getTimezoneOffset() * MINUTE : 0; // whole days at local midnight
    const ticks = [];
    for (let t = Math.ceil((lo - offset) / step) * step + offset; t <= hi; t += step) ticks.push(t);
    return ticks;
  }

  const pad2 = (n) => String(n).padStart(2, "0");

  function formatClock(ms, span) {
    const d = new Date(ms);
    const clock = `${pad2(d.getHours())}:${pad2(d.getMinutes())}` + (span < 10 * MINUTE ? `:${pad2(d.getSeconds())}` : "");
    return span >= DAY ? `${d.getMonth() + 1}/${d.getDate()} ${clock}` : clock;
  }

  function formatElapsed(ms) {
    const sign = ms < 0 ? "−" : "";
    ms = Math.abs(ms);
    if (ms < SECOND) return `${sign}${Math.round(ms)}ms`;
    if (ms < MINUTE) return `${sign}${Number((ms / SECOND).toPrecision(3))}s`;
    if (ms < HOUR) return `${sign}${Math.floor(ms / MINUTE)}m${ms % MINUTE ? ` ${pad2(Math.round((ms % MINUTE) / SECOND))}s` : ""}`;
    return `${sign}${Math.floor(ms / HOUR)}h${ms % HOUR ? ` ${pad2(Math.round((ms % HOUR) / MINUTE))}m` : ""}`;
  }

  // What each x axis reads from a point, how its ticks fall and how they read.
  const X_AXES = {
    step: { of: (p) => p.step, ticks: (lo, hi, n) => linearTicks(lo, hi, n).filter(Number.isInteger),
      format: formatTick, title: "step" },
    time: { of: (p) => p.time, ticks: timeTicks, format: (v, span) => formatClock(v, span), title: "wall time",
      full: (v) => new Date(v).toLocaleString() },
    relative: { of: (p, first) => p.time - first, ticks: timeTicks, format: (v) => formatElapsed(v),
      title: "time since the first point" },
  };

  // Exponential moving average, debiased as TensorBoard's (the first values are not pulled to 0).
  function smooth(values, weight) {
    let last = 0, n = 0;
    return values.map((v) => {
      if (!Number.isFinite(v)) return v;
      n += 1;
      last = last * weight + (1 - weight) * v;
      return weight ? last / (1 - weight ** n) : v;
    });
  }

  // drawing --------------------------------------------------------------------------------

  // "M x y L x y ...", a new "M" after every point that cannot be drawn (a gap, not a jump).
  function pathOf(xs, ys, sx, sy, drawable) {
    let d = "", open = false;
    for (let i = 0; i < xs.length; i++) {
      if (!drawable(ys[i]) || !Number.isFinite(xs[i])) { open = false; continue; }
      d += `${open ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`;
      open = true;
    }
    return d;
  }

  class Chart {
    constructor(section, runs) {
      this.section = section;
      this.key = section.dataset.key;
      this.plot = section.querySelector(".plot");
      this.note = section.querySelector(".chart-note");
      this.runs = runs;
      this.series = null;
    }

    async load(maxPoints) {
      const query = new URLSearchParams({ key: this.key, max_points: String(maxPoints) });
      for (const run of this.runs) query.append("runs", run.id);
      const reply = await fetch(`/ui-api/metric-history?${query}`, { headers: { Accept: "application/json" } });
      const body = await reply.json().catch(() => ({}));
      if (!reply.ok) throw new Error(body.message || `the server answered ${reply.status}`);
      this.series = body.runs.map((found, index) => {
        const points = found.points.map(([step, time, value]) => ({ step, time, value: toNumber(value) }));
        return { run: this.runs[index], index, points, total: found.total, downsampled: found.downsampled };
      });
      this.describeSampling();
    }

    fail(message) {
      this.plot.replaceChildren(html("p", "chart-error", `Could not load ${this.key}: ${message}`));
    }

    describeSampling() {
      const thinned = this.series.filter((s) => s.downsampled);
      this.section.dataset.downsampled = thinned.length ? "true" : "false";
      if (!thinned.length) { this.note.textContent = ""; return; }
      const [, total] = extent(thinned.map((s) => s.total));
      const [, shown] = extent(thinned.map((s) => s.points.length));
      this.note.textContent = `downsampled: ${shown.toLocaleString()} of ${total.toLocaleString()} points`;
      this.note.title = "Long histories are thinned on the server: every stretch keeps its lowest and highest value.";
    }

    // Per run: x and y arrays for the current settings, sorted by x.
    prepare(settings) {
      const axis = X_AXES[settings.x];
      return this.series.filter((s) => s.points.length).map((s) => {
        const first = s.points[0].time;
        const pairs = s.points.map((p) => [axis.of(p, first), p.value]);
        if (pairs.some((p, i) => i && p[0] < pairs[i - 1][0])) pairs.sort((a, b) => a[0] - b[0]);
        const xs = pairs.map((p) => p[0]);
        const ys = pairs.map((p) => p[1]);
        return { ...s, xs, ys, smoothed: settings.smooth > 0 ? smooth(ys, settings.smooth) : null };
      });
    }

    draw(settings) {
      if (!this.series) return;
      this.plot.replaceChildren();
      const lines = this.prepare(settings);
      const drawable = settings.log ? (v) => Number.isFinite(v) && v > 0 : Number.isFinite;
      const ys = lines.flatMap((s) => s.ys.filter(drawable));
      const xs = lines.flatMap((s) => s.xs.filter((x, i) => Number.isFinite(x) && drawable(s.ys[i])));
      if (!ys.length) {
        this.plot.appendChild(html("p", "empty", settings.log && lines.length
          ? `No positive values of ${this.key} to draw on a log scale.` : `These runs logged no values of ${this.key}.`));
        return;
      }
      const width = Math.max(this.plot.clientWidth, 320);
      const inner = { w: width - MARGIN.left - MARGIN.right, h: HEIGHT - MARGIN.top - MARGIN.bottom };
      const axis = X_AXES[settings.x];
      let [x0, x1] = extent(xs);
      if (x0 === x1) { x0 -= 1; x1 += 1; }
      const ty = settings.log ? Math.log10 : (v) => v;
      let [y0, y1] = extent(ys).map(ty);
      if (y0 === y1) { y0 -= settings.log ? 0.5 : Math.abs(y0) * 0.1 || 1; y1 += settings.log ? 0.5 : Math.abs(y1) * 0.1 || 1; }
      const pad = (y1 - y0) * 0.06;
      y0 -= pad; y1 += pad;
      const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * inner.w;
      const sy = (y) => MARGIN.top + (1 - (ty(y) - y0) / (y1 - y0)) * inner.h;

      const svg = el("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: "chart-svg" });
      this.drawAxes(svg, settings, axis, { x0, x1, y0, y1, sx, sy, inner });
      const group = el("g", { class: "lines" }, svg);
      for (const s of lines) {
        const colour = `s${s.index % COLOURS}`;
        const raw = pathOf(s.xs, s.ys, sx, sy, drawable);
        el("path", { d: raw, class: `line raw ${colour}${s.smoothed ? " faint" : ""}`, "data-run": s.run.id }, group);
        if (s.smoothed) el("path", { d: pathOf(s.xs, s.smoothed, sx, sy, drawable), class: `line smooth ${colour}`, "data-run": s.run.id }, group);
        const seen = s.ys.filter(drawable);
        if (seen.length === 1) { // one value: a path of one point draws nothing, so a dot
          const i = s.ys.findIndex(drawable);
          el("circle", { cx: sx(s.xs[i]), cy: sy(s.ys[i]), r: 3.5, class: `single ${colour}`, "data-run": s.run.id }, group);
        }
      }
      this.plot.appendChild(svg);
      this.hover(svg, lines, { sx, sy, x0, x1, inner, axis, drawable, settings });
    }

    drawAxes(svg, settings, axis, { x0, x1, y0, y1, sx, sy, inner }) {
      const grid = el("g", { class: "grid" }, svg);
      const labels = el("g", { class: "ticks" }, svg);
      const yTicks = settings.log ? logTicks(y0, y1) : linearTicks(y0, y1, 6);
      for (const t of yTicks) {
        const y = sy(t);
        if (y < MARGIN.top - 0.5 || y > MARGIN.top + inner.h + 0.5) continue;
        el("line", { x1: MARGIN.left, x2: MARGIN.left + inner.w, y1: y, y2: y }, grid);
        text("text", { x: MARGIN.left - 8, y: y + 4, "text-anchor": "end" }, formatTick(t), labels);
      }
      const span = x1 - x0;
      const count = Math.max(2, Math.floor(inner.w / 90));
      for (const t of axis.ticks(x0, x1, count)) {
        const x = sx(t);
        el("line", { x1: x, x2: x, y1: MARGIN.top, y2: MARGIN.top + inner.h }, grid);
        text("text", { x, y: MARGIN.top + inner.h + 18, "text-anchor": "middle" }, axis.format(t, span), labels);
      }
      el("rect", { x: MARGIN.left, y: MARGIN.top, width: inner.w, height: inner.h, class: "frame" }, svg);
      text("text", { x: MARGIN.left + inner.w, y: HEIGHT - 4, "text-anchor": "end", class: "axis-title" },
        axis.title + (settings.log ? " · log scale" : ""), svg);
    }

    // Crosshair at the x nearest the pointer; the tooltip lists every run's value there.
    hover(svg, lines, view) {
      const { sx, sy, x0, x1, inner, axis, drawable, settings } = view;
      const cross = el("line", { class: "crosshair", y1: MARGIN.top, y2: MARGIN.top + inner.h, visibility: "hidden" }, svg);
      const dots = el("g", { class: "dots" }, svg);
      const overlay = el("rect", { x: MARGIN.left, y: MARGIN.top, width: inner.w, height: inner.h, class: "overlay" }, svg);
      const tip = this.plot.appendChild(html("div", "chart-tip"));
      tip.hidden = true;
      const hide = () => { cross.setAttribute("visibility", "hidden"); dots.replaceChildren(); tip.hidden = true; };
      overlay.addEventListener("mouseleave", hide);
      overlay.addEventListener("mousemove", (event) => {
        const box = svg.getBoundingClientRect();
        const px = event.clientX - box.left;
        const x = x0 + ((px - MARGIN.left) / inner.w) * (x1 - x0);
        let at = null;
        for (const s of lines) {
          const i = nearest(s.xs, x);
          if (at === null || Math.abs(s.xs[i] - x) < Math.abs(at - x)) at = s.xs[i];
        }
        if (at === null) return hide();
        cross.setAttribute("x1", sx(at));
        cross.setAttribute("x2", sx(at));
        cross.setAttribute("visibility", "visible");
        dots.replaceChildren();
        const rows = lines.map((s) => {
          const i = nearest(s.xs, at);
          const shown = s.smoothed ? s.smoothed[i] : s.ys[i];
          if (drawable(shown)) el("circle", { cx: sx(s.xs[i]), cy: sy(shown), r: 3.5, class: `s${s.index % COLOURS}` }, dots);
          return { s, raw: s.ys[i], smoothed: s.smoothed && s.smoothed[i], x: s.xs[i] };
        });
        this.fillTip(tip, rows, at, axis, settings, x1 - x0);
        placeTip(tip, this.plot, sx(at), MARGIN.top + 4);
      });
    }

    fillTip(tip, rows, at, axis, settings, span) {
      tip.replaceChildren();
      tip.appendChild(html("div", "tip-head",
        settings.x === "step" ? `step ${formatValue(at)}` : axis.full ? axis.full(at) : axis.format(at, span)));
      for (const { s, raw, smoothed, x } of rows) {
        const row = tip.appendChild(tipRow(s.index, s.run.name, formatValue(smoothed === null ? raw : smoothed)));
        row.dataset.run = s.run.id;
        if (smoothed !== null) row.appendChild(html("span", "tip-raw", `raw ${formatValue(raw)}`));
        if (x !== at) {
          row.appendChild(html("span", "tip-raw", settings.x === "step" ? `at step ${formatValue(x)}` : `at ${axis.format(x, span)}`));
        }
      }
    }
  }

  // the page -------------------------------------------------------------------------------

  function readSettings(form) {
    return {
      x: form.elements.x.value,
      log: form.elements.log.checked,
      smooth: Number(form.elements.smooth.value),
    };
  }

  // The address keeps the settings, so a chart can be shared or reloaded as it is.
  function remember(form) {
    const query = new URLSearchParams(new FormData(form));
    history.replaceState(null, "", `${location.pathname}?${query}`);
  }

  function setup() {
    const data = document.getElementById("charts-data");
    const form = document.getElementById("chart-form");
    if (!data || !form) return;
    const { runs } = JSON.parse(data.textContent);
    const charts = Array.from(document.querySelectorAll("section.chart"), (section) => new Chart(section, runs));
    const output = document.getElementById("smoothing-value");
    const redraw = () => {
      const settings = readSettings(form);
      output.textContent = settings.smooth.toFixed(2);
      for (const chart of charts) chart.draw(settings);
    };
    form.addEventListener("change", (event) => {
      if (event.target.name === "metrics") { form.submit(); return; }
      remember(form);
      redraw();
    });
    form.elements.smooth.addEventListener("input", redraw);
    setupChooser(form);
    setupLegend();
    onResize(redraw);
    for (const chart of charts) {
      const width = chart.plot.clientWidth - MARGIN.left - MARGIN.right;
      const maxPoints = Math.min(4000, Math.max(500, 2 * Math.round(width)));
      chart.load(maxPoints).then(() => chart.draw(readSettings(form)), (error) => chart.fail(error.message));
    }
  }

  // The metric chooser is a drop-down: a click elsewhere or Escape closes it.
  function setupChooser(form) {
    const chooser = document.getElementById("metric-chooser");
    if (!chooser) return;
    document.addEventListener("click", (e) => { if (!chooser.contains(e.target)) chooser.open = false; });
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") chooser.open = false; });
    const search = form.querySelector(".metric-search");
    if (!search) return;
    window.FlowmlUI.filterLabels(search, ".metric-chooser fieldset label");
  }

  // Pointing at a run in the legend brings its lines forward and fades the others.
  function setupLegend() {
    const legend = document.getElementById("legend");
    const container = document.getElementById("charts");
    if (!legend || !container) return;
    const focus = (runId) => {
      for (const line of container.querySelectorAll("[data-run]")) {
        line.classList.toggle("dimmed", runId !== null && line.dataset.run !== runId);
      }
    };
    legend.addEventListener("mouseover", (e) => { const li = e.target.closest("li"); if (li) focus(li.dataset.run); });
    legend.addEventListener("mouseleave", () => focus(null));
  }

  if (document.readyState !== "loading") setup(); else document.addEventListener("DOMContentLoaded", setup);
})();
