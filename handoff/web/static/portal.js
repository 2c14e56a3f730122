/* Patient portal: "Meus dados" (view, edit, export). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };

  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 401) { window.location.href = "/login"; throw new Error("401"); }
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || response.statusText);
        return data;
      });
    });
  }

  function show(me) {
    var form = $("profile-form");
    $("patient-name").textContent = me.name;
    form.name.value = me.name || "";
    form.phone.value = me.phone || "";
    form.email.value = me.email || "";
    form.cpf.value = me.cpf || "";
    $("consent-at").textContent = me.lgpd_consent_at
      ? new Date(me.lgpd_consent_at).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo" }) : "—";
  }

  $("profile-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    api("PATCH", "/api/portal/me", { name: form.name.value, phone: form.phone.value })
      .then(function (me) { show(me); $("profile-status").textContent = T("portal.saved"); })
      .catch(function (e) { $("profile-status").textContent = e.message; });
  });
  $("logout").addEventListener("click", function () {
    api("POST", "/api/logout").then(function () { window.location.href = "/"; });
  });

  window.catalogReady.then(function () { return api("GET", "/api/portal/me"); }).then(show);
})();
