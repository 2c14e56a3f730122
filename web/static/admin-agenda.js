/* Admin: the clinic's agenda set-up — specialties, doctors (specialties served, convênios,
   weekly hours, slot length, active dates) and the clinic's own holidays. Every change is
   saved through /api/admin/agenda and offered to patients at once. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = { setup: null, editing: null };

  function el(tag, text) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function localDate(iso) {
    var parts = iso.split("-");
    return parts[2] + "/" + parts[1] + "/" + parts[0];
  }

  function checkbox(name, value, label, checked) {
    var wrap = el("label");
    wrap.className = "check";
    var input = el("input");
    input.type = "checkbox";
    input.name = name;
    input.value = value;
    input.checked = checked;
    wrap.appendChild(input);
    wrap.appendChild(el("span", label));
    return wrap;
  }

  function checked(fieldset) {
    return Array.prototype.map.call(fieldset.querySelectorAll("input:checked"), function (i) { return i.value; });
  }

  function clearAfterLegend(fieldset) {
    while (fieldset.children.length > 1) fieldset.removeChild(fieldset.lastChild);
  }

  /* ---- specialties ---- */
  function renderSpecialties() {
    var list = $("setup-specialties");
    list.innerHTML = "";
    state.setup.specialties.forEach(function (s) {
      var item = el("li", s.name + " ");
      var rename = el("button", T("agenda_setup.rename"));
      rename.type = "button";
      rename.className = "small secondary";
      rename.setAttribute("aria-label", T("agenda_setup.rename") + ": " + s.name);
      rename.addEventListener("click", function () {
        var name = window.prompt(T("agenda_setup.rename_prompt"), s.name);
        if (!name) return;
        api("PUT", "/api/admin/agenda/specialties/" + s.id, { name: name })
          .then(function () { $("specialty-status").textContent = T("agenda_setup.saved"); load(); })
          .catch(function (e) { $("specialty-status").textContent = e.message; });
      });
      item.appendChild(rename);
      list.appendChild(item);
    });
  }

  $("specialty-form").addEventListener("submit", function (event) {
    event.preventDefault();
    api("POST", "/api/admin/agenda/specialties", { name: $("specialty-name").value })
      .then(function () {
        $("specialty-name").value = "";
        $("specialty-status").textContent = T("agenda_setup.saved");
        load();
      })
      .catch(function (e) { $("specialty-status").textContent = e.message; });
  });

  /* ---- doctors ---- */
  function specialtyNames(ids) {
    return state.setup.specialties
      .filter(function (s) { return ids.indexOf(s.id) >= 0; })
      .map(function (s) { return s.name; }).join(", ");
  }

  function renderDoctors() {
    var list = $("setup-doctors");
    list.innerHTML = "";
    state.setup.doctors.forEach(function (d) {
      var item = el("li");
      item.setAttribute("data-doctor-id", d.id);
      item.appendChild(el("strong", d.name));
      var summary = " — " + T("agenda_setup.doctor_summary", { especialidades: specialtyNames(d.specialty_ids), minutos: d.slot_minutes });
      if (d.active_until) summary += " · " + T("agenda_setup.ended", { data: localDate(d.active_until) });
      item.appendChild(el("span", summary + " "));
      var edit = el("button", T("agenda_setup.edit"));
      edit.type = "button";
      edit.className = "small secondary";
      edit.setAttribute("aria-label", T("agenda_setup.edit_doctor", { nome: d.name }));
      edit.addEventListener("click", function () { openDoctor(d); });
      item.appendChild(edit);
      list.appendChild(item);
    });
  }

  function hoursRow(range) {
    var row = el("div");
    row.className = "hours-row";
    var day = el("select");
    day.className = "hours-weekday";
    day.setAttribute("aria-label", T("agenda_setup.weekday"));
    for (var n = 0; n < 7; n++) {
      var option = el("option", T("agenda_setup.weekday." + n));
      option.value = n;
      day.appendChild(option);
    }
    day.value = String(range.weekday);
    var starts = el("input"), ends = el("input");
    [[starts, "hours-starts", "agenda_setup.starts", range.starts], [ends, "hours-ends", "agenda_setup.ends", range.ends]].forEach(function (spec) {
      spec[0].type = "time";
      spec[0].className = spec[1];
      spec[0].required = true;
      spec[0].setAttribute("aria-label", T(spec[2]));
      spec[0].value = spec[3];
    });
    var remove = el("button", T("agenda_setup.remove_hours"));
    remove.type = "button";
    remove.className = "small secondary";
    remove.addEventListener("click", function () { row.parentNode.removeChild(row); });
    [day, starts, ends, remove].forEach(function (n) { row.appendChild(n); });
    return row;
  }

  function openDoctor(doctor) {
    state.editing = doctor;
    var d = doctor || { name: "", crm: "", specialty_ids: [], convenios: [], slot_minutes: 30, hours: [], active_from: null, active_until: null };
    $("doctor-form-title").textContent = doctor ? T("agenda_setup.edit_doctor", { nome: doctor.name }) : T("agenda_setup.new_doctor");
    $("doctor-name").value = d.name;
    $("doctor-crm").value = d.crm || "";
    $("doctor-slot").value = d.slot_minutes;
    $("doctor-from").value = d.active_from || "";
    $("doctor-until").value = d.active_until || "";
    var specialties = $("doctor-specialties");
    clearAfterLegend(specialties);
    state.setup.specialties.forEach(function (s) {
      specialties.appendChild(checkbox("specialty", s.id, s.name, d.specialty_ids.indexOf(s.id) >= 0));
    });
    var convenios = $("doctor-convenios");
    clearAfterLegend(convenios);
    if (!state.setup.convenios.length) convenios.appendChild(el("p", T("agenda_setup.no_convenios")));
    state.setup.convenios.forEach(function (c) {
      convenios.appendChild(checkbox("convenio", c, c, d.convenios.indexOf(c) >= 0));
    });
    var hours = $("doctor-hours");
    clearAfterLegend(hours);
    d.hours.forEach(function (range) { hours.appendChild(hoursRow(range)); });
    $("doctor-status").textContent = "";
    $("doctor-form").hidden = false;
    $("doctor-name").focus();
  }

  function doctorBody() {
    return {
      name: $("doctor-name").value,
      crm: $("doctor-crm").value || null,
      specialty_ids: checked($("doctor-specialties")).map(Number),
      convenios: checked($("doctor-convenios")),
      slot_minutes: Number($("doctor-slot").value),
      hours: Array.prototype.map.call($("doctor-hours").querySelectorAll(".hours-row"), function (row) {
        return {
          weekday: Number(row.querySelector(".hours-weekday").value),
          starts: row.querySelector(".hours-starts").value,
          ends: row.querySelector(".hours-ends").value
        };
      }),
      active_from: $("doctor-from").value || null,
      active_until: $("doctor-until").value || null
    };
  }

  $("doctor-new").addEventListener("click", function () { openDoctor(null); });
  $("doctor-cancel").addEventListener("click", function () { $("doctor-form").hidden = true; });
  $("hours-add").addEventListener("click", function () {
    $("doctor-hours").appendChild(hoursRow({ weekday: 0, starts: "08:00", ends: "12:00" }));
  });

  $("doctor-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var editing = state.editing;
    var request = editing
      ? api("PUT", "/api/admin/agenda/doctors/" + editing.id, doctorBody())
      : api("POST", "/api/admin/agenda/doctors", doctorBody());
    request.then(function () {
      $("doctor-form").hidden = true;
      $("doctor-status").textContent = T("agenda_setup.saved");
      load();
    }).catch(function (e) { $("doctor-status").textContent = e.message; });
  });

  /* ---- holidays ---- */
  function renderHolidays() {
    var list = $("setup-holidays");
    list.innerHTML = "";
    if (!state.setup.holidays.length) list.appendChild(el("li", T("agenda_setup.no_holidays")));
    state.setup.holidays.forEach(function (h) {
      var item = el("li", localDate(h.date) + " — " + h.name + " ");
      var remove = el("button", T("agenda_setup.remove_holiday"));
      remove.type = "button";
      remove.className = "small secondary";
      remove.setAttribute("aria-label", T("agenda_setup.remove_holiday") + ": " + h.name);
      remove.addEventListener("click", function () {
        api("DELETE", "/api/admin/agenda/holidays/" + h.id)
          .then(function () { $("holiday-status").textContent = T("agenda_setup.saved"); load(); })
          .catch(function (e) { $("holiday-status").textContent = e.message; });
      });
      item.appendChild(remove);
      list.appendChild(item);
    });
    var national = $("setup-national");
    national.innerHTML = "";
    state.setup.national_holidays.forEach(function (h) {
      national.appendChild(el("li", localDate(h.date) + " — " + h.name));
    });
  }

  $("holiday-form").addEventListener("submit", function (event) {
    event.preventDefault();
    api("POST", "/api/admin/agenda/holidays", { date: $("holiday-date").value, name: $("holiday-name").value })
      .then(function () {
        $("holiday-form").reset();
        $("holiday-status").textContent = T("agenda_setup.saved");
        load();
      })
      .catch(function (e) { $("holiday-status").textContent = e.message; });
  });

  function load() {
    return api("GET", "/api/admin/agenda").then(function (setup) {
      state.setup = setup;
      renderSpecialties();
      renderDoctors();
      renderHolidays();
    });
  }

  window.catalogReady.then(load);
})();
