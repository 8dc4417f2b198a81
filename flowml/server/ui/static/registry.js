// Registry pages: each form.api-form is sent to the MLflow REST route its data-api names, with
// the method in data-method and its fields as JSON; on success the page reloads to show the
// change, on failure the server's message is shown in the form.
"use strict";

(function () {
  const API = "/ajax-api/2.0/mlflow/";

  async function send(form) {
    const body = {};
    for (const [key, value] of new FormData(form)) body[key] = value;
    const reply = await fetch(API + form.dataset.api, {
      method: form.dataset.method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" }, body: JSON.stringify(body),
    });
    if (reply.ok) return null;
    try {
      const error = await reply.json();
      if (error && error.message) return error.message;
    } catch (ignored) { /* not JSON: say what the status says */ }
    return `The server refused this (${reply.status} ${reply.statusText}).`;
  }

  function setup() {
    for (const form of document.querySelectorAll("form.api-form")) {
      const shown = form.querySelector(".form-error");
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const buttons = form.querySelectorAll("button");
        for (const b of buttons) b.disabled = true;
        shown.hidden = true;
        let problem;
        try {
          problem = await send(form);
        } catch (err) {
          problem = `The server could not be reached (${err.message}).`;
        }
        if (problem === null) {
          window.location.reload();
          return;
        }
        shown.textContent = problem;
        shown.hidden = false;
        for (const b of buttons) b.disabled = false;
      });
    }
  }

  if (document.readyState !== "loading") setup(); else document.addEventListener("DOMContentLoaded", setup);
})();
