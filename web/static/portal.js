/* Patient portal: appointments (book, confirm, reschedule, cancel, .ics; past ones), the
   message history, reminders, "Meus dados" (view, edit, export), consents, erasure. */
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

  var rescheduling = null;  // the appointment being moved, while the patient picks a slot

  function describe(a) {
    return when(a.starts_at) + " · " + a.doctor_name + " (" + a.specialty_name + ") · " + T("appointment.status." + a.status);
  }

  function actionButton(action, label, onClick) {
    var button = document.createElement("button");
    button.type = "button";
    button.setAttribute("data-action", action);
    button.textContent = T(label);
    button.addEventListener("click", onClick);
    return button;
  }

  function appointmentAction(path, done) {
    return api("POST", path)
      .then(function () { $("appointments-status").textContent = T(done); return loadAppointments(); })
      .catch(function (e) { $("appointments-status").textContent = e.message; });
  }

  function upcomingItem(a) {
    var li = document.createElement("li");
    li.setAttribute("data-appointment-id", a.id);
    var text = document.createElement("span");
    text.className = "what";
    text.textContent = describe(a);
    var actions = document.createElement("span");
    actions.className = "actions";
    if (a.status === "agendada") {
      actions.appendChild(actionButton("confirm", "portal.confirm", function () {
        appointmentAction("/api/portal/appointments/" + a.id + "/confirm", "portal.confirmed");
      }));
    }
    actions.appendChild(actionButton("reschedule", "portal.reschedule", function () { startRescheduling(a); }));
    actions.appendChild(actionButton("cancel", "portal.cancel", function () {
      if (!window.confirm(T("portal.cancel_confirm"))) return;
      appointmentAction("/api/portal/appointments/" + a.id + "/cancel", "portal.cancelled");
    }));
    var calendar = document.createElement("a");
    calendar.href = "/api/portal/appointments/" + a.id + "/calendar.ics";
    calendar.setAttribute("download", "consulta-" + a.id + ".ics");
    calendar.textContent = T("portal.calendar");
    actions.appendChild(calendar);
    li.appendChild(text);
    li.appendChild(actions);
    return li;
  }

  function fillList(ul, list, empty, item) {
    ul.innerHTML = "";
    if (!list.length) {
      var none = document.createElement("li");
      none.textContent = T(empty);
      ul.appendChild(none);
    }
    list.forEach(function (a) { ul.appendChild(item(a)); });
  }

  function pastItem(a) {
    var li = document.createElement("li");
    li.setAttribute("data-appointment-id", a.id);
    li.textContent = describe(a);
    return li;
  }

  function loadAppointments() {
    return Promise.all([
      api("GET", "/api/portal/appointments"),
      api("GET", "/api/portal/appointments/past")
    ]).then(function (lists) {
      fillList($("appointments"), lists[0], "portal.no_appointments", upcomingItem);
      fillList($("past-appointments"), lists[1], "portal.no_past", pastItem);
    });
  }

  function startRescheduling(a) {
    rescheduling = a;
    $("rescheduling-text").textContent = T("portal.rescheduling", { quando: when(a.starts_at) });
    $("rescheduling").hidden = false;
    $("specialty").value = a.specialty_id;
    $("slots").innerHTML = "";
    $("booking").scrollIntoView();
    $("specialty").focus();
  }

  function stopRescheduling() {
    rescheduling = null;
    $("rescheduling").hidden = true;
  }
  $("reschedule-stop").addEventListener("click", stopRescheduling);

  function choose(slot) {
    var body = { doctor_id: slot.doctor_id, specialty_id: slot.specialty_id, starts_at: slot.starts_at };
    var moving = rescheduling;
    var request = moving
      ? api("POST", "/api/portal/appointments/" + moving.id + "/reschedule", body)
      : api("POST", "/api/portal/appointments", body);
    return request.then(function () {
      $("slots").innerHTML = "";
      stopRescheduling();
      $("booking-status").textContent = T(moving ? "portal.rescheduled" : "portal.booked");
      return loadAppointments();
    }).catch(function (e) { $("booking-status").textContent = e.message; });
  }

  var oldestShown = null;

  function timelineItem(m) {
    var li = document.createElement("li");
    li.className = "from-" + m.author_kind;
    li.setAttribute("data-message-id", m.id);
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = T("portal.author." + m.author_kind) + " · " + channelName(m.channel) + " · " +
      new Date(m.created_at).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo" });
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;  // what the patient wrote: textContent, never markup
    li.appendChild(meta);
    li.appendChild(text);
    if (m.attachments.length) {
      var files = document.createElement("ul");
      files.className = "files";
      m.attachments.forEach(function (a) {
        var file = document.createElement("li");
        var label = a.filename ? T("portal.attachment", { nome: a.filename }) : T("portal.attachment_unnamed");
        if (a.file) {  // a stored file: opened through the access-checked, audited route
          var link = document.createElement("a");
          link.href = "/api/portal/files/" + a.file;
          link.target = "_blank";
          link.rel = "noopener";
          link.textContent = label;
          file.appendChild(link);
        } else {
          file.textContent = label;
        }
        files.appendChild(file);
      });
      li.appendChild(files);
    }
    return li;
  }

  function loadMessages() {
    var path = "/api/portal/messages" + (oldestShown ? "?before=" + oldestShown : "");
    return api("GET", path).then(function (page) {
      var timeline = $("timeline");
      var first = timeline.firstChild;
      if (!oldestShown && !page.length) {
        var none = document.createElement("li");
        none.textContent = T("portal.no_messages");
        timeline.appendChild(none);
      }
      page.forEach(function (m) { timeline.insertBefore(timelineItem(m), first); });
      if (page.length) oldestShown = page[0].id;
      $("older-messages").hidden = page.length < 100;
      if (!first) timeline.scrollTop = timeline.scrollHeight;
    });
  }
  $("older-messages").addEventListener("click", loadMessages);

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
        button.addEventListener("click", function () { choose(slot); });
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
    loadMessages();
    loadSpecialties();
    api("GET", "/api/portal/consents").then(showConsents);
    return api("GET", "/api/portal/me");
  }).then(show);
})();
