/* Patient portal: "Meus dados" (view, edit, export). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };


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
