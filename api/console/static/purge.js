// The purge of a blocked site, continued without reloading: <form data-purge> on the site's page.
// On submit, send the form (with its CSRF token) again and again, each answer giving the faces
// purged and remaining, and move the page's <progress> until none remain; then reload the page.
// A step that purged nothing more than the one before stops it: the page, reloaded, says why.
// Without this file the same form continues the purge one step per press.
"use strict";

(function () {
  function show(form, progress, count, answer) {
    if (progress) {
      progress.max = Math.max(answer.total, 1);
      progress.value = answer.purged;
      progress.textContent = answer.purged + " of " + answer.total;
    }
    if (count) {
      count.textContent = answer.purged + " of " + answer.total + " purged, " +
        answer.remaining + " remaining";
    }
  }

  async function step(form) {
    var body = new FormData(form);
    var answer = await fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": body.get("csrf_token") || "", Accept: "application/json" },
    });
    if (answer.redirected) { // signed out meanwhile: the page itself says what to do
      window.location.reload();
      return new Promise(function () {});
    }
    if (!answer.ok) {
      var problem = await answer.json().catch(function () { return {}; });
      throw new Error(problem.detail || "The service refused (" + answer.status + ").");
    }
    return answer.json();
  }

  function enable(form) {
    var status = form.querySelector(".purge-status");
    var progress = document.querySelector("progress");
    var count = document.querySelector("[data-purge-count]");
    var button = form.querySelector("button");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      button.disabled = true;
      status.textContent = "Purging… keep this page open until it is finished.";
      try {
        var last = -1;
        for (;;) {
          var answer = await step(form);
          show(form, progress, count, answer);
          if (answer.done) { break; }
          if (answer.purged <= last) {
            status.textContent = "The purge is not going further. Reload the page to see " +
              "what remains, then press the button to try again.";
            button.disabled = false;
            return;
          }
          last = answer.purged;
        }
        status.textContent = "The purge is finished.";
        window.location.reload();
      } catch (error) {
        status.textContent = error.message + " Press the button to try again.";
        button.disabled = false;
      }
    });
  }

  document.querySelectorAll("form[data-purge]").forEach(enable);
})();
