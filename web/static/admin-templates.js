/* Admin: the clinic's approved message templates (WhatsApp Cloud name + language, or Twilio
   Content SID), with their pt-BR text, numbered variables and purpose; what the workspace
   offers once a patient's 24-hour window is closed, and what reminders use. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };

  function cell(row, content) {
    var td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
  }

  function fieldsOf(template, active) {
    return {
      kind: template.kind, name: template.name, language: template.language,
      content_sid: template.content_sid, purpose: template.purpose, body: template.body,
      variables: template.variables.map(function (v) { return v.description; }), active: active
    };
  }

  // Deactivated templates stay listed (messages name them) and can be reactivated.
  function toggle(template) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small";
    button.textContent = T(template.active ? "templates.deactivate" : "templates.activate");
    button.addEventListener("click", function () {
      api("PUT", "/api/admin/templates/" + template.id, fieldsOf(template, !template.active))
        .then(function () { $("template-status").textContent = T("templates.saved"); load(); })
        .catch(function (e) { $("template-status").textContent = e.message; });
    });
    var wrap = document.createElement("span");
    wrap.textContent = T(template.active ? "templates.active" : "templates.inactive") + " ";
    wrap.appendChild(button);
    return wrap;
  }

  function load() {
    api("GET", "/api/admin/templates").then(function (templates) {
      var body = $("templates-table").querySelector("tbody");
      body.innerHTML = "";
      if (!templates.length) {
        var empty = document.createElement("tr");
        cell(empty, T("templates.none"));
        body.appendChild(empty);
      }
      templates.forEach(function (template) {
        var row = document.createElement("tr");
        row.setAttribute("data-template-id", template.id);
        cell(row, T("templates.kind." + template.kind));
        cell(row, template.kind === "twilio" ? template.name + " (" + template.content_sid + ")" : template.name + " · " + template.language);
        cell(row, T("templates.purpose." + template.purpose));
        cell(row, template.body);
        cell(row, toggle(template));
        body.appendChild(row);
      });
    }).catch(function (e) { $("template-status").textContent = e.message; });
  }

  $("template-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var value = function (name) { return form.elements.namedItem(name).value; };
    var fields = {
      kind: value("kind"), name: value("name"), language: value("language"),
      content_sid: value("content_sid") || null, purpose: value("purpose"), body: value("body"),
      variables: value("variables").split("\n").map(function (v) { return v.trim(); }).filter(Boolean)
    };
    api("POST", "/api/admin/templates", fields).then(function () {
      $("template-status").textContent = T("templates.saved");
      form.reset();
      load();
    }).catch(function (e) { $("template-status").textContent = e.message; });
  });

  window.catalogReady.then(load);
})();
