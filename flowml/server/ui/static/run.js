// Run page: a log's tail opens scrolled to its end, where the latest lines are.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const pre of document.querySelectorAll("pre.log.tail")) pre.scrollTop = pre.scrollHeight;
});
