// flowml UI: small conveniences on server-rendered pages, loaded by every page before the
// page's own script. The pages are readable without scripts; selecting runs to compare or chart
// and the charts themselves need them.
"use strict";

function onReady(fn) {
  if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
}

// Runs table: selecting runs enables Compare/Chart; a pipeline run's toggle hides its steps.
function setupRunsTable() {
  const table = document.getElementById("runs");
  if (!table) return;
  const boxes = () => Array.from(table.querySelectorAll("tbody input[name=runs]"));
  const count = document.getElementById("selected-count");
  const refresh = () => {
    const picked = boxes().filter((b) => b.checked);
    for (const b of boxes()) b.closest("tr").classList.toggle("selected", b.checked);
    document.getElementById("compare-button").disabled = picked.length < 2;
    document.getElementById("chart-button").disabled = picked.length < 1;
    count.textContent = picked.length ? `${picked.length} selected` : "Select runs to compare or chart";
  };
  table.addEventListener("change", (e) => {
    if (e.target.id === "select-all") for (const b of boxes()) b.checked = e.target.checked;
    refresh();
  });
  table.addEventListener("click", (e) => {
    const toggle = e.target.closest("button.toggle");
    if (!toggle) return;
    const row = toggle.closest("tr");
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "▾" : "▸";
    toggle.setAttribute("aria-label", open ? "Hide the step runs" : "Show the step runs");
    setSubtree(table, row.dataset.run, !open);
  });
  refresh();
}

function setSubtree(table, runId, hidden) {
  for (const child of table.querySelectorAll(`tr[data-parent="${CSS.escape(runId)}"]`)) {
    child.classList.toggle("collapsed", hidden);
    const inner = child.querySelector("button.toggle");
    if (!hidden && inner && inner.getAttribute("aria-expanded") !== "true") continue;
    setSubtree(table, child.dataset.run, hidden);
  }
}

// Type in ``input`` to narrow the ``labels`` (a selector inside the input's form) to those containing it.
function filterLabels(input, labels) {
  input.addEventListener("input", () => {
    const needle = input.value.toLowerCase();
    for (const label of input.form.querySelectorAll(labels)) {
      label.classList.toggle("hidden", !label.textContent.toLowerCase().includes(needle));
    }
  });
}
window.FlowmlUI = { filterLabels };

// Column chooser: type to narrow the list of keys.
function setupColumnSearch() {
  for (const input of document.querySelectorAll(".column-search")) filterLabels(input, "label");
}

onReady(() => {
  setupRunsTable();
  setupColumnSearch();
});
