/* Staff reply box and messaging windows. When the selected conversation's channel window is
   closed for a person (WhatsApp: 24 hours since the patient's last message; Messenger and
   Instagram: 7 days), the typed reply gives way to the clinic's approved templates with
   their variables and a preview (GET /api/conversations/{id}/window, POST
   .../template-messages). The patient's answer re-opens the window and the box is free
   text again. Listens to the workspace's "staff:conversation" and "staff:message" events
   (staff.js); builds its own panel inside the reply form. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var conversation = null;  // the selected conversation's detail (staff.js)
  var offered = [];
  var closesTimer = null;
  var panel, notice, choice, values, preview, send;

  function el(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (k) { node.setAttribute(k, attributes[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function build() {
    notice = el("p", { id: "window-notice", "class": "window-notice", role: "status" });
    panel = el("div", { id: "template-reply", "class": "template-reply" });
    panel.hidden = true;
    var label = el("label");
    label.appendChild(el("span", {}, T("templates.choose") + " "));
    choice = el("select", { id: "template-choice" });
    label.appendChild(choice);
    values = el("div", { id: "template-values", "class": "template-values" });
    preview = el("p", { id: "template-preview", "class": "template-preview", "aria-live": "polite" });
    send = el("button", { id: "template-send", type: "button" }, T("templates.send"));
    [label, values, preview, send].forEach(function (node) { panel.appendChild(node); });
    var form = $("reply-form");
    form.insertBefore(notice, form.querySelector(".reply-row"));
    form.insertBefore(panel, form.querySelector(".reply-row"));
    choice.addEventListener("change", showVariables);
    send.addEventListener("click", sendTemplate);
  }

  function chosen() {
    var id = Number(choice.value);
    return offered.filter(function (t) { return t.id === id; })[0] || null;
  }

  function typedValues() {
    return Array.prototype.map.call(values.querySelectorAll("input"), function (input) { return input.value; });
  }

  function renderPreview() {
    var template = chosen();
    if (!template) { preview.textContent = ""; send.disabled = true; return; }
    var typed = typedValues();
    preview.textContent = T("templates.preview") + ": " + template.body.replace(/\{\{\s*(\d+)\s*\}\}/g, function (_, n) {
      var value = (typed[Number(n) - 1] || "").trim();
      return value || "[" + template.variables[Number(n) - 1].description + "]";
    });
    // Only who may reply may send one (staff.js disables the typed reply otherwise).
    send.disabled = $("reply-text").disabled || typed.some(function (v) { return !v.trim(); });
  }

  function showVariables() {
    values.innerHTML = "";
    var template = chosen();
    (template ? template.variables : []).forEach(function (variable, index) {
      var label = el("label");
      label.appendChild(el("span", {}, "{{" + (index + 1) + "}} " + variable.description + " "));
      var input = el("input", { "data-index": String(index), maxlength: "200" });
      input.addEventListener("input", renderPreview);
      label.appendChild(input);
      values.appendChild(label);
    });
    renderPreview();
  }

  function formatTime(iso) {
    return new Date(iso).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit" });
  }

  function apply(window_) {
    var noteMode = $("reply-mode").value === "note";
    var closed = !window_.open && !noteMode;
    $("reply-form").classList.toggle("window-closed", closed);  // hides the typed reply (app.css)
    $("canned").hidden = closed;
    panel.hidden = !closed || !window_.template_kind;
    if (window_.open) {
      notice.textContent = window_.closes_at ? T("templates.window_until", { quando: formatTime(window_.closes_at) }) : "";
    } else if (window_.template_kind) {
      notice.textContent = T("templates.window_closed") + (offered.length ? "" : " " + T("templates.no_templates"));
    } else {
      notice.textContent = T("templates.window_closed_for_good");
    }
    clearTimeout(closesTimer);
    if (window_.open && window_.closes_at) {
      // The window closes while the box is open: show it then, without a reload.
      var wait = new Date(window_.closes_at).getTime() - Date.now() + 1000;
      if (wait < 2147483647) closesTimer = setTimeout(refresh, Math.max(wait, 1000));
    }
  }

  var last = null;
  function refresh() {
    if (!conversation) return;
    var id = conversation.conversation.id;
    var channel = $("reply-channel").value || conversation.conversation.channel;
    api("GET", "/api/conversations/" + id + "/window?channel=" + encodeURIComponent(channel)).then(function (window_) {
      if (!conversation || conversation.conversation.id !== id) return;
      var keep = choice.value;
      offered = window_.templates;
      choice.innerHTML = "";
      choice.appendChild(el("option", { value: "" }, T("templates.pick")));
      offered.forEach(function (t) {
        choice.appendChild(el("option", { value: String(t.id) }, t.name + " · " + T("templates.purpose." + t.purpose)));
      });
      choice.value = keep;
      if (choice.value !== keep) showVariables();
      last = window_;
      apply(window_);
    }).catch(function (error) { $("action-error").textContent = error.message; });
  }

  function sendTemplate() {
    var template = chosen();
    if (!template || !conversation) return;
    $("action-error").textContent = "";
    send.disabled = true;
    api("POST", "/api/conversations/" + conversation.conversation.id + "/template-messages", {
      template_id: template.id, values: typedValues(), channel: $("reply-channel").value || null
    }).then(function () {
      choice.value = "";
      showVariables();
    }).catch(function (error) {
      $("action-error").textContent = error.message;
      renderPreview();
    });
  }

  window.catalogReady.then(function () {
    build();
    document.addEventListener("staff:conversation", function (event) {
      conversation = event.detail;
      choice.value = "";
      showVariables();
      refresh();
    });
    document.addEventListener("staff:message", function (event) {
      var m = event.detail.message;
      // The patient wrote (re-opening the window) or something went out: ask again.
      if (conversation && m.patient_id === conversation.patient.id && !m.internal) refresh();
    });
    $("reply-channel").addEventListener("change", refresh);
    $("reply-mode").addEventListener("change", function () { if (last) apply(last); });
  });
})();
