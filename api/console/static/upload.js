// Batch upload with progress: <form data-upload> (templates/batches/new.html).
// On submit, send the same multipart form (its CSRF token included; the browser adds the
// Origin) with XMLHttpRequest, show the upload's progress, then "Enrolling N photos…" until
// the answer comes, and show the answer page in place. Without this file the form posts as
// usual and the answer page is the same.
"use strict";

(function () {
  function enable(form) {
    var box = form.querySelector(".upload-progress");
    var bar = box && box.querySelector("progress");
    var label = box && box.querySelector("label");
    var status = form.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");
    if (!bar || !label || !status || !window.XMLHttpRequest || !window.FormData) { return; }

    function say(text) { status.textContent = text; }

    function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

    function failed(text) {
      box.hidden = true;
      button.disabled = false;
      say(text);
    }

    function show(answer, url) {
      // An answer from another page (the sign-in page, when the session ended): go there,
      // so that its own scripts run. Otherwise the summary or the refusal replaces this page.
      if (url && new URL(url).pathname !== new URL(form.action).pathname) {
        window.location.assign(url);
        return;
      }
      if (!answer || !answer.documentElement) {
        failed("The service's answer cannot be shown. Open the gallery to see what was enrolled.");
        return;
      }
      document.replaceChild(document.adoptNode(answer.documentElement), document.documentElement);
      window.scrollTo(0, 0);
      var heading = document.querySelector("h1");
      if (heading) { heading.tabIndex = -1; heading.focus(); }
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) { return; } // already sending
      var photos = form.elements.photos.files.length;
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.responseType = "document";
      request.setRequestHeader("Accept", "text/html");
      request.upload.addEventListener("progress", function (progress) {
        if (progress.lengthComputable) {
          bar.value = Math.round((100 * progress.loaded) / progress.total);
        }
      });
      request.upload.addEventListener("load", function () {
        label.textContent = "Enrolment of the photos";
        bar.removeAttribute("value"); // indeterminate: the server is at work
        say("Enrolling " + plural(photos, "photo") + "… this can take a minute; keep this page open.");
      });
      request.addEventListener("load", function () {
        show(request.response, request.responseURL);
      });
      request.addEventListener("error", function () {
        failed("The upload failed: check the network connection and send the batch again.");
      });
      request.addEventListener("abort", function () {
        failed("The upload was interrupted. Send the batch again.");
      });
      label.textContent = "Upload of the photos";
      bar.value = 0;
      box.hidden = false;
      button.disabled = true;
      say("Uploading " + plural(photos, "photo") + "…");
      request.send(new FormData(form));
    });
  }

  document.querySelectorAll("form[data-upload]").forEach(enable);
})();
