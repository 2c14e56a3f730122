/* Staff agenda: one column per doctor for the chosen day, with statuses and actions;
   managers also block a doctor's time (and remove blocks). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var doctorsSeen = {};
  var manager = false;


  function clock(iso) {
    return new Date(iso).toLocaleTimeString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit", minute: "2-digit" });
  }

  function todayInClinic() {
    // en-CA formats as YYYY-MM-DD, what <input type="date"> expects.
    return new Date().toLocaleDateString("en-CA", { timeZone: "America/Sao_Paulo" });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function reminderLine(reminders) {
    // Notices of changes are shown by agenda-notify.js.
    reminders = reminders.filter(function (r) { return r.kind === "reminder"; });
    if (!reminders.length) return null;
    var parts = reminders.map(function (r) {
      var when = r.sent_at || r.due_at;
      return clock(when) + " " + new Date(when).toLocaleDateString("pt-BR", { timeZone: "America/Sao_Paulo", day: "2-digit", month: "2-digit" }) +
        " · " + T("reminder.status." + r.status) + (r.channel ? " (" + T("channel." + r.channel) + ")" : "");
    });
    return el("div", "reminders", T("agenda.reminders") + ": " + parts.join("; "));
  }

  // What the API allows, by status, before and after the appointment's time.
  var ACTIONS = {
    agendada: { before: ["confirm", "remind", "cancel"], after: ["attended", "no-show"] },
    confirmada: { before: ["remind", "cancel"], after: ["attended", "no-show"] },
    realizada: { before: [], after: ["no-show"] },
    faltou: { before: [], after: ["attended"] },
    cancelada: { before: [], after: [] }
  };

  function actionsFor(a) {
    var allowed = ACTIONS[a.status] || { before: [], after: [] };
    return new Date(a.starts_at) > new Date() ? allowed.before : allowed.after;
  }

  function act(appointment, action) {
    var body;
    if (action === "cancel") {
      var reason = window.prompt(T("agenda.cancel_reason"));
      if (reason === null) return;
      body = { reason: reason };
    }
    $("agenda-error").textContent = "";
    api("POST", "/api/appointments/" + appointment.id + "/" + action, body)
      .then(load)
      .catch(function (error) { $("agenda-error").textContent = error.message; });
  }

  function appointmentRow(a) {
    var row = el("li", "agenda-row status-" + a.status);
    row.setAttribute("data-appointment-id", a.id);
    row.appendChild(el("span", "time", clock(a.starts_at)));
    row.appendChild(el("span", "who", a.patient_name || T("staff.unknown_patient")));
    row.appendChild(el("span", "status", T("appointment.status." + a.status)));
    var reminders = reminderLine(a.reminders);
    if (reminders) row.appendChild(reminders);
    if (a.call_patient) row.appendChild(el("div", "call-patient", T("agenda.call_patient")));
    window.agendaNotify.appointment(row, a, notifyOptions());
    var buttons = el("div", "row-actions");
    actionsFor(a).forEach(function (action) {
      var button = el("button", "", T("agenda.action." + action));
      button.type = "button";
      button.setAttribute("data-action", action);
      button.addEventListener("click", function () { act(a, action); });
      buttons.appendChild(button);
    });
    row.appendChild(buttons);
    return { at: a.starts_at, node: row };
  }

  function simpleRow(at, className, label) {
    var row = el("li", "agenda-row " + className);
    row.appendChild(el("span", "time", clock(at)));
    row.appendChild(el("span", "who", label));
    return { at: at, node: row };
  }

  function notifyOptions() {
    return {
      manager: manager, reload: load,
      error: function (message) { $("agenda-error").textContent = message; },
      done: function (message) { $("block-result").textContent = message; }
    };
  }

  function blockedRow(b, appointments) {
    var row = simpleRow(b.starts_at, "blocked", (b.reason || T("agenda.blocked")) + " (" + clock(b.starts_at) + "–" + clock(b.ends_at) + ")");
    if (b.id !== null) window.agendaNotify.block(row.node, b, appointments, notifyOptions());
    // National holidays have no id: they come from the calendar, not from a manager.
    if (manager && b.id !== null) {
      row.node.setAttribute("data-block-id", b.id);
      var remove = el("button", "", T("agenda.block.remove"));
      remove.type = "button";
      remove.setAttribute("data-action", "unblock");
      remove.addEventListener("click", function () {
        $("agenda-error").textContent = "";
        api("DELETE", "/api/agenda/exceptions/" + b.id).then(function () {
          $("block-result").textContent = T("agenda.block.removed");
          return load();
        }).catch(function (error) { $("agenda-error").textContent = error.message; });
      });
      var buttons = el("div", "row-actions");
      buttons.appendChild(remove);
      row.node.appendChild(buttons);
    }
    return row;
  }

  function render(data) {
    $("agenda").innerHTML = "";
    $("agenda-empty").hidden = data.doctors.length > 0;
    data.doctors.forEach(function (day) {
      doctorsSeen[day.doctor.id] = day.doctor.name;
      var column = el("section", "doctor-day");
      column.setAttribute("data-doctor-id", day.doctor.id);
      column.appendChild(el("h2", "", day.doctor.name));
      column.appendChild(el("div", "specialty", day.doctor.specialty_name));
      var rows = day.appointments.map(appointmentRow)
        .concat(day.free.map(function (at) { return simpleRow(at, "free", T("agenda.free")); }))
        .concat(day.blocked.map(function (b) { return blockedRow(b, day.appointments); }));
      rows.sort(function (x, y) { return x.at.localeCompare(y.at); });
      var list = el("ol", "agenda-rows");
      rows.forEach(function (r) { list.appendChild(r.node); });
      column.appendChild(list);
      $("agenda").appendChild(column);
    });
    fillDoctors();
  }

  function fillDoctors() {
    var select = $("doctor");
    var chosen = select.value;
    Object.keys(doctorsSeen).forEach(function (id) {
      if (!select.querySelector('option[value="' + id + '"]')) {
        var option = el("option", "", doctorsSeen[id]);
        option.value = id;
        select.appendChild(option);
      }
    });
    select.value = chosen;
  }

  var loads = 0;
  function load() {
    var query = "?day=" + encodeURIComponent($("day").value) + ($("doctor").value ? "&doctor_id=" + $("doctor").value : "");
    var mine = ++loads;
    // Only the latest request renders: an earlier, slower one would show a stale day.
    return api("GET", "/api/agenda" + query).then(function (data) { if (mine === loads) render(data); })
      .catch(function (error) { $("agenda-error").textContent = error.message; });
  }

  function dateTime(iso) {
    return new Date(iso).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo", day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function showBlocked(result) {
    var node = $("block-result");
    node.innerHTML = "";
    node.appendChild(el("div", "", T("agenda.block.done", {
      doctor: doctorsSeen[result.block.doctor_id] || "", from: dateTime(result.block.starts_at), to: dateTime(result.block.ends_at)
    })));
    if (!result.appointments.length) return;
    node.appendChild(el("p", "conflicts", T("agenda.block.conflicts", { count: result.appointments.length })));
    var list = el("ul", "conflicts");
    result.appointments.forEach(function (a) {
      var item = el("li", "", dateTime(a.starts_at) + " · " + (a.patient_name || T("staff.unknown_patient")) + " · " + T("appointment.status." + a.status));
      item.setAttribute("data-appointment-id", a.id);
      list.appendChild(item);
    });
    node.appendChild(list);
    if (result.block.id !== null) window.agendaNotify.button(node, result.block.id, notifyOptions());
  }

  function setUpBlocks() {
    return api("GET", "/api/agenda/doctors").then(function (doctors) {
      doctors.forEach(function (d) {
        doctorsSeen[d.id] = d.name;
        var option = el("option", "", d.name + " (" + d.specialty_name + ")");
        option.value = d.id;
        $("block-doctor").appendChild(option);
      });
      fillDoctors();
      $("block").hidden = false;
    });
  }

  $("block").addEventListener("submit", function (event) {
    event.preventDefault();
    $("agenda-error").textContent = "";
    // datetime-local values carry no offset: the server reads them as clinic time.
    api("POST", "/api/agenda/exceptions", {
      doctor_id: Number($("block-doctor").value), starts_at: $("block-from").value,
      ends_at: $("block-to").value, reason: $("block-reason").value
    }).then(function (result) {
      showBlocked(result);
      return load();
    }).catch(function (error) { $("agenda-error").textContent = error.message; });
  });

  $("day").addEventListener("change", load);
  $("doctor").addEventListener("change", load);
  $("today").addEventListener("click", function () { $("day").value = todayInClinic(); load(); });

  window.catalogReady.then(function () {
    $("day").value = todayInClinic();
    load();
    return api("GET", "/api/me");
  }).then(function (me) {
    manager = me.role !== "attendant";
    if (manager) return setUpBlocks().then(load);
  }).catch(function (error) { $("agenda-error").textContent = error.message; });
})();
