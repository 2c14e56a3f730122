/* The account pages a mailed link opens (e-mail verification, new password) and the
   password change. Each form posts JSON and shows the server's pt-BR answer. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  // The token travels in the link's fragment, which browsers never send to a server.
  var token = new URLSearchParams(window.location.hash.slice(1)).get("token");

  function post(path, body, status, error) {
    status.textContent = "";
    error.textContent = "";
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (response.ok) status.textContent = data.message;
        else error.textContent = data.error;
        return response.ok;
      });
    });
  }

  function on(id, handler) {
    var form = $(id);
    if (form) form.addEventListener("submit", function (event) { event.preventDefault(); handler(form); });
  }

  on("reset-request", function (form) {
    post("/api/password-reset", { email: form.email.value }, $("request-status"), $("request-error"));
  });

  on("reset-confirm", function (form) {
    post("/api/password-reset/confirm", { token: token, password: form.password.value },
      $("confirm-status"), $("confirm-error"))
      .then(function (ok) { if (ok) form.reset(); });
  });

  on("password-change", function (form) {
    post("/api/password", { current: form.current.value, new: form.new.value },
      $("password-status"), $("password-error"))
      .then(function (ok) { if (ok) form.reset(); });
  });

  // A reset link shows the new-password form; the plain page asks for the e-mail.
  if ($("reset-confirm")) {
    $("reset-confirm").hidden = !token;
    $("reset-request").hidden = !!token;
  }

  if ($("verify-status")) {
    window.catalogReady.then(function () {
      post("/api/verify-email", { token: token || "" }, $("verify-status"), $("verify-error"));
    });
  }
})();
