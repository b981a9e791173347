// Passkeys for the console's forms: <form data-passkey="sign-in|enrol" data-options="URL">.
// On submit, fetch the ceremony's options (with the form's CSRF token and fields), let the
// authenticator answer, put its answer in the form's hidden fields and submit the form.
// The server checks everything; this file only carries bytes between the two.
"use strict";

(function () {
  function say(form, text) {
    var status = form.querySelector(".passkey-status");
    if (status) { status.textContent = text; }
  }

  async function ceremony(form) {
    var body = new FormData(form);
    var answer = await fetch(form.dataset.options, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": body.get("csrf_token") || "", Accept: "application/json" },
    });
    if (!answer.ok) {
      var problem = await answer.json().catch(function () { return {}; });
      throw new Error(problem.detail || "The service refused (" + answer.status + ").");
    }
    var started = await answer.json();
    var options = JSON.parse(started.options);
    var credential;
    if (form.dataset.passkey === "sign-in") {
      credential = await navigator.credentials.get({
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
      });
    } else {
      credential = await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
      });
    }
    form.elements.ceremony.value = started.ceremony;
    form.elements.response.value = JSON.stringify(credential.toJSON());
  }

  function enable(form) {
    form.addEventListener("submit", function (event) {
      if (form.elements.response.value) { return; } // the answer is in: send the form
      event.preventDefault();
      if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) {
        say(form, "This browser cannot use passkeys. Use a current Chrome, Edge, Firefox or Safari.");
        return;
      }
      say(form, "Follow your device's prompt…");
      ceremony(form).then(
        function () { say(form, "Checking…"); form.requestSubmit(); },
        function (error) {
          form.elements.response.value = "";
          say(form, error.name === "NotAllowedError"
            ? "The passkey step was cancelled or timed out. Try again."
            : error.message);
        }
      );
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(enable);
})();
