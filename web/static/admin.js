/* Admin: staff accounts, the clinic profile (texts, lists, "item: descrição" maps) and the
   audit log. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var shapes = {};


  function cell(row, content) {
    var td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
  }

  // An account locked by failed logins (its owner called): the admin lifts the lock.
  function unlockButton(user) {
    var unlock = document.createElement("button");
    unlock.type = "button";
    unlock.className = "unlock";
    unlock.textContent = T("admin.unlock");
    unlock.title = T("admin.locked");
    unlock.addEventListener("click", function () {
      api("POST", "/api/admin/staff/" + user.id + "/unlock")
        .then(function () { $("staff-status").textContent = T("admin.unlocked"); loadStaff(); })
        .catch(function (e) { $("staff-status").textContent = e.message; });
    });
    return unlock;
  }

  // A lost phone without recovery codes: the admin removes the second factor, and the
  // person enrols again at their next login.
  function secondFactorCell(user) {
    if (!user.second_factor) return T("admin.second_factor_off");
    var reset = document.createElement("button");
    reset.type = "button";
    reset.className = "reset-second-factor";
    reset.textContent = T("admin.reset_second_factor");
    reset.title = T("admin.second_factor_on");
    reset.addEventListener("click", function () {
      api("POST", "/api/admin/staff/" + user.id + "/second-factor/reset")
        .then(function () { $("staff-status").textContent = T("admin.second_factor_reset_done"); loadStaff(); })
        .catch(function (e) { $("staff-status").textContent = e.message; });
    });
    return reset;
  }

  function loadSecurity() {
    api("GET", "/api/admin/security").then(function (security) {
      $("second-factor-policy").value = security.second_factor;
    });
  }

  $("security-form").addEventListener("submit", function (event) {
    event.preventDefault();
    api("PUT", "/api/admin/security", { second_factor: $("second-factor-policy").value })
      .then(function () { $("security-status").textContent = T("admin.saved_settings"); })
      .catch(function (e) { $("security-status").textContent = e.message; });
  });

  function loadStaff() {
    api("GET", "/api/admin/staff").then(function (staff) {
      var body = $("staff-table").querySelector("tbody");
      body.innerHTML = "";
      staff.forEach(function (user) {
        var row = document.createElement("tr");
        row.setAttribute("data-user-id", user.id);
        cell(row, user.name);
        cell(row, user.email);
        cell(row, T("role." + user.role));
        var capacity = document.createElement("input");
        capacity.type = "number"; capacity.min = 1; capacity.max = 50;
        capacity.value = user.capacity || "";
        capacity.disabled = user.capacity === null;
        capacity.setAttribute("aria-label", T("admin.capacity") + ": " + user.name);
        capacity.addEventListener("change", function () {
          api("PATCH", "/api/admin/staff/" + user.id, { capacity: Number(capacity.value) })
            .catch(function (e) { $("staff-status").textContent = e.message; });
        });
        cell(row, capacity);
        var toggle = document.createElement("button");
        toggle.type = "button";
        toggle.textContent = T(user.is_active ? "admin.deactivate" : "admin.activate");
        toggle.addEventListener("click", function () {
          api("PATCH", "/api/admin/staff/" + user.id, { is_active: !user.is_active })
            .then(loadStaff)
            .catch(function (e) { $("staff-status").textContent = e.message; });
        });
        cell(row, toggle);
        cell(row, user.locked_for > 0 ? unlockButton(user) : "");
        cell(row, secondFactorCell(user));
        body.appendChild(row);
      });
    });
  }

  $("new-staff").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    api("POST", "/api/admin/staff", {
      name: form.name.value, email: form.email.value, role: form.role.value,
      capacity: Number(form.capacity.value), password: form.password.value
    }).then(function () {
      $("staff-status").textContent = T("admin.created");
      form.reset();
      loadStaff();
    }).catch(function (e) { $("staff-status").textContent = e.message; });
  });

  function toText(value) {
    if (Array.isArray(value)) return value.join("\n");
    if (typeof value === "object") return Object.keys(value).map(function (k) { return k + ": " + value[k]; }).join("\n");
    return value;
  }

  function fromText(shape, text) {
    var lines = text.split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
    if (shape === "list") return lines;
    if (shape === "map") {
      var map = {};
      lines.forEach(function (line) {
        var at = line.indexOf(":");
        if (at > 0) map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      });
      return map;
    }
    return text.trim();
  }

  function loadProfile() {
    api("GET", "/api/admin/clinic").then(function (profile) {
      $("clinic-name").value = profile.name;
      var fields = $("clinic-fields");
      fields.innerHTML = "";
      Object.keys(profile.data).forEach(function (key) {
        var value = profile.data[key];
        shapes[key] = Array.isArray(value) ? "list" : (typeof value === "object" ? "map" : "text");
        var label = document.createElement("label");
        var title = document.createElement("span");
        var translated = T("clinic.field." + key);
        title.textContent = translated === "clinic.field." + key ? key : translated;
        var area = document.createElement("textarea");
        area.name = key;
        area.rows = shapes[key] === "text" ? 2 : 4;
        area.value = toText(value);
        label.appendChild(title);
        label.appendChild(area);
        fields.appendChild(label);
      });
    });
  }

  $("clinic-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var data = {};
    $("clinic-fields").querySelectorAll("textarea").forEach(function (area) {
      data[area.name] = fromText(shapes[area.name], area.value);
    });
    api("PUT", "/api/admin/clinic", { name: $("clinic-name").value, data: data })
      .then(function () { $("clinic-status").textContent = T("admin.saved"); })
      .catch(function (e) { $("clinic-status").textContent = e.message; });
  });

  /* The audit log: filters, pages, and the chain's verification. */
  var auditPage = 1;
  var WHEN = new Intl.DateTimeFormat("pt-BR", { dateStyle: "short", timeStyle: "medium", timeZone: "America/Sao_Paulo" });

  function auditQuery() {
    var form = $("audit-filters"), params = new URLSearchParams();
    ["actor_id", "action", "patient_id", "from", "to"].forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    });
    params.set("page", auditPage);
    return params.toString();
  }

  // A name in the table narrows the log to that person.
  function filterLink(label, field, id) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "filter-link";
    button.textContent = label;
    button.addEventListener("click", function () {
      $("audit-filters").elements[field].value = id;
      auditPage = 1;
      loadAudit();
    });
    return button;
  }

  function actorCell(entry) {
    if (entry.actor_id === null) return T(entry.action === "login_failed" ? "admin.audit_nobody" : "admin.audit_system");
    return filterLink((entry.actor_name || "") + " (nº " + entry.actor_id + ")", "actor_id", entry.actor_id);
  }

  function fillActions(actions) {
    var select = $("audit-filters").elements.action;
    if (select.options.length > 1) return;
    actions.forEach(function (action) {
      var option = document.createElement("option");
      option.value = action;
      option.textContent = T("audit.action." + action);
      select.appendChild(option);
    });
  }

  function loadAudit() {
    $("audit-status").textContent = "";
    api("GET", "/api/admin/audit?" + auditQuery()).then(function (data) {
      fillActions(data.actions);
      var body = $("audit-table").querySelector("tbody");
      body.innerHTML = "";
      data.entries.forEach(function (entry) {
        var row = document.createElement("tr");
        row.setAttribute("data-entry-id", entry.id);
        cell(row, WHEN.format(new Date(entry.created_at)));
        cell(row, actorCell(entry));
        cell(row, T("audit.action." + entry.action));
        cell(row, entry.patient_id === null ? "" :
          filterLink((entry.patient_name || "") + " (nº " + entry.patient_id + ")", "patient_id", entry.patient_id));
        cell(row, entry.ip || "");
        cell(row, Object.keys(entry.details).length ? JSON.stringify(entry.details) : "");
        body.appendChild(row);
      });
      if (!data.entries.length) $("audit-status").textContent = T("admin.audit_empty");
      $("audit-page").textContent = T("admin.audit_page", { page: data.page, pages: data.pages, total: data.total });
      $("audit-previous").disabled = data.page <= 1;
      $("audit-next").disabled = data.page >= data.pages;
    }).catch(function (e) { $("audit-status").textContent = e.message; });
  }

  function verifyAudit() {
    var status = $("audit-chain");
    api("GET", "/api/admin/audit/verify").then(function (report) {
      status.classList.toggle("audit-broken", !report.intact);
      var lines = [report.intact ? T("admin.audit_intact", { checked: report.checked }) : T("admin.audit_broken", { id: report.broken_id })];
      if (report.unchained) lines.push(T("admin.audit_unchained", { unchained: report.unchained }));
      status.textContent = lines.join(" ");
    }).catch(function (e) { status.textContent = e.message; });
  }

  $("audit-filters").addEventListener("submit", function (event) {
    event.preventDefault();
    auditPage = 1;
    loadAudit();
  });
  $("audit-filters").addEventListener("reset", function () {
    auditPage = 1;
    setTimeout(loadAudit);  // after the browser cleared the fields
  });
  $("audit-previous").addEventListener("click", function () { auditPage -= 1; loadAudit(); });
  $("audit-next").addEventListener("click", function () { auditPage += 1; loadAudit(); });
  $("audit-verify").addEventListener("click", verifyAudit);

  window.catalogReady.then(function () { loadStaff(); loadSecurity(); loadProfile(); loadAudit(); verifyAudit(); });
})();
