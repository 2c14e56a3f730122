/* Patient portal: "Meus dados" (view, edit, export), consents, erasure, appointments. */
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
    $("phone-state").textContent = T(me.phone_verified ? "portal.phone_verified" : "portal.phone_unverified");
    $("phone-send").hidden = !me.phone || me.phone_verified;
    if (me.phone_verified) { $("phone-code-form").hidden = true; }
    showReminders(me);
  }

  function channelName(channel) {
    return T(channel === "twilio" ? "portal.channel_sms" : "channel." + channel);
  }

  function showReminders(me) {
    var form = $("reminders-form");
    var select = $("reminder-channel");
    form.wanted.checked = me.reminders_opt_in;
    select.innerHTML = "";
    [""].concat(me.reminder_channels).forEach(function (channel) {
      var option = document.createElement("option");
      option.value = channel;
      option.textContent = channel ? channelName(channel) : T("portal.reminders_any");
      select.appendChild(option);
    });
    select.value = me.reminder_channels.indexOf(me.preferred_channel) >= 0 ? me.preferred_channel : "";
    $("reminders-unreachable").hidden = me.reminder_channels.length > 0;
  }

  $("reminders-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var consent = "/api/portal/consents/lembretes" + (form.wanted.checked ? "" : "/withdraw");
    api("PATCH", "/api/portal/me", { preferred_channel: form.channel.value || null })
      .then(function () { return api("POST", consent); })
      .then(function (consents) { showConsents(consents); return api("GET", "/api/portal/me"); })
      .then(function (me) {
        show(me);
        $("reminders-status").textContent = T(me.reminders_opt_in ? "portal.reminders_saved" : "portal.reminders_stopped");
      })
      .catch(function (e) { $("reminders-status").textContent = e.message; });
  });

  function when(iso) {
    return new Date(iso).toLocaleString("pt-BR", {
      timeZone: "America/Sao_Paulo", weekday: "long", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit"
    });
  }

  function loadAppointments() {
    return api("GET", "/api/portal/appointments").then(function (list) {
      var ul = $("appointments");
      ul.innerHTML = "";
      if (!list.length) {
        var empty = document.createElement("li");
        empty.textContent = T("portal.no_appointments");
        ul.appendChild(empty);
      }
      list.forEach(function (a) {
        var li = document.createElement("li");
        li.setAttribute("data-appointment-id", a.id);
        var text = document.createElement("span");
        text.textContent = when(a.starts_at) + " · " + a.doctor_name + " (" + a.specialty_name + ") · " + T("appointment.status." + a.status);
        var cancel = document.createElement("button");
        cancel.type = "button";
        cancel.textContent = T("portal.cancel");
        cancel.addEventListener("click", function () {
          if (!window.confirm(T("portal.cancel_confirm"))) return;
          api("POST", "/api/portal/appointments/" + a.id + "/cancel")
            .then(function () { $("appointments-status").textContent = T("portal.cancelled"); return loadAppointments(); })
            .catch(function (e) { $("appointments-status").textContent = e.message; });
        });
        li.appendChild(text);
        li.appendChild(cancel);
        ul.appendChild(li);
      });
    });
  }

  function loadSpecialties() {
    return api("GET", "/api/portal/specialties").then(function (list) {
      list.forEach(function (s) {
        var option = document.createElement("option");
        option.value = s.id;
        option.textContent = s.name;
        $("specialty").appendChild(option);
      });
    });
  }

  $("slot-search").addEventListener("submit", function (event) {
    event.preventDefault();
    var query = "?specialty_id=" + $("specialty").value + ($("day").value ? "&day=" + $("day").value : "");
    $("booking-status").textContent = "";
    api("GET", "/api/portal/slots" + query).then(function (slots) {
      var box = $("slots");
      box.innerHTML = "";
      if (!slots.length) $("booking-status").textContent = T("portal.no_slots");
      slots.forEach(function (slot) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = when(slot.starts_at) + " · " + slot.doctor_name;
        button.addEventListener("click", function () {
          api("POST", "/api/portal/appointments", { doctor_id: slot.doctor_id, starts_at: slot.starts_at })
            .then(function () { box.innerHTML = ""; $("booking-status").textContent = T("portal.booked"); return loadAppointments(); })
            .catch(function (e) { $("booking-status").textContent = e.message; });
        });
        box.appendChild(button);
      });
    }).catch(function (e) { $("booking-status").textContent = e.message; });
  });

  $("profile-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    api("PATCH", "/api/portal/me", { name: form.name.value, phone: form.phone.value })
      .then(function (me) { show(me); $("profile-status").textContent = T("portal.saved"); })
      .catch(function (e) { $("profile-status").textContent = e.message; });
  });
  $("phone-send").addEventListener("click", function () {
    api("POST", "/api/portal/me/phone/code")
      .then(function () {
        $("phone-code-form").hidden = false;
        $("phone-status").textContent = T("portal.phone_code_sent");
      })
      .catch(function (e) { $("phone-status").textContent = e.message; });
  });

  $("phone-code-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    api("POST", "/api/portal/me/phone/confirm", { code: form.code.value })
      .then(function (me) {
        form.reset();
        show(me);
        $("phone-status").textContent = T("portal.phone_confirmed");
      })
      .catch(function (e) { $("phone-status").textContent = e.message; });
  });

  function showConsents(list) {
    var ul = $("consents");
    ul.innerHTML = "";
    list.forEach(function (c) {
      var li = document.createElement("li");
      li.setAttribute("data-purpose", c.purpose);
      var title = document.createElement("strong");
      title.textContent = c.title;
      var text = document.createElement("p");
      text.textContent = c.text;
      var state = document.createElement("span");
      state.textContent = c.granted_at
        ? T("privacy.active_since", { quando: new Date(c.granted_at).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo" }), versao: c.granted_version })
        : T("privacy.inactive");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = T(c.granted_at ? "privacy.withdraw" : "privacy.grant");
      button.addEventListener("click", function () {
        var path = "/api/portal/consents/" + c.purpose + (c.granted_at ? "/withdraw" : "");
        api("POST", path).then(function (updated) {
          showConsents(updated);
          $("consents-status").textContent = T(c.granted_at ? "privacy.withdrawn" : "privacy.granted");
        }).catch(function (e) { $("consents-status").textContent = e.message; });
      });
      li.appendChild(title);
      li.appendChild(text);
      li.appendChild(state);
      li.appendChild(button);
      ul.appendChild(li);
    });
  }

  $("erase-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!window.confirm(T("privacy.erase_confirm"))) return;
    api("POST", "/api/portal/erase", { password: event.target.password.value })
      .then(function () { window.alert(T("privacy.erased")); window.location.href = "/"; })
      .catch(function (e) { $("erase-status").textContent = e.message; });
  });
  $("logout").addEventListener("click", function () {
    api("POST", "/api/logout").then(function () { window.location.href = "/"; });
  });

  window.catalogReady.then(function () {
    loadAppointments();
    loadSpecialties();
    api("GET", "/api/portal/consents").then(showConsents);
    return api("GET", "/api/portal/me");
  }).then(show);
})();
