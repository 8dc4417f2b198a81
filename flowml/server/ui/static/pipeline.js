// Pipeline run page: pointing at (or focusing) a step shows its details beside the graph and
// highlights its edges and its row in the steps table. Clicking a step is a plain link to its run.
"use strict";

(function () {
  function byNode(elements, name) {
    return Array.from(elements).filter((el) => el.dataset.node === name);
  }

  function setup() {
    const svg = document.getElementById("dag");
    if (!svg) return;
    const details = document.querySelectorAll("#node-info .node-detail");
    const rows = document.querySelectorAll("#steps tbody tr[data-node]");
    const nodes = svg.querySelectorAll(".node");
    const edges = svg.querySelectorAll(".edge");

    function show(name) {
      for (const d of details) d.hidden = d.dataset.node !== name;
      if (!byNode(details, name).length) document.getElementById("node-hint").hidden = false;
      for (const n of nodes) n.classList.toggle("active", n.dataset.node === name);
      for (const r of rows) r.classList.toggle("active", r.dataset.node === name);
      for (const e of edges) e.classList.toggle("active", e.dataset.source === name || e.dataset.target === name);
      svg.classList.toggle("focusing", name !== "");
    }

    for (const node of nodes) {
      node.addEventListener("mouseenter", () => show(node.dataset.node));
      node.addEventListener("focus", () => show(node.dataset.node));
    }
    svg.addEventListener("mouseleave", () => svg.classList.remove("focusing"));
    for (const row of rows) row.addEventListener("mouseenter", () => show(row.dataset.node));
  }

  if (document.readyState !== "loading") setup(); else document.addEventListener("DOMContentLoaded", setup);
})();
