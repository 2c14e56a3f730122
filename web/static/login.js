/* Login: e-mail and password, then — for a staff account with a second factor — the code of
   the authenticator app (or a recovery code), sent with the short-lived token the password
   step gave. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var pending = null;

  function post(path, body, error) {
    error.textContent = "";
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { error.textContent = data.error; return null; }
        return data;
      });
    });
  }

  function enter(session) {
    window.location.href = session.role === "patient" ? "/portal" : "/staff";
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    post("/api/login", { email: $("email").value, password: $("password").value }, $("login-error"))
      .then(function (data) {
        if (data === null) return;
        if (!data.second_factor) { enter(data); return; }
        pending = data.pending;
        $("login-form").hidden = true;
        $("code-form").hidden = false;
        $("code").focus();
      });
  });

  $("code-form").addEventListener("submit", function (event) {
    event.preventDefault();
    post("/api/login/second-factor", { pending: pending, code: $("code").value }, $("code-error"))
      .then(function (data) {
        $("code").value = "";
        if (data !== null) enter(data);
      });
  });
})();
