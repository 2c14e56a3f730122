/* Account security: the staff member's second factor. Enrolment shows the key as a QR code
   (SVG made by the server, parsed as an image document, never run) and as text, activates it
   with a first code, then shows the recovery codes once. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };

  function fail(error) { $("security-error").textContent = error.message; }

  function show(status) {
    $("security-policy").textContent = T(status.required ? "security.required" : "security.optional");
    $("security-state").textContent = T(status.active ? "security.active" : "security.inactive");
    $("enrol-start").hidden = status.active;
    $("security-continue").hidden = status.required && !status.active;
  }

  function showQr(svg) {
    var image = new DOMParser().parseFromString(svg, "image/svg+xml").documentElement;
    var holder = $("enrol-qr");
    holder.textContent = "";
    holder.appendChild(document.importNode(image, true));
  }

  $("enrol-start").addEventListener("click", function () {
    $("security-error").textContent = "";
    api("POST", "/api/account/second-factor/enrolment").then(function (enrolment) {
      showQr(enrolment.qr_svg);
      $("enrol-secret").textContent = enrolment.secret;
      $("enrol-start").hidden = true;
      $("enrol-form").hidden = false;
      $("enrol-code").focus();
    }).catch(fail);
  });

  $("enrol-form").addEventListener("submit", function (event) {
    event.preventDefault();
    $("security-error").textContent = "";
    api("POST", "/api/account/second-factor/confirm", { code: $("enrol-code").value })
      .then(function (done) {
        $("enrol-form").hidden = true;
        var list = $("recovery-codes");
        list.textContent = "";
        done.recovery_codes.forEach(function (code) {
          var item = document.createElement("li");
          item.textContent = code;
          list.appendChild(item);
        });
        $("recovery").hidden = false;
        $("security-continue").textContent = T("security.done");
        show({ active: true, required: false });
      })
      .catch(function (error) { $("enrol-code").value = ""; fail(error); });
  });

  window.catalogReady.then(function () {
    api("GET", "/api/account/second-factor").then(show).catch(fail);
  });
})();
